"""embed@EXP: encode the test split -> reports/EXP/latents.csv and a labelled scatter."""

from pathlib import Path

import typer

from vaelab.atomic import atomic_path
from vaelab.cli import stage_app, user_errors
from vaelab.device import resolve_device
from vaelab.evaluation import posterior_means
from vaelab.params import load_params
from vaelab.prepare import load_split
from vaelab.progress import say
from vaelab.training import load_model
from vaelab.visual import latents_table, scatter

app = stage_app(__doc__)


@app.command()
@user_errors
def main(
    name: str = typer.Argument(..., help="An experiment: a key of experiments in params."),
    params: Path = typer.Option(Path("params.yaml"), help="The params file."),
    models: Path = typer.Option(Path("models"), help="Reads MODELS/EXP/model.pt."),
    reports: Path = typer.Option(Path("reports"), help="Writes REPORTS/EXP/latents.csv, .png."),
    limit: int = typer.Option(None, help="Use only the first LIMIT test images."),
) -> None:
    """Write the posterior mean and log-variance of every test image, and their scatter."""
    config = load_params(params)
    config.experiment(name)
    device = resolve_device(config.device, config.threads)
    model, model_config = load_model(models / name / "model.pt", device)
    test = load_split(Path("data/prepared") / model_config["data"], "test", limit)
    means, logvars = posterior_means(model, test.images.to(device))
    table = latents_table(
        means.cpu().numpy(),
        None if logvars is None else logvars.cpu().numpy(),
        test.labels.numpy(),
        model_config["classes"],
    )
    with atomic_path(reports / name / "latents.csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    how = scatter(
        table,
        model_config["classes"],
        f"{name} ({model_config['model']}, {model_config['dataset']} test set)",
        reports / name / "latent_scatter.png",
    )
    say(f"embed {name}: {len(table)} test images, {means.shape[1]}-D latents; scatter: {how}")


if __name__ == "__main__":
    app()
