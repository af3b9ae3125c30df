"""Where the stages after training start: params, device, the model and its test split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from vaelab.config.experiments import load_experiment
from vaelab.config.params import Params
from vaelab.data.splits import Split, load_split
from vaelab.models.saved import SavedModel, load_model
from vaelab.runtime.device import resolve_device


@dataclass
class Trained:
    params: Params
    device: torch.device
    saved: SavedModel
    test: Split

    @property
    def model(self):
        return self.saved.model


def load_trained(
    name: str, *, params: Path, model: Path, data: Path, track: str, limit: int | None = None
) -> Trained:
    """Validate params (experiment NAME of `track`), pick the device, load the model and
    the test split of `data`."""
    config, _ = load_experiment(params, name, track=track)
    device = resolve_device(config.device, config.threads)
    saved = load_model(model, device)
    return Trained(config, device, saved, load_split(data, "test", limit))
