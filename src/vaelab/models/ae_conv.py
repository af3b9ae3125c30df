"""Reference 003 ("Generative Deep Learning", ch. 3): the convolutional autoencoder.

Fashion-MNIST padded to 32x32. Encoder: Conv(32/64/128, 3, s2, same, relu), Flatten(2048),
Dense(latent). Decoder: Dense(2048), Reshape(128, 4, 4), ConvT(128/64/32, 3, s2, same,
relu), Conv(1, 3, same) (sigmoid in the reference; logits here).
"""

from __future__ import annotations

import torch
from torch import nn

from vaelab.models.base import LatentModel, ModelConfig, Posterior
from vaelab.models.layers import NarrowConv2d, keras_init, transpose_same


def conv_same_stride2(in_channels: int, out_channels: int) -> nn.Sequential:
    """Keras Conv2D(k=3, strides=2, padding='same'): TF pads even inputs 0 before, 1 after."""
    return nn.Sequential(
        nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(in_channels, out_channels, 3, stride=2)
    )


class ConvBody(nn.Module):
    """Reference 003's encoder up to the flattened features, and its whole decoder."""

    def __init__(self, latent_dim: int, image_size: int):
        super().__init__()
        self.base = image_size // 8
        features = 128 * self.base * self.base
        self.features = nn.Sequential(
            conv_same_stride2(1, 32),
            nn.ReLU(inplace=True),
            conv_same_stride2(32, 64),
            nn.ReLU(inplace=True),
            conv_same_stride2(64, 128),
            nn.ReLU(inplace=True),
            nn.Flatten(),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, features),
            nn.Unflatten(1, (128, self.base, self.base)),
            transpose_same(128, 128),
            nn.ReLU(inplace=True),
            transpose_same(128, 64),
            nn.ReLU(inplace=True),
            transpose_same(64, 32),
            nn.ReLU(inplace=True),
            NarrowConv2d(32, 1, 3),
        )
        self.feature_count = features


class ConvAE(LatentModel):
    Config = ModelConfig
    variational = False
    image_sizes = (32,)  # three stride-2 convolutions: the size must divide by 8

    def __init__(self, config: ModelConfig, image_size: int = 32):
        super().__init__(config, image_size)
        self.body = ConvBody(config.latent_dim, image_size)
        self.code = nn.Linear(self.body.feature_count, config.latent_dim)
        keras_init(self)

    def encode(self, x: torch.Tensor) -> Posterior:
        return Posterior(self.code(self.body.features(x)), None)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.body.decoder(z)
