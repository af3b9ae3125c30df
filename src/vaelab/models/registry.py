"""The model registry: one file per architecture, one line here to register it.

Each model file names the paper or tutorial it reproduces and defines its class with its
`Config` (the knobs params.yaml may set for it), whether it is variational and the image
sizes it takes. Params validation reads all of that from here.

The ReLUs work in place: no layer before one needs its own output for the backward pass,
and on the CPU each saved activation buffer is memory traffic a step waits for.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch

from vaelab.models.base import LatentModel, ModelConfig, Posterior


def _model_class(entry: str) -> type[LatentModel]:
    module, _, name = entry.partition(":")
    return getattr(importlib.import_module(f"vaelab.models.{module}"), name)


# name: "module:Class" of this package, so a new model adds its line here and no import
MODELS: dict[str, type[LatentModel]] = {
    name: _model_class(entry)
    for name, entry in {
        "cvae": "cvae:CVAE",
        "vae_mlp": "vae_mlp:MLPVAE",
        "ae_conv": "ae_conv:ConvAE",
        "vae_conv": "vae_conv:ConvVAE",
        "iwae_mlp": "iwae_mlp:IwaeMLP",
        "vamp_mlp": "vamp_mlp:VampMLP",
        "hvae_vamp": "hvae_vamp:HvaeVamp",
        "vqvae": "vqvae:VqVae",
        "wae_mlp": "wae_mlp:WaeMLP",
        "iaf_mlp": "iaf_mlp:IafMLP",
        "cond_vae_mlp": "cond_vae_mlp:CondVaeMLP",
    }.items()
}


def build_model(name: str, image_size: int, config: ModelConfig | None = None, **knobs: Any):
    """Model `name` for square images of `image_size`, from its config (or its knobs)."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(MODELS)}")
    cls = MODELS[name]
    if image_size not in cls.image_sizes:
        raise ValueError(f"{name} takes image sizes {cls.image_sizes}, got {image_size}")
    model = cls(config if config is not None else cls.Config(**knobs), image_size)
    # NHWC weights let oneDNN (CPU) and cuDNN (GPU) pick their fastest convolution kernels.
    return model.to(memory_format=torch.channels_last)


__all__ = ["MODELS", "LatentModel", "ModelConfig", "Posterior", "build_model"]
