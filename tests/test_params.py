"""Every bad value in params.yaml gets one line naming the key, the value and what is allowed."""

import copy
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT, run_env

from vaelab.errors import ParamsError
from vaelab.params import load_params, parse_params

DEFAULTS = yaml.safe_load((ROOT / "params.yaml").read_text())


def with_change(path: str, value=None, delete: bool = False) -> dict:
    raw = copy.deepcopy(DEFAULTS)
    *parents, last = path.split(".")
    node = raw
    for key in parents:
        node = node[key]
    if delete:
        del node[last]
    else:
        node[last] = value
    return raw


def test_shipped_params_are_valid():
    params = load_params(ROOT / "params.yaml")
    assert set(params.experiments) == {"cvae", "vae_mlp", "vae_mlp_seed002", "ae_conv", "vae_conv"}
    cvae = params.experiment("cvae")
    assert (cvae.latent_dim, cvae.epochs, cvae.batch_size, cvae.lr) == (2, 10, 32, 1e-4)
    assert params.prepared(cvae.data).binarize == "threshold"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "experiments.cvae.model",
            "resnet",
            "experiments.cvae.model = 'resnet' is invalid: allowed values are cvae, vae_mlp, ae_conv, "
            "vae_conv",
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
            "stochastic, none",
        ),
        (
            "experiments.cvae.latent_dim",
            0,
            "experiments.cvae.latent_dim = 0 is invalid: must be >= 1",
        ),
        ("experiments.cvae.lr", 0, "experiments.cvae.lr = 0 is invalid: must be > 0"),
        ("experiments.cvae.lr", -1e-3, "experiments.cvae.lr = -0.001 is invalid: must be > 0"),
        ("experiments.cvae.epochs", 0, "experiments.cvae.epochs = 0 is invalid: must be >= 1"),
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
            "experiments.ae_conv.objective",
            "mc_elbo",
            "experiments.ae_conv.objective = 'mc_elbo' is invalid for model 'ae_conv': "
            "allowed values are bce",
        ),
        ("device", "tpu", "device = 'tpu' is invalid: allowed values are auto, cpu, cuda, mps"),
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


def test_yaml_syntax_error_is_one_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("experiments:\n  cvae: [unclosed\n")
    with pytest.raises(ParamsError, match=r"params.yaml: not valid YAML at line \d+"):
        load_params(path)


@pytest.mark.parametrize(
    "stage", ["download.py mnist", "prepare.py mnist_binary", "train.py cvae", "evaluate.py cvae"]
)
def test_every_stage_rejects_bad_params_before_work(stage, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(with_change("experiments.cvae.latent_dim", -2)))
    script, arg = stage.split()
    result = subprocess.run(
        [sys.executable, str(ROOT / "stages" / script), arg, "--params", str(params)],
        cwd=tmp_path,
        env=run_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        "error: experiments.cvae.latent_dim = -2 is invalid: must be >= 1"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]
