"""The losses and bounds, shared by training and evaluation. All values are in nats.

An objective is one function (model, x, generator, **knobs) -> Terms and one line in
OBJECTIVES, which names its knobs' config and the kind of model it trains.

log N(z; mu, sigma^2)  = -1/2 sum_d [ (z - mu)^2 / sigma^2 + log sigma^2 + log 2 pi ]
log p(x|z)             = -sum_pixels BCE(logits(z), x)          (Bernoulli decoder)
KL(q(z|x) || N(0, I))  = -1/2 sum_d [ 1 + log sigma^2 - mu^2 - sigma^2 ]   (diagonal Gaussian q)
MC ELBO  (ref. 000)    = log p(x|z) + log p(z) - log q(z|x),    z ~ q(z|x), one sample
analytic ELBO          = E_q[log p(x|z)] - KL,                  the expectation by one sample
                         (with a VampPrior, or a posterior or prior of more than one
                         Gaussian level, the KL has no closed form: log q(z|x) - log p(z)
                         at the same sample z, its one-sample Monte Carlo estimate)
weighted (refs 001-3) = recon_weight * mean_pixels BCE + kl_weight * KL   (a loss)
IWAE_k                 = log 1/k sum_i p(x, z_i) / q(z_i|x),    z_i ~ q(z|x)
VQ-VAE (a loss)        = -log p(x|z_q) + ||sg[z_e] - e||^2 + beta ||z_e - sg[e]||^2
WAE-MMD (a loss)       = -log p(x|z) + lambda MMD^2(codes of x, draws of N(0, I)),  z = code of x
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from vaelab.core.knobs import Knobs
from vaelab.models.base import (
    DiscreteCodes,
    Draw,
    LatentModel,
    LatentPosterior,
    Posterior,
    standard_normal_like,
)


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x|z) per image: minus the pixel-summed cross-entropy of the logits."""
    cross_entropy = F.binary_cross_entropy_with_logits(logits.float(), x, reduction="none")
    return -cross_entropy.flatten(1).sum(dim=1)


def kl_to_standard_normal(posterior: Posterior) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) per image, in closed form."""
    mean, logvar = posterior.mean.float(), posterior.logvar.float()
    return -0.5 * torch.sum(1 + logvar - mean**2 - torch.exp(logvar), dim=-1)


@dataclass
class Terms:
    """A batch's objective: `loss` to minimise, and per-image terms in nats for logging."""

    loss: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor | None = None
    elbo: torch.Tensor | None = None


def closed_form_kl(model: LatentModel, q: LatentPosterior) -> bool:
    """Whether KL(q(z|x) || p(z)) has the closed form: q diagonal Gaussian, p(z) N(0, I)."""
    return model.standard_prior and q.diagonal_gaussian


def kl_term(model: LatentModel, q: LatentPosterior, draw: Draw) -> torch.Tensor:
    """KL(q(z|x) || p(z)) per image: in closed form where it has one, else its one-sample
    estimate log q(z|x) - log p(z) at the drawn z."""
    if closed_form_kl(model, q):
        return kl_to_standard_normal(q)
    z = draw.z.float()
    return draw.log_prob(z) - model.log_prior(z)


def mc_elbo(model: LatentModel, x: torch.Tensor, generator: torch.Generator | None = None) -> Terms:
    """Reference 000's single-sample Monte Carlo ELBO; the loss is its negated batch mean."""
    draw = model.encode(x).draw(generator)
    logpx_z = bernoulli_log_likelihood(model.decode(draw.z), x)
    logpz = model.log_prior(draw.z.float())
    logqz_x = draw.log_prob(draw.z.float())
    elbo = logpx_z + logpz - logqz_x
    return Terms(loss=-elbo.mean(), reconstruction=logpx_z, kl=logqz_x - logpz, elbo=elbo)


class ElboKnobs(Knobs):
    # beta of the beta-VAE: the KL's weight in the loss (the reported ELBO keeps 1)
    kl_weight: float = Field(default=1.0, ge=0, allow_inf_nan=False)
    # KL warm-up (Sonderby et al. 2016): the weight rises linearly from 0 over these epochs
    warmup_epochs: int = Field(default=0, ge=0, le=100_000)

    def bind(self, epoch: int | None) -> dict:
        if not self.warmup_epochs or epoch is None:
            return {"kl_weight": self.kl_weight}
        return {"kl_weight": self.kl_weight * min(1.0, (epoch - 1) / self.warmup_epochs)}


