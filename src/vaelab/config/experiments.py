"""An experiment's keys: the training keys every experiment has, plus the knobs of its
model and of its objective, all side by side in one flat params.yaml entry.

The model and objective registries say which knobs each takes, so a key that the chosen
model and objective do not use is an error naming it, rather than a silent change to
DVC's hash that retrains an identical model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from vaelab.config.params import Amp, Params, PreparedSpec, load_params
from vaelab.core.errors import ParamsError
from vaelab.core.knobs import (
    BatchSize,
    Epochs,
    Knobs,
    Processes,
    Rate,
    Seed,
    did_you_mean,
    quote,
    unknown_name,
    validate,
)
from vaelab.models.base import ModelConfig
from vaelab.models.registry import MODELS
from vaelab.models.saved import RECORD_KEYS
from vaelab.objectives.registry import OBJECTIVES


class TrainingSpec(Knobs):
    """The keys every experiment has, whatever its model and objective."""

    data: str
    model: str
    objective: str
    epochs: Epochs
    batch_size: BatchSize
    optimizer: Literal["adam", "adam_normgrad", "rmsprop"]  # vaelab.training.optimizers
    lr: Rate
    # The optimiser's settings default to Keras's, which the reference tutorials trained
    # with; PyTorch's own (1e-8, 0.99), which the literature's scripts use, are one key away.
    optimizer_eps: Rate = 1e-7
    rmsprop_alpha: float | None = Field(default=None, gt=0, lt=1)  # RMSprop only; default 0.9
    # MultiStepLR: after each epoch listed, the learning rate is multiplied by lr_gamma
    lr_milestones: list[Epochs] = Field(default_factory=list)
    lr_gamma: float | None = Field(default=None, gt=0, le=1)
    seed: Seed = 0
    amp: Amp = "auto"
    # Hold out the last N training images: per-epoch curves use them instead of the test
    # split, and the model kept is the epoch with the best validation ELBO.
    validation: int = Field(default=0, ge=0, le=10_000_000)
    patience: Epochs | None = None  # stop after this many epochs without one
    # torch.compile of the training objective; reduce-overhead adds CUDA graphs on a GPU
    compile: Literal["none", "default", "reduce-overhead", "max-autotune"] = "none"
    # ranks of one data-parallel training under torchrun (vaelab.training.ddp); 1 trains in the
    # stage's own process. The results match 1 process's up to float summation order.
    processes: Processes = 1

    @model_validator(mode="after")
    def _keys_agree(self):
        if self.patience is not None and not self.validation:
            raise ValueError("patience needs a validation split: set validation (e.g. 10000)")
        if self.processes > 1 and self.validation:
            raise ValueError("processes > 1 does not yet support a validation split; use 1")
        if self.rmsprop_alpha is not None and self.optimizer != "rmsprop":
            raise ValueError(
                f"rmsprop_alpha is a knob of optimizer 'rmsprop', not {self.optimizer!r}; "
                "remove it or set optimizer: rmsprop"
            )
        if (self.lr_gamma is None) != (not self.lr_milestones):
            raise ValueError(
                "lr_milestones and lr_gamma go together: set both for a MultiStepLR schedule, "
                "or neither for a constant rate"
            )
        milestones = self.lr_milestones
        if any(m < 1 for m in milestones) or milestones != sorted(set(milestones)):
            raise ValueError(
                f"lr_milestones = {milestones} is invalid: must be increasing epochs >= 1"
            )
        return self


class ExperimentSpec(TrainingSpec):
    """One validated experiment: its training keys and its model's and objective's knobs."""

    model_knobs: ModelConfig
    objective_knobs: Knobs

    def flat(self) -> dict[str, Any]:
        """Every key as params.yaml writes it, defaults filled in."""
        training = self.model_dump(exclude={"model_knobs", "objective_knobs"})
        return {**training, **self.model_knobs.model_dump(), **self.objective_knobs.model_dump()}


def _choose(where: str, key: str, value: Any, registry: dict) -> str:
    if value is None:
        raise ParamsError(f"{where}.{key}: missing required key")
    if value not in registry:
        hint = did_you_mean(value, registry) if isinstance(value, str) else ""
        raise ParamsError(
            f"{where}.{key} = {quote(value)} is invalid: allowed values are "
            f"{', '.join(registry)}{hint}"
        )
    return value


def parse_experiment(
    where: str, raw: Any, prepared: dict[str, PreparedSpec] | None = None
) -> ExperimentSpec:
    """Validate one experiment entry; with the `prepared` sets its track may train on, check
    its data against the model too."""
    if not isinstance(raw, dict):
        raise ParamsError(f"{where} = {quote(raw)} is invalid: expected a mapping")
    model_name = _choose(where, "model", raw.get("model"), MODELS)
    objective_name = _choose(where, "objective", raw.get("objective"), OBJECTIVES)
    model, objective = MODELS[model_name], OBJECTIVES[objective_name]
    _check_knob_names(model_name, objective_name)
    own = TrainingSpec.keys()
    model_keys, objective_keys = model.Config.keys(), objective.Knobs.keys()
    for key in raw:
        if key not in own + model_keys + objective_keys:
            raise ParamsError(_misplaced(where, key, model_name, objective_name))
    training = validate(TrainingSpec, {k: v for k, v in raw.items() if k in own}, where)
    spec = ExperimentSpec(
        **training.model_dump(),
        model_knobs=validate(
            model.Config, {k: v for k, v in raw.items() if k in model_keys}, where
        ),
        objective_knobs=validate(
            objective.Knobs, {k: v for k, v in raw.items() if k in objective_keys}, where
        ),
    )
    if not objective.trains(model):
        fitting = [name for name, o in OBJECTIVES.items() if o.trains(model)]
        raise ParamsError(
            f"{where}.objective = {objective_name!r} is invalid for model {model_name!r}: "
            f"allowed values are {', '.join(fitting)}"
        )
    if prepared is not None:
        _check_data(where, spec, prepared)
    return spec


def _check_knob_names(model_name: str, objective_name: str) -> None:
    """Each key of an experiment means one thing: a model's or objective's knob may not
    share its name with a training key, a key model.pt records, or the other's knob."""
    taken = {key: "a training key" for key in TrainingSpec.keys()}
    taken.update({key: "a key model.pt records" for key in RECORD_KEYS})
    owners = (
        (f"model {model_name!r}", MODELS[model_name].Config),
        (f"objective {objective_name!r}", OBJECTIVES[objective_name].Knobs),
    )
    for owner, config in owners:
        for key in config.keys():
            if key in taken:
                raise ParamsError(
                    f"{owner} has a knob {key!r}, which is also {taken[key]}; rename it in "
                    f"{config.__module__}.{config.__qualname__}"
                )
            taken[key] = f"a knob of {owner}"


