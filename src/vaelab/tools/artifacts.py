"""models/dvc.yaml: every experiment's model.pt declared as a DVC artifact.

DVC's `artifacts:` section takes neither `foreach` nor a templated list (each entry is one
name), and the root dvc.yaml names no experiment. So the artifacts live in their own
dvc.yaml beside the models, one entry per experiment in params.yaml, and this command
keeps that list in step: it adds an entry (with a description and labels made from the
experiment's keys) for each new experiment, drops the entries of removed ones, and keeps
the descriptions and labels written by hand. A test fails when the two lists differ.

DVC names an artifact in models/dvc.yaml `models:NAME`: `dvc artifacts get URL models:cvae`.
"""

from __future__ import annotations

from pathlib import Path

import typer
import yaml

from vaelab.config.experiments import experiments_of
from vaelab.config.params import load_params
from vaelab.core.cli import ParamsFile, user_errors
from vaelab.core.errors import ParamsError
from vaelab.core.files import write_text

HEADER = """\
# Every experiment's trained model as a DVC artifact (`dvc artifacts get URL models:NAME`).
# One entry per experiment in params.yaml, kept in step by `vaelab artifacts`,
# which adds and drops entries and leaves hand-written descriptions and labels alone.
# It lives here rather than in the root dvc.yaml, which names no experiment.
"""


def expected_artifacts(params_file: Path, current: dict[str, dict]) -> dict[str, dict]:
    """The artifacts section for params.yaml's experiments, keeping `current`'s hand edits."""
    params = load_params(params_file)
    artifacts = {}
    for name, spec in experiments_of(params, track="references").items():
        dataset = params.prepared(spec.data).dataset
        old = current.get(name) or {}
        artifacts[name] = {
            "path": f"{name}/model.pt",
            "type": "model",
            "desc": old.get("desc")
            or (
                f"{spec.model} trained with {spec.objective} on {spec.data} ({dataset}), "
                f"latent {spec.model_knobs.latent_dim}"
            ),
            "labels": old.get("labels") or [spec.model, spec.objective, dataset],
        }
    return artifacts


def read_artifacts(path: Path) -> dict[str, dict]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return {}
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({exc}); fix or delete it") from None
    artifacts = loaded.get("artifacts") if isinstance(loaded, dict) else None
    if not isinstance(artifacts, dict):
        raise ParamsError(f"{path}: has no `artifacts:` mapping; delete it to regenerate it")
    return artifacts


def render(artifacts: dict[str, dict]) -> str:
    return HEADER + yaml.safe_dump({"artifacts": artifacts}, sort_keys=False, width=100)


def difference(current: dict[str, dict], wanted: dict[str, dict]) -> str:
    """'' when in step, else one clause naming what differs."""
    missing = [n for n in wanted if n not in current]
    extra = [n for n in current if n not in wanted]
    changed = [n for n in wanted if n in current and current[n] != wanted[n]]
    parts = [
        f"{label}: {', '.join(names)}"
        for label, names in (("missing", missing), ("not in params", extra), ("stale", changed))
        if names
    ]
    return "; ".join(parts)


@user_errors
def main(
    params: ParamsFile = Path("params.yaml"),
    out: Path = typer.Option(Path("models/dvc.yaml"), help="The artifacts file to write."),
    check: bool = typer.Option(False, "--check", help="Only report whether it is in step."),
) -> None:
    """Write (or with --check, verify) the artifacts file for params.yaml's experiments."""
    current = read_artifacts(out)
    wanted = expected_artifacts(params, current)
    differs = difference(current, wanted)
    if check:
        if differs:
            raise ParamsError(
                f"{out} is out of step with {params} ({differs}); "
                f"run `vaelab artifacts` and commit it"
            )
        print(f"{out}: in step with {params}")
        return
    if not differs and out.exists():
        print(f"{out}: in step with {params}, unchanged")
        return
    write_text(out, render(wanted))
    print(f"{out}: {len(wanted)} artifacts ({differs})")
