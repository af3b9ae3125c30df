"""The pull-request workflow cannot run here; lint it, and run the script it calls."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, dvc, git_commit, offline_project

BIN = Path(sys.executable).parent
WORKFLOW = ROOT / ".github/workflows/pr-report.yml"


def schema_check(path: Path) -> subprocess.CompletedProcess:
    """GitHub's workflow schema (vendored in check-jsonschema, so it works offline)."""
    return subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
    )


def test_workflow_matches_githubs_schema(tmp_path):
    result = schema_check(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr
    # a misspelt key must fail, or the check proves nothing
    (tmp_path / "broken.yml").write_text(WORKFLOW.read_text().replace("runs-on:", "runs_on:"))
    assert schema_check(tmp_path / "broken.yml").returncode != 0


def test_shell_scripts_pass_shellcheck():
    result = subprocess.run(
        [str(BIN / "shellcheck"), str(ROOT / ".github/pr-report.sh"), str(ROOT / ".ci/run")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_runs_the_report_script_under_the_locked_environment():
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["report"]["steps"]
    commands = "\n".join(step.get("run", "") for step in steps)
    assert "uv sync --locked" in commands
    assert "uv run bash .github/pr-report.sh" in commands
    assert "gh pr comment" in commands


@pytest.mark.slow
def test_pr_report_script_compares_base_and_head(tmp_path, real_mnist_mirror):
    project, env = offline_project(tmp_path, real_mnist_mirror)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["experiments"]["vae_mlp"]["latent_dim"] = 3
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git_commit(project, "vae_mlp latent 3")
    env = dict(env, VAELAB_PROFILE="tiny", PATH=f"{BIN}:{env['PATH']}")
    result = subprocess.run(
        ["bash", ".github/pr-report.sh", "HEAD~1", "comment.md"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    comment = (project / "comment.md").read_text()
    assert "experiments.vae_mlp.latent_dim" in comment
    assert "reports/vae_mlp/metrics.json" in comment or "latent.dims" in comment
    assert "| experiment" in comment and "| vae_mlp " in comment
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=project,
        capture_output=True,
        text=True,
    ).stdout
    assert status == "", status
    assert dvc(["exp", "list", "--name-only"], project, env).stdout.count("tiny") == 2
