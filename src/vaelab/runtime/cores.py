"""Divide a CPU's cores among the vaelab processes running on it at once.

torch starts one thread per core in every process. Two such processes on one CPU (the
workers of `dvc queue start -j 2`, two clones training side by side) run twice as many
threads as cores, and every parallel region then waits for a thread that is not running:
each process ends far slower than half its speed alone. Here each process that leaves
`threads` unset claims a slot, one lock file per core, the way runtime.gpus claims a GPU;
`rebalance()`, called between steps, sets its threads to the cores divided by the slots
held. A process that starts beside another makes both drop to their share within a
second; when one ends, the other takes the cores back.

Results are exact for a given thread count. A run that shared the cores for a while is
the lone run up to float rounding in the last digits (torch's reductions split by thread);
`threads: N` in params.yaml fixes the count, and with it the run's bits.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vaelab.runtime.flocks import lock_folder, try_lock

CPU_LOCKS_ENV = "VAELAB_CPU_LOCKS"
REBALANCE_EVERY_S = 1.0  # a probe is one flock per core: cheap, but not free every step


def cpu_locks_folder() -> Path:
    return lock_folder(CPU_LOCKS_ENV, "vaelab-cpus")


@dataclass
class CoreShare:
    """This process's slot among `cores` lock files in `folder` (None: all were held)."""

    cores: int
    folder: Path
    slot: int | None = None
    threads: int = 0
    _fd: int | None = field(default=None, repr=False)
    _checked: float = float("-inf")

    def _path(self, slot: int) -> Path:
        return self.folder / f"core-{slot}.lock"

    def claim(self) -> CoreShare:
        # two passes: another process's probe holds a free slot for a moment
        for slot in [*range(self.cores)] * 2:
            fd = try_lock(self._path(slot))
            if fd is not None:
                self.slot, self._fd = slot, fd
                break
        return self

    def holders(self) -> int:
        """How many slots are held now, this process's own included."""
        held = 0
        for slot in range(self.cores):
            if slot == self.slot:
                held += 1
                continue
            fd = try_lock(self._path(slot))
            if fd is None:
                held += 1
            else:
                os.close(fd)  # free: let it go at once
        return held

    def share(self) -> int:
        """The threads this process takes now: its part of the cores, at least one."""
        if self.slot is None:  # more processes than cores: one thread each is the least harm
            return 1
        return max(1, self.cores // max(1, self.holders()))

    def rebalance(self, now: float | None = None) -> int:
        """Take this process's share of the cores, at most once a second; its threads."""
        now = time.monotonic() if now is None else now
        if now - self._checked >= REBALANCE_EVERY_S:
            self._checked = now
            threads = self.share()
            if threads != self.threads:
                torch.set_num_threads(threads)
                self.threads = threads
        return self.threads

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = self.slot = None


_share: CoreShare | None = None


def share_cores(folder: Path | None = None) -> CoreShare:
    """Claim this process's slot (once) and take its share of the cores now."""
    global _share
    if _share is None:
        # torch's own count at start: one per core, or OMP_NUM_THREADS where it is set
        cores = torch.get_num_threads()
        _share = CoreShare(cores, folder or cpu_locks_folder()).claim()
    _share.rebalance()
    return _share


def rebalance() -> None:
    """Between steps of a long loop: follow the other processes' arrivals and ends. Does
    nothing in a process that did not share its cores (a GPU run, `threads` set)."""
    if _share is not None:
        _share.rebalance()