def _misplaced(where: str, key: str, model_name: str, objective_name: str) -> str:
    """An unknown key: a knob of another model or objective, or a misspelling."""
    model_keys = MODELS[model_name].Config.keys()
    objective_keys = OBJECTIVES[objective_name].Knobs.keys()
    models = [repr(n) for n, m in MODELS.items() if key in m.Config.keys()]
    objectives = [repr(n) for n, o in OBJECTIVES.items() if key in o.Knobs.keys()]
    owners = [f"model {', '.join(models)}"] if models else []
    owners += [f"objective {', '.join(objectives)}"] if objectives else []
    if owners:
        return (
            f"{where}.{key}: not used by model {model_name!r} (takes "
            f"{', '.join(model_keys) or 'nothing'}) nor objective {objective_name!r} (takes "
            f"{', '.join(objective_keys) or 'nothing'}); it is a key of {' and '.join(owners)}"
        )
    allowed = TrainingSpec.keys() + model_keys + objective_keys
    return f"{where}.{key}: unknown key{did_you_mean(key, allowed)} (allowed: {', '.join(allowed)})"


def _check_data(where: str, spec: ExperimentSpec, prepared: dict[str, PreparedSpec]) -> None:
    if spec.data not in prepared:
        message = unknown_name("data.prepared", spec.data, prepared)
        raise ParamsError(f"{where}.data = {spec.data!r} is invalid: {message.split(': ', 1)[1]}")
    size = prepared[spec.data].size
    sizes = MODELS[spec.model].image_sizes
    if size not in sizes:
        raise ParamsError(
            f"{where}.data = {spec.data!r} is invalid for model {spec.model!r}: its images are "
            f"{size}x{size}, the model takes {' or '.join(f'{s}x{s}' for s in sizes)}"
        )


def experiments_of(params: Params, *, track: str) -> dict[str, ExperimentSpec]:
    """Every experiment of a track validated, so a bad key anywhere fails before any work."""
    where = "experiments" if track == "references" else f"{track}.experiments"
    return {
        name: parse_experiment(f"{where}.{name}", raw, params.prepared_sets(track=track))
        for name, raw in params.track(track).experiments.items()
    }


def load_experiment(path: Path | str, name: str, track: str) -> tuple[Params, ExperimentSpec]:
    """The params file and experiment NAME of `track` from it, the track's experiments
    checked."""
    params = load_params(path)
    params.experiment_keys(name, track=track)
    return params, experiments_of(params, track=track)[name]
