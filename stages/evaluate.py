"""evaluate@EXP: every estimator on the full test split -> the experiment's metrics.json."""

import json
from pathlib import Path
from typing import Annotated

import typer

from vaelab.core.cli import (
    DataDir,
    Experiment,
    Limit,
    ModelFile,
    ParamsFile,
    TrackName,
    stage_app,
    user_errors,
)
from vaelab.core.files import write_text
from vaelab.core.progress import bar, say
from vaelab.evaluation.estimators import evaluate
from vaelab.runtime.device import describe
from vaelab.runtime.trained import load_trained

app = stage_app(__doc__)


@app.command()
@user_errors
def main(
    name: Experiment,
    model: ModelFile,
    data: DataDir,
    out: Annotated[Path, typer.Option(help="The metrics.json to write.")],
    params: ParamsFile = Path("params.yaml"),
    track: TrackName = "references",
    limit: Limit = None,
) -> None:
    """Evaluate experiment NAME's model with the MC ELBO, analytic ELBO and IWAE bound."""
    run = load_trained(name, params, model, data, limit, track)
    settings = run.params.track(track).evaluate
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
    trained = run.saved.experiment
    metrics["protocol"] = {
        "binarization": trained.get("binarize", "unknown"),
        "epochs_run": trained.get("epochs_run", len(run.saved.history)),
        "kept_epoch": trained.get("kept_epoch", len(run.saved.history)),
        "model_selection": "best validation ELBO" if trained.get("validation") else "last epoch",
    }
    write_text(out, json.dumps(metrics, indent=2) + "\n")
    say(f"evaluate {name}: " + json.dumps(metrics))


if __name__ == "__main__":
    app()
