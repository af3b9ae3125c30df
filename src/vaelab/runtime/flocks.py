"""Claims that every vaelab process on a machine sees: lock files in one shared folder.

A claim is an exclusive, non-blocking flock, held as long as its process lives: the kernel
drops it when the process ends in any way, kill -9 included, so no stale claim outlives a
stage. Plain files, no torch: cheap, and testable without the hardware they stand for.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path


def lock_folder(env: str, name: str) -> Path:
    """The folder named by the environment variable `env`, else $TMPDIR/`name`. Queue
    workers run in separate copies of the repository, so it cannot live in one of them."""
    folder = Path(os.environ.get(env) or Path(tempfile.gettempdir()) / name)
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        try:  # like /tmp itself: every user's runs can claim, none can remove another's lock
            folder.chmod(0o1777)
        except OSError:
            pass
    return folder


def try_lock(path: Path) -> int | None:
    """An open descriptor of `path` holding its flock, or None when another process holds
    it (another open file of this process counts as another holder)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd
