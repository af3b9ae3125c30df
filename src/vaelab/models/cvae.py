"""References 000/004: the TensorFlow "Convolutional Variational Autoencoder" tutorial.

Encoder: Conv(32, 3, s2, valid, relu), Conv(64, 3, s2, valid, relu), Flatten,
Dense(2 * latent) split into mean and log-variance. Decoder: Dense(7*7*32, relu),
ConvT(64, 3, s2, same, relu), ConvT(32, 3, s2, same, relu), ConvT(1, 3, s1, same) giving
Bernoulli logits.
"""

from __future__ import annotations

import torch
from torch import nn

from vaelab.models.base import LatentModel, Posterior, VariationalConfig
from vaelab.models.layers import NarrowConv2d, keras_init, transpose_same


class CVAE(LatentModel):
    Config = VariationalConfig

    def __init__(self, config: VariationalConfig, image_size: int = 28):
        super().__init__(config, image_size)
        latent_dim = config.latent_dim
        after_convs = ((image_size - 3) // 2 + 1 - 3) // 2 + 1
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 3, stride=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 64, 3, stride=2),
            nn.ReLU(inplace=True),
            nn.Flatten(),
            nn.Linear(64 * after_convs * after_convs, 2 * latent_dim),
        )
        self.base = image_size // 4
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, 32 * self.base * self.base),
            nn.ReLU(inplace=True),
            nn.Unflatten(1, (32, self.base, self.base)),
            transpose_same(32, 64),
            nn.ReLU(inplace=True),
            transpose_same(64, 32),
            nn.ReLU(inplace=True),
            # The tutorial's ConvT(1, 3, s1, same): a stride-1 transposed convolution is a
            # convolution with the kernel flipped, and Glorot-uniform init is symmetric under
            # the flip, so this is the same model. In training its forward is as fast as the
            # ConvT's but its backward is slower on oneDNN CPUs (docs/training-speed.md);
            # going back to the ConvT changes the weights' shape and initial draw, so the
            # reference figures would need rerunning. Without a gradient it decodes as a
            # GEMM, much faster than either (NarrowConv2d).
            NarrowConv2d(32, 1, 3),
        )
        keras_init(self)

    def encode(self, x: torch.Tensor) -> Posterior:
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return self.posterior(mean, logvar)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)
