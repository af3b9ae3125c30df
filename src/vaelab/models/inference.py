"""A model's encoder and decoder run over many inputs in batches, in inference mode.

`labels` are the inputs' class labels, which a class-conditional model encodes and decodes
given (`LatentModel.given`); every other model ignores them."""

from __future__ import annotations

import torch

from vaelab.models.base import LatentModel


def _labels(labels: torch.Tensor | None, start: int, stop: int, device) -> torch.Tensor | None:
    return None if labels is None else labels[start:stop].to(device)


@torch.inference_mode()
def posterior_means(
    model: LatentModel,
    images: torch.Tensor,
    batch_size: int = 1000,
    labels: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The posterior mean (an AE's code) and log-variance of every image."""
    model.eval()
    means, logvars = [], []
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size]
        q = model.given(_labels(labels, start, start + batch_size, x.device)).encode(x)
        means.append(q.mean.float())
        if q.logvar is not None:
            logvars.append(q.logvar.float())
    return torch.cat(means), (torch.cat(logvars) if logvars else None)


@torch.inference_mode()
def decode_probs(
    model: LatentModel,
    z: torch.Tensor,
    batch_size: int = 500,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """Pixel probabilities of codes z [N, D], given their labels [N] (or one label [1]
    for all) for a class-conditional model."""
    device = next(model.parameters()).device
    parts = []
    for i in range(0, len(z), batch_size):
        batch = (
            labels
            if labels is not None and len(labels) == 1
            else _labels(labels, i, i + batch_size, device)
        )
        decoder = model.given(None if batch is None else batch.to(device))
        parts.append(torch.sigmoid(decoder.decode(z[i : i + batch_size].to(device)).float()).cpu())
    return torch.cat(parts)


def reconstruct(model: LatentModel, images: torch.Tensor) -> torch.Tensor:
    """Pixel probabilities decoded from each image's posterior mean, in one batch."""
    return torch.sigmoid(model.decode(model.encode(images).mean)).float()
