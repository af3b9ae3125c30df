"""What every stage command shares: typer setup and one-line errors."""

from __future__ import annotations

import functools
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vaelab.errors import VaelabError

if TYPE_CHECKING:
    import torch

    from vaelab.models import LatentModel
    from vaelab.params import Params
    from vaelab.prepare import Split

# The arguments the stage commands share.
Experiment = Annotated[str, typer.Argument(help="An experiment: a key of experiments in params.")]
ParamsFile = Annotated[Path, typer.Option(help="The params file.")]
ModelsDir = Annotated[Path, typer.Option(help="Folder holding MODELS/EXP/model.pt.")]
ReportsDir = Annotated[Path, typer.Option(help="Folder holding REPORTS/EXP/.")]
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


@dataclass
class Trained:
    """What the stages after training start from: params, device, model and test split."""

    config: Params
    device: torch.device
    model: LatentModel
    model_config: dict
    test: Split


def load_trained(name: str, params: Path, models: Path, limit: int | None = None) -> Trained:
    """Validate params, pick the device, load experiment NAME's model and its test split."""
    from vaelab.device import resolve_device
    from vaelab.params import load_params
    from vaelab.prepare import load_split
    from vaelab.training import load_model

    config = load_params(params)
    config.experiment(name)
    device = resolve_device(config.device, config.threads)
    model, model_config = load_model(models / name / "model.pt", device)
    test = load_split(Path("data/prepared") / model_config["data"], "test", limit)
    return Trained(config, device, model, model_config, test)
