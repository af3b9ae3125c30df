"""Where latent codes to decode come from, apart from the models (as in pythae).

- `prior`: N(0, I), the prior a VAE is trained towards; an autoencoder has none.
- `box`: uniform in the bounding box of the training set's codes, what seed 003 does
  for its autoencoder; gaps and uneven density in the embedding then decode to poor images.
- `mixture`: a Gaussian mixture fitted (scikit-learn's EM) on the training set's posterior
  means: the standard fix for autoencoders (Ghosh et al. 2020, "From variational to
  deterministic autoencoders"), and often better than the prior for a VAE whose aggregate
  posterior does not fill N(0, I).

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


class Sampler:
    def sample(self, count: int, seed: int) -> torch.Tensor:
        raise NotImplementedError


class PriorSampler(Sampler):
    def __init__(self, dims: int):
        self.dims = dims

    def sample(self, count: int, seed: int) -> torch.Tensor:
        return torch.randn(count, self.dims, generator=torch.Generator().manual_seed(seed))


class BoxSampler(Sampler):
    def __init__(self, codes: np.ndarray):
        self.low = torch.tensor(codes.min(0), dtype=torch.float32)
        self.high = torch.tensor(codes.max(0), dtype=torch.float32)

    def sample(self, count: int, seed: int) -> torch.Tensor:
        u = torch.rand(count, len(self.low), generator=torch.Generator().manual_seed(seed))
        return self.low + (self.high - self.low) * u


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
    fit: Callable[[np.ndarray, int, int], Sampler]  # (training codes, components, seed)
    variational_only: bool = False  # an autoencoder has no prior to draw from


SAMPLERS: dict[str, SamplerKind] = {
    "prior": SamplerKind(
        "samples from the prior N(0, I)",
        lambda codes, components, seed: PriorSampler(codes.shape[1]),
        variational_only=True,
    ),
    "box": SamplerKind(
        "samples from the training codes' bounding box",
        lambda codes, components, seed: BoxSampler(codes),
    ),
    "mixture": SamplerKind(
        "samples from a Gaussian mixture fitted on the training codes",
        lambda codes, components, seed: MixtureSampler(codes, components, seed),
    ),
}


def samplers_for(variational: bool) -> tuple[str, ...]:
    """The samplers that make sense for a model."""
    return tuple(n for n, kind in SAMPLERS.items() if variational or not kind.variational_only)


def fit_sampler(name: str, train_codes: np.ndarray, components: int, seed: int) -> Sampler:
    """The sampler `name`, fitted on the training set's codes [N, D]."""
    if name not in SAMPLERS:
        raise ValueError(f"sampler {name!r}; allowed: {', '.join(SAMPLERS)}")
    return SAMPLERS[name].fit(train_codes, components, seed)
