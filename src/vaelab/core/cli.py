"""What every stage command shares: typer setup and one-line errors."""

from __future__ import annotations

import functools
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from vaelab.core.errors import VaelabError

# The arguments the stage commands share. Paths have no defaults: dvc.yaml's `cmd` names
# every file a stage reads or writes, beside its deps and outs.
Experiment = Annotated[str, typer.Argument(help="An experiment: a key of experiments in params.")]
ParamsFile = Annotated[Path, typer.Option(help="The params file.")]
DataDir = Annotated[Path, typer.Option("--data", help="The prepared data folder to read.")]
ModelFile = Annotated[Path, typer.Option("--model", help="The trained model.pt to read.")]
OutDir = Annotated[Path, typer.Option("--out", help="The folder to write into.")]
TrackName = Annotated[
    str, typer.Option("--track", help="references (params' experiments) or literature.")
]
Limit = Annotated[int | None, typer.Option(help="Use only the first LIMIT images of each split.")]


def stage_app(help_text: str) -> typer.Typer:
    return typer.Typer(
        help=help_text, add_completion=False, pretty_exceptions_enable=False, no_args_is_help=False
    )


def user_errors(func: Callable) -> Callable:
    """Turn a VaelabError into one line on stderr and a non-zero exit, no traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        signal.signal(signal.SIGTERM, _terminate_as_interrupt)
        # A shell's background job inherits SIGINT ignored; Ctrl-C must still interrupt
        # cleanly however the stage was started.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            return func(*args, **kwargs)
        except VaelabError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            print(
                "interrupted: nothing half-written is left; an interrupted train resumes from its "
                "last checkpoint",
                file=sys.stderr,
                flush=True,
            )
            raise typer.Exit(130) from None

    return wrapper


def _terminate_as_interrupt(signum, frame):
    # SIGTERM would otherwise end the process at once, skipping the temporary-file cleanup
    # that a KeyboardInterrupt runs on its way out.
    raise KeyboardInterrupt
