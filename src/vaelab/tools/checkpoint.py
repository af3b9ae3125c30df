"""Checkpoints set aside by a training: resume one under the present code.

    vaelab checkpoint adopt models/NAME/checkpoint.other-code.pt

A training whose checkpoint was written by code that has changed since moves it aside and
stops (vaelab.training.checkpoint). When the edit cannot have changed what the run computes
(a comment, a docstring, another branch), `adopt` puts it back with a record of today's
code, and the next `dvc repro` resumes it; a damaged one cannot be adopted.
"""

from __future__ import annotations

from pathlib import Path

import typer

from vaelab.core.cli import stage_app, user_errors
from vaelab.training.checkpoint import adopt

app = stage_app(__doc__)


@app.command(name="adopt")
@user_errors
def adopt_command(
    aside: Path = typer.Argument(..., help="The checkpoint set aside (NAME.other-code.pt)."),
    to: Path | None = typer.Option(None, help="Where to put it: by default NAME.pt beside it."),
) -> None:
    """Resume the checkpoint ASIDE under the present code: the next run continues it."""
    restored = adopt(aside, to)
    print(f"{aside} -> {restored}: the next run of its experiment resumes it")


@app.callback()
def _commands() -> None:
    """Checkpoints set aside by a training."""
