"""One point of a sweep, as one SLURM array task runs it, safe to run twice.

A point already on the git remote is skipped. Otherwise the task clones the sweep's commit
into the point's own folder (or finds the clone a killed attempt left there, checkpoint and
all), runs `dvc exp run --pull` in the commit's locked environment, pushes the outputs to
the DVC remote and then the experiment to the git remote, checks that the remote's
experiment is the one it made, and removes the clone. A failure keeps the clone, so the
next attempt resumes its training from the last epoch's checkpoint.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from pathlib import Path

from vaelab.cluster.record import Sweep
from vaelab.cluster.remote import experiments_on_remote, git, local_experiment
from vaelab.core.errors import VaelabError

PUSH_ATTEMPTS = 3
PUSH_BACKOFF_S = 5.0  # then three times as long after each failed attempt


def say(message: str) -> None:
    print(f"vaelab sweep: {message}", flush=True)


def run_point(sweep: Sweep, number: int) -> None:
    if number not in sweep.numbers:
        raise VaelabError(f"sweep {sweep.name} has points 1 to {len(sweep.points)}, not {number}")
    name = sweep.experiment(number)
    say(f"{name} on {os.uname().nodename}: -S {' '.join(sweep.points[number - 1])}")
    if name in experiments_on_remote(sweep.git_remote, sweep.commit):
        say(f"{name} is already on {sweep.git_remote}: nothing to run")
        return
    clone = checkout(sweep, sweep.clone(number))
    python_bin = install(sweep)
    if local_experiment(clone, sweep.commit, name):
        say(f"{name} already ran in {clone}: pushing it")
    else:
        run_experiment(sweep, number, clone, python_bin)
    push(sweep, name, clone, python_bin)
    shutil.rmtree(clone)
    say(f"{name} is on {sweep.git_remote} and its outputs on the DVC remote; removed {clone}")


def checkout(sweep: Sweep, dest: Path) -> Path:
    """The sweep's commit at `dest`: cloned now, or left there by an earlier attempt."""
    if (dest / ".git").is_dir():
        head = git("rev-parse", "HEAD", cwd=dest).stdout.strip()
        if head != sweep.commit:
            raise VaelabError(
                f"{dest} holds commit {head[:10]}, not the sweep's {sweep.commit[:10]}: remove it "
                "(or give the sweep another --clones folder)"
            )
        say(f"resuming in the clone an earlier attempt left at {dest}")
        return dest
    if dest.exists() or dest.is_symlink():
        raise VaelabError(
            f"{dest} is in the way: it is not a clone of the sweep's commit; move it away and "
            f"run the point again (`vaelab sweep resume {sweep.name}`)"
        )
    partial = dest.with_name(dest.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    dest.parent.mkdir(parents=True, exist_ok=True)
    git("clone", "--quiet", "--no-checkout", sweep.git_remote, str(partial))
    git("checkout", "--quiet", "--detach", sweep.commit, cwd=partial)
    partial.rename(dest)  # a clone cut short is never taken for a whole one
    return dest


def install(sweep: Sweep) -> Path:
    """`uv sync --locked` in the commit's own checkout, shared by the sweep's tasks (one
    at a time); the environment's bin folder."""
    uv = shutil.which("uv")
    if uv is None:
        raise VaelabError(
            "uv not found on this node: `python3 -m pip install uv`, as the README's "
            "setup does, where the nodes see it"
        )
    env = sweep.environment
    env.parent.mkdir(parents=True, exist_ok=True)
    with open(env.parent / f"{env.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (env / ".git").is_dir():
            checkout(sweep, env)
        say(f"uv sync --locked in {env}")
        result = subprocess.run([uv, "sync", "--locked", "--quiet"], cwd=env)
        if result.returncode != 0:
            raise VaelabError(
                f"uv sync --locked failed in {env} (exit {result.returncode}): see above"
            )
    return env / ".venv" / "bin"


def stage_env(clone: Path, python_bin: Path) -> dict[str, str]:
    # The environment's own vaelab is the same commit's; PYTHONPATH makes the stages import
    # the clone's, the files DVC hashes as their dependencies.
    return dict(
        os.environ,
        PATH=f"{python_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        VIRTUAL_ENV=str(python_bin.parent),
        PYTHONPATH=str(clone / "src"),
        PYTHONUNBUFFERED="1",
    )


def run_experiment(sweep: Sweep, number: int, clone: Path, python_bin: Path) -> None:
    name = sweep.experiment(number)
    sets = [arg for value in sweep.points[number - 1] for arg in ("-S", value)]
    command = [str(python_bin / "dvc"), "exp", "run", "--pull", "-n", name, *sets, *sweep.stages]
    say(" ".join(command[1:]))
    result = subprocess.run(command, cwd=clone, env=stage_env(clone, python_bin))
    if result.returncode != 0:
        raise VaelabError(
            f"dvc exp run of {name} failed (exit {result.returncode}); its clone stays in {clone} "
            f"for the next attempt (`vaelab sweep resume {sweep.name}`) to resume"
        )


def _retried(command: list[str], clone: Path, python_bin: Path, what: str) -> None:
    wait = PUSH_BACKOFF_S
    for attempt in range(1, PUSH_ATTEMPTS + 1):
        result = subprocess.run(command, cwd=clone, env=stage_env(clone, python_bin))
        if result.returncode == 0:
            return
        if attempt < PUSH_ATTEMPTS:
            say(f"{what} failed (exit {result.returncode}); again in {wait:.0f} s")
            time.sleep(wait)
            wait *= 3
    raise VaelabError(
        f"{what} failed {PUSH_ATTEMPTS} times; the run stays in {clone}: run the point again "
        "(`vaelab sweep resume`) once the remote answers"
    )


def push(sweep: Sweep, name: str, clone: Path, python_bin: Path) -> None:
    """Outputs first, then the ref: a teammate who sees the experiment can pull its files."""
    dvc = str(python_bin / "dvc")
    # the stages run and what they read: the pipeline's other outputs were never made here
    targets = ["--with-deps", *sweep.stages] if sweep.stages else []
    _retried([dvc, "push", *targets], clone, python_bin, "dvc push")
    _retried(
        [dvc, "exp", "push", "--no-cache", "origin", name],
        clone,
        python_bin,
        f"dvc exp push of {name}",
    )
    mine = local_experiment(clone, sweep.commit, name)
    theirs = experiments_on_remote(sweep.git_remote, sweep.commit).get(name)
    if theirs != mine:  # dvc exp push says "diverged" and exits 0 when the name is taken
        raise VaelabError(
            f"{name} on {sweep.git_remote} is {theirs[:10] if theirs else 'missing'}, not this "
            f"run's {mine[:10] if mine else '(none)'}: another run of the point pushed first, or "
            f"the name is taken; this run stays in {clone}"
        )
