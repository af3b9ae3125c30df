import json

import pytest
import torch
from conftest import experiment, fit
from synthetic import flip_tensor_byte

from vaelab.core.errors import ParamsError, TrainingDiverged
from vaelab.data.splits import load_split, read_meta
from vaelab.models.registry import build_model
from vaelab.models.saved import load_model, save_model
from vaelab.objectives.losses import mean_terms
from vaelab.objectives.registry import objective_for
from vaelab.runtime.device import uses_bf16
from vaelab.training import loop as training
from vaelab.training.checkpoint import Checkpoint, CheckpointSetAside, adopt, fingerprint
from vaelab.training.ddp import Slices


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
        ("hvae_vamp", "mc_elbo", "binary28", {"hidden_dim": 32, "pseudo_inputs": 10}),
    ],
)
def test_one_epoch_lowers_the_test_loss(prepared_data, model, objective, data, extra):
    spec = experiment(model=model, objective=objective, batch_size=16, lr=1e-3, **extra)
    test_x = load_split(prepared_data / data, "test").images
    torch.manual_seed(spec.seed)
    untrained = build_model(model, test_x.shape[-1], spec.model_knobs)
    loss_fn = objective_for(objective, spec.objective_knobs)
    before = mean_terms(untrained, test_x, loss_fn)["loss"]
    run = fit(spec, prepared_data / data)
    after = run.history[-1]["test/loss"]
    assert after < 0.9 * before, (before, after)
    assert run.history[-1]["train/loss"] < before
    assert len(run.grids) == 1 and run.grids[0].dtype == torch.uint8


def test_same_seed_same_result_other_seed_differs(prepared_data):
    spec = experiment(epochs=2)
    first = fit(spec, prepared_data / "binary28")
    again = fit(spec, prepared_data / "binary28")
    other = fit(experiment(epochs=2, seed=1), prepared_data / "binary28")
    strip = [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in first.history]
    assert strip == [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in again.history]
    assert _same_weights(_state(first), _state(again))
    assert not _same_weights(_state(first), _state(other))


class Interrupt:
    """Raise KeyboardInterrupt on the n-th training call, as a Ctrl-C would mid-epoch."""

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
    # with a learning-rate schedule, whose state the checkpoint must carry for equal weights
    spec = experiment(epochs=3, batch_size=64, lr_milestones=[1, 2], lr_gamma=0.5)
    data = prepared_data / "binary28"
    reference = fit(spec, data, tmp_path / "ref.pt")
    assert [r["lr"] for r in reference.history] == [1e-3, 5e-4, 2.5e-4]

    steps_per_epoch = 512 // 64
    real = training.objective_for
    monkeypatch.setattr(
        training, "objective_for", lambda *a: Interrupt(real(*a), at_call=steps_per_epoch + 3)
    )
    ckpt = tmp_path / "ckpt.pt"
    with pytest.raises(KeyboardInterrupt):
        fit(spec, data, ckpt)
    assert torch.load(ckpt, weights_only=True)["epoch"] == 1
    monkeypatch.setattr(training, "objective_for", real)

    resumed = fit(spec, data, ckpt)
    assert resumed.resumed_from == 1
    assert _same_weights(_state(resumed), _state(reference))
    assert resumed.history == [
        {**r, "epoch_seconds": s["epoch_seconds"]}
        for r, s in zip(reference.history, resumed.history, strict=True)
    ]
    assert all(torch.equal(a, b) for a, b in zip(resumed.grids, reference.grids, strict=True))


def test_checkpoint_fingerprint_follows_params_and_data(prepared_data):
    meta = read_meta(prepared_data / "binary28")
    base = fingerprint(experiment(), meta, None)
    assert fingerprint(experiment(), meta, None) == base
    assert fingerprint(experiment(lr=2e-3), meta, None) != base
    assert fingerprint(experiment(epochs=7), meta, None) == base  # the ceiling may move
    assert fingerprint(experiment(), {**meta, "seed": 1}, None) != base
    assert fingerprint(experiment(), meta, 100) != base


