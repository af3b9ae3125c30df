"""evaluate@EXP: every estimator on the full test split -> the experiment's metrics.json."""

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
from vaelab.evaluation.estimators import evaluate_experiment

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
    evaluate_experiment(
        name, params=params, model=model, data=data, out=out, track=track, limit=limit
    )


if __name__ == "__main__":
    app()
