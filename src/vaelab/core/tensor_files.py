"""The one way a .pt file is read: as untrusted data, whoever wrote it.

Every model, checkpoint, classifier and prepared split goes through `load_tensors`:
torch's weights-only unpickler, which builds tensors and plain containers and refuses any
other object without running it, and a failure turned into one line of our own that names
the file, what it should have been and how to rebuild it. torch's own message is never
shown: it advises reloading with `weights_only=False`, which would run whatever the file
holds.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from vaelab.core.errors import DataError


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
    return state
