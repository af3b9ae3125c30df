import pytest
import torch
from conftest import experiment

from vaelab import training
from vaelab.errors import ParamsError, TrainingDiverged
from vaelab.evaluation import mean_terms
from vaelab.models import build_model
from vaelab.objectives import objective_for
from vaelab.prepare import load_split
from vaelab.training import Checkpoint, train

CPU = torch.device("cpu")


def _state(run):
    return {k: v.clone() for k, v in run.model.state_dict().items()}


def _same_weights(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("model", "objective", "data", "extra"),
    [
        ("cvae", "mc_elbo", "binary28", {}),
        ("vae_mlp", "weighted", "grey28", {"recon_weight": 784.0}),
        ("ae_conv", "bce", "fashion32", {}),
        ("vae_conv", "weighted", "fashion32", {"recon_weight": 500.0}),
    ],
)
def test_one_epoch_lowers_the_test_loss(prepared_data, tmp_path, model, objective, data, extra):
    spec = experiment(model=model, objective=objective, batch_size=16, lr=1e-3, **extra)
    test_x = load_split(prepared_data / data, "test").images
    torch.manual_seed(spec.seed)
    untrained = build_model(model, 2, test_x.shape[-1])
    loss_fn = objective_for(objective, spec.recon_weight, spec.kl_weight)
    before = mean_terms(untrained, test_x, loss_fn)["loss"]
    run = train(spec, "t", prepared_data / data, CPU, tmp_path / "ckpt.pt")
    after = run.history[-1]["test/loss"]
    assert after < 0.9 * before, (before, after)
    assert run.history[-1]["train/loss"] < before
    assert len(run.grids) == 1 and run.grids[0].dtype == torch.uint8


def test_same_seed_same_result_other_seed_differs(prepared_data, tmp_path):
    spec = experiment(epochs=2)
    first = train(spec, "t", prepared_data / "binary28", CPU, tmp_path / "a.pt")
    again = train(spec, "t", prepared_data / "binary28", CPU, tmp_path / "b.pt")
    other = train(
        experiment(epochs=2, seed=1), "t", prepared_data / "binary28", CPU, tmp_path / "c.pt"
    )
    strip = [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in first.history]
    assert strip == [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in again.history]
    assert _same_weights(_state(first), _state(again))
    assert not _same_weights(_state(first), _state(other))


class Interrupt:
    """Raise KeyboardInterrupt on the n-th objective call, as a Ctrl-C would mid-epoch."""

    def __init__(self, objective, at_call):
        self.objective, self.at_call, self.calls = objective, at_call, 0

    def __call__(self, model, x, generator=None):
        self.calls += model.training
        if self.calls == self.at_call:
            raise KeyboardInterrupt
        return self.objective(model, x, generator)


def test_resume_after_interruption_matches_an_uninterrupted_run(
    prepared_data, tmp_path, monkeypatch
):
    spec = experiment(epochs=3, batch_size=64)
    data = prepared_data / "binary28"
    reference = train(spec, "t", data, CPU, tmp_path / "ref.pt")

    steps_per_epoch = 512 // 64
    real = training.objective_for
    monkeypatch.setattr(
        training, "objective_for", lambda *a: Interrupt(real(*a), at_call=steps_per_epoch + 3)
    )
    ckpt = tmp_path / "ckpt.pt"
    with pytest.raises(KeyboardInterrupt):
        train(spec, "t", data, CPU, ckpt)
    assert torch.load(ckpt, weights_only=True)["epoch"] == 1
    monkeypatch.setattr(training, "objective_for", real)

    resumed = train(spec, "t", data, CPU, ckpt)
    assert resumed.resumed_from == 1
    assert _same_weights(_state(resumed), _state(reference))
    assert [r["test/elbo_mc"] for r in resumed.history] == [
        r["test/elbo_mc"] for r in reference.history
    ]


def test_checkpoint_from_other_params_is_ignored(prepared_data, tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    data = prepared_data / "binary28"
    train(experiment(epochs=1), "t", data, CPU, ckpt)
    run = train(experiment(epochs=1, lr=2e-3), "t", data, CPU, ckpt)
    assert run.resumed_from == 0


def test_nan_loss_names_epoch_and_step_and_keeps_last_checkpoint(
    prepared_data, tmp_path, monkeypatch
):
    real = training.objective_for

    def poisoned(*args):
        objective, calls = real(*args), {"n": 0}

        def wrapped(model, x, generator=None):
            calls["n"] += model.training
            terms = objective(model, x, generator)
            if model.training and calls["n"] == 512 // 32 + 5:  # epoch 2, step 5
                terms.loss = terms.loss * float("nan")
            return terms

        return wrapped

    monkeypatch.setattr(training, "objective_for", poisoned)
    ckpt = tmp_path / "ckpt.pt"
    with pytest.raises(
        TrainingDiverged,
        match=r"loss became nan at epoch 2, step 5; last good "
        r"checkpoint kept \(epoch 1\)",
    ):
        train(experiment(epochs=3), "t", prepared_data / "binary28", CPU, ckpt)
    state = torch.load(ckpt, weights_only=True)
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_batch_larger_than_training_set_is_rejected_before_work(prepared_data, tmp_path):
    with pytest.raises(
        ParamsError,
        match=r"experiments.t.batch_size = 600 is invalid: larger "
        r"than the training set \(512 images\)",
    ):
        train(experiment(batch_size=600), "t", prepared_data / "binary28", CPU, tmp_path / "c.pt")
    assert not (tmp_path / "c.pt").exists()


def test_damaged_checkpoint_starts_afresh(prepared_data, tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    ckpt.write_bytes(b"not a checkpoint")
    assert Checkpoint(ckpt, "key").load() is None
    run = train(experiment(), "t", prepared_data / "binary28", CPU, ckpt)
    assert run.resumed_from == 0 and len(run.history) == 1


def test_compiled_objective_trains_like_the_eager_one(prepared_data, tmp_path):
    data = prepared_data / "binary28"
    eager = train(experiment(epochs=1, batch_size=64), "t", data, CPU, tmp_path / "a.pt")
    spec = experiment(epochs=1, batch_size=64, compile="default")
    compiled = train(spec, "t", data, CPU, tmp_path / "b.pt")
    # The same noise and the same math, so only float rounding may differ; another noise
    # draw or a wrong gradient would move these by far more.
    for key in ("train/loss", "test/loss", "test/elbo_mc"):
        assert compiled.history[0][key] == pytest.approx(eager.history[0][key], abs=1e-3)
    for name, value in _state(eager).items():
        assert torch.allclose(compiled.model.state_dict()[name], value, atol=1e-5), name
