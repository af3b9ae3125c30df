"""Every bad value in params.yaml gets one line naming the key, the value and what is allowed."""

import subprocess
import sys

import pytest
import yaml
from conftest import ROOT, run_env, with_change

from vaelab.config.experiments import experiments_of
from vaelab.config.params import load_params
from vaelab.config.params import parse_params as parse_sections
from vaelab.core.errors import ParamsError
from vaelab.models.registry import MODELS
from vaelab.objectives.registry import OBJECTIVES


def parse_params(raw):
    """Every section and every experiment, as the training stages check them."""
    params = parse_sections(raw)
    experiments_of(params, track="references")
    experiments_of(params, track="literature")
    return params


DEFAULTS = yaml.safe_load((ROOT / "params.yaml").read_text())


def test_shipped_params_are_valid():
    params = load_params(ROOT / "params.yaml")
    experiments = experiments_of(params, track="references")
    cvae = experiments["cvae"]
    assert (cvae.model_knobs.latent_dim, cvae.epochs, cvae.batch_size, cvae.lr) == (2, 10, 32, 1e-4)
    assert params.prepared(cvae.data).binarize == "threshold"
    literature = experiments_of(params, track="literature")
    assert set(params.published) <= set(experiments) | set(literature)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "experiments.cvae.model",
            "resnet",
            f"experiments.cvae.model = 'resnet' is invalid: allowed values are {', '.join(MODELS)}",
        ),
        (
            "data.prepared.mnist_binary.dataset",
            "cifar10",
            "data.prepared.mnist_binary.dataset = 'cifar10' is invalid: allowed values are mnist, "
            "fashion_mnist",
        ),
        (
            "data.prepared.mnist_binary.binarize",
            "otsu",
            "data.prepared.mnist_binary.binarize = 'otsu' is invalid: allowed values are threshold, "
            "stochastic, dynamic, none",
        ),
        (
            "experiments.cvae.latent_dim",
            0,
            "experiments.cvae.latent_dim = 0 is invalid: must be within [1, 65536]",
        ),
        ("experiments.cvae.lr", 0, "experiments.cvae.lr = 0 is invalid: must be > 0"),
        ("experiments.cvae.lr", -1e-3, "experiments.cvae.lr = -0.001 is invalid: must be > 0"),
        (
            "experiments.cvae.epochs",
            0,
            "experiments.cvae.epochs = 0 is invalid: must be within [1, 100000]",
        ),
        (
            "experiments.cvae.batch_size",
            "big",
            "experiments.cvae.batch_size = 'big' is invalid: expected an integer",
        ),
        (
            "experiments.cvae.data",
            "mnist_binry",
            "experiments.cvae.data = 'mnist_binry' is invalid: unknown name 'mnist_binry' "
            "(did you mean 'mnist_binary'?)",
        ),
        (
            "experiments.cvae.objective",
            "mc_elbow",
            f"experiments.cvae.objective = 'mc_elbow' is invalid: allowed values are "
            f"{', '.join(OBJECTIVES)}; did you mean 'mc_elbo'?",
        ),
        (
            "experiments.ae_conv.data",
            "mnist_binary",
            "experiments.ae_conv.data = 'mnist_binary' is invalid for model 'ae_conv': its "
            "images are 28x28, the model takes 32x32",
        ),
        (
            "experiments.vae_mlp.hidden_dim",
            2.5,
            "experiments.vae_mlp.hidden_dim = 2.5 is invalid: expected an integer",
        ),
        (
            "experiments.vae_mlp.kl_weight",
            -1,
            "experiments.vae_mlp.kl_weight = -1 is invalid: must be >= 0",
        ),
        (
            "experiments.cvae.amp",
            "yes",
            "experiments.cvae.amp = 'yes' is invalid: allowed values are false, true, auto",
        ),
        (
            "classifier.amp",
            "bf16",
            "classifier.amp = 'bf16' is invalid: allowed values are false, true, auto",
        ),
        (
            "data.prepared.mnist_binary.size",
            30,
            "data.prepared.mnist_binary.size = 30 is invalid: allowed values are 28, 32",
        ),
        ("threads", -1, "threads = -1 is invalid: must be within [0, 1024]"),
        # bounds that keep a run feasible: no overflow in a generator, no picture of
        # gigabytes, no silent inf
        (
            "experiments.cvae.seed",
            2**64,
            "experiments.cvae.seed = 18446744073709551616 is invalid: must be within "
            "[0, 9223372036854775807]",
        ),
        (
            "samples.seed",
            -1,
            "samples.seed = -1 is invalid: must be within [0, 9223372036854775807]",
        ),
        (
            "render.manifold_size",
            30000,
            "render.manifold_size = 30000 is invalid: must be within [2, 64]",
        ),
        ("render.samples", 5000, "render.samples = 5000 is invalid: must be within [1, 1024]"),
        (
            "experiments.cvae.optimizer_eps",
            float("inf"),
            "experiments.cvae.optimizer_eps = .inf is invalid: must be a finite number",
        ),
        ("classifier.lr", float("nan"), "classifier.lr = .nan is invalid: must be a finite number"),
        (
            "experiments.vae_mlp.kl_weight",
            float("inf"),
            "experiments.vae_mlp.kl_weight = .inf is invalid: must be a finite number",
        ),
        (
            "experiments.vae_mlp.hidden_dim",
            10**9,
            "experiments.vae_mlp.hidden_dim = 1000000000 is invalid: must be within [1, 65536]",
        ),
        (
            "experiments.cvae.epochs",
            10**7,
            "experiments.cvae.epochs = 10000000 is invalid: must be within [1, 100000]",
        ),
        (
            "experiments.cvae.batch_size",
            2**40,
            "experiments.cvae.batch_size = 1099511627776 is invalid: must be within [1, 1000000]",
        ),
        ("threads", 5000, "threads = 5000 is invalid: must be within [0, 1024]"),
        (
            "evaluate.iwae_samples",
            10**6,
            "evaluate.iwae_samples = 1000000 is invalid: must be within [1, 100000]",
        ),
        (
            "samples.count",
            10**9,
            "samples.count = 1000000000 is invalid: must be within [2, 100000]",
        ),
        (
            "experiments.cvae.processes",
            0,
            "experiments.cvae.processes = 0 is invalid: must be within [1, 1024]",
        ),
        (
            "experiments.ae_conv.objective",
            "mc_elbo",
            "experiments.ae_conv.objective = 'mc_elbo' is invalid for model 'ae_conv': "
            "allowed values are bce",
        ),
        ("device", "tpu", "device = 'tpu' is invalid: allowed values are auto, cpu, cuda, mps"),
        (
            "experiments.cvae.rmsprop_alpha",
            0.99,
            "experiments.cvae: rmsprop_alpha is a knob of optimizer 'rmsprop', not 'adam'; "
            "remove it or set optimizer: rmsprop",
        ),
        (
            "literature.experiments.vae_static.lr_milestones",
            [350, 200],
            "literature.experiments.vae_static: lr_milestones = [350, 200] is invalid: must be "
            "increasing epochs >= 1",
        ),
        (
            "experiments.cvae.lr_gamma",
            0.5,
            "experiments.cvae: lr_milestones and lr_gamma go together: set both for a "
            "MultiStepLR schedule, or neither for a constant rate",
        ),
    ],
)
def test_bad_values(path, value, message):
    with pytest.raises(ParamsError) as info:
        parse_params(with_change(path, value))
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_missing_key():
    with pytest.raises(ParamsError, match=r"^experiments.cvae.epochs: missing required key$"):
        parse_params(with_change("experiments.cvae.epochs", delete=True))


