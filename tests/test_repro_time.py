"""The repro timer's bookkeeping, with stand-ins for uv and dvc on PATH.

A real clean `dvc repro` takes most of an hour; these check, in a second, that each timed
clone gets its own environment from `uv sync --locked` (not the caller's, whose editable
vaelab is another tree's code), and that a stage's seconds run from its "Running stage"
line to the next one.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml
from conftest import benchmark_module


@pytest.fixture(scope="module")
def repro_time():
    return benchmark_module("repro_time")


def _script(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_each_clone_runs_its_own_environment_made_by_uv_sync(repro_time, tmp_path):
    tools, project = tmp_path / "tools", tmp_path / "project"
    tools.mkdir()
    project.mkdir()
    # the stand-in uv records how it was called and puts a stand-in dvc in the clone's .venv
    _script(
        tools, "fake-dvc", "echo \"Running stage 'a':\"\nsleep 0.3\necho \"Running stage 'b':\"\n"
    )
    _script(
        tools,
        "uv",
        'echo "$PWD $* VIRTUAL_ENV=${VIRTUAL_ENV:-unset}" > "$UV_LOG"\n'
        'mkdir -p .venv/bin && cp "$FAKE_DVC" .venv/bin/dvc\n',
    )
    env = {
        "PATH": os.pathsep.join([str(tools), "/usr/bin", "/bin"]),
        "UV_LOG": str(tmp_path / "uv.log"),
        "FAKE_DVC": str(tools / "fake-dvc"),
        "VIRTUAL_ENV": "/somewhere/else/.venv",
    }
    project_env, setup_seconds = repro_time.project_environment(project, env)

    assert (tmp_path / "uv.log").read_text().split() == [
        str(project),
        "sync",
        "--locked",
        "--quiet",
        "VIRTUAL_ENV=unset",
    ]
    assert project_env["VIRTUAL_ENV"] == str(project / ".venv")
    assert project_env["PATH"].split(os.pathsep)[0] == str(project / ".venv" / "bin")
    assert setup_seconds >= 0

    seconds = repro_time.timed_repro(project, project_env)
    assert list(seconds) == ["a", "b", "total"]
    assert 0.3 <= seconds["a"] < seconds["total"]
    assert seconds["b"] < 0.3


def test_without_uv_it_says_how_to_get_it(repro_time, tmp_path):
    with pytest.raises(SystemExit, match="uv is not on PATH"):
        repro_time.project_environment(tmp_path, {"PATH": str(tmp_path)})


def test_mnist_only_prepares_the_fashion_sets_from_mnist(repro_time, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(
        "data:\n"
        "  mirrors: {mnist: [a/], fashion_mnist: [b/]}\n"
        "  prepared:\n"
        "    m: {dataset: mnist, binarize: none, size: 28}\n"
        "    f: {dataset: fashion_mnist, binarize: none, size: 32}\n"
    )
    repro_time.fashion_on_mnist(params)
    data = yaml.safe_load(params.read_text())["data"]
    assert data["mirrors"] == {"mnist": ["a/"]}
    assert data["prepared"]["f"] == {"dataset": "mnist", "binarize": "none", "size": 32}
