"""embed@EXP: encode the test split -> OUT/latents.csv and a labelled scatter."""

from pathlib import Path

from vaelab.core.cli import (
    DataDir,
    Experiment,
    Limit,
    ModelFile,
    OutDir,
    ParamsFile,
    TrackName,
    stage_app,
    user_errors,
)
from vaelab.core.files import atomic_path
from vaelab.core.progress import say
from vaelab.models.inference import posterior_means
from vaelab.pictures.plots import latents_table, scatter
from vaelab.runtime.trained import load_trained

app = stage_app(__doc__)


@app.command()
@user_errors
def main(
    name: Experiment,
    model: ModelFile,
    data: DataDir,
    out: OutDir,
    params: ParamsFile = Path("params.yaml"),
    track: TrackName = "references",
    limit: Limit = None,
) -> None:
    """Write the posterior mean and log-variance of every test image, and their scatter."""
    run = load_trained(name, params=params, model=model, data=data, track=track, limit=limit)
    info = run.saved.experiment
    means, logvars = posterior_means(run.model, run.test.images.to(run.device))
    table = latents_table(
        means.cpu().numpy(),
        None if logvars is None else logvars.cpu().numpy(),
        run.test.labels.numpy(),
        info["classes"],
    )
    with atomic_path(out / "latents.csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    how = scatter(
        table,
        info["classes"],
        f"{name} ({info['model']}, {info['dataset']} test set)",
        out / "latent_scatter.png",
    )
    say(f"embed {name}: {len(table)} test images, {means.shape[1]}-D latents; scatter: {how}")


if __name__ == "__main__":
    app()
