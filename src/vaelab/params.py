"""One typed schema for params.yaml, shared by every stage.

Every stage loads the whole file through `load_params`, so a misspelt key or a bad value
anywhere fails fast with one line naming the key, the value and what is allowed, before
any work starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vaelab.errors import ParamsError

DATASETS = ("mnist", "fashion_mnist")
BINARIZE_MODES = ("threshold", "stochastic", "none")
IMAGE_SIZES = (28, 32)
MODELS = ("cvae", "vae_mlp", "ae_conv", "vae_conv")
AUTOENCODERS = ("ae_conv",)
OBJECTIVES = ("mc_elbo", "analytic_elbo", "weighted", "bce")
OPTIMIZERS = ("adam", "rmsprop")
DEVICES = ("auto", "cpu", "cuda", "mps")
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")


def _choice(*allowed: str) -> dict:
    return {"choices": allowed}


def _at_least(lo: float) -> dict:
    return {"min": lo}


def _above(lo: float) -> dict:
    return {"gt": lo}


@dataclass(frozen=True)
class PreparedSpec:
    """One (dataset, transform) pair; a `prepare@NAME` stage writes it."""

    dataset: str = field(metadata=_choice(*DATASETS))
    binarize: str = field(metadata=_choice(*BINARIZE_MODES))
    size: int = field(metadata=_choice(*IMAGE_SIZES))
    seed: int = 0
    train_limit: int | None = field(default=None, metadata=_at_least(1))
    test_limit: int | None = field(default=None, metadata=_at_least(1))


@dataclass(frozen=True)
class DataSpec:
    mirrors: dict[str, list[str]]
    prepared: dict[str, PreparedSpec]


@dataclass(frozen=True)
class ExperimentSpec:
    data: str
    model: str = field(metadata=_choice(*MODELS))
    objective: str = field(metadata=_choice(*OBJECTIVES))
    latent_dim: int = field(metadata=_at_least(1))
    epochs: int = field(metadata=_at_least(1))
    batch_size: int = field(metadata=_at_least(1))
    optimizer: str = field(metadata=_choice(*OPTIMIZERS))
    lr: float = field(metadata=_above(0))
    seed: int = 0
    hidden_dim: int = field(default=256, metadata=_at_least(1))
    recon_weight: float = field(default=1.0, metadata=_above(0))
    kl_weight: float = field(default=1.0, metadata=_at_least(0))
    logvar_clamp: float | None = field(default=None, metadata=_above(0))
    amp: bool = False
    compile: str = field(default="none", metadata=_choice(*COMPILE_MODES))


@dataclass(frozen=True)
class EvaluateSpec:
    iwae_samples: int = field(metadata=_at_least(1))
    batch_size: int = field(metadata=_at_least(1))
    seed: int = 0


@dataclass(frozen=True)
class RenderSpec:
    manifold_size: int = field(metadata=_at_least(2))
    samples: int = field(metadata=_at_least(1))


@dataclass(frozen=True)
class Params:
    device: str = field(metadata=_choice(*DEVICES))
    threads: int = field(metadata=_at_least(0))
    data: DataSpec
    experiments: dict[str, ExperimentSpec]
    evaluate: EvaluateSpec
    render: RenderSpec

    def experiment(self, name: str) -> ExperimentSpec:
        if name not in self.experiments:
            raise ParamsError(_unknown("experiments", name, self.experiments))
        return self.experiments[name]

    def prepared(self, name: str) -> PreparedSpec:
        if name not in self.data.prepared:
            raise ParamsError(_unknown("data.prepared", name, self.data.prepared))
        return self.data.prepared[name]


def _unknown(where: str, name: str, known) -> str:
    hint = difflib.get_close_matches(name, list(known), n=1)
    did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
    return f"{where}: unknown name {name!r}{did_you_mean}; allowed: {', '.join(known)}"


def _fmt(value: Any) -> str:
    return (
        repr(value)
        if isinstance(value, str)
        else yaml.safe_dump(value).strip().removesuffix("\n...")
    )


def _convert(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(value, inner, where)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if origin is dict:
        if not isinstance(value, dict) or not value:
            raise ParamsError(f"{where} = {_fmt(value)} is invalid: expected a non-empty mapping")
        _, value_hint = args
        return {str(k): _convert(v, value_hint, f"{where}.{k}") for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list) or not value:
            raise ParamsError(f"{where} = {_fmt(value)} is invalid: expected a non-empty list")
        (item_hint,) = args
        return [_convert(v, item_hint, f"{where}[{i}]") for i, v in enumerate(value)]
    if hint is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"{where} = {_fmt(value)} is invalid: expected true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{where} = {_fmt(value)} is invalid: expected an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamsError(f"{where} = {_fmt(value)} is invalid: expected a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str) or not value:
            raise ParamsError(f"{where} = {_fmt(value)} is invalid: expected a non-empty string")
        return value
    raise TypeError(f"schema type {hint!r} at {where} is not supported")


def _check_constraints(value: Any, meta: typing.Mapping, where: str, written: Any) -> None:
    """Check the converted `value`; errors quote the value as `written` in the file."""
    if value is None:
        return
    if "choices" in meta and value not in meta["choices"]:
        raise ParamsError(
            f"{where} = {_fmt(written)} is invalid: allowed values are "
            f"{', '.join(map(str, meta['choices']))}"
        )
    if "min" in meta and value < meta["min"]:
        raise ParamsError(f"{where} = {_fmt(written)} is invalid: must be >= {meta['min']}")
    if "gt" in meta and not value > meta["gt"]:
        raise ParamsError(f"{where} = {_fmt(written)} is invalid: must be > {meta['gt']}")


def _build(cls: type, mapping: Any, where: str):
    if not isinstance(mapping, dict):
        raise ParamsError(
            f"{where} = {_fmt(mapping)} is invalid: expected a mapping of "
            f"{', '.join(f.name for f in dataclasses.fields(cls))}"
        )
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    prefix = f"{where}." if where else ""
    for key in mapping:
        if key not in fields:
            hint = difflib.get_close_matches(str(key), list(fields), n=1)
            did_you_mean = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ParamsError(
                f"{prefix}{key}: unknown key{did_you_mean} (allowed: {', '.join(fields)})"
            )
    values = {}
    for name, f in fields.items():
        key = f"{prefix}{name}"
        if name not in mapping:
            if f.default is dataclasses.MISSING:
                raise ParamsError(f"{key}: missing required key")
            continue
        values[name] = _convert(mapping[name], hints[name], key)
        _check_constraints(values[name], f.metadata, key, mapping[name])
    return cls(**values)


def _check_cross_references(params: Params) -> None:
    for dataset in params.data.mirrors:
        if dataset not in DATASETS:
            raise ParamsError(
                f"data.mirrors.{dataset}: unknown dataset; allowed: {', '.join(DATASETS)}"
            )
    for name, prepared in params.data.prepared.items():
        if prepared.dataset not in params.data.mirrors:
            raise ParamsError(
                f"data.prepared.{name}.dataset = {prepared.dataset!r} has no "
                f"entry in data.mirrors (have: {', '.join(params.data.mirrors)})"
            )
    for name, exp in params.experiments.items():
        where = f"experiments.{name}"
        if exp.data not in params.data.prepared:
            raise ParamsError(
                f"{where}.data = {exp.data!r} is invalid: "
                + _unknown("data.prepared", exp.data, params.data.prepared).split(": ", 1)[1]
            )
        is_ae = exp.model in AUTOENCODERS
        if is_ae != (exp.objective == "bce"):
            allowed = "bce" if is_ae else "mc_elbo, analytic_elbo, weighted"
            raise ParamsError(
                f"{where}.objective = {exp.objective!r} is invalid for model "
                f"{exp.model!r}: allowed values are {allowed}"
            )


def parse_params(raw: Any) -> Params:
    params = _build(Params, raw, "")
    _check_cross_references(params)
    return params


def load_params(path: Path | str = "params.yaml") -> Params:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path}: params file not found; run from the project root") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ParamsError(
            f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}"
        ) from None
    return parse_params(raw)


def as_dict(spec) -> dict:
    """The spec as plain data, for logging and for the model's saved config."""
    return dataclasses.asdict(spec)
