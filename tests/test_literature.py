"""The literature's protocols: dynamic binarization, a held-out validation split, the best
epoch kept and early stopping."""

import pytest
import torch
from conftest import experiment

from vaelab.config.params import PreparedSpec
from vaelab.core.errors import DataError, ParamsError
from vaelab.data.prepare import prepare
from vaelab.data.raw.manifest import load_manifest
from vaelab.data.splits import Split, hold_out, load_split
from vaelab.training import loop as training
from vaelab.training.loop import Images, Run, train


@pytest.fixture(scope="module")
def dynamic_data(prepared_data, tmp_path_factory):
    root = prepared_data
    out = tmp_path_factory.mktemp("dynamic") / "mnist_dynamic"
    spec = PreparedSpec(dataset="mnist", binarize="dynamic", size=28, seed=3)
    prepare(root / "mirror" / "mnist", load_manifest("mnist", root / "manifest.yaml"), spec, out)
    return out


def test_dynamic_data_keeps_grey_training_images_and_draws_the_test_split_once(dynamic_data):
    train_split = load_split(dynamic_data, "train")
    assert train_split.dynamic and len(train_split.images.unique()) > 2
    test, again = load_split(dynamic_data, "test"), load_split(dynamic_data, "test")
    assert not test.dynamic and set(test.images.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(test.images, again.images)  # the same fixed draw every time


class Recorder:
    """Wraps an objective and keeps the batches it trained on."""

    def __init__(self, objective):
        self.objective, self.batches = objective, []

    def __call__(self, model, x, generator=None):
        if model.training:
            self.batches.append(x.clone())
        return self.objective(model, x, generator)


def batches_seen(monkeypatch, spec, images, dynamic):
    real = training.objective_for
    recorders = []

    def recording(*args):
        recorders.append(Recorder(real(*args)))
        return recorders[-1]

    monkeypatch.setattr(training, "objective_for", recording)
    train(Run(spec, "t"), Images(images, images[:64], dynamic=dynamic))
    monkeypatch.setattr(training, "objective_for", real)
    return [b for r in recorders for b in r.batches]


def test_dynamic_binarization_redraws_every_epoch_and_is_seeded(dynamic_data, monkeypatch):
    grey = load_split(dynamic_data, "train").images[:128]
    spec = experiment(epochs=2, batch_size=128)  # one batch per epoch: all the images
    first = batches_seen(monkeypatch, spec, grey, dynamic=True)
    again = batches_seen(monkeypatch, spec, grey, dynamic=True)
    assert len(first) == 2 and all(set(b.unique().tolist()) == {0.0, 1.0} for b in first)
    assert first[0].sum() != first[1].sum()  # a fresh draw, not the same pixels reshuffled
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert abs(first[0].mean().item() - grey.mean().item()) < 0.02
    static = batches_seen(monkeypatch, spec, (grey > 0.5).float(), dynamic=False)
    assert static[0].sum() == static[1].sum()


def test_validation_split_is_the_held_out_end_and_disjoint():
    images = torch.rand(100, 1, 4, 4)
    split = Split(images, torch.arange(100), dynamic=True)
    rest, validation = hold_out(split, 30, seed=0)
    assert rest.labels.tolist() == list(range(70))
    assert validation.labels.tolist() == list(range(70, 100))
    assert rest.dynamic and not validation.dynamic  # drawn once, like the test split
    assert set(validation.images.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(DataError, match="cannot hold out 100 of 100 training images"):
        hold_out(split, 100)


def test_early_stopping_keeps_the_best_epoch(prepared_data, monkeypatch):
    scores = iter([-100.0, -90.0, -95.0, -96.0, -97.0, -98.0])
    real_eval = training.eval_epoch

    def scripted(model, images, objective, name, labels):
        return {**real_eval(model, images, objective, name, labels), "elbo_mc": next(scores)}

    monkeypatch.setattr(training, "eval_epoch", scripted)
    weights = {}
    images = load_split(prepared_data / "binary28", "train").images
    spec = experiment(epochs=6, validation=64, patience=2)
    state = train(
        Run(spec, "t"),
        Images(images[:256], images[256:320]),
        on_epoch_end=lambda s, r: weights.setdefault(
            s.epoch, s.model.state_dict()["encoder.5.weight"].clone()
        ),
    )
    assert state.epoch == 4 and state.best_epoch == 2  # two epochs without a better one
    assert [r["epoch"] for r in state.history] == [1, 2, 3, 4]
    assert "val/elbo_mc" in state.history[0] and "test/elbo_mc" not in state.history[0]
    assert torch.equal(state.model.state_dict()["encoder.5.weight"], weights[2])
    assert not torch.equal(weights[2], weights[4])


def test_patience_without_a_validation_split_is_an_error():
    with pytest.raises(ParamsError, match=r"^experiments.t: patience needs a validation split"):
        experiment(patience=3)


def test_the_projection_recovers_a_power_law_curves_asymptote():
    import pandas as pd

    from vaelab.report.projection import projection

    epochs = pd.RangeIndex(1, 301)
    curve = pd.Series(-90.0 - 40.0 * epochs.to_numpy(dtype=float) ** -0.6, index=epochs)
    # the first 100 epochs are a warm-up whose curve is another shape: left out of the fit
    curve.iloc[:100] = -300.0
    assert projection(curve, start=101) == pytest.approx(-90.0, abs=0.05)
    assert projection(curve.iloc[:110], start=101) is None  # too few epochs to fit


def test_the_literature_page_lists_an_experiment_not_run_yet(tmp_path):
    from vaelab.report.literature_page import literature_table

    keys = {"model": "hvae_vamp", "objective": "analytic_elbo", "seed": 14, "epochs": 2000}
    table = literature_table({"hvae_vamp_static": keys}, {}, tmp_path)
    row = table.iloc[0].to_dict()
    assert row["experiment"] == "hvae_vamp_static" and row["epochs (kept)"] == "not run yet"
    assert "—" in table.to_markdown(index=False) and "nan" not in table.to_markdown(index=False)
