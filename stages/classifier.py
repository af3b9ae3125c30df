"""classifier@NAME: train the small CNN on prepared set NAME -> OUT (classifier.pt) and
its test accuracy -> METRICS."""

from pathlib import Path
from typing import Annotated

import typer

from vaelab.core.cli import DataDir, Limit, ParamsFile, stage_app, user_errors
from vaelab.evaluation.classifier import train_and_save_classifier

app = stage_app(__doc__)


@app.command()
@user_errors
def main(
    name: Annotated[str, typer.Argument(help="A prepared set: a key of data.prepared.")],
    data: DataDir,
    out: Annotated[Path, typer.Option(help="The classifier.pt to write.")],
    metrics: Annotated[Path, typer.Option(help="The metrics.json to write.")],
    params: ParamsFile = Path("params.yaml"),
    limit: Limit = None,
) -> None:
    """Train the classifier of prepared set NAME and measure its test accuracy."""
    train_and_save_classifier(name, params=params, data=data, out=out, metrics=metrics, limit=limit)


if __name__ == "__main__":
    app()
