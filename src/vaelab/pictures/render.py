"""render@EXP: every picture of a trained experiment but its scatter: the epoch GIF, the
2D manifolds, reconstructions, samples, and latent paths (interpolations, traversals)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from vaelab.core.errors import DataError
from vaelab.core.files import atomic_dir
from vaelab.core.progress import say
from vaelab.pictures.latent_paths import interpolation_grid, traversal_grid
from vaelab.pictures.plots import (
    class_samples,
    epoch_frames,
    epoch_gif,
    manifold,
    prior_samples,
    reconstructions,
    save_png,
)
from vaelab.runtime.trained import Trained, load_trained


def render_pictures(
    name: str,
    *,
    params: Path,
    model: Path,
    data: Path,
    latents: Path,
    frames: Path,
    out: Path,
    track: str,
) -> None:
    """Experiment NAME's (of `track`) pictures from its model, the test split of `data`, the
    latents.csv that embed wrote and the folder of per-epoch grids EPOCH.png -> OUT/ and
    OUT/paths/, as params' `render` section says.

    A class-conditional model's samples are a grid of classes (rows) by codes (columns);
    its manifolds and traversals decode every code given the first class (one digit's
    space of styles), and its reconstructions and paths given the test images' labels."""
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
    labels = run.test.labels.to(run.device)
    one_class = run.model.given(torch.zeros(1, dtype=labels.dtype, device=run.device))
    for coordinates in ("quantiles", "linspace"):
        save_png(manifold(one_class, means, n, coordinates), out / f"manifold_{coordinates}.png")
    shown = run.model.given(labels[:16])  # the 16 images `reconstructions` shows
    save_png(reconstructions(shown, run.test.images), out / "reconstructions.png")
    samples = run.params.render.samples
    if run.model.conditional:
        classes = len(run.saved.experiment["classes"])
        picture = class_samples(run.model, means, classes, samples, seed=0)
    else:
        picture = prior_samples(run.model, means, samples, seed=0)
    save_png(picture, out / "samples.png")
    with atomic_dir(out / "paths") as folder:
        paths = interpolations(run, folder)
        if means.shape[1] > 2:
            steps = run.params.render.traversal_steps
            save_png(traversal_grid(one_class, means, steps), folder / "traversals.png")
            paths.append("traversals.png")
    say(
        f"render {name}: GIF of {count} epochs, {n}x{n} manifolds, reconstructions, "
        f"{samples} samples, paths/{{{','.join(paths)}}} -> {out}"
    )


def interpolations(run: Trained, out: Path) -> list[str]:
    """Linear paths between pairs of test images, and spherical ones for a VAE, whose
    latents are Gaussian; the pairs are test images (0, 1), (2, 3), ..."""
    pairs, steps = run.params.render.interpolation_pairs, run.params.render.interpolation_steps
    images = run.test.images[: 2 * pairs]
    if len(images) < 2:
        raise DataError(f"the test split holds {len(images)} images; interpolation needs 2")
    first, second = images[0 : len(images) - 1 : 2], images[1::2]
    labels = run.test.labels[: len(images)]
    pair_labels = (labels[0 : len(images) - 1 : 2], labels[1::2]) if run.model.conditional else None
    written = []
    for kind in ("linear", "spherical") if run.model.has_prior else ("linear",):
        grid = interpolation_grid(
            run.model,
            first,
            second,
            steps=steps,
            spherical=kind == "spherical",
            labels=pair_labels,
        )
        save_png(grid, out / f"interpolations_{kind}.png")
        written.append(f"interpolations_{kind}.png")
    return written