def test_misspelt_key_suggests_the_right_one():
    raw = with_change("experiments.cvae.latent_dims", 4)
    with pytest.raises(
        ParamsError,
        match=r"^experiments.cvae.latent_dims: unknown key; did you "
        r"mean 'latent_dim'\?",
    ):
        parse_params(raw)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "experiments.cvae.hidden_dim",
            128,
            "experiments.cvae.hidden_dim: not used by model 'cvae' (takes latent_dim, "
            "logvar_clamp, prior, pseudo_inputs) nor objective 'mc_elbo' (takes nothing); it is "
            "a key of model "
            + ", ".join(repr(n) for n in MODELS if "hidden_dim" in MODELS[n].Config.keys()),
        ),
        (
            "experiments.cvae.recon_weight",
            784,
            "experiments.cvae.recon_weight: not used by model 'cvae' (takes latent_dim, "
            "logvar_clamp, prior, pseudo_inputs) nor objective 'mc_elbo' (takes nothing); it is "
            "a key of objective 'weighted'",
        ),
        (
            "experiments.ae_conv.logvar_clamp",
            5.0,
            "experiments.ae_conv.logvar_clamp: not used by model 'ae_conv' (takes latent_dim) nor "
            "objective 'bce' (takes nothing); it is a key of model "
            + ", ".join(repr(n) for n in MODELS if "logvar_clamp" in MODELS[n].Config.keys()),
        ),
        (  # a recipe knob: the KL warm-up belongs to the analytic ELBO, not the MC one
            "experiments.cvae.warmup_epochs",
            100,
            "experiments.cvae.warmup_epochs: not used by model 'cvae' (takes latent_dim, "
            "logvar_clamp, prior, pseudo_inputs) nor objective 'mc_elbo' (takes nothing); it is "
            "a key of objective 'analytic_elbo'",
        ),
    ],
)
def test_a_key_the_model_and_objective_do_not_use_is_named(path, value, message):
    with pytest.raises(ParamsError) as info:
        parse_params(with_change(path, value))
    assert str(info.value) == message


