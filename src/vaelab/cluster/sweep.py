"""Submit a sweep to SLURM, follow it, run what failed again, and collect its results.

submit   one array task per point of the grid (vaelab.cluster.task runs each)
status   each point: done (on the git remote), pending, running, or failed (its log)
resume   submits again only the points neither done nor queued nor running
collect  pulls the sweep's experiments into this clone: one `dvc exp show` table
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from vaelab.cluster import grid, slurm
from vaelab.cluster.record import Slurm, Sweep, check_name, load, record_path
from vaelab.cluster.remote import (
    check_clean,
    check_on_remote,
    experiments_on_remote,
    git,
    remote_url,
)
from vaelab.cluster.task import install
from vaelab.core.errors import VaelabError
from vaelab.core.files import write_text

ACTIVE = {
    "PENDING",
    "RUNNING",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "CONFIGURING",
    "COMPLETING",
    "SUSPENDED",
    "RESIZING",
    "SIGNALING",
    "STAGE_OUT",
}
LOG_LINES = 3  # of a failed point's log, in `status`

BATCH_SCRIPT = """\
#!/bin/bash
# One point of the vaelab sweep {name} (`vaelab sweep submit` wrote this file).
# Near its time limit SLURM sends USR1 (sbatch --signal): the task is requeued, and its
# next attempt resumes the training's last epoch checkpoint in the same clone.
trap 'scontrol requeue "$SLURM_JOB_ID"' USR1
{python} -m vaelab.tools.sweep task {name} "$SLURM_ARRAY_TASK_ID" --root {root} &
task=$!
wait "$task"; status=$?
while kill -0 "$task" 2>/dev/null; do wait "$task"; status=$?; done
exit "$status"
"""


def _absolute_url(url: str, repo: Path) -> str:
    """A remote given as a relative path means the same folder from every node."""
    path = repo / url
    return str(path.resolve()) if "://" not in url and ":" not in url and path.exists() else url


def submit(
    name: str,
    sets: list[str],
    stages: list[str],
    *,
    root: Path,
    repo: Path,
    git_remote: str,
    options: Slurm,
    clones: Path | None,
) -> Sweep:
    check_name(name)
    options.time_limit_s()  # a bad --time is refused before anything is written
    points = grid.expand(sets)
    check_clean(repo)
    commit = git("rev-parse", "HEAD", cwd=repo).stdout.strip()
    url = _absolute_url(remote_url(repo, git_remote), repo)
    check_on_remote(repo, url, commit)
    sweep = Sweep(
        name,
        commit,
        url,
        points,
        list(stages),
        options,
        root / name,
        clones.absolute() if clones else None,
    )
    if record_path(root, name).exists():
        earlier = load(root, name)
        if not earlier.same_sweep(sweep):
            raise VaelabError(
                f"sweep {name} in {root} ran {len(earlier.points)} point(s) of commit "
                f"{earlier.commit[:10]}: give this one another name"
            )
        sweep.jobs = earlier.jobs
    (sweep.folder / "logs").mkdir(parents=True, exist_ok=True)
    python = sweep.environment / ".venv" / "bin" / "python"
    write_text(
        sweep.script,
        BATCH_SCRIPT.format(
            name=name, python=shlex.quote(str(python)), root=shlex.quote(str(root))
        ),
    )
    sweep.save()
    install(sweep)  # here, where the network is: the tasks then find it ready
    _submit(sweep, sweep.numbers)
    return sweep


def _submit(sweep: Sweep, numbers: list[int]) -> None:
    job = slurm.submit_array(
        sweep.script,
        numbers,
        job_name=job_name(sweep),
        log=str(sweep.folder / "logs" / f"{sweep.name}-%a.out"),
        max_parallel=sweep.slurm.max_parallel,
        options=sweep.slurm.sbatch_options(),
    )
    sweep.jobs.append(job)
    sweep.save()
    print(
        f"sweep {sweep.name}: point(s) {slurm.array_spec(numbers, None)} of "
        f"{len(sweep.points)} submitted as SLURM job {job} (commit {sweep.commit[:10]}); "
        f"follow with `vaelab sweep status {sweep.name}`"
    )


def job_name(sweep: Sweep) -> str:
    return f"vaelab-{sweep.name}"


@dataclass
class PointState:
    number: int
    experiment: str
    sets: list[str]
    state: str  # done, pending, running, failed, not started
    log_tail: list[str]


def states(sweep: Sweep) -> list[PointState]:
    pushed = experiments_on_remote(sweep.git_remote, sweep.commit)
    slurm_states = slurm.task_states(job_name(sweep), sweep.jobs)
    found = []
    for number in sweep.numbers:
        name = sweep.experiment(number)
        log = sweep.log(number)
        queued = slurm_states.get(number)
        if name in pushed:
            state, tail = "done", []
        elif queued in ACTIVE:
            state, tail = queued.lower(), []
        elif log.exists():
            lines = log.read_text(errors="replace").strip().splitlines()
            state, tail = "failed", lines[-LOG_LINES:]
        else:
            state, tail = "not started", []
        found.append(PointState(number, name, sweep.points[number - 1], state, tail))
    return found


def status(sweep: Sweep) -> list[PointState]:
    found = states(sweep)
    width = max(len(p.experiment) for p in found)
    print(
        f"sweep {sweep.name}: commit {sweep.commit[:10]}, {len(found)} point(s), "
        f"SLURM job(s) {', '.join(sweep.jobs) or 'none'}"
    )
    for point in found:
        print(f"  {point.experiment:<{width}}  {point.state:<11}  -S {' '.join(point.sets)}")
        for line in point.log_tail:
            print(f"  {'':<{width}}  | {line}")
    if any(p.state == "failed" for p in found):
        print(
            f"failed point(s): logs in {sweep.folder / 'logs'}; "
            f"`vaelab sweep resume {sweep.name}` runs them again"
        )
    return found


def resume(sweep: Sweep) -> list[int]:
    again = [p.number for p in states(sweep) if p.state in ("failed", "not started")]
    if not again:
        print(f"sweep {sweep.name}: every point is done or queued; nothing to resume")
        return []
    _submit(sweep, again)
    return again


def collect(sweep: Sweep, repo: Path) -> list[str]:
    """Pull the sweep's experiments into `repo`; print them as one table of what differs
    between them."""
    import subprocess

    on_remote = experiments_on_remote(sweep.git_remote, sweep.commit)
    names = [n for n in map(sweep.experiment, sweep.numbers) if n in on_remote]
    if not names:
        raise VaelabError(
            f"no point of sweep {sweep.name} is on {sweep.git_remote} yet: "
            f"`vaelab sweep status {sweep.name}`"
        )
    dvc = str(Path(sys.executable).parent / "dvc")
    # the refs, with their params and metrics (in git); a point's models and pictures come
    # with `dvc exp apply` and `dvc pull`, as any experiment's
    pulled = subprocess.run([dvc, "exp", "pull", "--no-cache", sweep.git_remote, *names], cwd=repo)
    if pulled.returncode != 0:
        raise VaelabError(f"dvc exp pull of sweep {sweep.name} failed (exit {pulled.returncode})")
    print(table(repo, sweep.commit, names))
    missing = len(sweep.points) - len(names)
    if missing:
        print(f"{missing} point(s) not on the remote yet: `vaelab sweep status {sweep.name}`")
    print(f"a point's outputs: `dvc exp apply {names[0]}` then `dvc pull` its stages")
    return names


def table(repo: Path, commit: str, names: list[str]) -> str:
    """`dvc exp show` of the experiments `names`, one column each: the params and metrics
    that differ between them, params first, metric files named from their common folder."""
    import os

    import dvc.api
    import pandas as pd

    rows = [
        row
        for row in dvc.api.exp_show(repo=str(repo), revs=commit)
        if row.get("Experiment") in names
    ]
    frame = pd.DataFrame(rows).set_index("Experiment").loc[names]
    shown = [c for c in frame if c not in ("rev", "typ", "Created", "parent", "State", "Executor")]
    varying = [c for c in shown if frame[c].astype(str).nunique() > 1]
    metrics = [c for c in varying if ":" in c]
    folder = os.path.commonpath([c.split(":")[0] for c in metrics]) if metrics else ""
    labels = {c: os.path.relpath(c, folder) if folder and c in metrics else c for c in varying}
    ordered = [c for c in varying if c not in metrics] + metrics
    return frame[ordered].rename(columns=labels).T.to_string(float_format=lambda v: f"{v:.6g}")
