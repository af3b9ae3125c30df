"""What every model shares: its config, its posterior and the encode/decode interface."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol, runtime_checkable

import torch
from pydantic import Field, model_validator
from torch import nn

from vaelab.core.knobs import Knobs
from vaelab.models.densities import log_mixture_pdf, log_normal_pdf


class ModelConfig(Knobs):
    """The knobs every model takes; a model with more subclasses this beside its class."""

    latent_dim: int = Field(ge=1, le=65_536)


class VariationalConfig(ModelConfig):
    # Bounds log sigma^2 to [-c, c]: a guard against an exploding posterior variance.
    logvar_clamp: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    # p(z): N(0, I), or the VampPrior (Tomczak & Welling 2018): the mixture of the
    # posteriors of `pseudo_inputs` learned images.
    prior: Literal["standard", "vamp"] = "standard"
    pseudo_inputs: int | None = Field(default=None, ge=1, le=100_000)

    @model_validator(mode="after")
    def _pseudo_inputs_go_with_vamp(self):
        if self.pseudo_inputs is not None and self.prior != "vamp":
            raise ValueError("pseudo_inputs is a knob of prior: vamp only")
        return self


class PseudoInputs(nn.Module):
    """The VampPrior's K learned images, kept in [0, 1] by a hard tanh, as in the paper's code
    (initialised around 0.05, a faint grey)."""

    def __init__(self, count: int, image_size: int):
        super().__init__()
        self.raw = nn.Parameter(torch.empty(count, 1, image_size, image_size).normal_(0.05, 0.01))

    def forward(self) -> torch.Tensor:
        return nn.functional.hardtanh(self.raw, 0.0, 1.0)


class NoiseSource(Protocol):
    """Where the reparameterisation noise comes from when it is not a plain generator: a
    torchrun rank draws its slice of the whole batch's noise (vaelab.training.ddp),
    so that N ranks see the noise one process would."""

    def normal_like(self, mean: torch.Tensor) -> torch.Tensor: ...


def standard_normal_like(
    mean: torch.Tensor, noise: torch.Generator | NoiseSource | None
) -> torch.Tensor:
    """eps ~ N(0, I) shaped like `mean`, from a generator or a NoiseSource."""
    if noise is None or isinstance(noise, torch.Generator):
        return torch.randn(mean.shape, generator=noise, device=mean.device, dtype=mean.dtype)
    return noise.normal_like(mean)


@dataclass
class Quantised:
    """A batch through a codebook quantiser: the encodings z_e [B, P, D], the codebook rows
    e_k chosen for them [B, P, D] (carrying the codebook's gradient, if it learns by one),
    their indices k [B, P], and z_q = z_e + sg[e_k - z_e] flattened [B, P * D], whose
    value is the rows' and whose gradient goes to z_e unchanged (straight through)."""

    encoded: torch.Tensor
    chosen: torch.Tensor
    indices: torch.Tensor
    straight_through: torch.Tensor


@runtime_checkable
class DiscreteCodes(Protocol):
    """A model whose code is a few vectors from a learned codebook (VQ-VAE): a code is P
    positions' codebook rows of `latent_dim` numbers each, concatenated, and its `decode`
    snaps each row to the nearest codebook row. Its objective trains through `quantise`;
    evaluate reports the codebook's usage; the `codebook` sampler, fitted per position on
    the training codes, draws its samples."""

    codebook_size: int

    def quantise(self, x: torch.Tensor) -> Quantised: ...

    def code_indices(self, x: torch.Tensor) -> torch.Tensor:
        """The codebook row of each position of each image's code [B, P], int64."""
        ...


@dataclass
class Draw:
    """A reparameterised z ~ q(z|x) and its posterior's density at it."""

    z: torch.Tensor
    density: Callable[[torch.Tensor], torch.Tensor]

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z|x) at `z`, which is this draw's z or a cast of it (its float32 copy under
        mixed precision). It takes z so that each objective keeps its own casts, and with
        them the order its gradients are summed in: the one-level models train bit for bit
        as before this interface."""
        return self.density(z)


class LatentPosterior:
    """What the objectives ask of q(z|x), whatever its form: draws z (reparameterised, so
    gradients flow), log q(z|x) at a z, and n draws per image. `mean` is a point code for
    embeddings and pictures, and what `decode` takes is shaped like it."""

    # q(z|x) = N(mean, diag exp(logvar)): with the prior N(0, I) the KL has a closed form
    diagonal_gaussian: ClassVar[bool] = False
    mean: torch.Tensor
    logvar: torch.Tensor | None

    def sample(self, noise: torch.Generator | NoiseSource | None = None) -> torch.Tensor:
        raise NotImplementedError

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z|x) summed over the latent dimensions, in float32, for z [..., B, D]."""
        raise NotImplementedError

    def draw(self, noise: torch.Generator | NoiseSource | None = None) -> Draw:
        """z ~ q(z|x), able to give log q(z|x) at it; a posterior that computes something on
        the way to z which its density needs again (a conditional's parameters) keeps it."""
        return Draw(self.sample(noise), self.log_prob)

    def expand(self, n: int) -> LatentPosterior:
        """The same posterior n times over: its draws are [n, B, D], n per image."""
        raise NotImplementedError


