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
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from vaelab.core.errors import ParamsError


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
    if kind == "greater_than_equal":
        return f"{key} = {written} is invalid: must be >= {ctx['ge']:g}"
    if kind == "greater_than":
        return f"{key} = {written} is invalid: must be > {ctx['gt']:g}"
    if kind == "too_short":
        return f"{key} = {written} is invalid: must not be empty"
    if kind in _EXPECTED:
        return f"{key} = {written} is invalid: {_EXPECTED[kind]}"
    return f"{key} = {written} is invalid: {error['msg'][0].lower()}{error['msg'][1:]}"


def _fields_at(cls: type, loc: tuple) -> list[str]:
    """The keys allowed at `loc` inside `cls`, following fields, dicts and lists."""
    hint: Any = cls
    for part in loc:
        if isinstance(hint, type) and issubclass(hint, BaseModel):
            hint = hint.model_fields[part].annotation
        else:
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            hint = args[-1] if args else Any
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if typing.get_origin(hint) is not None and len(args) == 1 and _is_model(args[0]):
            hint = args[0]  # Optional[Model]
    return list(hint.model_fields) if _is_model(hint) else []


def _is_model(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, BaseModel)
