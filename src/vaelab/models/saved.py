"""model.pt: a trained model with the config it is rebuilt from, and what it trained on.

    {"model": {"name", "config", "image_size"}, "state_dict": ...,
     "experiment": {"name", "data", "dataset", "classes", ...every experiment key},
     "history": [per-epoch records], "train_seconds": float}

Loading needs nothing but the file: the registry rebuilds the architecture from its own
saved config, whatever params.yaml says today.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from vaelab.core.errors import DataError
from vaelab.core.tensor_files import load_tensors, save_tensors
from vaelab.models.base import LatentModel
from vaelab.models.registry import build_model

# What model.pt's "experiment" record holds beside the experiment's own keys. No model or
# objective knob may take one of these names: the record would overwrite the knob, and the
# check that a model file belongs to its experiment would compare the wrong values.
RECORD_KEYS = (
    "name",
    "dataset",
    "data_fingerprint",
    "binarize",
    "precision",
    "classes",
    "epochs_run",
    "kept_epoch",
)


def experiment_record(name: str, keys: dict, **recorded) -> dict:
    """model.pt's "experiment": experiment NAME's own `keys`, then what the run recorded
    (the RECORD_KEYS beside `name`)."""
    unknown = set(recorded) - set(RECORD_KEYS)
    if unknown:
        raise TypeError(f"not model.pt record keys: {', '.join(sorted(unknown))}")
    return {"name": name, **keys, **recorded}


@dataclass
class SavedModel:
    model: LatentModel
    experiment: dict  # the experiment's keys, its name, data, dataset and class names
    history: list[dict]
    train_seconds: float


def save_model(
    path: Path,
    model: LatentModel,
    experiment: dict,
    history: list[dict],
    train_seconds: float,
) -> None:
    state = {
        "model": {
            "name": experiment["model"],
            "config": model.config.model_dump(),
            "image_size": model.image_size,
        },
        "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
        "experiment": experiment,
        "history": history,
        "train_seconds": train_seconds,
    }
    save_tensors(path, state)


def load_model(path: Path, device: torch.device | str = "cpu") -> SavedModel:
    """Rebuild a saved model from its own config; it comes back in eval mode."""
    state = load_tensors(path, "model", "rerun its train stage")
    try:
        architecture = state["model"]
        model = build_model(
            architecture["name"], architecture["image_size"], **architecture["config"]
        )
        model.load_state_dict(state["state_dict"])
    except Exception as exc:
        raise DataError(
            f"model {path} is corrupt, truncated or from an older vaelab "
            f"({type(exc).__name__}); rerun its train stage"
        ) from None
    return SavedModel(
        model.to(device).eval(), state["experiment"], state["history"], state["train_seconds"]
    )
