"""`vaelab`: one command with a subcommand per tool, each with --help and one-line errors."""

import subprocess

import pytest
import yaml
from conftest import BIN, ROOT
from typer.testing import CliRunner

from vaelab.tools.command import app

COMMANDS = ["profile", "review", "schema", "artifacts", "locks", "checkpoint"]


def test_the_installed_command_lists_every_tool():
    shown = subprocess.run([str(BIN / "vaelab"), "--help"], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    listed = [line.split()[1] for line in shown.stdout.splitlines() if line.startswith("│ ")]
    assert [name for name in listed if name in COMMANDS] == COMMANDS


@pytest.mark.parametrize("command", [*COMMANDS, "checkpoint adopt"])
def test_every_command_has_help(command):
    result = CliRunner().invoke(app, [*command.split(), "--help"], prog_name="vaelab")
    assert result.exit_code == 0 and "Usage: vaelab " + command in " ".join(result.output.split())


@pytest.fixture
def committed_params(tmp_path):
    """A git repository whose params.yaml is the shipped one, committed."""
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid"]
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "params.yaml"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "params"], cwd=tmp_path, check=True)
    return tmp_path / "params.yaml"


def test_profile_full_puts_back_the_committed_params(committed_params):
    runner = CliRunner()
    shipped = committed_params.read_text()
    assert runner.invoke(app, ["profile", "tiny", "--params", str(committed_params)]).exit_code == 0
    tiny = yaml.safe_load(committed_params.read_text())
    assert tiny["experiments"]["cvae"]["epochs"] == 1
    result = runner.invoke(app, ["profile", "full", "--params", str(committed_params)])
    assert result.exit_code == 0, result.output
    assert committed_params.read_text() == shipped  # comments and all


def test_profile_full_keeps_edits_no_profile_made(committed_params):
    tiny = yaml.safe_load(committed_params.read_text())
    tiny["experiments"]["cvae"]["lr"] = 0.5
    committed_params.write_text(yaml.safe_dump(tiny))
    edited = committed_params.read_text()
    result = CliRunner().invoke(app, ["profile", "full", "--params", str(committed_params)])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: {committed_params} holds edits that no profile made (`git diff "
        f"{committed_params}` shows them); commit them, or drop them with `git checkout "
        f"{committed_params}`, then run it again"
    )
    assert committed_params.read_text() == edited


def test_an_unknown_profile_is_one_line(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text((ROOT / "params.yaml").read_text())
    result = CliRunner().invoke(app, ["profile", "huge", "--params", str(params)])
    assert result.exit_code == 2
    assert result.output.strip() == "error: profile 'huge' is unknown; allowed: tiny, small, full"
