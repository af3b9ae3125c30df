"""The epoch checkpoint that lets an interrupted training resume, written atomically.

A checkpoint is used only when its fingerprint matches: the same experiment keys, the same
prepared data and the same library code. Anything else could make the resumed run differ
from an uninterrupted one, so it starts afresh instead.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from vaelab.config.experiments import ExperimentSpec
from vaelab.core.files import atomic_path
from vaelab.core.progress import say

_SOURCE_DIR = Path(__file__).parents[1]  # the whole library: any of it may change a run


def fingerprint(spec: ExperimentSpec, meta: dict, limit: int | None) -> str:
    """Changes whenever a resumed run could differ from an uninterrupted one. The epoch
    ceiling is left out: no epoch depends on how many come after it, so a run resumed with
    more epochs (or ended at the epoch it reached) is the run asked for that many."""
    keys = {key: value for key, value in spec.flat().items() if key != "epochs"}
    digest = hashlib.sha256(json.dumps([keys, meta, limit], sort_keys=True).encode())
    for source in sorted(_SOURCE_DIR.rglob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()


class Checkpoint:
    def __init__(self, path: Path, key: str):
        self.path = Path(path)
        self.key = key
        self.epoch: int | None = None  # the epoch of the checkpoint on disk, once known

    def save(self, state: dict) -> None:
        with atomic_path(self.path) as tmp, open(tmp, "wb") as file:
            # a file object, not a path: torch's own writer turns a full disk into a
            # RuntimeError without errno, Python's raises the OSError that names it
            torch.save({"fingerprint": self.key, **state}, file)
        self.epoch = state["epoch"]

    def kept(self) -> str:
        """What a failed run leaves to resume from, for its error line."""
        if self.epoch is None:
            return "no checkpoint kept: the next run starts afresh"
        return (
            f"the checkpoint after epoch {self.epoch} ({self.path}) is kept: "
            "the next run resumes from it"
        )

    def load(self) -> dict | None:
        """The saved state, or None when there is none we may use."""
        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, weights_only=True, map_location="cpu")
        except Exception as exc:  # a damaged checkpoint is never worth a crash: start over
            say(f"  checkpoint {self.path} unreadable ({type(exc).__name__}); starting afresh")
            return None
        if state.get("fingerprint") != self.key:
            say(f"  checkpoint {self.path} is from other params, data or code; starting afresh")
            return None
        self.epoch = state["epoch"]
        return state

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
