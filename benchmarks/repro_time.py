"""Seconds per stage of a clean `dvc repro` of the default experiments, from download to report.

    VAELAB_MIRROR=../shared/datasets python -m benchmarks.repro_time [--rev HEAD] \
        [--out timings.json] [--compare before.json] [--mnist-only]

benchmarks/README.md (`repro_time`) says what it measures and how to read it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd
import typer
import yaml

STAGE_LINE = re.compile(r"Running stage '([^']+)'")


def fashion_on_mnist(params_file: Path) -> None:
    params = yaml.safe_load(params_file.read_text())
    params["data"]["mirrors"].pop("fashion_mnist", None)
    for prepared in params["data"]["prepared"].values():
        if prepared["dataset"] == "fashion_mnist":
            prepared["dataset"] = "mnist"
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))


SETUP = "setup (uv sync --locked)"


def project_environment(project: Path, env: dict) -> tuple[dict, float]:
    """The clone's own environment, made as the README's commands make it, and its seconds.

    Not this process's environment: its vaelab is installed editable from another tree, and
    its bytecode and packages are not necessarily what the commit's setup gives a user."""
    if shutil.which("uv", path=env.get("PATH")) is None:
        raise SystemExit("uv is not on PATH: install it with `python3 -m pip install uv`")
    outside = {key: value for key, value in env.items() if key != "VIRTUAL_ENV"}
    started = time.perf_counter()
    subprocess.run(["uv", "sync", "--locked", "--quiet"], cwd=project, env=outside, check=True)
    seconds = time.perf_counter() - started
    venv = project / ".venv"
    path = os.pathsep.join([str(venv / "bin"), outside.get("PATH", "")])
    return {**outside, "VIRTUAL_ENV": str(venv), "PATH": path}, seconds


def timed_repro(project: Path, env: dict) -> dict[str, float]:
    process = subprocess.Popen(
        ["dvc", "repro"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    starts: list[tuple[str, float]] = []
    begun = time.perf_counter()
    for line in process.stdout:
        if match := STAGE_LINE.search(line):
            starts.append((match.group(1), time.perf_counter()))
            print(f"{time.perf_counter() - begun:7.0f} s  {match.group(1)}", flush=True)
    if process.wait():
        raise SystemExit(f"dvc repro failed with exit code {process.returncode}")
    ended = time.perf_counter()
    ends = [start for _, start in starts[1:]] + [ended]
    seconds = {name: end - start for (name, start), end in zip(starts, ends, strict=True)}
    seconds["total"] = ended - begun
    return seconds


def main(
    rev: str = typer.Option("HEAD", help="The commit to time."),
    out: Path = typer.Option(None, help="Write the timings here as JSON."),
    compare: Path = typer.Option(None, help="An earlier --out to print beside this run."),
    mnist_only: bool = typer.Option(False, help="Prepare the Fashion-MNIST sets from MNIST."),
) -> None:
    root = Path.cwd()
    env = dict(os.environ, CI="true")
    mirror = env.get("VAELAB_MIRROR", "")
    if mirror and "://" not in mirror:
        env["VAELAB_MIRROR"] = str((root / mirror).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        subprocess.run(["git", "clone", "-q", str(root), str(project)], check=True)
        subprocess.run(["git", "checkout", "-q", rev], cwd=project, check=True)
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=project, capture_output=True, text=True
        ).stdout.strip()
        if mnist_only:
            fashion_on_mnist(project / "params.yaml")
        project_env, setup_seconds = project_environment(project, env)
        seconds = {SETUP: setup_seconds, **timed_repro(project, project_env)}
    table = pd.Series(seconds, name=commit).to_frame()
    if compare is not None:
        before = json.loads(compare.read_text())
        table.insert(0, before["commit"], pd.Series(before["seconds"]))
        table["ratio"] = table[before["commit"]] / table[commit]
    print(table.round(1).to_string())
    if out is not None:
        out.write_text(json.dumps({"commit": commit, "seconds": seconds}, indent=2) + "\n")


if __name__ == "__main__":
    typer.run(main)
