"""Where latent codes to decode come from, apart from the models (as in pythae).

- `prior`: the model's own prior p(z), the one a VAE is trained towards (N(0, I), the
  VampPrior's mixture, or a hierarchy's ancestral draw; pythae's VAMPSampler for the
  VampPrior) or that a WAE's codes are matched to; a plain autoencoder has none.
- `box`: uniform in the bounding box of the training set's codes, what seed 003 does
  for its autoencoder; gaps and uneven density in the embedding then decode to poor images.
- `mixture`: a Gaussian mixture fitted (scikit-learn's EM) on the training set's posterior
  means: the standard fix for autoencoders (Ghosh et al. 2020, "From variational to
  deterministic autoencoders"), and often better than the prior for a VAE whose aggregate
  posterior does not fill N(0, I).
- `codebook`: for a model whose codes are codebook rows (`DiscreteCodes`, the VQ-VAE), each
  position's row drawn independently from that position's histogram over the training
  codes: the simplest prior fitted on the codes, where van den Oord et al. fit a PixelCNN.

Each is fitted on the training codes once and then draws `count` codes [count, D] from a
seed, so that the same seed gives the same samples. A new sampler is one class and one
`SAMPLERS` entry: the samples stage, its metrics and the report take their list from there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.mixture import GaussianMixture

from vaelab.models.base import LatentModel


class Sampler:
    def sample(self, count: int, seed: int) -> torch.Tensor:
        raise NotImplementedError


class PriorSampler(Sampler):
    def __init__(self, model: LatentModel):
        self.model = model

    def sample(self, count: int, seed: int) -> torch.Tensor:
        return self.model.sample_prior(count, torch.Generator().manual_seed(seed))


class BoxSampler(Sampler):
    def __init__(self, codes: np.ndarray):
        self.low = torch.tensor(codes.min(0), dtype=torch.float32)
        self.high = torch.tensor(codes.max(0), dtype=torch.float32)

    def sample(self, count: int, seed: int) -> torch.Tensor:
        u = torch.rand(count, len(self.low), generator=torch.Generator().manual_seed(seed))
        return self.low + (self.high - self.low) * u


class CodebookSampler(Sampler):
    """Each `width`-wide position of a code drawn from the rows the training codes hold
    there, as often as they hold them; positions independent of each other."""

    def __init__(self, codes: np.ndarray, width: int):
        if codes.shape[1] % width:
            raise ValueError(f"codes of {codes.shape[1]} numbers are not rows of {width}")
        self.positions = []
        for position in codes.reshape(len(codes), -1, width).transpose(1, 0, 2):
            rows, counts = np.unique(position, axis=0, return_counts=True)
            self.positions.append((rows, counts / counts.sum()))

    def sample(self, count: int, seed: int) -> torch.Tensor:
        rng = np.random.default_rng(seed)
        z = [rows[rng.choice(len(rows), size=count, p=p)] for rows, p in self.positions]
        return torch.tensor(np.concatenate(z, axis=1), dtype=torch.float32)


class MixtureSampler(Sampler):
    def __init__(self, codes: np.ndarray, components: int, seed: int):
        # Never more components than codes: sklearn refuses, and a tiny run has few codes.
        self.mixture = GaussianMixture(
            n_components=min(components, len(codes)), covariance_type="full", random_state=seed
        ).fit(codes.astype(np.float64))

    def sample(self, count: int, seed: int) -> torch.Tensor:
        self.mixture.random_state = seed  # GaussianMixture.sample draws from random_state
        z, _ = self.mixture.sample(count)
        # sklearn returns the draws grouped by component; shuffle so a grid is not sorted
        order = np.random.default_rng(seed).permutation(count)
        return torch.tensor(z[order], dtype=torch.float32)


@dataclass(frozen=True)
class SamplerKind:
    description: str  # what its picture in the report shows
    # (the model, its training codes, components, seed, the width of a code's position)
    fit: Callable[[LatentModel | None, np.ndarray, int, int, int], Sampler]
    needs_prior: bool = False  # a plain autoencoder has no prior to draw from
    # None: for every model; True: codebook codes only; False: all but those
    discrete: bool | None = None


SAMPLERS: dict[str, SamplerKind] = {
    "prior": SamplerKind(
        "samples from the model's prior p(z)",
        lambda model, codes, components, seed, width: PriorSampler(model),
        needs_prior=True,
        discrete=False,
    ),
    "box": SamplerKind(
        "samples from the training codes' bounding box",
        lambda model, codes, components, seed, width: BoxSampler(codes),
    ),
    # a codebook's codes are too wide and too degenerate for a full-covariance mixture
    "mixture": SamplerKind(
        "samples from a Gaussian mixture fitted on the training codes",
        lambda model, codes, components, seed, width: MixtureSampler(codes, components, seed),
        discrete=False,
    ),
    "codebook": SamplerKind(
        "samples from each code position's histogram of codebook rows in the training codes",
        lambda model, codes, components, seed, width: CodebookSampler(codes, width),
        discrete=True,
    ),
}


def samplers_for(prior: bool, discrete: bool = False) -> tuple[str, ...]:
    """The samplers that make sense for a model: with a `prior` to draw from (a VAE's, a
    WAE's) or without, with `discrete` codebook codes or continuous ones."""
    return tuple(
        n
        for n, kind in SAMPLERS.items()
        if (prior or not kind.needs_prior) and kind.discrete in (None, discrete)
    )


def fit_sampler(
    name: str,
    train_codes: np.ndarray,
    components: int,
    seed: int,
    width: int | None = None,
    model: LatentModel | None = None,
) -> Sampler:
    """The sampler `name`, fitted on the training set's codes [N, D] of `model` (which the
    prior sampler draws from), whose positions (for the codebook sampler) are `width`
    numbers wide (the whole code when None)."""
    if name not in SAMPLERS:
        raise ValueError(f"sampler {name!r}; allowed: {', '.join(SAMPLERS)}")
    if SAMPLERS[name].needs_prior and model is None:
        raise ValueError(f"sampler {name!r} draws from a model's prior: pass the model")
    return SAMPLERS[name].fit(model, train_codes, components, seed, width or train_codes.shape[1])
