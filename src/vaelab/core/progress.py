"""Progress bars on a terminal, plain lines everywhere else (CI, logs, dvc queue)."""

from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm


def interactive() -> bool:
    return sys.stderr.isatty() and os.environ.get("CI", "").lower() not in ("1", "true")


def bar(total: int | None = None, desc: str = "", unit: str = "it", **kwargs) -> tqdm:
    """A tqdm bar that shows only on a terminal; elsewhere it is a silent counter."""
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        disable=not interactive(),
        leave=False,
        dynamic_ncols=True,
        **kwargs,
    )


def say(message: str) -> None:
    """One plain status line, flushed at once so logs read in order."""
    print(message, file=sys.stderr, flush=True)
