"""The one way a .pt file is read: as untrusted data, whoever wrote it.

Every model, checkpoint, classifier and prepared split goes through `load_tensors`:
torch's weights-only unpickler, which builds tensors and plain containers and refuses any
other object without running it, and a failure turned into one line of our own that names
the file, what it should have been and how to rebuild it. torch's own message is never
shown: it advises reloading with `weights_only=False`, which would run whatever the file
holds.

Models, checkpoints and classifiers are written by `save_tensors`, which records the sha256
of everything the file holds; `load_tensors` checks it, so that bytes changed on disk (a bad
sector, a copy cut short and padded) are found before a damaged model is evaluated or a
damaged checkpoint trained on. Files written before vaelab recorded it load unchecked.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import torch

from vaelab.core.errors import DataError
from vaelab.core.files import atomic_path

CHECKSUM_KEY = "contents_sha256"


class DamagedFile(DataError):
    """A file that reads, but whose contents are not those it was saved with."""


def contents_digest(state: dict) -> str:
    """The sha256 of `state`'s tensors (dtype, shape and bytes) and other values, walked in
    the order the file keeps them."""
    digest = hashlib.sha256()
    _feed(digest, {key: value for key, value in state.items() if key != CHECKSUM_KEY})
    return digest.hexdigest()


def _feed(digest, value) -> None:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"tensor {tensor.dtype} {tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(value, dict):
        digest.update(f"dict {len(value)};".encode())
        for key, item in value.items():
            _feed(digest, key)
            _feed(digest, item)
    elif isinstance(value, list | tuple):
        digest.update(f"{type(value).__name__} {len(value)};".encode())
        for item in value:
            _feed(digest, item)
    else:
        digest.update(f"{type(value).__name__} {value!r};".encode())


def save_tensors(path: Path, state: dict) -> None:
    """`state` with the checksum of its contents, written atomically to `path`."""
    # a file object, not a path: torch's own file writer reports a full disk as a
    # RuntimeError without errno, a Python file raises the OSError that names it
    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        torch.save({**state, CHECKSUM_KEY: contents_digest(state)}, file)


def load_tensors(path: Path | str, what: str, rebuild: str) -> dict:
    """The dict saved at `path`, on the CPU. `what` names the file's role ("model",
    "prepared file"); `rebuild` says how to make it again ("rerun its train stage")."""
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise DataError(f"{what} {path} not found; {rebuild}") from None
    except IsADirectoryError:
        raise DataError(f"{what} {path} is a folder, not a file; {rebuild}") from None
    except PermissionError:
        raise DataError(f"{what} {path} cannot be read (permission denied)") from None
    except pickle.UnpicklingError:
        # the weights-only unpickler refused an object: a pickle that would run code
        raise DataError(
            f"{what} {path} holds Python objects, not only tensors, and was not loaded "
            f"(never load it another way); {rebuild}"
        ) from None
    except Exception as exc:  # torch raises many types for a damaged zip or stream
        raise DataError(
            f"{what} {path} is corrupt, truncated or not a vaelab file "
            f"({type(exc).__name__}); {rebuild}"
        ) from None
    if not isinstance(state, dict):
        raise DataError(
            f"{what} {path} holds a {type(state).__name__}, not vaelab's dict; {rebuild}"
        )
    recorded = state.pop(CHECKSUM_KEY, None)
    if recorded is not None and recorded != contents_digest(state):
        raise DamagedFile(
            f"{what} {path} is damaged: its contents differ from the checksum it was saved "
            f"with (a bad disk, or a copy cut short); {rebuild}"
        )
    return state
