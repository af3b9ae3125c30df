"""Named overlays on params.yaml for quick runs: `vaelab profile small`.

A profile shrinks the data, epochs and estimator sizes while keeping every experiment and
architecture, so a pull request (or a test) runs the whole pipeline in minutes. The result
is still validated by the params schema before it replaces params.yaml. `vaelab profile
full` puts back the committed params.yaml, comments and all, unless the file holds edits
that no profile made.
"""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import typer
import yaml

from vaelab.config.experiments import experiments_of
from vaelab.config.params import parse_params
from vaelab.core.cli import user_errors
from vaelab.core.errors import ParamsError
from vaelab.core.files import write_text

PROFILES = {
    # seconds: what the tests run end to end
    "tiny": {
        "train_limit": 256,
        "test_limit": 128,
        "epochs": 1,
        "batch_size": 32,
        "iwae_samples": 5,
        "eval_batch_size": 64,
        "manifold_size": 4,
        "samples": 4,
        "classifier_epochs": 1,
        "sample_count": 64,
    },
    # a few minutes on a laptop CPU: what the pull-request workflow runs
    "small": {
        "train_limit": 6000,
        "test_limit": 1000,
        "epochs": 2,
        "batch_size": None,
        "iwae_samples": 50,
        "eval_batch_size": 500,
        "manifold_size": 10,
        "samples": 16,
        "classifier_epochs": 1,
        "sample_count": 1000,
    },
}


def apply_profile(params: dict, name: str) -> dict:
    if name not in PROFILES:
        raise ParamsError(f"profile {name!r} is unknown; allowed: {', '.join(PROFILES)}, {FULL}")
    profile = PROFILES[name]
    literature = params.get("literature") or {"experiments": {}, "evaluate": {}}
    own_prepared = literature.get("prepared", {})
    for prepared in [*params["data"]["prepared"].values(), *own_prepared.values()]:
        prepared.update(train_limit=profile["train_limit"], test_limit=profile["test_limit"])
    for spec in [*params["experiments"].values(), *literature["experiments"].values()]:
        spec["epochs"] = min(spec["epochs"], profile["epochs"])
        if profile["batch_size"]:
            spec["batch_size"] = profile["batch_size"]
        if spec.get("validation"):  # a quarter of the shrunk training split
            spec["validation"] = min(spec["validation"], profile["train_limit"] // 4)
        if spec.get("pseudo_inputs"):
            spec["pseudo_inputs"] = min(spec["pseudo_inputs"], profile["samples"] * 4)
    for evaluate in (params["evaluate"], literature["evaluate"]):
        evaluate.update(iwae_samples=profile["iwae_samples"], batch_size=profile["eval_batch_size"])
    params["render"].update(manifold_size=profile["manifold_size"], samples=profile["samples"])
    classifier = params["classifier"]
    classifier["epochs"] = min(classifier["epochs"], profile["classifier_epochs"])
    params["samples"]["count"] = profile["sample_count"]
    parsed = parse_params(params)
    experiments_of(parsed, track="references")
    if parsed.literature is not None:
        experiments_of(parsed, track="literature")
    return params


FULL = "full"


def restore_committed(params: Path) -> None:
    """params.yaml as git's HEAD holds it, where the present file is that or a profile of it."""
    shown = subprocess.run(
        ["git", "show", f"HEAD:./{params.name}"],
        cwd=params.parent,
        capture_output=True,
        text=True,
    )
    if shown.returncode != 0:
        raise ParamsError(f"{params}: git holds no committed version of it to put back")
    committed = yaml.safe_load(shown.stdout)
    current = yaml.safe_load(params.read_text())
    made_by_a_profile = [apply_profile(copy.deepcopy(committed), name) for name in PROFILES]
    if current != committed and current not in made_by_a_profile:
        raise ParamsError(
            f"{params} holds edits that no profile made (`git diff {params}` shows them); "
            f"commit them, or drop them with `git checkout {params}`, then run it again"
        )
    write_text(params, shown.stdout)


@user_errors
def main(
    name: str = typer.Argument(
        ..., help=f"One of: {', '.join(PROFILES)}, or {FULL} for the committed params."
    ),
    params: Path = typer.Option(Path("params.yaml"), help="The params file to rewrite."),
) -> None:
    """Rewrite the params file in place with profile NAME applied (full: none)."""
    if name == FULL:
        restore_committed(params)
        print(f"{params}: the committed params put back")
        return
    try:
        raw = yaml.safe_load(params.read_text())
    except OSError as exc:
        raise ParamsError(f"{params}: cannot read ({exc.strerror})") from None
    write_text(params, yaml.safe_dump(apply_profile(raw, name), sort_keys=False))
    print(f"{params}: profile {name!r} applied")
