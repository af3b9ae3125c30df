"""The schema of params.yaml, section by section.

`load_params` checks every section but the insides of `experiments`, which depend on the
model and objective registries: `vaelab.config.experiments` checks those, for the stages that
train or load models. So the data stages never import a model, and a change to a model
file never reruns a download.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator

from vaelab.core.errors import ParamsError
from vaelab.core.knobs import (
    BatchSize,
    Epochs,
    Knobs,
    Rate,
    Samples,
    Seed,
    Tiles,
    quote,
    unknown_name,
    validate,
)

# binarized_mnist: Larochelle & Murray's fixed binarization of MNIST (the literature's)
Dataset = Literal["mnist", "fashion_mnist", "binarized_mnist"]
# bf16 autocast while training; auto: where the hardware computes bf16 natively
# (vaelab.runtime.device.uses_bf16). docs/training-speed.md says why it is the default.
Amp = Literal[False, True, "auto"]


class PreparedSpec(Knobs):
    """One (dataset, transform) pair; a `prepare@NAME` stage writes it."""

    dataset: Dataset
    binarize: Literal["threshold", "stochastic", "dynamic", "none"]
    size: Literal[28, 32]
    seed: Seed = 0
    train_limit: int | None = Field(default=None, ge=1)
    test_limit: int | None = Field(default=None, ge=1)


class DataSpec(Knobs):
    mirrors: dict[Dataset, list[str]] = Field(min_length=1)
    prepared: dict[str, PreparedSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _prepared_datasets_have_mirrors(self) -> DataSpec:
        check_mirrors("data.prepared", self.prepared, self.mirrors)
        return self


def check_mirrors(
    where: str, prepared: dict[str, PreparedSpec], mirrors: dict, sections: str = "data.mirrors"
) -> None:
    for name, spec in prepared.items():
        if spec.dataset not in mirrors:
            raise ParamsError(
                f"{where}.{name}.dataset = {spec.dataset!r} has no entry in {sections} "
                f"(have: {', '.join(mirrors)})"
            )


def check_paths(where: str, paths: list[str]) -> None:
    """metrics.json's keys are fixed names (docs/metrics.md): a path part that is a number
    is a value written as a key, as `iwae_at_k.200` was; a figure's k is its own field."""
    for path in paths:
        numbers = [part for part in path.split(".") if part.isdigit()]
        if numbers:
            raise ParamsError(
                f"{where}: {path!r} names the value {numbers[0]} as a key; metrics.json's keys "
                "are fixed names (docs/metrics.md): give an IWAE figure's k as the entry's `k` "
                "and the path as evaluate.iwae.nll_nats"
            )


class EvaluateSpec(Knobs):
    iwae_samples: Samples
    # the bound also at these k: the k of a published figure, which reads higher at a
    # smaller k (pythae's VAE is at 200), so each number sits beside its own kind
    also_k: list[Samples] = Field(default_factory=list)
    batch_size: BatchSize
    seed: Seed = 0


class RenderSpec(Knobs):
    manifold_size: Tiles
    samples: int = Field(ge=1, le=1024)  # pictures of samples, one grid
    interpolation_pairs: int = Field(default=8, ge=1, le=64)  # test-image pairs, one row each
    interpolation_steps: Tiles = 10  # codes per path, ends included
    traversal_steps: Tiles = 9  # codes per latent dimension (D > 2)


class ClassifierSpec(Knobs):
    """The CNN that a classifier@NAME stage trains on each prepared set."""

    epochs: Epochs
    batch_size: BatchSize
    lr: Rate
    seed: Seed = 0
    amp: Amp = "auto"  # its training only: the features that score samples stay fp32
    shift: int = Field(default=0, ge=0, le=16)  # pixels a training image may move each way; 0: none


class SamplesSpec(Knobs):
    """How samples@EXP scores each sampler's samples."""

    count: int = Field(
        ge=2, le=100_000
    )  # samples per sampler, and real images per set of the floors
    mixture_components: int = Field(ge=1, le=1000)
    seed: Seed = 0


