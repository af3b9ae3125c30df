"""Where the stages after training start: params, device, the model and its test split,
and the check that the model file is the experiment's own.

model.pt says what it is: the experiment's name and every key it trained with, and the
prepared folder it trained on (its meta and, since vaelab recorded it, a hash of its
files). A file copied from another experiment, trained with other params or on other data
is refused in one line before anything is computed or written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vaelab.config.experiments import ExperimentSpec, load_experiment
from vaelab.config.params import Params
from vaelab.core.errors import DataError
from vaelab.core.progress import say
from vaelab.data.splits import Split, load_split, prepared_fingerprint, read_meta
from vaelab.models.saved import SavedModel, load_model
from vaelab.runtime.device import resolve_device

# how each track's pipeline file addresses its stages (dvc.yaml, literature/dvc.yaml)
_STAGE_PREFIX = {"references": "", "literature": "literature/dvc.yaml:"}

# keys that say how a model was trained but not what it is: torchrun started by hand
# trains `processes: 1` on several ranks, and the ranks change only the summation order
_NOT_COMPARED = {"processes"}


class ForeignModel(DataError):
    """A model file that is not the one the experiment asks for."""


@dataclass
class Trained:
    params: Params
    device: torch.device
    saved: SavedModel
    test: Split

    @property
    def model(self):
        return self.saved.model


def load_trained(
    name: str, *, params: Path, model: Path, data: Path, track: str, limit: int | None = None
) -> Trained:
    """Validate params (experiment NAME of `track`), pick the device, load the model, check
    that it is NAME's own, trained on `data`, and load the test split of `data`."""
    config, spec = load_experiment(params, name, track=track)
    device = resolve_device(config.device, config.threads)
    saved = load_model(model, device)
    check_model_belongs(saved, model, name=name, spec=spec, data=data, track=track)
    return Trained(config, device, saved, load_split(data, "test", limit))


def load_experiment_model(
    name: str,
    *,
    track: str,
    params: Path | str = "params.yaml",
    model: Path | str | None = None,
    data: Path | str | None = None,
    device: torch.device | str = "cpu",
) -> SavedModel:
    """The notebook loader: experiment NAME's model.pt (by default where its train stage
    writes it, beside `params`), checked against NAME in `params` and the prepared folder
    `data` (by default its data.prepared folder there), in eval mode on `device`."""
    params = Path(params)
    _, spec = load_experiment(params, name, track=track)
    root = params.parent
    if model is None:
        folder = "models" if track == "references" else f"models/{track}"
        model = root / folder / name / "model.pt"
    if data is None:
        data = root / "data/prepared" / spec.data
    saved = load_model(Path(model), device)
    check_model_belongs(saved, Path(model), name=name, spec=spec, data=Path(data), track=track)
    return saved


def check_model_belongs(
    saved: SavedModel, path: Path, *, name: str, spec: ExperimentSpec, data: Path, track: str
) -> None:
    """Raise ForeignModel unless `saved` (read from `path`) is experiment NAME's model as
    `spec` describes it today, trained on the prepared folder `data`."""
    recorded = saved.experiment
    train_stage = f"{_STAGE_PREFIX.get(track, '')}train@{name}"
    remedy = f"restore it with `dvc checkout {path}` or retrain it with `dvc repro {train_stage}`"
    owner = recorded.get("name")
    if owner != name:
        raise ForeignModel(
            f"{path} is the model of experiment {owner!r} ({_what(recorded)}), not of {name!r} "
            f"({spec.model} on {spec.data}); {remedy}"
        )
    changed = [
        f"{key} {_show(recorded.get(key, default))} (params: {_show(value)})"
        for key, (value, default) in _keys_with_defaults(spec).items()
        if key not in _NOT_COMPARED and recorded.get(key, default) != value
    ]
    if changed:
        raise ForeignModel(
            f"{path} was trained with other keys than experiment {name!r} has now: "
            f"{', '.join(changed)}; {remedy}"
        )
    _check_data(recorded, path, data, remedy)


def _check_data(recorded: dict, path: Path, data: Path, remedy: str) -> None:
    meta = read_meta(data)
    differ = [
        f"{key} {_show(recorded[key])} ({data}: {_show(meta.get(key))})"
        for key in ("dataset", "binarize", "classes")
        if key in recorded and recorded[key] != meta.get(key)
    ]
    fingerprint = recorded.get("data_fingerprint")
    if not differ and fingerprint is not None and fingerprint != prepared_fingerprint(data):
        differ = [f"its files' hash {fingerprint[:12]}… ({data}: another)"]
    if differ:
        raise ForeignModel(
            f"{path} was trained on other data than {data}: {', '.join(differ)}; pass the "
            f"folder of data.prepared.{recorded.get('data')} with --data, or {remedy}"
        )
    if fingerprint is None:
        say(
            f"  {path} records no hash of its data (it was trained before vaelab recorded "
            f"one): checked its dataset, binarization and classes against {data} only"
        )


def _keys_with_defaults(spec: ExperimentSpec) -> dict[str, tuple[Any, Any]]:
    """Every key of the experiment as params.yaml writes it, with its default: a model.pt
    from before a key existed trained with what is now that key's default."""
    fields = {
        **type(spec).model_fields,
        **type(spec.model_knobs).model_fields,
        **type(spec.objective_knobs).model_fields,
    }
    return {
        key: (value, _NOT_RECORDED if fields[key].is_required() else fields[key].default)
        for key, value in spec.flat().items()
    }


class _NotRecorded:
    def __repr__(self) -> str:
        return "not recorded"


_NOT_RECORDED = _NotRecorded()


def _what(recorded: dict) -> str:
    return f"{recorded.get('model', '?')} on {recorded.get('data', '?')}"


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)
