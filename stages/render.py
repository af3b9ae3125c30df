"""render@EXP: epoch GIF, 2D manifolds, reconstructions, samples, and latent paths
(interpolations, traversals) -> OUT/ and OUT/paths/."""

from pathlib import Path
from typing import Annotated

import pandas as pd
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
from vaelab.core.errors import DataError
from vaelab.core.files import atomic_dir
from vaelab.core.progress import say
from vaelab.pictures.latent_paths import interpolation_grid, traversal_grid
from vaelab.pictures.plots import (
    epoch_frames,
    epoch_gif,
    manifold,
    prior_samples,
    reconstructions,
    save_png,
)
from vaelab.runtime.trained import load_trained

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
    run = load_trained(name, params=params, model=model, data=data, track=track)
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
    with atomic_dir(out / "paths") as folder:
        paths = interpolations(run, folder)
        if means.shape[1] > 2:
            steps = run.params.render.traversal_steps
            save_png(traversal_grid(run.model, means, steps), folder / "traversals.png")
            paths.append("traversals.png")
    say(
        f"render {name}: GIF of {count} epochs, {n}x{n} manifolds, reconstructions, "
        f"{samples} samples, paths/{{{','.join(paths)}}} -> {out}"
    )


def interpolations(run, out: Path) -> list[str]:
    """Linear paths between pairs of test images, and spherical ones for a VAE, whose
    latents are Gaussian; the pairs are test images (0, 1), (2, 3), ..."""
    pairs, steps = run.params.render.interpolation_pairs, run.params.render.interpolation_steps
    images = run.test.images[: 2 * pairs]
    if len(images) < 2:
        raise DataError(f"the test split holds {len(images)} images; interpolation needs 2")
    first, second = images[0 : len(images) - 1 : 2], images[1::2]
    written = []
    for kind in ("linear", "spherical") if run.model.variational else ("linear",):
        grid = interpolation_grid(run.model, first, second, steps, spherical=kind == "spherical")
        save_png(grid, out / f"interpolations_{kind}.png")
        written.append(f"interpolations_{kind}.png")
    return written


if __name__ == "__main__":
    app()
