"""Log densities shared by models (their priors) and objectives (their bounds), in nats."""

from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2.0 * math.pi)


def log_normal_pdf(
    sample: torch.Tensor, mean: torch.Tensor | float, logvar: torch.Tensor | float
) -> torch.Tensor:
    """log N(sample; mean, exp(logvar)) summed over the last dimension (reference 000's helper)."""
    logvar = torch.as_tensor(logvar, dtype=sample.dtype, device=sample.device)
    return torch.sum(-0.5 * ((sample - mean) ** 2 * torch.exp(-logvar) + logvar + LOG_2PI), dim=-1)


def log_mixture_pdf(
    sample: torch.Tensor, means: torch.Tensor, logvars: torch.Tensor
) -> torch.Tensor:
    """log 1/K sum_k N(sample; means[k], exp(logvars[k])): samples [..., D], components [K, D].

    The squared distances to all K components come from two matrix products instead of a
    [..., K, D] difference tensor, which made a K = 500 VampPrior's evaluation at k = 5000
    crawl; they are summed in float64 because expanding (z - mu)^2 cancels digits.
    """
    z = sample.double()
    precision = torch.exp(-logvars.double())
    mean = means.double()
    squared = (z * z) @ precision.T - 2.0 * (z @ (mean * precision).T)
    squared = squared + (mean * mean * precision).sum(-1)
    log_norm = logvars.double().sum(-1) + means.shape[-1] * LOG_2PI
    per_component = (-0.5 * (squared + log_norm)).to(sample.dtype)  # [..., K]
    return torch.logsumexp(per_component, dim=-1) - math.log(means.shape[0])
