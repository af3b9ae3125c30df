"""evaluate@EXP: every estimator on the full test split -> reports/EXP/metrics.json."""

import json
from pathlib import Path

from vaelab.atomic import write_text
from vaelab.cli import (
    Experiment,
    Limit,
    ModelsDir,
    ParamsFile,
    ReportsDir,
    load_trained,
    stage_app,
    user_errors,
)
from vaelab.device import describe
from vaelab.evaluation import evaluate
from vaelab.progress import bar, say

app = stage_app(__doc__)


@app.command()
@user_errors
def main(
    name: Experiment,
    params: ParamsFile = Path("params.yaml"),
    models: ModelsDir = Path("models"),
    reports: ReportsDir = Path("reports"),
    limit: Limit = None,
) -> None:
    """Evaluate experiment NAME's model with the MC ELBO, analytic ELBO and IWAE bound."""
    run = load_trained(name, params, models, limit)
    settings = run.config.evaluate
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
    write_text(reports / name / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    say(f"evaluate {name}: " + json.dumps(metrics))


if __name__ == "__main__":
    app()
