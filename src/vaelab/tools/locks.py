"""Check that dvc.lock records the code and params of today's tree:
`vaelab locks`.

A stage whose recorded code or params hash differs from the tree's claims results that
today's code did not produce: `dvc status` in a clone that has the outputs would rerun it.
DVC's own status finds the differences; this command keeps those that matter without the
outputs (code files and folders that no stage writes, params, the stage's command) and
drops the rest, such as an output or a data dependency missing from a fresh clone. So a
change that moves a stage must come with its rerun (`dvc repro`) or, where results provably
did not move, `dvc commit -f` of that stage.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import typer
import yaml

from vaelab.core.cli import user_errors
from vaelab.core.errors import VaelabError

ROOT_PIPELINE = "dvc.yaml"


@dataclass
class LockReport:
    stale: dict[str, list[str]] = field(default_factory=dict)  # stage -> what moved
    unrecorded: dict[str, list[str]] = field(default_factory=dict)  # pipeline -> stages


def check_locks(root: Path) -> LockReport:
    """Every stage of every pipeline under `root`, held against its dvc.lock entry."""
    from dvc.repo import Repo  # seconds to import; only this command needs it

    root = Path(root).resolve()
    report = LockReport()
    with Repo(os.fspath(root)) as repo:
        stages = list(repo.index.stages)
        outs = [Path(out.fs_path).resolve() for stage in stages for out in stage.outs]
        status = repo.status()
    recorded: dict[Path, set[str]] = {}
    for stage in stages:
        pipeline = Path(stage.dvcfile.path).resolve()
        if pipeline not in recorded:
            recorded[pipeline] = _recorded(pipeline.with_name("dvc.lock"))
        relative = pipeline.relative_to(root).as_posix()
        if stage.name not in recorded[pipeline]:
            report.unrecorded.setdefault(relative, []).append(stage.name)
            continue
        # DVC's own address is relative to the current directory; ours to the project
        address = stage.name if relative == ROOT_PIPELINE else f"{relative}:{stage.name}"
        moved = _moved(status.get(stage.addressing, []), root, outs)
        if moved:
            report.stale[address] = moved
    return report


def _recorded(lock: Path) -> set[str]:
    try:
        loaded = yaml.load(lock.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader) or {}
    except FileNotFoundError:
        return set()
    return set(loaded.get("stages") or {})


def _moved(changes: list, root: Path, outs: list[Path]) -> list[str]:
    moved = []
    for change in changes:
        if isinstance(change, str):  # "changed command", "always changed"
            moved.append(change)
            continue
        for path, state in change.get("changed deps", {}).items():
            if isinstance(state, dict):  # a params file: the keys that moved
                moved += [f"{path}:{key} {key_state}" for key, key_state in state.items()]
            elif _is_code(root / path, outs):
                moved.append(f"{path} {state}")
    return moved


def _is_code(path: Path, outs: list[Path]) -> bool:
    """A dependency that is in git and no stage writes: neither an output nor a folder
    holding one (reports/experiments holds every experiment's metrics and pictures)."""
    path = path.resolve()
    return not any(out == path or path in out.parents for out in outs)


@user_errors
def main(
    root: Path = typer.Option(Path("."), help="The project to check."),
) -> None:
    """Report the stages whose dvc.lock entry does not match today's code and params."""
    report = check_locks(root)
    for pipeline, names in report.unrecorded.items():
        print(f"{pipeline}: never run here: {', '.join(names)}")
    for stage, moved in report.stale.items():
        print(f"{stage}: {'; '.join(moved)}")
    if report.stale:
        raise VaelabError(
            f"{len(report.stale)} stages recorded with other code or params than today's "
            f"(listed above); rerun them with `dvc repro`, or prove their results unchanged "
            f"and record them with `dvc commit -f`"
        )
    print("dvc.lock: every recorded stage matches today's code and params")
