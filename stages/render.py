"""render@EXP: epoch GIF, 2D manifolds, reconstructions, samples, and latent paths
(interpolations, traversals) -> OUT/ and OUT/paths/."""

from pathlib import Path
from typing import Annotated

import typer

from vaelab.core.cli import (
    DataDir,
    Experiment,
    ModelFile,
    OutDir,
    ParamsFile,
    TrackName,
    stage_app,
    user_errors,
)
from vaelab.pictures.render import render_pictures

app = stage_app(__doc__)


@app.command()
@user_errors
def main(
    name: Experiment,
    model: ModelFile,
    data: DataDir,
    latents: Annotated[Path, typer.Option(help="The latents.csv that embed wrote.")],
    frames: Annotated[Path, typer.Option(help="The folder of per-epoch grids, EPOCH.png.")],
    out: OutDir,
    params: ParamsFile = Path("params.yaml"),
    track: TrackName = "references",
) -> None:
    """Draw the pictures of experiment NAME from its model, latents and per-epoch grids."""
    render_pictures(
        name,
        params=params,
        model=model,
        data=data,
        latents=latents,
        frames=frames,
        out=out,
        track=track,
    )


if __name__ == "__main__":
    app()
