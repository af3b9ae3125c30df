"""samples@EXP: decode samples from each sampler and score them with the classifier of the
experiment's data -> OUT/sample_quality.json and 64 of each, OUT/sampler_grids/SAMPLER.png."""

from pathlib import Path
from typing import Annotated

import typer

from vaelab.core.cli import (
    DataDir,
    Experiment,
    Limit,
    ModelFile,
    OutDir,
    ParamsFile,
    stage_app,
    user_errors,
)
from vaelab.evaluation.sample_quality import score_experiment

app = stage_app(__doc__)


@app.command()
@user_errors
def main(
    name: Experiment,
    model: ModelFile,
    data: DataDir,
    classifier: Annotated[Path, typer.Option(help="The classifier.pt of the experiment's data.")],
    out: OutDir,
    params: ParamsFile = Path("params.yaml"),
    limit: Limit = None,
) -> None:
    """Score experiment NAME's samples from every sampler against its test split."""
    score_experiment(
        name,
        params=params,
        model=model,
        data=data,
        classifier=classifier,
        out=out,
        limit=limit,
    )


if __name__ == "__main__":
    app()
