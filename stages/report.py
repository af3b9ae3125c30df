"""report: a track's summary page and its per-epoch ELBO chart, from every experiment's
folder."""

from pathlib import Path
from typing import Annotated

import typer

from vaelab.core.cli import ParamsFile, TrackName, stage_app, user_errors
from vaelab.report.summary import write_report

app = stage_app(__doc__)


@app.command()
@user_errors
def main(
    experiments: Annotated[
        Path, typer.Option(help="The folder holding one folder per experiment.")
    ],
    summary: Annotated[Path, typer.Option(help="The Markdown page to write.")],
    chart: Annotated[Path, typer.Option(help="The per-epoch ELBO chart (PNG) to write.")],
    params: ParamsFile = Path("params.yaml"),
    track: TrackName = "references",
    only: list[str] = typer.Option(None, help="Report only these experiments (repeatable)."),
) -> None:
    """Write SUMMARY and CHART for every experiment of the track in params."""
    write_report(
        params=params,
        experiments=experiments,
        summary=summary,
        chart=chart,
        track=track,
        only=only,
    )


if __name__ == "__main__":
    app()
