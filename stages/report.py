"""report: reports/summary.md, every experiment beside the seeds' published figures."""

from pathlib import Path

import typer

from vaelab.atomic import write_text
from vaelab.cli import ParamsFile, stage_app, user_errors
from vaelab.params import as_dict, load_params
from vaelab.progress import say
from vaelab.report import render_summary

app = stage_app(__doc__)


@app.command()
@user_errors
def main(
    params: ParamsFile = Path("params.yaml"),
    reports: Path = typer.Option(Path("reports"), help="Reads REPORTS/EXP/, writes summary.md."),
    only: list[str] = typer.Option(None, help="Report only these experiments (repeatable)."),
) -> None:
    """Write reports/summary.md from every experiment's metrics and pictures."""
    config = load_params(params)
    names = only or list(config.experiments)
    experiments = {}
    for name in names:
        spec = config.experiment(name)
        experiments[name] = {**as_dict(spec), "dataset": config.prepared(spec.data).dataset}
    write_text(reports / "summary.md", render_summary(experiments, reports))
    say(f"report: {len(experiments)} experiments -> {reports / 'summary.md'}")


if __name__ == "__main__":
    app()
