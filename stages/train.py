"""train@EXP: train one experiment; log per-epoch metrics and reconstructions with dvclive.

With `processes: N` in the experiment, or when started by `torchrun --nproc-per-node N`,
the training is data-parallel over N ranks (vaelab.training.ddp) and rank 0 alone writes.
"""

from pathlib import Path
from typing import Annotated

import typer

from vaelab.core.cli import (
    DataDir,
    Experiment,
    Limit,
    OutDir,
    ParamsFile,
    TrackName,
    stage_app,
    user_errors,
)
from vaelab.training.experiment import train_experiment

app = stage_app(__doc__)


@app.command()
@user_errors
def main(
    name: Experiment,
    data: DataDir,
    out: OutDir,
    live: Annotated[Path, typer.Option(help="The dvclive folder for per-epoch logs.")],
    params: ParamsFile = Path("params.yaml"),
    track: TrackName = "references",
    limit: Limit = None,
) -> None:
    """Train experiment NAME on DATA into OUT/model.pt, resuming an interrupted run."""
    train_experiment(
        name=name, params=params, data=data, out=out, live=live, track=track, limit=limit
    )


if __name__ == "__main__":
    app()