def test_a_misspelt_section_key_lists_what_is_allowed():
    with pytest.raises(ParamsError) as info:
        parse_params(with_change("data.prepared.mnist_binary.binarise", "none"))
    assert str(info.value) == (
        "data.prepared.mnist_binary.binarise: unknown key; did you mean 'binarize'? (allowed: "
        "dataset, binarize, size, seed, train_limit, test_limit)"
    )


def test_a_reference_to_no_experiment_is_an_error():
    with pytest.raises(
        ParamsError, match=r"^published: unknown name 'cvea' \(did you mean 'cvae'\?\)"
    ):
        parse_params(with_change("published.cvea", {"published": "x", "ours": ["a"]}))


def test_a_published_path_names_keys_never_a_value():
    """metrics.json's keys are fixed names: the k of a figure is the entry's `k`."""
    old = {"published": "NLL 89.78", "ours": ["evaluate.iwae_at_k.200.nll_nats"], "k": 200}
    with pytest.raises(
        ParamsError,
        match=r"^published.vae_static.ours: 'evaluate.iwae_at_k.200.nll_nats' names the value 200 as a key",
    ):
        parse_params(with_change("published.vae_static", old))
    fixed = {"published": "NLL 89.78", "ours": ["evaluate.iwae.nll_nats"], "k": 200}
    assert parse_params(with_change("published.vae_static", fixed)).published["vae_static"].k == 200


def test_yaml_syntax_error_is_one_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("experiments:\n  cvae: [unclosed\n")
    with pytest.raises(ParamsError, match=r"params.yaml: not valid YAML at line \d+"):
        load_params(path)


STAGES = {
    "download": ["mnist", "--out", "o/raw"],
    "prepare": ["mnist_binary", "--raw", "raw", "--out", "o/prepared"],
    "train": ["cvae", "--data", "d", "--out", "o/models", "--live", "o/live"],
    "evaluate": ["cvae", "--model", "m.pt", "--data", "d", "--out", "o/metrics.json"],
    "embed": ["cvae", "--model", "m.pt", "--data", "d", "--out", "o"],
    "render": [
        "cvae",
        "--model",
        "m.pt",
        "--data",
        "d",
        "--latents",
        "l.csv",
        "--frames",
        "f",
        "--out",
        "o",
    ],
    "report": ["--experiments", "e", "--summary", "o/summary.md", "--chart", "o/chart.png"],
    "classifier": ["mnist_binary", "--data", "d", "--out", "o/c.pt", "--metrics", "o/m.json"],
    "samples": ["cvae", "--model", "m.pt", "--data", "d", "--classifier", "c.pt", "--out", "o"],
}
MODEL_STAGES = ("train", "evaluate", "embed", "render", "samples")


def run_with_params(stage, raw, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw))
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "stages" / f"{stage}.py"),
            *STAGES[stage],
            "--params",
            str(params),
        ],
        cwd=tmp_path,
        env=run_env(),
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_stage_rejects_a_bad_section_before_work(stage, tmp_path):
    result = run_with_params(stage, with_change("render.manifold_size", 1), tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        "error: render.manifold_size = 1 is invalid: must be within [2, 64]"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


@pytest.mark.parametrize("stage", MODEL_STAGES)
def test_model_stages_reject_a_bad_experiment_before_work(stage, tmp_path):
    result = run_with_params(stage, with_change("experiments.vae_conv.latent_dim", -2), tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        "error: experiments.vae_conv.latent_dim = -2 is invalid: must be within [1, 65536]"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_literature_track_is_checked_like_the_references():
    raw = with_change("literature.experiments.vae_static.hidden_dims", 400)
    with pytest.raises(
        ParamsError,
        match=r"^literature.experiments.vae_static.hidden_dims: unknown key; did you mean 'hidden_dim'\?",
    ):
        experiments_of(parse_sections(raw), track="literature")
    taken = with_change("literature.experiments.cvae", DEFAULTS["experiments"]["cvae"])
    with pytest.raises(ParamsError, match=r"^literature.experiments.cvae: the name is taken"):
        parse_sections(taken)
    vamp = with_change("literature.experiments.vae_static.pseudo_inputs", 10)
    with pytest.raises(
        ParamsError,
        match=r"^literature.experiments.vae_static: pseudo_inputs is a knob of prior: vamp only$",
    ):
        experiments_of(parse_sections(vamp), track="literature")


def test_init_is_a_knob_only_of_the_models_that_take_it():
    raw = with_change("literature.experiments.vamp_static.init", "torch")
    with pytest.raises(
        ParamsError,
        match=(
            r"^literature.experiments.vamp_static.init: not used by model 'vamp_mlp' .*"
            r"it is a key of model 'vae_mlp', 'iaf_mlp'$"
        ),
    ):
        experiments_of(parse_sections(raw), track="literature")
