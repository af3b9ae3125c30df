"""What every model shares: its config, the encode/decode interface, Keras-style init."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from pydantic import Field
from torch import nn

from vaelab.knobs import Knobs


class ModelConfig(Knobs):
    """The knobs every model takes; a model with more subclasses this beside its class."""

    latent_dim: int = Field(ge=1)


class VariationalConfig(ModelConfig):
    # Bounds log sigma^2 to [-c, c]: a guard against an exploding posterior variance.
    logvar_clamp: float | None = Field(default=None, gt=0)


@dataclass
class Posterior:
    """q(z|x) as a diagonal Gaussian; an autoencoder's code is `mean` with `logvar` None."""

    mean: torch.Tensor
    logvar: torch.Tensor | None

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """z = mean + exp(logvar / 2) * eps, the reparameterisation trick."""
        if self.logvar is None:
            return self.mean
        if hasattr(generator, "noise_like"):
            # a torchrun rank's slice of its batch's noise (vaelab.distributed.Share)
            eps = generator.noise_like(self.mean)
        else:
            eps = torch.randn(
                self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype
            )
        return self.mean + torch.exp(0.5 * self.logvar) * eps


class LatentModel(nn.Module):
    """An encoder to a latent code and a decoder to Bernoulli logits over pixels.

    A subclass names its `Config`, whether it is `variational` (has a posterior q(z|x) and
    the prior N(0, I)) and the `image_sizes` it takes; it is rebuilt from
    `(config, image_size)` alone.
    """

    Config: ClassVar[type[ModelConfig]] = VariationalConfig
    variational: ClassVar[bool] = True
    image_sizes: ClassVar[tuple[int, ...]] = (28, 32)

    def __init__(self, config: ModelConfig, image_size: int):
        super().__init__()
        self.config = config
        self.latent_dim = config.latent_dim
        self.image_size = image_size

    def posterior(self, mean: torch.Tensor, logvar: torch.Tensor | None) -> Posterior:
        clamp = getattr(self.config, "logvar_clamp", None)
        if logvar is not None and clamp is not None:
            logvar = logvar.clamp(-clamp, clamp)
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
