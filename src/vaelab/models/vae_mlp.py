"""References 001/002: the Keras MLP VAE, 784-256-latent.

Encoder: Dense(256, relu), then Dense(latent) for the mean and Dense(latent) for the
log-variance. Decoder: Dense(256, relu), Dense(784) (sigmoid in the tutorial; logits here).

With hidden_dim 400 and latent_dim 40 it is also the MLP of pythae's reproducibility
table for the VAE on statically binarized MNIST (89.78 nats at k = 200).
"""

from __future__ import annotations

from pydantic import Field
from torch import nn

from vaelab.models.base import HiddenHeads, VariationalConfig
from vaelab.models.layers import InitKnob, initialise


class MLPConfig(VariationalConfig, InitKnob):
    hidden_dim: int = Field(default=256, ge=1, le=65_536)


class MLPVAE(HiddenHeads):
    Config = MLPConfig

    def __init__(self, config: MLPConfig, image_size: int = 28):
        super().__init__(config, image_size)
        latent_dim, hidden_dim = config.latent_dim, config.hidden_dim
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
        initialise(self, config.init)