def test_a_checkpoint_resumes_after_edits_to_code_it_never_imported_only(
    prepared_data, tmp_path, monkeypatch, capsys
):
    from vaelab.runtime import sources as checkpoint

    # a copy of the library, whose bytes the checkpoint reads, with one file no run imports
    source = tmp_path / "vaelab"
    for path in checkpoint._LIBRARY.rglob("*.py"):
        (source / path.relative_to(checkpoint._LIBRARY)).parent.mkdir(parents=True, exist_ok=True)
        (source / path.relative_to(checkpoint._LIBRARY)).write_bytes(path.read_bytes())
    never_imported = source / "models" / "not_imported_by_any_run.py"
    never_imported.write_text("WIDTH = 1\n")
    monkeypatch.setattr(checkpoint, "_SOURCE_DIR", source)
    data, ckpt = prepared_data / "binary28", tmp_path / "ckpt.pt"
    fit(experiment(epochs=1), data, ckpt)
    assert "training/loop.py" in torch.load(ckpt, weights_only=True)["sources"]

    never_imported.write_text("WIDTH = 2\n")
    assert Checkpoint(ckpt, fingerprint(experiment(), read_meta(data), None)).load() is not None
    assert fit(experiment(epochs=2), data, ckpt).resumed_from == 1

    edited = source / "training" / "loop.py"
    edited.write_text(edited.read_text() + "\n# edited\n")
    before = ckpt.read_bytes()
    aside = tmp_path / "ckpt.other-code.pt"
    with pytest.raises(CheckpointSetAside) as stopped:
        fit(experiment(epochs=3), data, ckpt)
    assert str(stopped.value) == (
        f"checkpoint {ckpt} after epoch 2 was written by other code (training/loop.py "
        f"changed since); moved aside to {aside}: `vaelab checkpoint adopt "
        f"{aside}` resumes it under this code, or run again to start afresh"
    )
    assert not ckpt.exists() and aside.read_bytes() == before  # kept, not rewritten

    assert adopt(aside) == ckpt and not aside.exists()
    assert fit(experiment(epochs=3), data, ckpt).resumed_from == 2  # told to: resumed
    edited.write_text(edited.read_text() + "\n# edited again\n")
    with pytest.raises(CheckpointSetAside):
        fit(experiment(epochs=4), data, ckpt)
    assert fit(experiment(epochs=4), data, ckpt).resumed_from == 0  # told to: afresh
    assert aside.exists()  # nothing deleted unasked


def test_a_run_resumed_with_more_epochs_is_the_longer_run(prepared_data, tmp_path):
    # with a schedule and a warm-up, whose state at the cut must carry on unchanged
    keys = dict(batch_size=64, lr_milestones=[2], lr_gamma=0.5)
    keys.update(objective="analytic_elbo", warmup_epochs=3)
    data, ckpt = prepared_data / "binary28", tmp_path / "ckpt.pt"
    reference = fit(experiment(epochs=3, **keys), data)
    fit(experiment(epochs=2, **keys), data, ckpt)
    longer = fit(experiment(epochs=3, **keys), data, ckpt)
    assert longer.resumed_from == 2
    assert _same_weights(_state(longer), _state(reference))
    with pytest.raises(ParamsError, match=r"epochs = 1 is below the 3 epochs its checkpoint"):
        fit(experiment(epochs=1, **keys), data, ckpt)


