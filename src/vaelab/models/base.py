"""What every model shares: the encode/decode interface and Keras-style initialisation."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Posterior:
    """q(z|x) as a diagonal Gaussian; an autoencoder's code is `mean` with `logvar` None."""

    mean: torch.Tensor
    logvar: torch.Tensor | None

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """z = mean + exp(logvar / 2) * eps, the reparameterisation trick."""
        if self.logvar is None:
            return self.mean
        eps = torch.randn(
            self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype
        )
        return self.mean + torch.exp(0.5 * self.logvar) * eps


class LatentModel(nn.Module):
    """An encoder to a latent code and a decoder to Bernoulli logits over pixels."""

    variational: bool = True

    def __init__(self, latent_dim: int, image_size: int, logvar_clamp: float | None = None):
        super().__init__()
        self.latent_dim = latent_dim
        self.image_size = image_size
        self.logvar_clamp = logvar_clamp

    def posterior(self, mean: torch.Tensor, logvar: torch.Tensor | None) -> Posterior:
        if logvar is not None and self.logvar_clamp is not None:
            logvar = logvar.clamp(-self.logvar_clamp, self.logvar_clamp)
        return Posterior(mean, logvar)

    def encode(self, x: torch.Tensor) -> Posterior:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Logits of p(x|z), shaped like the input images [B, 1, S, S]."""
        raise NotImplementedError


def keras_init(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases, Keras's defaults for Dense and Conv layers.

    The TF/Keras seeds train from this initialisation; PyTorch's default (Kaiming-uniform
    with a = sqrt(5)) gives visibly different 10-epoch figures.
    """
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def transpose_same(in_channels: int, out_channels: int) -> nn.ConvTranspose2d:
    """Keras Conv2DTranspose(k=3, strides=2, padding='same'): doubles height and width."""
    return nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1)
