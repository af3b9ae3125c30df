"""What every stage command shares: typer setup and one-line errors."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
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
    """Turn a VaelabError (or an OSError that no writer caught: a full disk, say) into one
    line on stderr and a non-zero exit, no traceback. Under `dvc repro` the line ends
    with the command that brings back the outputs DVC removed before running the stage."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        signal.signal(signal.SIGTERM, _terminate_as_interrupt)
        signal.signal(signal.SIGHUP, _terminate_as_interrupt)  # its terminal went away
        _end_with_dvc()
        # A shell's background job inherits SIGINT ignored; Ctrl-C must still interrupt
        # cleanly however the stage was started.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            return func(*args, **kwargs)
        except VaelabError as exc:
            print(f"error: {exc}{restore_hint()}", file=sys.stderr, flush=True)
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            print(
                f"error: {where}{exc.strerror or exc}; check the disk and run it again"
                f"{restore_hint()}",
                file=sys.stderr,
                flush=True,
            )
            raise typer.Exit(VaelabError.exit_code) from None
        except KeyboardInterrupt:
            print(
                "interrupted: nothing half-written is left; an interrupted train resumes from its "
                f"last checkpoint{restore_hint()}",
                file=sys.stderr,
                flush=True,
            )
            raise typer.Exit(130) from None

    return wrapper


def _terminate_as_interrupt(signum, frame):
    # SIGTERM would otherwise end the process at once, skipping the temporary-file cleanup
    # that a KeyboardInterrupt runs on its way out.
    raise KeyboardInterrupt


# Between DVC and the stage: `sh -c` for dvc.yaml's cmd (which may exec the stage itself).
_SHELLS = frozenset({"sh", "dash", "bash", "zsh", "ksh", "busybox"})


def _end_with_dvc() -> None:
    """Under DVC, stop as Ctrl-C stops the stage once the DVC process running it has ended.

    A signal sent to the DVC process alone (a supervisor's or a scheduler's SIGTERM, a
    closed terminal's SIGHUP) ends DVC at once; the stage would run on, orphaned, and write
    outputs that no dvc.lock will record. A daemon thread waits for that DVC process (the
    nearest ancestor that is not a shell) and then sends this process SIGTERM."""
    if "DVC_STAGE" not in os.environ:
        return
    import psutil  # here, not above: only stages run by DVC watch their runner

    try:
        runner = next(p for p in psutil.Process().parents() if p.name() not in _SHELLS)
    except (StopIteration, psutil.Error):  # no such ancestor, or it is gone already
        return
    threading.Thread(target=_terminate_when_gone, args=(runner,), daemon=True).start()


def _terminate_when_gone(runner) -> None:
    import psutil

    with contextlib.suppress(psutil.Error):
        runner.wait()
    os.kill(os.getpid(), signal.SIGTERM)


def restore_hint() -> str:
    """Under `dvc repro` (which sets DVC_STAGE for the command), the end of a failed
    stage's error line: DVC deleted the stage's outputs before running it, and this says
    how to bring back the last recorded ones. Elsewhere, nothing."""
    stage = os.environ.get("DVC_STAGE")
    command = restore_command(stage, os.environ.get("DVC_ROOT")) if stage else None
    if not command:
        return ""
    return (
        f"; DVC removed the outputs of {stage} before running it: `{command}` brings back "
        "the last recorded ones"
    )


def restore_command(stage: str, root: str | None) -> str | None:
    """`dvc checkout STAGE` for its cached outputs, and `git checkout -- PATHS` for its
    `cache: false` outputs committed to git, which `dvc checkout` does not restore; None
    when dvc.lock records none of them (the stage never ran: nothing was lost)."""
    try:
        # only on this error path: DVC is slow to import, and stages never need it otherwise
        from dvc.repo import Repo

        with Repo(root) as repo:
            (collected,) = repo.stage.collect(stage)
            recorded = [out for out in collected.outs if out.hash_info]
            cached = any(out.use_cache for out in recorded)
            in_git = [
                os.path.relpath(out.fs_path)
                for out in recorded
                if not out.use_cache and repo.scm.is_tracked(out.fs_path)
            ]
    except Exception:  # a best effort on the way out: never hide the error itself
        return f"dvc checkout {stage}"
    commands = [f"dvc checkout {stage}"] if cached else []
    if in_git:
        commands.append(f"git checkout -- {' '.join(in_git)}")
    return " && ".join(commands) or None