def test_checkpoint_from_other_params_is_ignored(prepared_data, tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    data = prepared_data / "binary28"
    fit(experiment(epochs=1), data, ckpt)
    assert fit(experiment(epochs=1, lr=2e-3), data, ckpt).resumed_from == 0


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
        fit(experiment(epochs=3), prepared_data / "binary28", ckpt)
    state = torch.load(ckpt, weights_only=True)
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_batch_larger_than_training_set_is_rejected_before_work(prepared_data, tmp_path):
    with pytest.raises(
        ParamsError,
        match=r"experiments.t.batch_size = 600 is invalid: larger "
        r"than the training set \(512 images\)",
    ):
        fit(experiment(batch_size=600), prepared_data / "binary28", tmp_path / "c.pt")
    assert not (tmp_path / "c.pt").exists()


@pytest.mark.parametrize("damage", ["truncated", "bytes changed"])
def test_a_damaged_checkpoint_is_set_aside_and_the_next_run_starts_afresh(
    prepared_data, tmp_path, damage
):
    ckpt, data = tmp_path / "ckpt.pt", prepared_data / "binary28"
    fit(experiment(epochs=1), data, ckpt)
    if damage == "truncated":
        ckpt.write_bytes(ckpt.read_bytes()[:-100])
    else:
        flip_tensor_byte(ckpt)  # torch itself loads it without a word
    damaged = ckpt.read_bytes()
    aside = tmp_path / "ckpt.damaged.pt"
    with pytest.raises(CheckpointSetAside, match=r"^checkpoint .*ckpt\.pt is (damaged|corrupt)"):
        fit(experiment(epochs=2), data, ckpt)
    assert not ckpt.exists() and aside.read_bytes() == damaged
    run = fit(experiment(epochs=2), data, ckpt)
    assert run.resumed_from == 0 and len(run.history) == 2


@pytest.mark.parametrize(
    ("overrides", "data"),
    [
        ({}, "binary28"),
        ({"model": "vae_mlp", "hidden_dim": 32, "latent_dim": 3, "logvar_clamp": 4.0}, "grey28"),
        ({"model": "ae_conv", "objective": "bce"}, "fashion32"),
        ({"model": "hvae_vamp", "hidden_dim": 16, "latent_dim": 3, "pseudo_inputs": 5}, "binary28"),
    ],
)
def test_saved_model_rebuilds_from_its_own_config(prepared_data, tmp_path, overrides, data):
    spec = experiment(**overrides)
    run = fit(spec, prepared_data / data)
    path = tmp_path / "model.pt"
    save_model(path, run.model, {"name": "t", **spec.flat()}, run.history, 1.5)
    saved = load_model(path)
    assert saved.model.config == run.model.config and type(saved.model) is type(run.model)
    assert saved.experiment["latent_dim"] == spec.model_knobs.latent_dim
    assert saved.history == run.history and saved.train_seconds == 1.5
    x = load_split(prepared_data / data, "test").images[:8]
    run.model.eval()
    with torch.inference_mode():
        assert torch.equal(
            saved.model.decode(saved.model.encode(x).mean),
            run.model.decode(run.model.encode(x).mean),
        )
    # the file alone is enough: nothing in it is a pickled class
    blob = torch.load(path, weights_only=True)
    json.dumps(blob["model"]) and json.dumps(blob["experiment"])


def test_compiled_objective_trains_like_the_eager_one(prepared_data):
    data = prepared_data / "binary28"
    eager = fit(experiment(epochs=1, batch_size=64), data)
    compiled = fit(experiment(epochs=1, batch_size=64, compile="default"), data)
    # The same noise and the same math, so only float rounding may differ; another noise
    # draw or a wrong gradient would move these by far more.
    for key in ("train/loss", "test/loss", "test/elbo_mc"):
        assert compiled.history[0][key] == pytest.approx(eager.history[0][key], abs=1e-3)
    for name, value in _state(eager).items():
        assert torch.allclose(compiled.model.state_dict()[name], value, atol=1e-5), name


@pytest.mark.parametrize(
    ("capabilities", "expected"),
    [
        ({"amx_bf16": True, "avx512_bf16": False}, True),
        ({"amx_bf16": False, "avx512_bf16": True}, True),
        ({"amx_bf16": False, "avx512_bf16": False, "avx512_f": True}, False),
    ],
)
def test_amp_auto_takes_bf16_only_on_cpus_that_compute_it(monkeypatch, capabilities, expected):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities)
    cpu = torch.device("cpu")
    assert uses_bf16("auto", cpu) is expected
    # an explicit setting is obeyed whatever the hardware
    assert uses_bf16(True, cpu) is True and uses_bf16(False, cpu) is False


def test_amp_auto_trains_in_bf16_where_the_cpu_has_it(prepared_data, monkeypatch):
    data = prepared_data / "binary28"
    fp32 = fit(experiment(epochs=1, batch_size=64), data)
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": True})
    auto = fit(experiment(epochs=1, batch_size=64, amp="auto"), data)
    bf16 = fit(experiment(epochs=1, batch_size=64, amp=True), data)
    assert auto.history[0]["train/loss"] == bf16.history[0]["train/loss"]
    assert auto.history[0]["train/loss"] != fp32.history[0]["train/loss"]


class _HostReads(torch.overrides.TorchFunctionMode):
    """Counts the Tensor methods that bring a value to the host: on a GPU each waits for
    every kernel queued before it, so a step that calls none of them never stalls the queue
    (the CPU stand-in for torch.cuda.set_sync_debug_mode, which needs a GPU)."""

    READS = {
        torch.Tensor.item,
        torch.Tensor.tolist,
        torch.Tensor.numpy,
        torch.Tensor.__bool__,
        torch.Tensor.__float__,
        torch.Tensor.__int__,
        torch.Tensor.__index__,
    }

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.count += func in self.READS
        return func(*args, **(kwargs or {}))


