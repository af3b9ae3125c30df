"""A model's encoder and decoder run over many inputs in batches, in inference mode."""

from __future__ import annotations

import torch

from vaelab.models.base import LatentModel


@torch.inference_mode()
def posterior_means(
    model: LatentModel, images: torch.Tensor, batch_size: int = 1000
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The posterior mean (an AE's code) and log-variance of every image."""
    model.eval()
    means, logvars = [], []
    for start in range(0, len(images), batch_size):
        q = model.encode(images[start : start + batch_size])
        means.append(q.mean.float())
        if q.logvar is not None:
            logvars.append(q.logvar.float())
    return torch.cat(means), (torch.cat(logvars) if logvars else None)


@torch.inference_mode()
def decode_probs(model: LatentModel, z: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    device = next(model.parameters()).device
    parts = [
        torch.sigmoid(model.decode(z[i : i + batch_size].to(device)).float()).cpu()
        for i in range(0, len(z), batch_size)
    ]
    return torch.cat(parts)


def reconstruct(model: LatentModel, images: torch.Tensor) -> torch.Tensor:
    """Pixel probabilities decoded from each image's posterior mean, in one batch."""
    return torch.sigmoid(model.decode(model.encode(images).mean)).float()
