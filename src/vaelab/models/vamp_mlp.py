"""Tomczak & Welling 2018, "VAE with a VampPrior": the one-stochastic-layer MLP, two
gated dense layers of 300 units on each side (h = (W1 x + b1) * sigmoid(W2 x + b2)), a
40-d latent whose log-variance is bounded to [-6, 2] by a hard tanh, a Bernoulli decoder.

The paper's table (and pythae's reproduction): VampPrior with K = 500 pseudo-inputs
85.57 nats (pythae 85.79), statically binarized MNIST, NLL with k = 5000. Set
`prior: vamp` for the VampPrior; with the standard prior it is the paper's VAE baseline.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from vaelab.models.base import HiddenHeads, VariationalConfig


class VampMlpConfig(VariationalConfig):
    latent_dim: int = Field(default=40, ge=1, le=65_536)
    hidden_dim: int = Field(default=300, ge=1, le=65_536)


class GatedDense(nn.Module):
    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.value = nn.Linear(n_in, n_out)
        self.gate = nn.Linear(n_in, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value(x) * torch.sigmoid(self.gate(x))


class VampMLP(HiddenHeads):
    Config = VampMlpConfig

    def __init__(self, config: VampMlpConfig, image_size: int = 28):
        super().__init__(config, image_size)
        pixels, hidden, latent = image_size * image_size, config.hidden_dim, config.latent_dim
        self.hidden = nn.Sequential(
            nn.Flatten(), GatedDense(pixels, hidden), GatedDense(hidden, hidden)
        )
        self.mean = nn.Linear(hidden, latent)
        self.logvar = nn.Sequential(nn.Linear(hidden, latent), nn.Hardtanh(-6.0, 2.0))
        self.decoder = nn.Sequential(
            GatedDense(latent, hidden),
            GatedDense(hidden, hidden),
            nn.Linear(hidden, pixels),
            nn.Unflatten(1, (1, image_size, image_size)),
        )
        for layer in self.modules():  # He initialisation, as the paper's code
            if isinstance(layer, nn.Linear):
                nn.init.kaiming_normal_(layer.weight)
                nn.init.zeros_(layer.bias)
