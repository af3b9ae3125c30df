"""Image grids as uint8 arrays: the per-epoch reconstructions and every picture's tiles."""

from __future__ import annotations

import numpy as np
import torch

from vaelab.models.base import LatentModel
from vaelab.models.inference import reconstruct


def to_uint8(images: torch.Tensor, nrow: int, padding: int = 0) -> np.ndarray:
    """[N, 1, S, S] in [0, 1] to one grey uint8 picture, `nrow` tiles a row, white between
    them: the layout of torchvision's make_grid (pad_value 1.0), pixel for pixel. Not
    make_grid itself: importing torchvision loads torch._dynamo, which costs every stage
    that draws a picture seconds at start-up."""
    tiles = (images.float().cpu()[:, 0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    count, height, width = tiles.shape
    if count == 1:  # as make_grid: a single image comes back without a border
        return tiles[0]
    cols = min(nrow, count)
    rows = -(-count // cols)
    step_y, step_x = height + padding, width + padding
    grid = np.full((rows * step_y + padding, cols * step_x + padding), 255, dtype=np.uint8)
    for k, tile in enumerate(tiles):
        top, left = (k // cols) * step_y + padding, (k % cols) * step_x + padding
        grid[top : top + height, left : left + width] = tile
    return grid


@torch.inference_mode()
def reconstruction_grid(model: LatentModel, images: torch.Tensor) -> np.ndarray:
    """Decoded posterior means of fixed images, 4 to a row, as one uint8 picture."""
    was_training = model.training
    model.eval()
    probs = reconstruct(model, images).cpu()
    model.train(was_training)
    return to_uint8(probs, nrow=4, padding=2)
