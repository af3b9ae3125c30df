"""Sweeps on a SLURM cluster: one array task per point of a grid, results on the remotes.

    vaelab sweep submit latent -S 'experiments.cvae.latent_dim=2,8,16,32' train@cvae \\
        evaluate@cvae --max-parallel 2 --gpus 1 --time 2:00:00
    vaelab sweep status latent     # each point: done, pending, running, failed (log lines)
    vaelab sweep resume latent     # submit again the points neither done nor queued
    vaelab sweep collect latent    # in any clone: pull them, print one exp show table

The grid is DVC's (`dvc exp run --queue -S` expands it alike); point I is the experiment
LATENT-I. The record and the logs lie in $VAELAB_SWEEPS/NAME (~/vaelab-sweeps by default),
which every node and teammate must see: docs/cluster.md.
"""

from __future__ import annotations

from pathlib import Path

import typer

from vaelab.cluster import sweep as sweeps
from vaelab.cluster.record import Slurm, load, sweeps_root
from vaelab.cluster.task import run_point
from vaelab.core.cli import stage_app, user_errors

app = stage_app(__doc__)

Root = typer.Option(None, "--root", help="The sweeps' folder: $VAELAB_SWEEPS or ~/vaelab-sweeps.")


@app.command()
@user_errors
def submit(
    name: str = typer.Argument(..., help="The sweep; its points are the experiments NAME-1..N."),
    stages: list[str] = typer.Argument(None, help="Stages to run (dvc exp run's targets): all."),
    sets: list[str] = typer.Option(
        ..., "-S", "--set-param", help="KEY=V1,V2,...; repeat for a grid."
    ),
    max_parallel: int = typer.Option(None, min=1, help="At most this many points at once."),
    gpus: int = typer.Option(0, min=0, help="GPUs per point (sbatch --gres=gpu:G)."),
    partition: str = typer.Option(None, help="SLURM partition."),
    time: str = typer.Option(
        None, help="Time limit per point (sbatch --time); it requeues itself."
    ),
    clones: Path = typer.Option(None, help="Where points clone the repo: ROOT/NAME/points."),
    git_remote: str = typer.Option("origin", help="The git remote tasks clone and push to."),
    root: Path = Root,
) -> None:
    """Submit the grid of -S values as one SLURM array task per point."""
    sweeps.submit(
        name,
        sets,
        stages or [],
        root=sweeps_root(root),
        repo=Path.cwd(),
        git_remote=git_remote,
        options=Slurm(max_parallel, gpus, partition, time),
        clones=clones,
    )


@app.command()
@user_errors
def status(name: str, root: Path = Root) -> None:
    """Each point: done (on the git remote), pending, running or failed (its log's end)."""
    sweeps.status(load(sweeps_root(root), name))


@app.command()
@user_errors
def resume(name: str, root: Path = Root) -> None:
    """Submit again the points neither done nor queued nor running."""
    sweeps.resume(load(sweeps_root(root), name))


@app.command()
@user_errors
def collect(name: str, root: Path = Root) -> None:
    """Pull the sweep's experiments into this clone and print them as one table."""
    sweeps.collect(load(sweeps_root(root), name), Path.cwd())


@app.command()
@user_errors
def task(name: str, number: int, root: Path = Root) -> None:
    """Run point NUMBER of sweep NAME (what each array task runs)."""
    run_point(load(sweeps_root(root), name), number)


@app.callback()
def _commands() -> None:
    """Sweeps on a SLURM cluster."""


if __name__ == "__main__":
    app()
