"""Seeds 001/002: the Keras MLP VAE, 784-256-latent.

Encoder: Dense(256, relu), then Dense(latent) for the mean and Dense(latent) for the
log-variance. Decoder: Dense(256, relu), Dense(784) (sigmoid in the seed; logits here).
"""

from __future__ import annotations

import torch
from torch import nn

from vaelab.models.base import LatentModel, Posterior, keras_init


class MLPVAE(LatentModel):
    def __init__(self, latent_dim: int = 2, image_size: int = 28, hidden_dim: int = 256, **kwargs):
        super().__init__(latent_dim, image_size, kwargs.get("logvar_clamp"))
        pixels = image_size * image_size
        self.hidden = nn.Sequential(
            nn.Flatten(), nn.Linear(pixels, hidden_dim), nn.ReLU(inplace=True)
        )
        self.mean = nn.Linear(hidden_dim, latent_dim)
        self.logvar = nn.Linear(hidden_dim, latent_dim)
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, pixels),
            nn.Unflatten(1, (1, image_size, image_size)),
        )
        keras_init(self)

    def encode(self, x: torch.Tensor) -> Posterior:
        h = self.hidden(x)
        return self.posterior(self.mean(h), self.logvar(h))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)
