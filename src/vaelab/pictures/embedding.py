"""embed@EXP: an experiment's test split encoded, as a table of posterior means and
log-variances (latents.csv) and their scatter coloured by class."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from vaelab.core.files import atomic_path
from vaelab.core.progress import say
from vaelab.models.inference import posterior_means
from vaelab.pictures.plots import latents_table, scatter
from vaelab.runtime.trained import load_trained


def embed_test_split(
    name: str,
    *,
    params: Path,
    model: Path,
    data: Path,
    out: Path,
    track: str,
    limit: int | None = None,
) -> pd.DataFrame:
    """Experiment NAME's (of `track`) posterior mean and log-variance of every test image of
    `data` -> OUT/latents.csv, and their scatter -> OUT/latent_scatter.png; returns the table."""
    run = load_trained(name, params=params, model=model, data=data, track=track, limit=limit)
    info = run.saved.experiment
    means, logvars = posterior_means(
        run.model, run.test.images.to(run.device), labels=run.test.labels
    )
    table = latents_table(
        means.cpu().numpy(),
        None if logvars is None else logvars.cpu().numpy(),
        run.test.labels.numpy(),
        info["classes"],
    )
    with atomic_path(out / "latents.csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    # the model is named only where the experiment's name does not already say it
    model = "" if info["model"] == name else f"{info['model']}, "
    how = scatter(
        table,
        info["classes"],
        f"{name} ({model}{info['dataset']} test set)",
        out / "latent_scatter.png",
    )
    say(f"embed {name}: {len(table)} test images, {means.shape[1]}-D latents; scatter: {how}")
    return table
