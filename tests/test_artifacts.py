"""models/dvc.yaml declares one DVC artifact per experiment in params.yaml, and
`vaelab artifacts` keeps the two lists in step."""

import shutil

import yaml
from conftest import ROOT
from typer.testing import CliRunner

from vaelab.tools.artifacts import expected_artifacts, read_artifacts
from vaelab.tools.command import app


def artifacts_cli(*args, cwd):
    """The command in this process (a subprocess would spend seconds importing torch)."""
    return CliRunner().invoke(
        app,
        ["artifacts", "--params", f"{cwd}/params.yaml", "--out", f"{cwd}/models/dvc.yaml", *args],
    )


def test_every_experiment_is_a_model_artifact_with_a_description_and_labels():
    artifacts = read_artifacts(ROOT / "models/dvc.yaml")
    experiments = yaml.safe_load((ROOT / "params.yaml").read_text())["experiments"]
    assert list(artifacts) == list(experiments)
    for name, artifact in artifacts.items():
        assert artifact["path"] == f"{name}/model.pt" and artifact["type"] == "model"
        assert artifact["desc"] and artifact["labels"], name
    assert artifacts == expected_artifacts(ROOT / "params.yaml", artifacts)


def test_check_fails_on_a_new_experiment_and_the_sync_adds_it_keeping_hand_edits(tmp_path):
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "models").mkdir()
    shutil.copy(ROOT / "models/dvc.yaml", tmp_path / "models/dvc.yaml")
    assert artifacts_cli("--check", cwd=tmp_path).exit_code == 0

    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["experiments"]["cvae_wide"] = {**params["experiments"]["cvae"], "latent_dim": 8}
    del params["experiments"]["vae_mlp"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    before = (tmp_path / "models/dvc.yaml").read_text()
    check = artifacts_cli("--check", cwd=tmp_path)
    assert check.exit_code != 0
    assert check.stderr.splitlines() == [
        f"error: {tmp_path}/models/dvc.yaml is out of step with {tmp_path}/params.yaml "
        "(missing: cvae_wide; not in params: vae_mlp); run `vaelab artifacts` "
        "and commit it"
    ]
    assert (tmp_path / "models/dvc.yaml").read_text() == before

    assert artifacts_cli(cwd=tmp_path).exit_code == 0
    synced = read_artifacts(tmp_path / "models/dvc.yaml")
    assert list(synced) == list(params["experiments"])
    assert synced["cvae"] == read_artifacts(ROOT / "models/dvc.yaml")["cvae"]
    assert synced["cvae_wide"]["path"] == "cvae_wide/model.pt"
    assert "latent 8" in synced["cvae_wide"]["desc"]
    assert synced["cvae_wide"]["labels"] == ["cvae", "mc_elbo", "mnist"]
    assert artifacts_cli("--check", cwd=tmp_path).exit_code == 0


def test_a_bad_experiment_is_one_error_line_and_nothing_written(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["experiments"]["cvae"]["data"] = "nope"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = artifacts_cli(cwd=tmp_path)
    assert result.exit_code != 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "nope" in lines[0], lines
    assert not (tmp_path / "models/dvc.yaml").exists()