def test_the_host_read_counter_counts_a_read():
    with _HostReads() as reads:
        torch.ones(1).sum().item()
        bool(torch.ones(1) > 0)
        torch.ones(2) * 2
    assert reads.count == 2


@pytest.mark.parametrize(
    ("model", "objective", "size", "extra"),
    [
        ("cvae", "mc_elbo", 28, {}),
        ("vae_mlp", "weighted", 28, {"recon_weight": 784.0}),
        ("ae_conv", "bce", 32, {}),
        ("vamp_mlp", "iwae", 28, {"prior": "vamp", "pseudo_inputs": 5, "k": 3}),
        ("hvae_vamp", "analytic_elbo", 28, {"hidden_dim": 16, "pseudo_inputs": 5}),
    ],
)
def test_a_training_step_never_reads_a_value_to_the_host(model, objective, size, extra):
    """An epoch of 2 steps and one of 6 read the host equally often (the finite check and
    the means at the end of an epoch): the steps themselves read nothing."""
    spec = experiment(model=model, objective=objective, batch_size=8, **extra)
    state = training.initial_state(spec, size, torch.device("cpu"))
    step = training.ObjectiveStep(state.model, objective_for(objective, spec.objective_knobs))
    slices = Slices(state.noise)
    x = (torch.rand(48, 1, size, size) > 0.5).float()
    run = training.Run(spec, "t")
    reads = []
    for steps in (2, 2, 6):  # the first epoch warms up what reads once
        before = _state(state)
        with _HostReads() as counter:
            training.train_epoch(state, step, slices, run, training.Images(x[: 8 * steps], x))
        reads.append(counter.count)
        assert not _same_weights(before, _state(state))
    assert reads[1] == reads[2] > 0


def test_adam_normgrad_steps_as_adam_on_unit_norm_gradients():
    from vaelab.training.optimizers import AdamNormGrad

    torch.manual_seed(0)
    start, grads = torch.randn(5, 3), [torch.randn(5, 3) * 40 for _ in range(3)]
    normed, plain = start.clone().requires_grad_(), start.clone().requires_grad_()
    ours = AdamNormGrad([normed], lr=0.1, eps=1e-8)
    theirs = torch.optim.Adam([plain], lr=0.1, eps=1e-8)
    for g in grads:
        normed.grad, plain.grad = g.clone(), g / (g.norm() + 1e-7)
        ours.step()
        theirs.step()
    torch.testing.assert_close(normed, plain)
    assert not torch.allclose(normed, start)


def test_adopt_says_in_one_line_what_it_cannot_adopt(tmp_path):
    from typer.testing import CliRunner

    from vaelab.tools.checkpoint import app

    plain = tmp_path / "ckpt.pt"
    result = CliRunner().invoke(app, ["adopt", str(plain)])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: {plain} is not a checkpoint set aside for changed code "
        "(NAME.other-code.pt); name the checkpoint to restore with --to"
    )
    aside = tmp_path / "ckpt.other-code.pt"
    aside.write_bytes(b"")
    plain.write_bytes(b"")
    result = CliRunner().invoke(app, ["adopt", str(aside)])
    assert result.output.strip() == (
        f"error: {plain} exists already; move it away first, or name another with --to"
    )


def test_the_objective_is_compiled_once_and_the_warm_up_weight_is_its_argument(
    prepared_data, monkeypatch
):
    """A KL warm-up changes the weight every epoch: it reaches the one compiled objective
    as a keyword, instead of a new objective compiled each epoch."""
    compiled, weights = [], []

    def counting_compile(objective, mode=None):
        compiled.append(objective)

        def run(model, x, noise, **knobs):
            if model.training:
                weights.append(knobs.get("kl_weight", objective.keywords["kl_weight"]))
            return objective(model, x, noise, **knobs)

        return run

    monkeypatch.setattr(torch, "compile", counting_compile)
    spec = experiment(
        model="vae_mlp",
        objective="analytic_elbo",
        warmup_epochs=2,
        epochs=3,
        batch_size=256,
        hidden_dim=16,
        compile="default",
    )
    fit(spec, prepared_data / "binary28")
    assert len(compiled) == 1
    assert sorted(set(weights)) == [0.0, 0.5, 1.0]  # epochs 1, 2, 3 of a 2-epoch warm-up
