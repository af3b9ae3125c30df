"""dvc.lock records today's code and params: a stage whose recorded hashes differ from the
tree's would rerun in a clone that has the outputs (`vaelab locks`)."""

from pathlib import Path

import yaml
from conftest import ROOT, git_commit, project_copy

from vaelab.tools.locks import check_locks


def test_every_recorded_stage_matches_todays_code_and_params():
    report = check_locks(ROOT)
    assert report.stale == {}, "\n".join(f"{s}: {m}" for s, m in report.stale.items())
    # the default run is committed whole; only the literature track may hold stages that
    # need files no machine here can download (Larochelle's .amat)
    assert "dvc.yaml" not in report.unrecorded, report.unrecorded["dvc.yaml"]


def test_an_edit_or_a_param_without_a_rerun_is_named(tmp_path):
    project = project_copy(tmp_path / "project")
    plots = project / "src/vaelab/pictures/plots.py"
    plots.write_text(plots.read_text() + "\n# an edit that moves the pictures' code\n")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["samples"]["count"] += 1
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    lock = project / "dvc.lock"
    locked = yaml.safe_load(lock.read_text())
    locked["stages"]["train@cvae"]["cmd"] += " --changed"
    lock.write_text(yaml.safe_dump(locked, sort_keys=False))
    git_commit(project, "edits without a rerun")

    stale = check_locks(Path(project)).stale
    experiments = yaml.safe_load((ROOT / "params.yaml").read_text())["experiments"]
    for name in experiments:
        assert stale[f"render@{name}"] == ["src/vaelab/pictures/plots.py modified"]
        assert "src/vaelab/pictures/plots.py modified" in stale[f"samples@{name}"]
        assert "params.yaml:samples modified" in stale[f"samples@{name}"]
        assert stale.get(f"evaluate@{name}") is None  # neither its code nor its params moved
    assert stale["train@cvae"] == ["changed command"]
    assert stale.get("train@vae_mlp") is None