def analytic_elbo(
    model: LatentModel,
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    kl_weight: float = 1.0,
) -> Terms:
    """The ELBO with the KL in closed form (less variance than the MC estimator); the
    loss weighs the KL by `kl_weight` (beta)."""
    q = model.encode(x)
    draw = q.draw(generator)
    logpx_z = bernoulli_log_likelihood(model.decode(draw.z), x)
    kl = kl_term(model, q, draw)
    elbo = logpx_z - kl
    loss = -elbo.mean() if kl_weight == 1.0 else -(logpx_z - kl_weight * kl).mean()
    return Terms(loss=loss, reconstruction=logpx_z, kl=kl, elbo=elbo)


class IwaeKnobs(Knobs):
    k: int = Field(default=50, ge=1, le=100_000)  # importance samples per image (Burda et al. 2015)


def importance_samples(
    model: LatentModel,
    x: torch.Tensor,
    q: LatentPosterior,
    *,
    n: int,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """n draws z_i ~ q(z|x) per image: log p(x|z_i), log p(z_i), log q(z_i|x), each [n, B]."""
    draw = q.expand(n).draw(generator)
    logits = model.decode(draw.z.reshape(-1, draw.z.shape[-1]))
    targets = x.unsqueeze(0).expand(n, *x.shape).reshape(-1, *x.shape[1:])
    logpx_z = bernoulli_log_likelihood(logits, targets).view(n, -1)
    z = draw.z.float()
    return logpx_z, model.log_prior(z), draw.log_prob(z)


def iwae(
    model: LatentModel, x: torch.Tensor, generator: torch.Generator | None = None, *, k: int
) -> Terms:
    """The IWAE objective: the k-sample importance-weighted bound, maximised directly."""
    q = model.encode(x)
    logpx_z, logpz, logqz_x = importance_samples(model, x, q, n=k, generator=generator)
    log_ratio = logpz - logqz_x
    bound = torch.logsumexp(logpx_z + log_ratio, dim=0) - math.log(k)
    return Terms(
        loss=-bound.mean(), reconstruction=logpx_z.mean(0), kl=-log_ratio.mean(0), elbo=bound
    )


class WeightedKnobs(Knobs):
    recon_weight: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    kl_weight: float = Field(default=1.0, ge=0, allow_inf_nan=False)


def weighted_loss(
    model: LatentModel,
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    recon_weight: float,
    kl_weight: float,
) -> Terms:
    """References 001-003: recon_weight x mean-over-pixels BCE + kl_weight x KL.

    With recon_weight = pixel count and kl_weight = 1 this is exactly the negative
    analytic ELBO (reference 001's 784 x BCE + KL); reference 003 uses 500 on 1024 pixels.
    """
    q = model.encode(x)
    draw = q.draw(generator)
    logpx_z = bernoulli_log_likelihood(model.decode(draw.z), x)
    kl = kl_term(model, q, draw)
    pixels = x[0].numel()
    loss = (recon_weight * (-logpx_z / pixels) + kl_weight * kl).mean()
    return Terms(loss=loss, reconstruction=logpx_z, kl=kl, elbo=logpx_z - kl)


class VqKnobs(Knobs):
    # beta: the weight of the commitment loss that keeps z_e near its code (the paper's 0.25)
    commitment_weight: float = Field(default=0.25, ge=0, allow_inf_nan=False)


def vq_loss(
    model: DiscreteCodes,
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    commitment_weight: float,
) -> Terms:
    """van den Oord et al. 2017: the reconstruction through z_q with the straight-through
    gradient, the codebook loss that moves each chosen code towards its encodings (no
    gradient when the codebook learns by moving averages) and the commitment loss, each
    summed over a code's positions and dimensions."""
    q = model.quantise(x)
    logpx_z = bernoulli_log_likelihood(model.decode(q.straight_through), x)
    codebook = ((q.encoded.detach() - q.chosen).float() ** 2).sum((1, 2))
    commitment = ((q.encoded - q.chosen.detach()).float() ** 2).sum((1, 2))
    loss = (-logpx_z + codebook + commitment_weight * commitment).mean()
    return Terms(loss=loss, reconstruction=logpx_z)


def kernel_matrix(a: torch.Tensor, b: torch.Tensor, kernel: str, scale: float) -> torch.Tensor:
    """k(a_i, b_j) [N, M]: inverse multiquadratic C / (C + ||a - b||^2) or Gaussian
    exp(-||a - b||^2 / C), with C = scale * 2 * D (Tolstikhin et al.'s 2 D sigma^2 for a
    prior of variance sigma^2 = 1)."""
    c = scale * 2.0 * a.shape[-1]
    squared = torch.cdist(a, b).square()
    return c / (c + squared) if kernel == "imq" else torch.exp(-squared / c)


def mmd(a: torch.Tensor, b: torch.Tensor, *, kernel: str = "imq", scale: float = 1.0):
    """The unbiased estimate of MMD^2 between the samples a [N, D] and b [M, D] (Gretton
    et al. 2012): the mean kernel within each sample, off the diagonal, less twice the
    mean kernel across them. Near 0 for two samples of one distribution (it can dip below)."""
    n, m = len(a), len(b)
    within_a = kernel_matrix(a, a, kernel, scale)
    within_b = kernel_matrix(b, b, kernel, scale)
    across = kernel_matrix(a, b, kernel, scale)
    return (
        (within_a.sum() - within_a.diagonal().sum()) / (n * (n - 1))
        + (within_b.sum() - within_b.diagonal().sum()) / (m * (m - 1))
        - 2.0 * across.mean()
    )


class WaeKnobs(Knobs):
    mmd_weight: float = Field(
        default=10.0, gt=0, allow_inf_nan=False
    )  # lambda; the paper's MNIST run used 10
    kernel: Literal["imq", "rbf"] = "imq"  # the paper's inverse multiquadratic, or Gaussian
    kernel_scale: float = Field(default=1.0, gt=0, allow_inf_nan=False)  # C in units of 2 D


def wae_mmd(
    model: LatentModel,
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    mmd_weight: float,
    kernel: str,
    kernel_scale: float,
) -> Terms:
    """Tolstikhin et al. 2018, WAE-MMD: the reconstruction cost of each image's code (here
    the Bernoulli decoder's cross-entropy) plus lambda x MMD^2 between the batch's codes and
    as many draws from the prior N(0, I), which the noise source gives. A batch of one
    image has no MMD estimate: its loss is the reconstruction alone."""
    codes = model.encode(x).mean
    logpx_z = bernoulli_log_likelihood(model.decode(codes), x)
    prior = standard_normal_like(codes.float(), generator)
    if len(codes) < 2:
        return Terms(loss=-logpx_z.mean(), reconstruction=logpx_z)
    distance = mmd(codes.float(), prior, kernel=kernel, scale=kernel_scale)
    return Terms(loss=-logpx_z.mean() + mmd_weight * distance, reconstruction=logpx_z)


def autoencoder_bce(
    model: LatentModel, x: torch.Tensor, generator: torch.Generator | None = None
) -> Terms:
    """Reference 003's autoencoder loss: per-pixel BCE averaged over pixels and images."""
    logpx_z = bernoulli_log_likelihood(model.decode(model.encode(x).mean), x)
    return Terms(loss=(-logpx_z / x[0].numel()).mean(), reconstruction=logpx_z)


def iwae_bound(
    model: LatentModel,
    x: torch.Tensor,
    k: int,
    *,
    generator: torch.Generator | None = None,
    chunk: int = 100,
) -> torch.Tensor:
    """log 1/k sum_i p(x, z_i) / q(z_i|x) per image, with k importance samples.

    Samples are drawn `chunk` at a time and combined with logsumexp, so memory stays
    bounded for the literature's k = 5000.
    """
    q = model.encode(x)
    log_weights = []
    for start in range(0, k, chunk):
        logpx_z, logpz, logqz_x = importance_samples(
            model, x, q, n=min(chunk, k - start), generator=generator
        )
        log_weights.append(logpx_z + logpz - logqz_x)
    return torch.logsumexp(torch.cat(log_weights), dim=0) - math.log(k)


@torch.inference_mode()
def mean_terms(
    model: LatentModel,
    images: torch.Tensor,
    objective: Callable[..., Terms],
    *,
    batch_size: int = 1000,
    seed: int = 0,
    labels: torch.Tensor | None = None,
) -> dict[str, float]:
    """Per-image means of an objective's terms over `images` (of class `labels`, which a
    class-conditional model is given), with fixed noise."""
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=images.device).manual_seed(seed)
    sums: dict[str, torch.Tensor] = {}
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size]
        y = None if labels is None else labels[start : start + batch_size].to(x.device)
        terms = objective(model.given(y), x, generator)
        batch = {"loss": terms.loss * len(x), "reconstruction": terms.reconstruction.sum()}
        if terms.kl is not None:
            batch["kl"] = terms.kl.sum()
            batch["elbo"] = terms.elbo.sum()
        for key, value in batch.items():
            sums[key] = sums.get(key, 0) + value.double()
    model.train(was_training)
    return {key: (value / len(images)).item() for key, value in sums.items()}
