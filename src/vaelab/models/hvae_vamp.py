"""Tomczak & Welling 2018, "VAE with a VampPrior": the two-stochastic-layer model,
"HVAE (L = 2) + VampPrior", 83.19 nats on statically binarized MNIST (NLL with k = 5000).

    q(z1, z2 | x) = q(z2 | x) q(z1 | x, z2)        p(x, z1, z2) = p(x | z1, z2) p(z1 | z2) p(z2)

with p(z2) the VampPrior, the mixture of q(z2 | u_k) over K = 500 learned pseudo-inputs
(`prior: standard` gives the paper's HVAE baseline with p(z2) = N(0, I)). Every network is
gated dense layers of 300 units with He-initialised linear maps, as the one-level
vamp_mlp; every Gaussian's log-variance is bounded to [-6, 2] by a hard tanh. Each level
has `latent_dim` dimensions (the paper's 40), and a code z is concat(z1, z2): what
`decode` takes, and what `log_prior` and the posterior's `log_prob` score.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from functools import cached_property
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from vaelab.models.base import (
    Draw,
    LatentModel,
    LatentPosterior,
    NoiseSource,
    Posterior,
    VariationalConfig,
)
from vaelab.models.vamp_mlp import GatedDense


class HvaeVampConfig(VariationalConfig):
    latent_dim: int = Field(
        default=40, ge=1, le=65_536
    )  # each of z1 and z2; a code has twice as many
    hidden_dim: int = Field(default=300, ge=1, le=65_536)
    prior: Literal["standard", "vamp"] = "vamp"


class TwoLevelPosterior(LatentPosterior):
    """q(z1, z2 | x) = q(z2 | x) q(z1 | x, z2) over z = concat(z1, z2): `top` is q(z2 | x)
    and `given_top` maps a z2 [..., B, D] to the Gaussian q(z1 | x, z2).

    As a point code, `mean` is z1's mean given z2 at its mean, beside z2's mean; `logvar`
    is the two log-variances at that same point. A draw of z needs q(z1 | x, z2) at the
    drawn z2, so the draw keeps it for the density instead of running the network again."""

    def __init__(self, top: Posterior, given_top: Callable[[torch.Tensor], Posterior]):
        self.top = top
        self.given_top = given_top

    @cached_property
    def _bottom_at_top_mean(self) -> Posterior:
        return self.given_top(self.top.mean)

    @property
    def mean(self) -> torch.Tensor:
        return torch.cat([self._bottom_at_top_mean.mean, self.top.mean], dim=-1)

    @property
    def logvar(self) -> torch.Tensor:
        return torch.cat([self._bottom_at_top_mean.logvar, self.top.logvar], dim=-1)

    def _split(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        top_dims = self.top.mean.shape[-1]
        return z[..., :-top_dims], z[..., -top_dims:]

    def draw(self, noise: torch.Generator | NoiseSource | None = None) -> Draw:
        z2 = self.top.sample(noise)  # z2's noise first, then z1's: ancestral order
        bottom = self.given_top(z2)
        z = torch.cat([bottom.sample(noise), z2], dim=-1)

        def density(at: torch.Tensor) -> torch.Tensor:
            at1, at2 = self._split(at)
            return bottom.log_prob(at1) + self.top.log_prob(at2)

        return Draw(z, density)

    def sample(self, noise: torch.Generator | NoiseSource | None = None) -> torch.Tensor:
        return self.draw(noise).z

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        z1, z2 = self._split(z)
        return self.given_top(z2).log_prob(z1) + self.top.log_prob(z2)

    def expand(self, n: int) -> TwoLevelPosterior:
        return TwoLevelPosterior(self.top.expand(n), self.given_top)


class HvaeVamp(LatentModel):
    Config = HvaeVampConfig

    def __init__(self, config: HvaeVampConfig, image_size: int = 28):
        super().__init__(config, image_size)
        pixels, hidden, latent = image_size * image_size, config.hidden_dim, config.latent_dim
        self.flatten = nn.Flatten()
        # q(z2 | x)
        self.q_z2_hidden = nn.Sequential(GatedDense(pixels, hidden), GatedDense(hidden, hidden))
        self.q_z2_mean = nn.Linear(hidden, latent)
        self.q_z2_logvar = nn.Sequential(nn.Linear(hidden, latent), nn.Hardtanh(-6.0, 2.0))
        # q(z1 | x, z2)
        self.q_z1_from_x = GatedDense(pixels, hidden)
        self.q_z1_from_z2 = GatedDense(latent, hidden)
        self.q_z1_joint = GatedDense(2 * hidden, hidden)
        self.q_z1_mean = nn.Linear(hidden, latent)
        self.q_z1_logvar = nn.Sequential(nn.Linear(hidden, latent), nn.Hardtanh(-6.0, 2.0))
        # p(z1 | z2)
        self.p_z1_hidden = nn.Sequential(GatedDense(latent, hidden), GatedDense(hidden, hidden))
        self.p_z1_mean = nn.Linear(hidden, latent)
        self.p_z1_logvar = nn.Sequential(nn.Linear(hidden, latent), nn.Hardtanh(-6.0, 2.0))
        # p(x | z1, z2)
        self.p_x_from_z1 = GatedDense(latent, hidden)
        self.p_x_from_z2 = GatedDense(latent, hidden)
        self.p_x_joint = GatedDense(2 * hidden, hidden)
        self.p_x_logits = nn.Linear(hidden, pixels)
        for layer in self.modules():  # He initialisation, as the paper's code
            if isinstance(layer, nn.Linear):
                nn.init.kaiming_normal_(layer.weight)
                nn.init.zeros_(layer.bias)

    @property
    def standard_prior(self) -> bool:
        return False  # p(z1 | z2) is learned, so p(z) is never N(0, I)

    def _q_z2(self, x: torch.Tensor) -> Posterior:
        h = self.q_z2_hidden(self.flatten(x))
        return self.posterior(self.q_z2_mean(h), self.q_z2_logvar(h))

    def _q_z1(self, x_features: torch.Tensor, z2: torch.Tensor) -> Posterior:
        from_z2 = self.q_z1_from_z2(z2)
        # n importance samples per image share the image's features
        from_x = x_features.expand(*from_z2.shape[:-1], x_features.shape[-1])
        h = self.q_z1_joint(torch.cat([from_x, from_z2], dim=-1))
        return self.posterior(self.q_z1_mean(h), self.q_z1_logvar(h))

    def encode(self, x: torch.Tensor) -> TwoLevelPosterior:
        x_features = self.q_z1_from_x(self.flatten(x))
        return TwoLevelPosterior(self._q_z2(x), functools.partial(self._q_z1, x_features))

    def pseudo_input_posteriors(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self._q_z2(u)  # the VampPrior is on z2: q(z1 | u, z2) is never needed
        return q.mean, q.logvar

    def _split(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return z[..., : self.latent_dim], z[..., self.latent_dim :]

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z1 | z2) + log p(z2) for z = concat(z1, z2) [..., 2D]."""
        z1, z2 = self._split(z)
        return self._p_z1(z2).log_prob(z1) + self.log_top_prior(z2)

    def _p_z1(self, z2: torch.Tensor) -> Posterior:
        """p(z1 | z2), a diagonal Gaussian given z2."""
        h = self.p_z1_hidden(z2)
        return Posterior(self.p_z1_mean(h), self.p_z1_logvar(h))

    def sample_prior(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """Ancestral draws: z2 from p(z2), then z1 from p(z1 | z2); codes concat(z1, z2)."""
        z2 = self.sample_top_prior(count, generator)
        with torch.no_grad():
            p_z1 = self._p_z1(z2.to(next(self.parameters()).device))
        z1 = Posterior(p_z1.mean.float().cpu(), p_z1.logvar.float().cpu()).sample(generator)
        return torch.cat([z1, z2], dim=-1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        z1, z2 = self._split(z)
        h = self.p_x_joint(torch.cat([self.p_x_from_z1(z1), self.p_x_from_z2(z2)], dim=-1))
        return self.p_x_logits(h).view(-1, 1, self.image_size, self.image_size)
