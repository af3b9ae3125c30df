"""Claim a GPU for this process, so that parallel workers (`dvc queue start -j N`) each
train on their own GPU with no setting per worker.

Plain files and flock, no torch: the claim is cheap and testable without a GPU.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

# The folder of per-GPU lock files, shared by every vaelab process on the machine (queue
# workers run in separate copies of the repository, so it cannot live in one of them).
GPU_LOCKS_ENV = "VAELAB_GPU_LOCKS"
_held: list[int] = []  # open lock files, kept open for the life of the process


def gpu_locks_folder() -> Path:
    folder = Path(os.environ.get(GPU_LOCKS_ENV) or Path(tempfile.gettempdir()) / "vaelab-gpus")
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        try:  # like /tmp itself: every user's runs can claim, none can remove another's lock
            folder.chmod(0o1777)
        except OSError:
            pass
    return folder


def claim_gpu(keys: list[str], folder: Path | None = None) -> tuple[int, bool]:
    """Claim the first GPU that no other process holds: (its index in `keys`, True).

    The claim is an flock on the GPU's lock file, held as long as this process lives: the
    kernel releases it when the process ends in any way, kill -9 included, so no stale
    claim outlives a stage. When every GPU is held, the processes share them: (an index
    spread by process id, False).
    """
    folder = folder or gpu_locks_folder()
    for index, key in enumerate(keys):
        fd = os.open(folder / f"gpu-{key}.lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held by another process
            os.close(fd)
            continue
        _held.append(fd)
        return index, True
    return os.getpid() % len(keys), False
