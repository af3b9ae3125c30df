"""Typed knobs and their one-line errors, on pydantic.

Every section of params.yaml, every model's config and every objective's config is a
`Knobs` class: strict types (no "5" for 5, no true for 1), unknown keys forbidden, frozen.
`validate` turns pydantic's report into the project's one line: the dotted key, the value
as written and what is allowed, with a did-you-mean for a misspelt key.
"""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Iterable
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vaelab.core.errors import ParamsError

# Bounds that keep a run feasible: outside them a value is one line here, never a traceback
# from torch or numpy (a seed that overflows a generator, a picture of gigabytes) nor a
# silent inf. Seeds leave headroom below 2**64 for the offsets added to them.
Seed = Annotated[int, Field(ge=0, le=2**63 - 1)]
Rate = Annotated[float, Field(gt=0, allow_inf_nan=False)]  # learning rates, epsilons
# tiles of a picture's side (a 28-pixel tile makes 64 of them 1,792 pixels wide)
Tiles = Annotated[int, Field(ge=2, le=64)]
# Counts: far above any run of the papers, far below an allocation that cannot succeed.
Epochs = Annotated[int, Field(ge=1, le=100_000)]
BatchSize = Annotated[int, Field(ge=1, le=1_000_000)]
Samples = Annotated[int, Field(ge=1, le=100_000)]  # importance samples k
Processes = Annotated[int, Field(ge=1, le=1024)]


class Knobs(BaseModel):
    """A block of settings: strict, closed to unknown keys, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @classmethod
    def keys(cls) -> list[str]:
        return list(cls.model_fields)


def quote(value: Any) -> str:
    """A value as it would be written in params.yaml."""
    if isinstance(value, str):
        return repr(value)
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...")


def did_you_mean(name: str, known: Iterable[str]) -> str:
    hint = difflib.get_close_matches(str(name), list(known), n=1)
    return f"; did you mean {hint[0]!r}?" if hint else ""


def unknown_name(where: str, name: str, known: Iterable[str]) -> str:
    known = list(known)
    hint = difflib.get_close_matches(name, known, n=1)
    suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
    return f"{where}: unknown name {name!r}{suggestion}; allowed: {', '.join(known)}"


def join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def validate(cls: type[Knobs], data: Any, where: str = "") -> Any:
    """`cls` built from `data`, or a ParamsError naming the first bad key under `where`."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise ParamsError(_one_line(cls, exc.errors()[0], where)) from None


_EXPECTED = {
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "list_type": "expected a list",
}


def _one_line(cls: type, error: dict, where: str) -> str:
    loc = error["loc"]
    key = where
    for part in loc:
        key = join(key, part)
    kind = error["type"]
    if kind == "value_error" and not loc:  # a rule across keys, from a model validator
        return f"{key}: {str(error['ctx']['error'])}"
    if kind == "missing":
        return f"{key}: missing required key"
    if kind == "extra_forbidden":
        allowed = _fields_at(cls, loc[:-1])
        return f"{key}: unknown key{did_you_mean(loc[-1], allowed)} (allowed: {', '.join(allowed)})"
    written = quote(error["input"])
    ctx = error.get("ctx", {})
    if kind == "literal_error":
        choices = ctx["expected"].replace("'", "").replace(" or ", ", ")
        choices = re.sub(r"\b(True|False)\b", lambda m: m[0].lower(), choices)  # YAML's spelling
        return f"{key} = {written} is invalid: allowed values are {choices}"
    if kind in _BOUNDS:
        return f"{key} = {written} is invalid: must be {_range_at(cls, loc, ctx)}"
    if kind == "finite_number":
        return f"{key} = {written} is invalid: must be a finite number"
    if kind == "too_short":
        return f"{key} = {written} is invalid: must not be empty"
    if kind in _EXPECTED:
        return f"{key} = {written} is invalid: {_EXPECTED[kind]}"
    return f"{key} = {written} is invalid: {error['msg'][0].lower()}{error['msg'][1:]}"


_BOUNDS = ("greater_than_equal", "greater_than", "less_than_equal", "less_than")


def _range_at(cls: type, loc: tuple, violated: dict) -> str:
    """The allowed range of the field at `loc`, both ends where it has both ("within
    [2, 64]"), else the one bound pydantic reported (">= 1")."""
    bounds = {}
    field = _field_at(cls, loc)
    for constraint in field.metadata if field is not None else []:
        for name in ("ge", "gt", "le", "lt"):
            if getattr(constraint, name, None) is not None:
                bounds[name] = getattr(constraint, name)
    bounds = bounds or violated
    low = next(((n, bounds[n]) for n in ("ge", "gt") if n in bounds), None)
    high = next(((n, bounds[n]) for n in ("le", "lt") if n in bounds), None)
    if low and high:
        left, right = "[" if low[0] == "ge" else "(", "]" if high[0] == "le" else ")"
        return f"within {left}{_number(low[1])}, {_number(high[1])}{right}"
    name, value = low or high
    symbol = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}[name]
    return f"{symbol} {_number(value)}"


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _field_at(cls: type, loc: tuple):
    """The FieldInfo of the key at `loc`, or None where it is not a model's field."""
    parent = _model_at(cls, loc[:-1])
    return parent.model_fields.get(loc[-1]) if parent is not None else None


def _model_at(cls: type, loc: tuple):
    """The Knobs class at `loc` inside `cls`, following fields, dicts and lists."""
    hint: Any = cls
    for part in loc:
        if _is_model(hint):
            hint = hint.model_fields[part].annotation
        else:
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            hint = args[-1] if args else Any
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if typing.get_origin(hint) is not None and len(args) == 1 and _is_model(args[0]):
            hint = args[0]  # Optional[Model]
    return hint if _is_model(hint) else None


def _fields_at(cls: type, loc: tuple) -> list[str]:
    """The keys allowed at `loc` inside `cls`, following fields, dicts and lists."""
    model = _model_at(cls, loc)
    return list(model.model_fields) if model is not None else []


def _is_model(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, BaseModel)
