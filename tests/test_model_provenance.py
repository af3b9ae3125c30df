"""A model file belongs to its experiment: evaluate, embed, render, samples and the notebook
loader refuse one of another experiment, of other params or of other data, in one line,
before anything is written."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import torch
import yaml
from conftest import ROOT, run_env

from vaelab.core.tensor_files import CHECKSUM_KEY
from vaelab.runtime.trained import ForeignModel, load_experiment_model

REMEDY_T = "restore it with `dvc checkout models/t/model.pt` or retrain it with `dvc repro train@t`"


@pytest.fixture(scope="module")
def project(prepared_data, tmp_path_factory):
    """A project folder with experiments t (cvae on binary28) and u (vae_mlp on grey28),
    each trained for one short epoch into models/NAME/model.pt."""
    from vaelab.config.experiments import load_experiment
    from vaelab.tools.profiles import apply_profile
    from vaelab.training.experiment import Outputs, fit
    from vaelab.training.loop import Run

    root = tmp_path_factory.mktemp("provenance")
    params = apply_profile(yaml.safe_load((ROOT / "params.yaml").read_text()), "tiny")
    params["data"]["prepared"].update(
        binary28={"dataset": "mnist", "binarize": "threshold", "size": 28},
        grey28={"dataset": "mnist", "binarize": "none", "size": 28},
    )
    references = params["experiments"]
    params["experiments"] = {
        "t": {**references["cvae"], "data": "binary28"},
        "u": {**references["vae_mlp"], "data": "grey28"},
    }
    params["published"] = {}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    for name in ("binary28", "grey28"):
        shutil.copytree(prepared_data / name, root / "data/prepared" / name)
    for name in ("t", "u"):
        _, spec = load_experiment(root / "params.yaml", name, track="references")
        data = root / "data/prepared" / spec.data
        fit(Run(spec, name), data, outputs=Outputs(root / "models" / name), limit=64)
    return root


@pytest.fixture
def workspace(project, tmp_path):
    """A fresh copy of the project for a test that changes it."""
    return shutil.copytree(project, tmp_path / "project")


def evaluate(project, *, model="models/t/model.pt", data="data/prepared/binary28"):
    out = project / "reports/t/metrics.json"
    command = [sys.executable, str(ROOT / "stages/evaluate.py"), "t", "--model", model]
    command += ["--data", data, "--out", str(out.relative_to(project))]
    done = subprocess.run(command, cwd=project, env=run_env(), capture_output=True, text=True)
    return done, out


def test_another_experiments_model_file_is_refused_in_one_line(workspace):
    evaluated, out = evaluate(workspace)
    assert evaluated.returncode == 0, evaluated.stderr
    out.unlink()
    shutil.copy(workspace / "models/u/model.pt", workspace / "models/t/model.pt")
    refused, out = evaluate(workspace)
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        "error: models/t/model.pt is the model of experiment 'u' (vae_mlp on grey28), not of "
        f"'t' (cvae on binary28); {REMEDY_T}"
    ]
    assert not out.exists()


def test_every_stage_that_loads_a_model_refuses_another_experiments(workspace):
    from vaelab.evaluation.sample_quality import score_experiment
    from vaelab.pictures.embedding import embed_test_split
    from vaelab.pictures.render import render_pictures

    foreign = workspace / "models/u/model.pt"
    common = dict(params=workspace / "params.yaml", model=foreign)
    data = workspace / "data/prepared/binary28"
    out = workspace / "out"
    calls = {
        "embed": lambda: embed_test_split("t", data=data, out=out, track="references", **common),
        "render": lambda: render_pictures(
            "t",
            data=data,
            latents=out / "latents.csv",
            frames=out / "frames",
            out=out,
            track="references",
            **common,
        ),
        "samples": lambda: score_experiment(
            "t", data=data, classifier=out / "classifier.pt", out=out, **common
        ),
    }
    for stage, call in calls.items():
        with pytest.raises(ForeignModel, match=rf"^{foreign} is the model of experiment 'u' "):
            call()
        assert not out.exists(), stage


def test_a_model_trained_with_other_params_is_refused(workspace):
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    lr = params["experiments"]["t"]["lr"]
    params["experiments"]["t"]["lr"] = lr * 2
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))
    refused, out = evaluate(workspace)
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        "error: models/t/model.pt was trained with other keys than experiment 't' has now: "
        f"lr {lr} (params: {lr * 2}); {REMEDY_T}"
    ]
    assert not out.exists()


def test_a_model_given_other_data_is_refused(workspace):
    with pytest.raises(ForeignModel) as other_set:
        load_experiment_model(
            "t",
            track="references",
            params=workspace / "params.yaml",
            data=workspace / "data/prepared/grey28",
        )
    grey = workspace / "data/prepared/grey28"
    assert str(other_set.value).startswith(
        f"{workspace / 'models/t/model.pt'} was trained on other data than {grey}: binarize "
        f"'threshold' ({grey}: 'none'); pass the folder of data.prepared.binary28 with --data"
    )
    # the same meta, other images: only the hash of the files tells them apart
    binary = workspace / "data/prepared/binary28"
    test = torch.load(binary / "test.pt", weights_only=True)
    test["images"] = test["images"].flip(0)
    torch.save(test, binary / "test.pt")
    refused, out = evaluate(workspace)
    assert refused.returncode == 2
    assert refused.stderr.startswith(
        "error: models/t/model.pt was trained on other data than data/prepared/binary28: its "
        "files' hash "
    )
    assert not out.exists()


def test_the_notebook_loader_checks_the_experiment_it_is_given(project):
    params = project / "params.yaml"
    saved = load_experiment_model("t", track="references", params=params)
    assert saved.experiment["name"] == "t" and not saved.model.training
    with pytest.raises(ForeignModel, match="is the model of experiment 'u'"):
        load_experiment_model(
            "t", track="references", params=params, model=project / "models/u/model.pt"
        )


def test_a_model_from_before_the_data_hash_is_checked_by_what_it_records(workspace, capsys):
    """Earlier model.pt files record no hash of their data, nor keys added since, which
    trained at what is now their default."""
    path = workspace / "models/t/model.pt"
    state = torch.load(path, weights_only=True)
    del state[CHECKSUM_KEY]  # nor a checksum of their contents
    del state["experiment"]["data_fingerprint"], state["experiment"]["validation"]
    torch.save(state, path)
    saved = load_experiment_model("t", track="references", params=workspace / "params.yaml")
    assert saved.experiment["name"] == "t"
    assert "records no hash of its data" in capsys.readouterr().err
    state["experiment"]["binarize"] = "none"
    torch.save(state, path)
    with pytest.raises(ForeignModel, match="binarize 'none'"):
        load_experiment_model("t", track="references", params=workspace / "params.yaml")


@pytest.mark.parametrize(
    ("knob", "taken"),
    [("classes", "a key model.pt records"), ("lr", "a training key"), ("kl_weight", "a knob of")],
)
def test_a_knob_named_like_another_key_is_refused_in_one_line(monkeypatch, knob, taken):
    """model.pt records the experiment's keys beside its own (name, classes, ...) in one
    mapping, so a model knob of one of those names would be overwritten there and the
    check above would compare the wrong values; params validation refuses such a model."""
    from conftest import experiment
    from pydantic import create_model

    from vaelab.config.params import ParamsError
    from vaelab.models.registry import MODELS
    from vaelab.models.vae_mlp import MLPVAE, MLPConfig
    from vaelab.objectives.registry import OBJECTIVES

    config = create_model("ClashingConfig", __base__=MLPConfig, **{knob: (float, 1.0)})
    monkeypatch.setitem(MODELS, "clashing", type("Clashing", (MLPVAE,), {"Config": config}))
    objective = "weighted"
    assert "kl_weight" in OBJECTIVES[objective].Knobs.keys()  # the third case's other owner
    with pytest.raises(ParamsError) as refused:
        experiment(model="clashing", objective=objective)
    message = str(refused.value)
    assert "\n" not in message and f"knob {knob!r}, which is also {taken}" in message, message
    assert "rename it in" in message
    experiment(model="vae_mlp", objective=objective)  # the same pair without the clash passes
