"""Reference 003 ("Generative Deep Learning", ch. 3): the convolutional VAE.

The autoencoder's body (see ae_conv) with Dense(latent) heads for the mean and the
log-variance; the reference trains it on 500 x mean BCE + KL.
"""

from __future__ import annotations

import torch
from torch import nn

from vaelab.models.ae_conv import ConvBody
from vaelab.models.base import LatentModel, Posterior, VariationalConfig
from vaelab.models.layers import keras_init


class ConvVAE(LatentModel):
    Config = VariationalConfig
    image_sizes = (32,)  # three stride-2 convolutions: the size must divide by 8

    def __init__(self, config: VariationalConfig, image_size: int = 32):
        super().__init__(config, image_size)
        self.body = ConvBody(config.latent_dim, image_size)
        self.mean = nn.Linear(self.body.feature_count, config.latent_dim)
        self.logvar = nn.Linear(self.body.feature_count, config.latent_dim)
        keras_init(self)

    def encode(self, x: torch.Tensor) -> Posterior:
        h = self.body.features(x)
        return self.posterior(self.mean(h), self.logvar(h))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.body.decoder(z)
