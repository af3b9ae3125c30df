"""The epoch checkpoint that lets an interrupted training resume, written atomically.

A checkpoint is used only when the resumed run would be the uninterrupted one: the same
experiment keys and prepared data (its fingerprint), and byte for byte the same library
files among those the run had imported (its sources). Files the run never imported may
change: editing another model's file, or the report, does not touch a training that has
run for days. A checkpoint of other params or data is replaced by the new run's.

A checkpoint that may hold days of work is never thrown away unasked: one written by code
that has changed since, or damaged on disk (its checksum differs), is moved aside and the
run stops with one line. `adopt` (vaelab checkpoint) resumes a changed-code
one under the present code, for the user who knows the edit changed nothing; running again
without it starts afresh.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from vaelab.config.experiments import ExperimentSpec
from vaelab.core.errors import DataError
from vaelab.core.progress import say
from vaelab.core.tensor_files import load_tensors, save_tensors
from vaelab.runtime.sources import changed_sources, digests, loaded_sources


def fingerprint(spec: ExperimentSpec, meta: dict, limit: int | None) -> str:
    """Changes with the params and data a resumed run would differ under. The epoch ceiling
    is left out: no epoch depends on how many come after it, so a run resumed with more
    epochs (or ended at the epoch it reached) is the run asked for that many."""
    keys = {key: value for key, value in spec.flat().items() if key != "epochs"}
    return hashlib.sha256(json.dumps([keys, meta, limit], sort_keys=True).encode()).hexdigest()


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
        save_tensors(self.path, {"fingerprint": self.key, "sources": self.sources, **state})
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
        """The saved state, or None when there is none to resume (or it is of other params
        or data). Raises CheckpointSetAside when it was moved aside."""
        if not self.path.exists():
            return None
        aside = _free_name(self.path, "damaged")
        try:
            state = load_tensors(
                self.path, "checkpoint", f"moved aside to {aside}; run again to start afresh"
            )
        except DataError as exc:
            self.path.rename(aside)
            raise CheckpointSetAside(str(exc)) from None
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
            aside = _free_name(self.path, "other-code")
            self.path.rename(aside)
            shown = ", ".join(changed[:3]) + (
                f" and {len(changed) - 3} more" if changed[3:] else ""
            )
            raise CheckpointSetAside(
                f"checkpoint {self.path} after epoch {state['epoch']} was written by other "
                f"code ({shown} changed since); moved aside to {aside}: "
                f"`vaelab checkpoint adopt {aside}` resumes it under this "
                "code, or run again to start afresh"
            )
        self.epoch = state["epoch"]
        return state

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


class CheckpointSetAside(DataError):
    """The checkpoint was moved aside, unused: the user says what becomes of it."""


def _free_name(path: Path, why: str) -> Path:
    """checkpoint.WHY.pt beside `path`, numbered when that name is taken."""
    for number in range(1, 10_000):
        suffix = f".{why}.pt" if number == 1 else f".{why}-{number}.pt"
        candidate = path.with_name(path.stem + suffix)
        if not candidate.exists():
            return candidate
    raise DataError(f"too many checkpoints set aside beside {path}; delete the old ones")


def adopt(aside: Path, checkpoint: Path | None = None) -> Path:
    """Resume a checkpoint set aside for changed code under the present code: its record
    of the library files it ran is updated to today's bytes, and it goes back to
    `checkpoint` (by default the name it had) for the next run to resume."""
    aside = Path(aside)
    if checkpoint is None:
        named = re.fullmatch(r"(.+)\.other-code(-\d+)?\.pt", aside.name)
        if named is None:
            raise DataError(
                f"{aside} is not a checkpoint set aside for changed code "
                "(NAME.other-code.pt); name the checkpoint to restore with --to"
            )
        checkpoint = aside.with_name(named.group(1) + ".pt")
    if checkpoint.exists():
        raise DataError(
            f"{checkpoint} exists already; move it away first, or name another with --to"
        )
    state = load_tensors(aside, "checkpoint", "it cannot be adopted")
    if "sources" not in state:
        raise DataError(f"checkpoint {aside} has no record of its code; it cannot be adopted")
    state["sources"] = digests(state["sources"])
    save_tensors(checkpoint, state)
    aside.unlink()
    return checkpoint
