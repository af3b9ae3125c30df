"""Claim a GPU for this process, so that parallel workers (`dvc queue start -j N`) each
train on their own GPU with no setting per worker.
"""

from __future__ import annotations

import os
from pathlib import Path

from vaelab.runtime.flocks import lock_folder, try_lock

GPU_LOCKS_ENV = "VAELAB_GPU_LOCKS"  # where the per-GPU lock files lie, if not in $TMPDIR
_held: list[int] = []  # open lock files, kept open for the life of the process


def gpu_locks_folder() -> Path:
    return lock_folder(GPU_LOCKS_ENV, "vaelab-gpus")


def claim_gpu(keys: list[str], folder: Path | None = None) -> tuple[int, bool]:
    """Claim the first GPU that no other process holds: (its index in `keys`, True), held
    as long as this process lives (vaelab.runtime.flocks). When every GPU is held, the
    processes share them: (an index spread by process id, False).
    """
    folder = folder or gpu_locks_folder()
    for index, key in enumerate(keys):
        fd = try_lock(folder / f"gpu-{key}.lock")
        if fd is not None:
            _held.append(fd)
            return index, True
    return os.getpid() % len(keys), False