@dataclass
class Posterior(LatentPosterior):
    """q(z|x) as a diagonal Gaussian; an autoencoder's code is `mean` with `logvar` None."""

    diagonal_gaussian: ClassVar[bool] = True
    mean: torch.Tensor
    logvar: torch.Tensor | None

    def sample(self, noise: torch.Generator | NoiseSource | None = None) -> torch.Tensor:
        """z = mean + exp(logvar / 2) * eps, the reparameterisation trick."""
        if self.logvar is None:
            return self.mean
        return self.mean + torch.exp(0.5 * self.logvar) * standard_normal_like(self.mean, noise)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return log_normal_pdf(z.float(), self.mean.float(), self.logvar.float())

    def expand(self, n: int) -> Posterior:
        return Posterior(
            self.mean.unsqueeze(0).expand(n, *self.mean.shape),
            self.logvar.unsqueeze(0).expand(n, *self.logvar.shape),
        )


class LatentModel(nn.Module):
    """An encoder to a latent code and a decoder to Bernoulli logits over pixels.

    A subclass names its `Config`, whether it is `variational` (has a posterior q(z|x) and
    a prior p(z)) and the `image_sizes` it takes; it is rebuilt from `(config, image_size)`
    alone. A model whose posterior or prior is not the one-level kind here brings its own:
    `encode` returns any LatentPosterior, and `log_prior` is the whole log p(z).
    """

    Config: ClassVar[type[ModelConfig]] = VariationalConfig
    variational: ClassVar[bool] = True
    image_sizes: ClassVar[tuple[int, ...]] = (28, 32)
    # class-conditional: `encode(x, labels)` and `decode(z, labels)`, which every caller
    # reaches through `given(labels)`, the interface of an unconditional model
    conditional: ClassVar[bool] = False
    # its code is rows of a learned codebook: it is a DiscreteCodes, trained through `quantise`
    discrete: ClassVar[bool] = False
    # an autoencoder whose objective matches its codes to N(0, I) (a Wasserstein autoencoder)
    matched_to_prior: ClassVar[bool] = False

    def __init__(self, config: ModelConfig, image_size: int):
        super().__init__()
        self.config = config
        self.latent_dim = config.latent_dim
        self.image_size = image_size
        vamp = isinstance(config, VariationalConfig) and config.prior == "vamp"
        self.pseudo_inputs = PseudoInputs(config.pseudo_inputs or 500, image_size) if vamp else None
        self._prior_cache: tuple | None = None

    @property
    def standard_prior(self) -> bool:
        """p(z) = N(0, I), so KL(q || p) has a closed form for a diagonal Gaussian q."""
        return self.pseudo_inputs is None

    @property
    def has_prior(self) -> bool:
        """Codes drawn from N(0, I) decode to samples: a VAE's prior with its standard
        density, or the prior an autoencoder's codes are matched to (a Wasserstein
        autoencoder's); not a plain autoencoder's. Its pictures then sit in prior units."""
        return self.variational or self.matched_to_prior

    def given(self, labels: torch.Tensor | None) -> LatentModel:
        """The model for images of these class labels [B]: a class-conditional model bound to
        them (`Conditioned`), every other model itself, whatever the labels. Objectives,
        estimators and pictures call encode and decode on what this returns."""
        if not self.conditional:
            return self
        if labels is None:
            raise ValueError(f"{type(self).__name__} is class-conditional: pass the labels")
        return Conditioned(self, labels)

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) summed over the latent dimensions, for z [..., D]: all of p(z), whatever
        its structure (a hierarchical model overrides this with its chain of conditionals)."""
        return self.log_top_prior(z)

    def log_top_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log of the prior the config names (N(0, I) or the VampPrior) at z [..., D]: over
        all of z for a one-level model, over the top latent of a hierarchical one."""
        if self.pseudo_inputs is None:
            return log_normal_pdf(z, 0.0, 0.0)
        return log_mixture_pdf(z, *self.prior_components())

    def sample_prior(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """`count` codes [count, D] drawn from p(z), with noise from `generator` (a CPU one),
        on the CPU: all of p(z), whatever its structure (a hierarchical model overrides
        this with its ancestral draw)."""
        return self.sample_top_prior(count, generator)

    def sample_top_prior(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """Draws of the prior the config names: N(0, I), or the VampPrior (a pseudo-input
        chosen uniformly, then its posterior's Gaussian)."""
        if self.pseudo_inputs is None:
            return torch.randn(count, self.latent_dim, generator=generator)
        with torch.no_grad():
            mean, logvar = (t.cpu() for t in self.prior_components())
        pick = torch.randint(len(mean), (count,), generator=generator)
        return Posterior(mean[pick], logvar[pick]).sample(generator)

    def prior_components(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The VampPrior's mixture components: the posteriors of the pseudo-inputs."""
        if self._prior_cache is not None:
            return self._prior_cache
        mean, logvar = self.pseudo_input_posteriors(self.pseudo_inputs())
        return mean.float(), logvar.float()

    def pseudo_input_posteriors(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of the Gaussian posterior of the latent the VampPrior is
        put on, for each pseudo-input in u."""
        q = self.encode(u)
        return q.mean, q.logvar

    @contextmanager
    def frozen_prior(self) -> Iterator[None]:
        """Within it the caller promises not to change the weights, so the VampPrior's
        components are encoded once instead of on every `log_prior` call (an evaluation at
        k = 5000 makes a hundred thousand of them). Only an explicit promise will do: a
        fused optimizer step writes the parameters without bumping their version counters,
        so a cache cannot tell on its own that the weights changed."""
        if self.pseudo_inputs is None or self._prior_cache is not None:
            yield
            return
        with torch.no_grad():
            self._prior_cache = self.prior_components()
        try:
            yield
        finally:
            self._prior_cache = None

    def posterior(self, mean: torch.Tensor, logvar: torch.Tensor | None) -> Posterior:
        clamp = self.config.logvar_clamp if isinstance(self.config, VariationalConfig) else None
        if logvar is not None and clamp is not None:
            logvar = logvar.clamp(-clamp, clamp)
        return Posterior(mean, logvar)

    def encode(self, x: torch.Tensor) -> LatentPosterior:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Logits of p(x|z), shaped like the input images [B, 1, S, S]."""
        raise NotImplementedError


class HiddenHeads(LatentModel):
    """An MLP's layout: `hidden` features with `mean` and `logvar` heads, and a `decoder`."""

    def encode(self, x: torch.Tensor) -> Posterior:
        h = self.hidden(x)
        return self.posterior(self.mean(h), self.logvar(h))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)


class Conditioned:
    """A class-conditional model bound to labels [B]: `encode(x)` and `decode(z)` as an
    unconditional model's, everything else the model's own. A decode of n codes per image
    (importance samples, stacked n-major as `LatentPosterior.expand` lays them out, or a
    single label for every code) repeats the labels to match."""

    def __init__(self, model: LatentModel, labels: torch.Tensor):
        self.model, self.labels = model, labels

    def __getattr__(self, name: str):
        return getattr(self.model, name)

    def given(self, labels: torch.Tensor | None) -> LatentModel | Conditioned:
        return self if labels is None else Conditioned(self.model, labels)

    def _labels_for(self, rows: int) -> torch.Tensor:
        if rows % len(self.labels):
            raise ValueError(f"{rows} codes for {len(self.labels)} labels")
        return self.labels.repeat(rows // len(self.labels))

    def encode(self, x: torch.Tensor) -> LatentPosterior:
        return self.model.encode(x, self._labels_for(len(x)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.decode(z, self._labels_for(len(z)))
