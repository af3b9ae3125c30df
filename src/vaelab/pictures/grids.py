"""Image grids as uint8 arrays: the per-epoch reconstructions and every picture's tiles."""

from __future__ import annotations

import numpy as np
import torch

from vaelab.models.base import LatentModel
from vaelab.models.inference import reconstruct


def to_uint8(images: torch.Tensor, nrow: int, padding: int = 0) -> np.ndarray:
    """[N, 1, S, S] in [0, 1] to one grey uint8 picture, `nrow` tiles a row."""
    from torchvision.utils import make_grid  # imported late: it costs seconds at start-up

    grid = make_grid(images.float().cpu(), nrow=nrow, padding=padding, pad_value=1.0)[0]
    return (grid.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


@torch.inference_mode()
def reconstruction_grid(model: LatentModel, images: torch.Tensor) -> np.ndarray:
    """Decoded posterior means of fixed images, 4 to a row, as one uint8 picture."""
    was_training = model.training
    model.eval()
    probs = reconstruct(model, images).cpu()
    model.train(was_training)
    return to_uint8(probs, nrow=4, padding=2)
