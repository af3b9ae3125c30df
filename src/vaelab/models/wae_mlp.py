"""Tolstikhin, Bousquet, Gelly & Schoelkopf 2018, "Wasserstein Auto-Encoders": WAE-MMD, a
deterministic autoencoder whose codes are pushed towards the prior N(0, I) as a whole (the
MMD between the batch's codes and prior draws, the `wae_mmd` objective) rather than code by
code as a VAE's KL does, so that prior draws decode to samples.

The paper's MNIST model has 8 latent dimensions, convolutional networks, lambda = 10 and the
inverse multiquadratic kernel; here two dense relu layers of `hidden_dim` on each side
(Glorot-uniform init, as vae_mlp) and Bernoulli logits, whose cross-entropy is the
reconstruction cost in place of the paper's squared distance. With no density q(z|x),
evaluate reports reconstruction and says the bounds are not defined.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from vaelab.models.base import LatentModel, ModelConfig, Posterior
from vaelab.models.layers import keras_init


class WaeMlpConfig(ModelConfig):
    latent_dim: int = Field(default=8, ge=1, le=65_536)
    hidden_dim: int = Field(default=512, ge=1, le=65_536)


class WaeMLP(LatentModel):
    Config = WaeMlpConfig
    variational = False
    matched_to_prior = True

    def __init__(self, config: WaeMlpConfig, image_size: int = 28):
        super().__init__(config, image_size)
        pixels, hidden, latent = image_size * image_size, config.hidden_dim, config.latent_dim
        self.encoder = nn.Sequential(
            nn.Flatten(),
            nn.Linear(pixels, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, latent),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, pixels),
            nn.Unflatten(1, (1, image_size, image_size)),
        )
        keras_init(self)

    def encode(self, x: torch.Tensor) -> Posterior:
        return Posterior(self.encoder(x), None)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)
