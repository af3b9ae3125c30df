"""The epoch checkpoint that lets an interrupted training resume, written atomically.

A checkpoint is used only when the resumed run would be the uninterrupted one: the same
experiment keys and prepared data (its fingerprint), and byte for byte the same library
files among those the run had imported (its sources). Anything else starts afresh. Files
the run never imported may change: editing another model's file, or the report, does not
throw away a training that has run for days.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch

from vaelab.config.experiments import ExperimentSpec
from vaelab.core.errors import DataError
from vaelab.core.files import atomic_path
from vaelab.core.progress import say
from vaelab.core.tensor_files import load_tensors

_LIBRARY = Path(__file__).resolve().parents[1]  # where the imported modules' files lie
_SOURCE_DIR = _LIBRARY  # where their bytes are read: a test points it at a copy


def fingerprint(spec: ExperimentSpec, meta: dict, limit: int | None) -> str:
    """Changes with the params and data a resumed run would differ under. The epoch ceiling
    is left out: no epoch depends on how many come after it, so a run resumed with more
    epochs (or ended at the epoch it reached) is the run asked for that many."""
    keys = {key: value for key, value in spec.flat().items() if key != "epochs"}
    return hashlib.sha256(json.dumps([keys, meta, limit], sort_keys=True).encode()).hexdigest()


def loaded_sources(known: dict[str, str] | None = None) -> dict[str, str]:
    """The sha256 of each library file imported by now, by its path in the library; the
    digests in `known` are kept as they are (read when those modules were imported)."""
    sources = dict(known or {})
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if not (name == "vaelab" or name.startswith("vaelab.")) or file is None:
            continue
        relative = Path(file).resolve().relative_to(_LIBRARY).as_posix()
        if relative not in sources:
            sources[relative] = _digest(_SOURCE_DIR / relative)
    return dict(sorted(sources.items()))


def changed_sources(sources: dict[str, str]) -> list[str]:
    """Which of the recorded library files differ now (or are gone)."""
    return [
        relative
        for relative, digest in sources.items()
        if not (_SOURCE_DIR / relative).is_file() or _digest(_SOURCE_DIR / relative) != digest
    ]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Checkpoint:
    def __init__(self, path: Path, key: str):
        self.path = Path(path)
        self.key = key
        self.epoch: int | None = None  # the epoch of the checkpoint on disk, once known
        # read at the start, just after the run's imports: an edit while it trains is
        # not taken for the code it runs; a module first imported later joins at its save
        self.sources = loaded_sources()

    def save(self, state: dict) -> None:
        self.sources = loaded_sources(self.sources)
        with atomic_path(self.path) as tmp, open(tmp, "wb") as file:
            # a file object, not a path: torch's own writer turns a full disk into a
            # RuntimeError without errno, Python's raises the OSError that names it
            torch.save({"fingerprint": self.key, "sources": self.sources, **state}, file)
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
            state = load_tensors(self.path, "checkpoint", "starting afresh")
        except DataError as exc:  # a damaged checkpoint is never worth a crash: start over
            say(f"  {exc}")
            return None
        if "sources" not in state:
            say(
                f"  checkpoint {self.path} is from an older vaelab (no record of its code);"
                " starting afresh"
            )
            return None
        if state.get("fingerprint") != self.key:
            say(f"  checkpoint {self.path} is from other params or data; starting afresh")
            return None
        changed = changed_sources(state["sources"])
        if changed:
            shown = ", ".join(changed[:3]) + (
                f" and {len(changed) - 3} more" if changed[3:] else ""
            )
            say(
                f"  checkpoint {self.path} was written by other code ({shown} changed since);"
                " starting afresh"
            )
            return None
        self.epoch = state["epoch"]
        return state

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
