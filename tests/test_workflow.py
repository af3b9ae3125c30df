"""The pull-request workflow cannot run here; lint it, and run the script it calls."""

import subprocess
import sys
from pathlib import Path

import yaml
from conftest import ROOT

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
