"""The SLURM commands a sweep uses: sbatch for an array, squeue for its tasks' states.

Finished tasks leave squeue after the cluster's MinJobAge (and there may be no accounting
database for sacct), so a sweep's truth is the git remote: a point is done when its
experiment is there, whatever SLURM still remembers.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from vaelab.core.errors import VaelabError


def _run(args: list[str]) -> str:
    if shutil.which(args[0]) is None:
        raise VaelabError(
            f"{args[0]} not found: run this on a SLURM login node (or install Debian's "
            "slurm-client and set SLURM_CONF)"
        )
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        reason = (result.stderr.strip() or result.stdout.strip()).splitlines()
        raise VaelabError(f"{' '.join(args[:2])} failed: {reason[-1] if reason else 'no output'}")
    return result.stdout


def array_spec(numbers: list[int], max_parallel: int | None) -> str:
    """`1-3,7%2`: the array indices, runs of them as ranges, at most `max_parallel` at once."""
    runs: list[list[int]] = []
    for number in sorted(numbers):
        if runs and number == runs[-1][1] + 1:
            runs[-1][1] = number
        else:
            runs.append([number, number])
    spec = ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)
    return f"{spec}%{max_parallel}" if max_parallel else spec


def submit_array(
    script: Path,
    numbers: list[int],
    *,
    job_name: str,
    log: str,
    max_parallel: int | None,
    options: list[str],
) -> str:
    """Submit `script` as one array task per number; the job id."""
    out = _run(
        [
            "sbatch",
            "--parsable",
            f"--array={array_spec(numbers, max_parallel)}",
            f"--job-name={job_name}",
            f"--output={log}",
            "--open-mode=append",  # a requeued task's attempts stay in one log
            "--requeue",  # a lost node's tasks run again, resuming their checkpoints
            *options,
            str(script),
        ]
    )
    return out.strip().split(";")[0]


def task_states(job_name: str, jobs: list[str]) -> dict[int, str]:
    """The state SLURM gives each array index of `jobs` (PENDING, RUNNING, ...), the latest
    job's where several hold one; indices SLURM no longer lists are absent."""
    if not jobs:
        return {}
    # by name, not --jobs: squeue refuses a job id it has already forgotten
    out = _run(
        ["squeue", "--noheader", "--array", "--states=all", "--format=%i %T", f"--name={job_name}"]
    )
    order = {job: i for i, job in enumerate(jobs)}
    seen: dict[int, tuple[int, str]] = {}
    for line in out.splitlines():
        task, _, state = line.strip().partition(" ")
        job, sep, index = task.partition("_")
        if not sep or not index.isdigit() or job not in order:
            continue
        number = int(index)
        if number not in seen or order[job] >= seen[number][0]:
            seen[number] = (order[job], state)
    return {number: state for number, (_, state) in seen.items()}
