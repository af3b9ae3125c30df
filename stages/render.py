"""render@EXP: epoch GIF, 2D manifolds, reconstructions and samples -> reports/EXP/."""

from pathlib import Path

import pandas as pd

from vaelab.cli import (
    Experiment,
    ModelsDir,
    ParamsFile,
    ReportsDir,
    load_trained,
    stage_app,
    user_errors,
)
from vaelab.errors import DataError
from vaelab.progress import say
from vaelab.visual import epoch_gif, manifold, prior_samples, reconstructions, save_png

app = stage_app(__doc__)


@app.command()
@user_errors
def main(
    name: Experiment,
    params: ParamsFile = Path("params.yaml"),
    models: ModelsDir = Path("models"),
    reports: ReportsDir = Path("reports"),
) -> None:
    """Draw the pictures of experiment NAME from its model, latents and per-epoch grids."""
    run = load_trained(name, params, models, limit=16)
    out = reports / name
    frames = sorted((out / "train" / "plots" / "images").glob("epoch_*.png"))
    epochs = len(run.model_config["history"])
    if len(frames) != epochs:
        raise DataError(
            f"{out / 'train/plots/images'} holds {len(frames)} epoch images, the "
            f"model trained {epochs} epochs; rerun train@{name}"
        )
    try:
        means = pd.read_csv(out / "latents.csv").filter(like="z_mean_").to_numpy()
    except (OSError, ValueError) as exc:
        raise DataError(
            f"{out / 'latents.csv'} is missing or unreadable ({exc}); rerun embed@{name}"
        ) from None
    count = epoch_gif(frames, out / "epochs.gif")
    n = run.config.render.manifold_size
    for coordinates in ("quantiles", "linspace"):
        save_png(manifold(run.model, means, n, coordinates), out / f"manifold_{coordinates}.png")
    save_png(reconstructions(run.model, run.test.images), out / "reconstructions.png")
    save_png(
        prior_samples(run.model, means, run.config.render.samples, seed=0), out / "samples.png"
    )
    say(
        f"render {name}: GIF of {count} epochs, {n}x{n} manifolds, reconstructions, "
        f"{run.config.render.samples} samples -> {out}"
    )


if __name__ == "__main__":
    app()
