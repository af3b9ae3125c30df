"""What every stage command shares: typer setup and one-line errors."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

import typer

from vaelab.errors import VaelabError


def stage_app(help_text: str) -> typer.Typer:
    return typer.Typer(
        help=help_text, add_completion=False, pretty_exceptions_enable=False, no_args_is_help=False
    )


def user_errors(func: Callable) -> Callable:
    """Turn a VaelabError into one line on stderr and a non-zero exit, no traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except VaelabError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            print(
                "interrupted: outputs left as they were before this run",
                file=sys.stderr,
                flush=True,
            )
            raise typer.Exit(130) from None

    return wrapper
