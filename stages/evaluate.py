"""evaluate@EXP: every estimator on the full test split -> reports/EXP/metrics.json."""

import json
from pathlib import Path

import typer

from vaelab.atomic import write_text
from vaelab.cli import stage_app, user_errors
from vaelab.device import describe, resolve_device
from vaelab.evaluation import evaluate
from vaelab.params import load_params
from vaelab.prepare import load_split
from vaelab.progress import bar, say
from vaelab.training import load_model

app = stage_app(__doc__)


@app.command()
@user_errors
def main(
    name: str = typer.Argument(..., help="An experiment: a key of experiments in params."),
    params: Path = typer.Option(Path("params.yaml"), help="The params file."),
    models: Path = typer.Option(Path("models"), help="Reads MODELS/EXP/model.pt."),
    reports: Path = typer.Option(Path("reports"), help="Writes REPORTS/EXP/metrics.json."),
    limit: int = typer.Option(None, help="Use only the first LIMIT test images."),
) -> None:
    """Evaluate experiment NAME's model with the MC ELBO, analytic ELBO and IWAE bound."""
    config = load_params(params)
    config.experiment(name)
    device = resolve_device(config.device, config.threads)
    model, model_config = load_model(models / name / "model.pt", device)
    test = load_split(Path("data/prepared") / model_config["data"], "test", limit)
    k = config.evaluate.iwae_samples
    say(f"evaluate {name}: {len(test)} test images, IWAE k={k}, on {describe(device)}")
    with bar(total=len(test), desc=f"{name} IWAE k={k}", unit="img") as progress:
        metrics = evaluate(
            model,
            test.images.to(device),
            k,
            config.evaluate.batch_size,
            config.evaluate.seed,
            progress,
        )
    write_text(reports / name / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    say(f"evaluate {name}: " + json.dumps(metrics))


if __name__ == "__main__":
    app()
