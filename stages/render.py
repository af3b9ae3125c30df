"""render@EXP: epoch GIF, 2D manifolds, reconstructions and samples -> OUT/."""

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from vaelab.cli import (
    DataDir,
    Experiment,
    ModelFile,
    OutDir,
    ParamsFile,
    TrackName,
    stage_app,
    user_errors,
)
from vaelab.errors import DataError
from vaelab.progress import say
from vaelab.trained import load_trained
from vaelab.visual import (
    epoch_frames,
    epoch_gif,
    manifold,
    prior_samples,
    reconstructions,
    save_png,
)

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
    run = load_trained(name, params, model, data, 16, track)
    pictures = epoch_frames(frames)
    epochs = len(run.saved.history)
    if len(pictures) != epochs:
        raise DataError(
            f"{frames} holds {len(pictures)} epoch images, the model trained {epochs} epochs; "
            f"rerun train@{name}"
        )
    try:
        means = pd.read_csv(latents).filter(like="z_mean_").to_numpy()
    except (OSError, ValueError) as exc:
        raise DataError(f"{latents} is missing or unreadable ({exc}); rerun embed@{name}") from None
    count = epoch_gif(pictures, out / "epochs.gif")
    n = run.params.render.manifold_size
    for coordinates in ("quantiles", "linspace"):
        save_png(manifold(run.model, means, n, coordinates), out / f"manifold_{coordinates}.png")
    save_png(reconstructions(run.model, run.test.images), out / "reconstructions.png")
    samples = run.params.render.samples
    save_png(prior_samples(run.model, means, samples, seed=0), out / "samples.png")
    say(
        f"render {name}: GIF of {count} epochs, {n}x{n} manifolds, reconstructions, "
        f"{samples} samples -> {out}"
    )


if __name__ == "__main__":
    app()
