"""Kingma, Salimans, Jozefowicz, Chen, Sutskever & Welling 2016, "Improved Variational
Inference with Inverse Autoregressive Flow": a VAE whose posterior is a diagonal Gaussian
carried through T IAF steps,

    z_0 = mu(x) + sigma(x) * eps        z_t = s_t * z_{t-1} + (1 - s_t) * m_t,
    [m_t, s_t] = MADE_t(z_{t-1}, h(x)),  s_t = sigmoid(. + forget bias)
    log q(z_T | x) = log N(z_0; mu, sigma^2) - sum_t sum_d log s_t,d

each step an autoregressive network (MADE, Germain et al. 2015: masked dense layers, so
that output d reads only inputs before d) over z and the encoder's context h, the order
of the dimensions reversed between steps. Its Jacobian is triangular with diagonal s_t,
so the log-determinant enters `draw`'s density and every estimator (ELBO, IWAE) through
it; the KL has no closed form, so the "analytic" ELBO estimates it by Monte Carlo.

The paper's MNIST models are convolutional ResNet VAEs; here vae_mlp's dense layers (relu,
Glorot-uniform unless `init: torch`), a latent of `latent_dim`, `flow_steps` steps of one
masked hidden layer of `flow_hidden` units each, and the forget-gate bias of 1 that starts
each step near the identity, as the paper recommends.
"""

from __future__ import annotations

from collections.abc import Callable
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
from vaelab.models.layers import InitKnob, initialise


class IafMlpConfig(VariationalConfig, InitKnob):
    latent_dim: int = Field(default=16, ge=1, le=65_536)
    hidden_dim: int = Field(default=500, ge=1, le=65_536)
    flow_steps: int = Field(default=2, ge=1, le=64)
    flow_hidden: int = Field(default=256, ge=1, le=65_536)
    context_dim: int = Field(default=64, ge=1, le=65_536)  # h, what the encoder tells each step
    prior: Literal["standard"] = "standard"  # the VampPrior would mix Gaussian posteriors


class MaskedLinear(nn.Linear):
    def __init__(self, n_in: int, n_out: int, mask: torch.Tensor):
        super().__init__(n_in, n_out)
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight * self.mask, self.bias)


class IafStep(nn.Module):
    """One step: a MADE over z [..., D] (plus the context) giving m and s, then
    z' = s * z + (1 - s) * m and log |det dz'/dz| = sum log s, per row."""

    def __init__(self, dims: int, hidden: int, context: int, reverse: bool):
        super().__init__()
        self.reverse = reverse
        inputs = torch.arange(1, dims + 1)
        units = torch.arange(hidden) % max(dims - 1, 1) + 1  # degrees 1 .. D - 1
        self.hidden = MaskedLinear(dims, hidden, (units[:, None] >= inputs[None, :]).float())
        self.context = nn.Linear(context, hidden)
        out_mask = (inputs[:, None] > units[None, :]).float()  # output d: units of degree < d
        self.m = MaskedLinear(hidden, dims, out_mask)
        self.s = MaskedLinear(hidden, dims, out_mask)

    def forward(self, z: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ordered = z.flip(-1) if self.reverse else z
        hidden = torch.relu(self.hidden(ordered) + self.context(h))
        m, s = self.m(hidden), torch.sigmoid(self.s(hidden) + 1.0)  # forget-gate bias
        if self.reverse:
            m, s = m.flip(-1), s.flip(-1)
        return s * z + (1 - s) * m, torch.log(s).sum(-1)

    def inverse(self, z_out: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """z such that forward(z) = z_out: one dimension a pass, in the step's order."""
        z = torch.zeros_like(z_out)
        dims = z_out.shape[-1]
        order = range(dims - 1, -1, -1) if self.reverse else range(dims)
        for d in order:
            ordered = z.flip(-1) if self.reverse else z
            hidden = torch.relu(self.hidden(ordered) + self.context(h))
            m, s = self.m(hidden), torch.sigmoid(self.s(hidden) + 1.0)
            if self.reverse:
                m, s = m.flip(-1), s.flip(-1)
            z = z.clone()
            z[..., d] = (z_out[..., d] - (1 - s[..., d]) * m[..., d]) / s[..., d]
        return z


class IafFlow(nn.Module):
    def __init__(self, config: IafMlpConfig):
        super().__init__()
        d, hidden, context = config.latent_dim, config.flow_hidden, config.context_dim
        self.steps = nn.ModuleList(
            IafStep(d, hidden, context, reverse=bool(t % 2)) for t in range(config.flow_steps)
        )

    def forward(self, z: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z_T and sum_t log |det dz_t/dz_{t-1}| for z_0 [..., D] and context h [..., C]."""
        log_det = torch.zeros(z.shape[:-1], device=z.device, dtype=torch.float32)
        for step in self.steps:
            z, step_log_det = step(z, h)
            log_det = log_det + step_log_det.float()
        return z, log_det

    def inverse(self, z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        for step in reversed(self.steps):
            z = step.inverse(z, h)
        return z


class FlowPosterior(LatentPosterior):
    """q(z_T | x): the base Gaussian `base` [..., B, D] pushed through `flow` with the
    context `h` [..., B, C]. A draw keeps log q at its own z (base density less the
    log-determinant); `log_prob` at any other z inverts the flow, one dimension a pass.
    `mean`, the point code, is the flow's image of the base mean."""

    def __init__(
        self,
        base: Posterior,
        h: torch.Tensor,
        flow: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
        inverse: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    ):
        self.base, self.h, self.flow, self.inverse = base, h, flow, inverse
        self.logvar = None  # no one Gaussian's variance describes it

    @property
    def mean(self) -> torch.Tensor:
        return self.flow(self.base.mean, self.h)[0]

    def draw(self, noise: torch.Generator | NoiseSource | None = None) -> Draw:
        z0 = self.base.sample(noise)
        z, log_det = self.flow(z0, self.h)
        log_q = self.base.log_prob(z0) - log_det

        def density(at: torch.Tensor) -> torch.Tensor:
            return log_q  # `at` is this draw's z (or its float32 cast): its density is known

        return Draw(z, density)

    def sample(self, noise: torch.Generator | NoiseSource | None = None) -> torch.Tensor:
        return self.draw(noise).z

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        z0 = self.inverse(z.float(), self.h.float())
        _, log_det = self.flow(z0, self.h.float())
        return self.base.log_prob(z0) - log_det

    def expand(self, n: int) -> FlowPosterior:
        h = self.h.unsqueeze(0).expand(n, *self.h.shape)
        return FlowPosterior(self.base.expand(n), h, self.flow, self.inverse)


class IafMLP(LatentModel):
    Config = IafMlpConfig

    def __init__(self, config: IafMlpConfig, image_size: int = 28):
        super().__init__(config, image_size)
        pixels, hidden, latent = image_size * image_size, config.hidden_dim, config.latent_dim
        self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(pixels, hidden), nn.ReLU(inplace=True))
        self.mean = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)
        self.context = nn.Linear(hidden, config.context_dim)
        self.flow = IafFlow(config)
        self.decoder = nn.Sequential(
            nn.Linear(latent, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, pixels),
            nn.Unflatten(1, (1, image_size, image_size)),
        )
        initialise(self, config.init)

    def encode(self, x: torch.Tensor) -> FlowPosterior:
        h = self.hidden(x)
        base = self.posterior(self.mean(h), self.logvar(h))
        return FlowPosterior(base, self.context(h), self.flow, self.flow.inverse)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)