class PublishedFigure(Knobs):
    """What a tutorial or a paper printed, and which of our numbers measure the same thing.

    `ours` are dotted paths into `evaluate` (the experiment's metrics.json) or `last_epoch`
    (the training log's summary of the final epoch), of key names only, never a value. An
    NLL figure's `k` (its importance samples) makes `evaluate.iwae.X` X at that k: `iwae`
    when it was evaluated at k, else the `iwae_at_k` record of k.
    """

    published: str
    ours: list[str] = Field(min_length=1)
    k: Samples | None = None  # an NLL figure's importance samples
    # the recipe's epochs, where the experiment runs fewer (a long recipe committed in
    # parts): the page says how many of them ran and projects the rest
    epochs: Epochs | None = None


class Track(Knobs):
    """A set of experiments and how to evaluate them, run by its own pipeline file."""

    # name -> the experiment's keys; vaelab.config.experiments checks what is inside
    experiments: dict[str, dict[str, Any]] = Field(min_length=1)
    evaluate: EvaluateSpec
    # datasets only this track downloads, and prepared sets only it trains on: its own
    # pipeline file downloads and prepares them
    mirrors: dict[Dataset, list[str]] = Field(default_factory=dict)
    prepared: dict[str, PreparedSpec] = Field(default_factory=dict)


TRACKS = ("references", "literature")


class Params(Knobs):
    device: Literal["auto", "cpu", "cuda", "mps"]
    threads: int = Field(ge=0, le=1024)
    data: DataSpec
    # the references track: dvc.yaml runs these (`dvc repro`)
    experiments: dict[str, dict[str, Any]] = Field(min_length=1)
    evaluate: EvaluateSpec
    render: RenderSpec
    # the literature track: literature/dvc.yaml runs these (`dvc repro literature/dvc.yaml`)
    literature: Track | None = None
    classifier: ClassifierSpec
    samples: SamplesSpec
    published: dict[str, PublishedFigure] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names_are_unique_and_referenced(self) -> Params:
        literature = self.literature.experiments if self.literature else {}
        for name in set(self.experiments) & set(literature):
            raise ParamsError(f"literature.experiments.{name}: the name is taken by experiments")
        own_prepared = self.literature.prepared if self.literature else {}
        for name in set(self.data.prepared) & set(own_prepared):
            raise ParamsError(f"literature.prepared.{name}: the name is taken by data.prepared")
        own_mirrors = self.literature.mirrors if self.literature else {}
        for name in set(self.data.mirrors) & set(own_mirrors):
            raise ParamsError(f"literature.mirrors.{name}: the dataset is in data.mirrors")
        check_mirrors(
            "literature.prepared",
            own_prepared,
            self.mirrors(),
            "data.mirrors or literature.mirrors",
        )
        for name, figure in self.published.items():
            if name not in self.experiments and name not in literature:
                raise ParamsError(unknown_name("published", name, [*self.experiments, *literature]))
            check_paths(f"published.{name}.ours", figure.ours)
        return self

    def track(self, track: str) -> Track:
        if track == "literature" and self.literature is not None:
            return self.literature
        if track == "references":
            return Track(experiments=self.experiments, evaluate=self.evaluate)
        allowed = TRACKS if self.literature is not None else TRACKS[:1]
        raise ParamsError(f"track {track!r} is invalid: allowed values are {', '.join(allowed)}")

    def experiment_keys(self, name: str, *, track: str) -> dict[str, Any]:
        experiments = self.track(track).experiments
        where = "experiments" if track == "references" else f"{track}.experiments"
        if name not in experiments:
            raise ParamsError(unknown_name(where, name, experiments))
        return experiments[name]

    def mirrors(self) -> dict[str, list[str]]:
        """Every dataset either pipeline downloads, with its mirrors."""
        return {**self.data.mirrors, **(self.literature.mirrors if self.literature else {})}

    def prepared_sets(self, *, track: str) -> dict[str, PreparedSpec]:
        """The prepared sets a track's experiments may train on: data.prepared and its own."""
        return {**self.data.prepared, **self.track(track).prepared}

    def prepared(self, name: str) -> PreparedSpec:
        """A prepared set of any track."""
        every = {**self.data.prepared, **(self.literature.prepared if self.literature else {})}
        if name not in every:
            raise ParamsError(unknown_name("data.prepared", name, every))
        return every[name]


def parse_params(raw: Any) -> Params:
    return validate(Params, raw)


def read_params_file(path: Path | str) -> Any:
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path}: params file not found; run from the project root") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ParamsError(
            f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}"
        ) from None


def load_params(path: Path | str = "params.yaml") -> Params:
    return parse_params(read_params_file(path))


__all__ = ["Params", "PreparedSpec", "load_params", "parse_params", "quote"]
