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
    assert (
        row["experiment"] == "hvae_vamp_static"
        and row["epochs of the recipe (kept)"] == "not run yet"
    )
    assert "—" in table.to_markdown(index=False) and "nan" not in table.to_markdown(index=False)


def published_at_k_folder(tmp_path):
    """An evaluated experiment whose main IWAE is at k = 5000, with records at 200, 1000
    and 5000, each number distinct so that the wrong record cannot pass for the right one."""
    import json

    run = tmp_path / "vae_static"
    (run / "train/plots/metrics").mkdir(parents=True)
    (run / "train/plots/metrics/epoch_seconds.tsv").write_text("step\tepoch_seconds\n0\t1.5\n")
    (run / "train/params.yaml").write_text("experiment: vae_static\nhardware: A Test CPU 9000\n")
    metrics = {
        "iwae": {"k": 5000, "bound_nats": -90.0, "nll_nats": 90.0, "stderr_nats": 0.2},
        "iwae_at_k": [
            {"k": 200, "nll_nats": 92.5, "stderr_nats": 0.3},
            {"k": 1000, "nll_nats": 91.25, "stderr_nats": 0.25},
            {"k": 5000, "nll_nats": 90.0, "stderr_nats": 0.2},
        ],
        "protocol": {"epochs_run": 3, "kept_epoch": 2},
    }
    (run / "metrics.json").write_text(json.dumps(metrics))
    return tmp_path


def test_a_published_figure_with_k_is_the_iwae_record_at_that_k(tmp_path):
    """`published.X.k`: `evaluate.iwae.nll_nats` is the NLL at that k, from `iwae` when it
    is at k, else from the `iwae_at_k` record of k; a k never evaluated is an error."""
    from vaelab.config.params import PublishedFigure
    from vaelab.report.literature_page import literature_table
    from vaelab.report.references_page import lookup
    from vaelab.report.run_files import read_json

    folder = published_at_k_folder(tmp_path)
    sources = {"evaluate": read_json(folder / "vae_static/metrics.json")}
    path = "evaluate.iwae.nll_nats"
    assert lookup(sources, path, 200) == 92.5
    assert lookup(sources, path, 1000) == 91.25
    assert lookup(sources, path, 5000) == lookup(sources, path) == 90.0
    assert lookup(sources, "evaluate.iwae.bound_nats", 5000) == -90.0
    with pytest.raises(DataError, match=r"no IWAE figure at k=50 \(add it to"):
        lookup(sources, path, 50)
    with pytest.raises(DataError, match="names no figure"):
        lookup(sources, "evaluate.iwae.bound_nats", 200)  # a record holds only the NLL

    keys = {"model": "vae_mlp", "objective": "analytic_elbo", "seed": 0, "epochs": 3}
    for k, nll in ((200, "92.50 ± 0.30"), (1000, "91.25 ± 0.25"), (5000, "90.00 ± 0.20")):
        figure = PublishedFigure(published=f"NLL at {k}", ours=[path], k=k)
        row = literature_table({"vae_static": keys}, {"vae_static": figure}, folder).iloc[0]
        assert row["NLL at the published k"] == f"{nll} (k={k})"
        assert row["NLL (nats), k=5000"] == "90.00 ± 0.20"


def test_a_literature_row_says_how_much_of_its_recipe_ran_and_on_what(tmp_path):
    from vaelab.report.literature_page import literature_table

    folder = published_at_k_folder(tmp_path)
    keys = {"model": "vae_mlp", "objective": "analytic_elbo", "seed": 0, "epochs": 500}
    row = literature_table({"vae_static": keys}, {}, folder).iloc[0]
    assert row["epochs of the recipe (kept)"] == "3 of 500 (2)"
    assert row["trained on"] == "A Test CPU 9000"
    (folder / "vae_static/train/params.yaml").write_text("experiment: vae_static\n")
    row = literature_table({"vae_static": keys}, {}, folder).iloc[0]
    assert row["trained on"] == "—"  # logged before vaelab recorded the processor


def test_the_review_sets_a_figure_at_k_beside_iwae_only_at_that_k(tmp_path):
    """In `dvc metrics diff`, only `iwae` is flattened (DVC leaves the `iwae_at_k` list
    out): a figure at another k than the file's `iwae.k` is set beside no row of it."""
    import yaml

    from vaelab.report.review import Side, _published_for, published_figures

    folder = published_at_k_folder(tmp_path / "reports")
    published = {
        "vae_static": {"published": "NLL 89.78", "ours": ["evaluate.iwae.nll_nats"], "k": 200},
        "vamp_static": {"published": "NLL 85.57", "ours": ["evaluate.iwae.nll_nats"], "k": 5000},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"published": published}))
    vamp = folder / "vamp_static"
    vamp.mkdir()
    (vamp / "metrics.json").write_text((folder / "vae_static/metrics.json").read_text())
    head = Side(tmp_path, None)
    figures = published_figures(head)
    assert _published_for("reports/vamp_static/metrics.json", "iwae.nll_nats", figures, head) == (
        "NLL 85.57"
    )
    assert _published_for("reports/vae_static/metrics.json", "iwae.nll_nats", figures, head) == ""


