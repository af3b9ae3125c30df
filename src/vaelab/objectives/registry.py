"""The training objectives: one line each, naming its function, its knobs' config and the
kind of model it trains. params validation reads the knobs from here."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from vaelab.core.knobs import Knobs
from vaelab.models.base import LatentModel
from vaelab.objectives import losses
from vaelab.objectives.losses import Terms


class NoKnobs(Knobs):
    """An objective with nothing to set."""


@runtime_checkable
class ScheduledKnobs(Protocol):
    """Knobs whose values change over training, as the KL warm-up's weight does."""

    def bind(self, epoch: int | None) -> dict[str, Any]:
        """The objective's keyword arguments for training epoch `epoch` (from 1); with None,
        their final values."""
        ...


@dataclass(frozen=True)
class Objective:
    """A registered objective: its function, its knobs, and which models it trains."""

    function: Callable[..., Terms]
    Knobs: type[Knobs] = NoKnobs
    variational: bool = True  # trains a posterior q(z|x); False: a plain autoencoder
    discrete: bool = False  # trains a codebook (a DiscreteCodes model's `quantise`)
    matches_prior: bool = False  # matches an autoencoder's codes to N(0, I)

    def trains(self, model: type[LatentModel]) -> bool:
        """Whether it trains this kind of model: variational or not, a codebook or not, an
        autoencoder's codes matched to the prior or not."""
        return (
            self.variational == model.variational
            and self.discrete == model.discrete
            and self.matches_prior == model.matched_to_prior
        )


OBJECTIVES: dict[str, Objective] = {
    "mc_elbo": Objective(losses.mc_elbo),
    "analytic_elbo": Objective(losses.analytic_elbo, losses.ElboKnobs),
    "iwae": Objective(losses.iwae, losses.IwaeKnobs),
    "weighted": Objective(losses.weighted_loss, losses.WeightedKnobs),
    "bce": Objective(losses.autoencoder_bce, variational=False),
    "vq": Objective(losses.vq_loss, losses.VqKnobs, variational=False, discrete=True),
    "wae_mmd": Objective(losses.wae_mmd, losses.WaeKnobs, variational=False, matches_prior=True),
}


def bound_knobs(name: str, knobs: Knobs | None = None, epoch: int | None = None) -> dict:
    """The keyword arguments of objective `name` with `knobs`: ScheduledKnobs (the KL
    warm-up's) give their values for training epoch `epoch`; with no epoch, their final
    values."""
    knobs = knobs if knobs is not None else OBJECTIVES[name].Knobs()
    return knobs.bind(epoch) if isinstance(knobs, ScheduledKnobs) else knobs.model_dump()


def objective_for(
    name: str, knobs: Knobs | None = None, epoch: int | None = None
) -> Callable[..., Terms]:
    """The objective `name` with its knobs bound (`bound_knobs`): a function
    (model, x, generator) -> Terms. A keyword given at the call overrides its bound value."""
    return functools.partial(OBJECTIVES[name].function, **bound_knobs(name, knobs, epoch))
