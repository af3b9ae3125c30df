"""report: a track's summary page and its per-epoch ELBO chart, from every experiment's
folder."""

from pathlib import Path
from typing import Annotated

import typer

from vaelab.config.params import load_params
from vaelab.core.cli import ParamsFile, TrackName, stage_app, user_errors
from vaelab.core.files import write_text
from vaelab.core.progress import say
from vaelab.report.summary import draw_curves, elbo_curves, render_summary

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
    config = load_params(params)
    names = only or list(config.track(track).experiments)
    chosen = {name: config.experiment_keys(name, track) for name in names}
    curves = elbo_curves(chosen, experiments)
    draw_curves(curves, chart, track)
    page = render_summary(chosen, config.published, experiments, summary, chart, track)
    write_text(summary, page)
    say(f"report: {len(chosen)} experiments -> {summary}, {chart}")


if __name__ == "__main__":
    app()