def test_the_iwae_papers_recipe_runs_3_to_the_i_epochs_at_each_rate_and_resumes_so():
    """Burda et al.'s appendix: pass i (i = 0..7) is 3^i epochs at 0.001 * 10^(-i/7); the
    schedule cut after any epoch and resumed from its state goes on at the same rates."""
    from conftest import ROOT

    from vaelab.config.experiments import experiments_of
    from vaelab.config.params import load_params
    from vaelab.training.optimizers import make_optimizer, make_schedule

    params = load_params(ROOT / "params.yaml")
    # the experiment runs the recipe in parts; the published figure keeps its length
    recipe = params.published["vae_dynamic_iwae_paper"].epochs
    spec = experiments_of(params, track="literature")["vae_dynamic_iwae_paper"]
    spec = spec.model_copy(update={"epochs": recipe})
    expected = [1e-3 * 10 ** (-i / 7) for i in range(8) for _ in range(3**i)]
    assert spec.epochs == len(expected) == 3280

    def rates(epochs, resume=None):
        optimizer = make_optimizer(spec, torch.nn.Linear(1, 1))
        schedule = make_schedule(spec, optimizer)
        if resume is not None:  # what a checkpoint keeps of them
            optimizer.load_state_dict(resume[0])
            schedule.load_state_dict(resume[1])
        seen = []
        for _ in range(epochs):
            seen.append(optimizer.param_groups[0]["lr"])  # the rate this epoch trains with
            optimizer.step()  # no gradients: it moves nothing, but keeps torch's order
            schedule.step()
        return seen, (optimizer.state_dict(), schedule.state_dict())

    whole, _ = rates(3280)
    assert whole == pytest.approx(expected, rel=1e-12)
    first, cut = rates(50)  # cut inside pass 3 (epochs 41 to 121)
    rest, _ = rates(3280 - 50, cut)
    assert first + rest == whole


def test_the_seed_spread_reads_each_recipes_held_out_curve(tmp_path):
    """A recipe with a validation split is compared on it; one that holds nothing out (the
    IWAE paper's) on its test curve; each up to the epoch all its seeds ran."""
    from vaelab.report.literature_page import seed_spread

    def curve(name, split, elbos):
        path = tmp_path / name / f"train/plots/metrics/{split}/elbo_mc.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = "".join(f"{epoch}\t{elbo}\n" for epoch, elbo in enumerate(elbos, start=1))
        path.write_text("step\telbo_mc\n" + rows)

    static = {"model": "vae_mlp", "validation": 100, "epochs": 3}
    dynamic = {"model": "iwae_mlp", "epochs": 3}
    experiments = {
        "s1": {**static, "seed": 1},
        "s2": {**static, "seed": 2, "epochs": 2},
        "d1": {**dynamic, "seed": 1},
        "d2": {**dynamic, "seed": 2},
    }
    curve("s1", "val", [-100, -95, -90])
    curve("s1", "test", [-1, -1, -1])  # a test curve beside a validation one is not read
    curve("s2", "val", [-99, -97])
    curve("d1", "test", [-120, -110, -105])
    curve("d2", "test", [-121, -111, -107])
    table = seed_spread(experiments, tmp_path).set_index("recipe of")
    assert table.loc["s1", "held out"] == "validation" and table.loc["s1", "up to epoch"] == 2
    assert table.loc["s1", "best held-out ELBO per seed"] == "-95.00, -97.00"
    assert table.loc["d1", "held out"] == "test"
    assert table.loc["d1", "best held-out ELBO per seed"] == "-105.00, -107.00"
    assert table.loc["d1", "sd"] == "1.41"


def test_a_recipe_run_in_parts_says_how_much_ran_and_projects_the_rest(tmp_path):
    """The IWAE paper's recipe committed at 60 of its 3,280 epochs: the row says so from
    the published figure's `epochs`, and the recipe, which holds no images out, is projected
    from its test curve; run to the recipe's end, it is not cut short."""
    import json

    import numpy as np

    from vaelab.config.params import PublishedFigure
    from vaelab.report.literature_page import cut_short, literature_table

    folder = published_at_k_folder(tmp_path)
    run = folder / "vae_static"
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["protocol"] = {"epochs_run": 60, "kept_epoch": 60}
    (run / "metrics.json").write_text(json.dumps(metrics))
    curve = run / "train/plots/metrics/test/elbo_mc.tsv"
    curve.parent.mkdir(parents=True)
    epochs = np.arange(1, 61)
    elbos = -88.0 - 30.0 * epochs.astype(float) ** -0.5
    curve.write_text(
        "step\telbo_mc\n" + "".join(f"{e}\t{v}\n" for e, v in zip(epochs, elbos, strict=True))
    )
    keys = {"model": "iwae_mlp", "objective": "iwae", "seed": 123, "epochs": 60}
    figure = PublishedFigure(
        published="NLL 86.76", ours=["evaluate.iwae.nll_nats"], k=5000, epochs=3280
    )
    row = literature_table({"vae_static": keys}, {"vae_static": figure}, folder).iloc[0]
    assert row["epochs of the recipe (kept)"] == "60 of 3280 (60)"
    table = cut_short({"vae_static": keys}, {"vae_static": figure}, folder)
    assert table.iloc[0]["held out"] == "test" and table.iloc[0]["epochs run"] == 60
    assert table.iloc[0]["its curve's asymptote"] == "-88.00"
    # NLL now 90.00, best held-out ELBO -88 - 30/sqrt(60): projected by the same gain
    assert float(table.iloc[0]["NLL projected"]) == pytest.approx(90.0 - 30.0 / 60**0.5, abs=0.02)
    assert cut_short({"vae_static": keys}, {}, folder).empty  # no recipe beyond its epochs
    whole = PublishedFigure(published="NLL 86.76", ours=["evaluate.iwae.nll_nats"], epochs=60)
    assert cut_short({"vae_static": keys}, {"vae_static": whole}, folder).empty
