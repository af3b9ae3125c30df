"""report: REPORTS/summary.md and the test-ELBO chart, from every experiment's folder."""

from pathlib import Path
from typing import Annotated

import typer

from vaelab.atomic import write_text
from vaelab.cli import OutDir, ParamsFile, stage_app, user_errors
from vaelab.params import load_params
from vaelab.progress import say
from vaelab.report import draw_curves, elbo_curves, render_summary

app = stage_app(__doc__)
CHART = "test_elbo_per_epoch.png"


@app.command()
@user_errors
def main(
    experiments: Annotated[
        Path, typer.Option(help="The folder holding one folder per experiment.")
    ],
    out: OutDir,
    params: ParamsFile = Path("params.yaml"),
    only: list[str] = typer.Option(None, help="Report only these experiments (repeatable)."),
) -> None:
    """Write OUT/summary.md and OUT/test_elbo_per_epoch.png for every experiment in params."""
    config = load_params(params)
    names = only or list(config.experiments)
    chosen = {name: config.experiment_keys(name) for name in names}
    curves = elbo_curves(chosen, experiments)
    draw_curves(curves, out / CHART)
    write_text(
        out / "summary.md", render_summary(chosen, config.references, experiments, out, CHART)
    )
    say(f"report: {len(chosen)} experiments -> {out / 'summary.md'}, {out / CHART}")


if __name__ == "__main__":
    app()
