"""The report stage's call, `write_report`: a track's page (reports/summary.md for the
references, reports/literature.md for the literature) and its chart of every ELBO per
epoch. Each page is a module of its own."""

from __future__ import annotations

import os
from pathlib import Path

from vaelab.config.params import load_params
from vaelab.core.files import write_text
from vaelab.core.progress import say
from vaelab.report import literature_page, references_page
from vaelab.report.chart import draw_curves
from vaelab.report.run_files import elbo_curves

PAGES = {"references": references_page.render, "literature": literature_page.render}


def write_report(
    *,
    params: Path,
    experiments: Path,
    summary: Path,
    chart: Path,
    track: str,
    only: list[str] | None = None,
) -> None:
    """report: the page `summary` and the per-epoch ELBO chart `chart` of every experiment
    of `track` in params (or of `only` these), from the folder `experiments` that holds one
    folder per experiment."""
    config = load_params(params)
    names = only or list(config.track(track).experiments)
    chosen = {name: config.experiment_keys(name, track=track) for name in names}
    draw_curves(elbo_curves(chosen, experiments), chart, track=track)
    page = PAGES[track](
        chosen,
        config.published,
        folder=experiments,
        link=Path(os.path.relpath(experiments, summary.parent)),
        chart=Path(os.path.relpath(chart, summary.parent)).as_posix(),
        left_out=[name for name in config.track(track).experiments if name not in chosen],
    )
    write_text(summary, page)
    say(f"report: {len(chosen)} experiments -> {summary}, {chart}")
