"""Paths through latent space, decoded: interpolations between pairs of test images and
traversals of each latent dimension.

Linear interpolation is the straight line between two codes. Under a Gaussian prior most
mass sits near a sphere of radius sqrt(D), and the straight line's midpoint falls inside
it, where the decoder saw few codes; spherical interpolation (slerp, White 2016, "Sampling
generative networks") keeps the path's norm in between the two ends.
"""

from __future__ import annotations

import numpy as np
import torch

from vaelab.models.base import LatentModel
from vaelab.models.inference import decode_probs, posterior_means
from vaelab.pictures.grids import to_uint8


def interpolate(z0: torch.Tensor, z1: torch.Tensor, steps: int, spherical: bool) -> torch.Tensor:
    """`steps` codes [steps, D] from z0 to z1 inclusive, straight or along the great circle."""
    t = torch.linspace(0, 1, steps, dtype=z0.dtype)[:, None]
    if spherical:
        cos = torch.dot(z0, z1) / (z0.norm() * z1.norm()).clamp_min(1e-12)
        omega = torch.arccos(cos.clamp(-1, 1))
        if omega.abs() > 1e-6:  # nearly parallel codes: slerp is the straight line
            path = (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)
            path[0], path[-1] = z0, z1  # exact ends, whatever sin's rounding
            return path
    return (1 - t) * z0 + t * z1


@torch.inference_mode()
def interpolation_paths(
    model: LatentModel,
    first: torch.Tensor,
    second: torch.Tensor,
    *,
    steps: int,
    spherical: bool,
    labels: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Codes [pairs, steps, D] from each image of `first` to the same row of `second`,
    between their posterior means (an autoencoder's codes); a class-conditional model
    encodes each given its own of `labels` (first's, second's)."""
    device = next(model.parameters()).device
    first_labels, second_labels = labels if labels is not None else (None, None)
    z0 = posterior_means(model, first.to(device), labels=first_labels)[0].cpu()
    z1 = posterior_means(model, second.to(device), labels=second_labels)[0].cpu()
    return torch.stack([interpolate(a, b, steps, spherical) for a, b in zip(z0, z1, strict=True)])


def interpolation_grid(
    model: LatentModel,
    first: torch.Tensor,
    second: torch.Tensor,
    *,
    steps: int,
    spherical: bool,
    labels: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> np.ndarray:
    """One row per pair: the first image, the decoded path, the second image; a
    class-conditional model decodes each path given its first image's class."""
    paths = interpolation_paths(
        model, first, second, steps=steps, spherical=spherical, labels=labels
    )
    pairs = len(paths)
    path_labels = None if labels is None else labels[0].repeat_interleave(steps)
    decoded = decode_probs(model, paths.reshape(pairs * steps, -1), labels=path_labels).reshape(
        pairs, steps, *first.shape[1:]
    )
    rows = torch.cat([first.cpu()[:, None], decoded, second.cpu()[:, None]], dim=1)
    return to_uint8(rows.reshape(-1, *first.shape[1:]), nrow=steps + 2, padding=2)


def traversal_codes(centre: np.ndarray, scale: np.ndarray, steps: int, span: float = 2.5):
    """Codes [D * steps, D]: row d moves dimension d from -span to +span scales around
    `centre`, every other dimension held at the centre."""
    dims = len(centre)
    ticks = np.linspace(-span, span, steps)
    codes = np.repeat(centre[None, None, :], dims, axis=0).repeat(steps, axis=1)
    for d in range(dims):
        codes[d, :, d] = centre[d] + ticks * scale[d]
    return torch.tensor(codes.reshape(dims * steps, dims), dtype=torch.float32)


def traversal_grid(model: LatentModel, means: np.ndarray, steps: int) -> np.ndarray:
    """One row per latent dimension, around the test codes' mean: in prior units for a
    VAE, in the codes' own spread for an autoencoder (which has no prior)."""
    scale = np.ones(means.shape[1]) if model.has_prior else means.std(0)
    z = traversal_codes(means.mean(0), scale, steps)
    return to_uint8(decode_probs(model, z), nrow=steps, padding=2)
