"""evaluate@EXP: every estimator on the full test split -> the experiment's metrics.json."""

import json
from pathlib import Path
from typing import Annotated

import typer

from vaelab.atomic import write_text
from vaelab.cli import DataDir, Experiment, Limit, ModelFile, ParamsFile, stage_app, user_errors
from vaelab.device import describe
from vaelab.evaluation import evaluate
from vaelab.progress import bar, say
from vaelab.trained import load_trained

app = stage_app(__doc__)


@app.command()
@user_errors
def main(
    name: Experiment,
    model: ModelFile,
    data: DataDir,
    out: Annotated[Path, typer.Option(help="The metrics.json to write.")],
    params: ParamsFile = Path("params.yaml"),
    limit: Limit = None,
) -> None:
    """Evaluate experiment NAME's model with the MC ELBO, analytic ELBO and IWAE bound."""
    run = load_trained(name, params, model, data, limit)
    settings = run.params.evaluate
    k = settings.iwae_samples
    say(f"evaluate {name}: {len(run.test)} test images, IWAE k={k}, on {describe(run.device)}")
    with bar(total=len(run.test), desc=f"{name} IWAE k={k}", unit="img") as progress:
        metrics = evaluate(
            run.model,
            run.test.images.to(run.device),
            k,
            settings.batch_size,
            settings.seed,
            progress,
        )
    write_text(out, json.dumps(metrics, indent=2) + "\n")
    say(f"evaluate {name}: " + json.dumps(metrics))


if __name__ == "__main__":
    app()
