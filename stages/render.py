"""render@EXP: epoch GIF, 2D manifolds, reconstructions and samples -> reports/EXP/."""

from pathlib import Path

import pandas as pd
import typer

from vaelab.cli import stage_app, user_errors
from vaelab.device import resolve_device
from vaelab.errors import DataError
from vaelab.params import load_params
from vaelab.prepare import load_split
from vaelab.progress import say
from vaelab.training import load_model
from vaelab.visual import epoch_gif, manifold, prior_samples, reconstructions, save_png

app = stage_app(__doc__)


@app.command()
@user_errors
def main(
    name: str = typer.Argument(..., help="An experiment: a key of experiments in params."),
    params: Path = typer.Option(Path("params.yaml"), help="The params file."),
    models: Path = typer.Option(Path("models"), help="Reads MODELS/EXP/model.pt."),
    reports: Path = typer.Option(Path("reports"), help="Reads and writes REPORTS/EXP/."),
) -> None:
    """Draw the pictures of experiment NAME from its model, latents and per-epoch grids."""
    config = load_params(params)
    config.experiment(name)
    device = resolve_device(config.device, config.threads)
    model, model_config = load_model(models / name / "model.pt", device)
    out = reports / name
    frames = sorted((out / "train" / "plots" / "images").glob("epoch_*.png"))
    if len(frames) != len(model_config["history"]):
        raise DataError(
            f"{out / 'train/plots/images'} holds {len(frames)} epoch images, the "
            f"model trained {len(model_config['history'])} epochs; rerun train@{name}"
        )
    try:
        means = pd.read_csv(out / "latents.csv").filter(like="z_mean_").to_numpy()
    except (OSError, ValueError) as exc:
        raise DataError(
            f"{out / 'latents.csv'} is missing or unreadable ({exc}); rerun embed@{name}"
        ) from None
    count = epoch_gif(frames, out / "epochs.gif")
    n = config.render.manifold_size
    for coordinates in ("quantiles", "linspace"):
        save_png(manifold(model, means, n, coordinates), out / f"manifold_{coordinates}.png")
    test = load_split(Path("data/prepared") / model_config["data"], "test", limit=16)
    save_png(reconstructions(model, test.images), out / "reconstructions.png")
    save_png(prior_samples(model, means, config.render.samples, seed=0), out / "samples.png")
    say(
        f"render {name}: GIF of {count} epochs, {n}x{n} manifolds, reconstructions, "
        f"{config.render.samples} samples -> {out}"
    )


if __name__ == "__main__":
    app()
