"""A full disk, or any I/O error, is one line that says what was kept, and leaves no
partial file; a write reaches the disk before its rename, and the rename after it; under
DVC the line says how to get back the outputs DVC removed."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys

import pytest
import torch
import yaml
from conftest import BIN, ROOT, experiment, run_env
from full_disk import PARTIAL_BYTES, FillsUp
from test_failures import TRAIN_T, run_stage, stage_project

from vaelab.core.errors import WriteError
from vaelab.core.files import atomic_dir, atomic_path, write_text
from vaelab.runtime.device import processor

FULL = "No space left on device"
FREE_SOME = "free some space on its disk (or use another folder) and run it again"


def test_a_full_disk_keeps_the_previous_file_and_leaves_no_partial_one(tmp_path):
    target = tmp_path / "metrics.json"
    write_text(target, "old")
    with pytest.raises(WriteError) as caught, atomic_path(target) as tmp:
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert str(caught.value) == (
        f"cannot write {target}: {FULL}; the previous metrics.json is kept unchanged, no partial "
        f"file left; {FREE_SOME}"
    )
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_torch_saving_onto_a_full_disk_is_a_write_error(tmp_path, monkeypatch):
    """torch.save wraps the OSError of the file it writes in a RuntimeError of its own."""
    import vaelab.core.tensor_files as tensor_files
    import vaelab.evaluation.classifier as classifier

    monkeypatch.setattr(tensor_files, "open", FillsUp(room=0), raising=False)
    target = tmp_path / "classifier.pt"
    with pytest.raises(WriteError, match=f"^cannot write {target}: {FULL}; no classifier.pt"):
        classifier.save_classifier(target, classifier.DigitCNN(28, 10), {})
    assert list(tmp_path.iterdir()) == []


def test_a_folder_written_onto_a_full_disk_leaves_the_previous_one(tmp_path):
    target = tmp_path / "prepared"
    with atomic_dir(target) as folder:
        (folder / "meta.json").write_text("old")
    with pytest.raises(WriteError, match=f"^cannot write {target}: {FULL}; the previous prepared/"):
        with atomic_dir(target) as folder:
            (folder / "meta.json").write_text("new")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert [p.name for p in tmp_path.iterdir()] == ["prepared"]
    assert (target / "meta.json").read_text() == "old"


def test_what_a_crash_left_of_a_write_goes_with_the_next_write(tmp_path):
    # mid-write, and set aside just before the rename, as mkstemp and mkdtemp name them
    leftovers = [".prepared.tmp-k3j9x0aa", ".prepared.old-p1q2r3s4", ".meta.json.abcd1234.tmp"]
    for name in leftovers[:2]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "train.pt").write_bytes(b"half")
    (tmp_path / leftovers[2]).write_text("half")
    (tmp_path / ".other.json.abcd1234.tmp").write_text("another file's")
    with atomic_dir(tmp_path / "prepared") as folder:
        (folder / "train.pt").write_bytes(b"whole")
    write_text(tmp_path / "meta.json", "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".other.json.abcd1234.tmp",
        "meta.json",
        "prepared",
    ]


def _recording_flushes(monkeypatch) -> list[tuple[str, int]]:
    """os.fsync and os.replace, recorded by the inode they act on."""
    events: list[tuple[str, int]] = []
    fsync, replace = os.fsync, os.replace

    def recorded_fsync(fd):
        events.append(("fsync", os.fstat(fd).st_ino))
        fsync(fd)

    def recorded_replace(source, dest):
        events.append(("replace", os.stat(source).st_ino))
        replace(source, dest)

    monkeypatch.setattr(os, "fsync", recorded_fsync)
    monkeypatch.setattr(os, "replace", recorded_replace)
    return events


def test_a_file_is_flushed_before_its_rename_and_its_folder_after(tmp_path, monkeypatch):
    events = _recording_flushes(monkeypatch)
    write_text(tmp_path / "metrics.json", "{}")
    written = (tmp_path / "metrics.json").stat().st_ino
    folder = tmp_path.stat().st_ino
    assert events == [("fsync", written), ("replace", written), ("fsync", folder)]


def test_a_folder_is_flushed_file_by_file_before_its_rename(tmp_path, monkeypatch):
    with atomic_dir(tmp_path / "out") as folder:
        (folder / "old.txt").write_text("old")
    events = _recording_flushes(monkeypatch)
    with atomic_dir(tmp_path / "out") as folder:
        (folder / "sub").mkdir()
        (folder / "a.txt").write_text("a")
        (folder / "sub" / "b.txt").write_text("b")
    out = tmp_path / "out"
    inodes = {p.stat().st_ino for p in (out / "a.txt", out / "sub" / "b.txt", out / "sub", out)}
    first_rename = events.index(next(e for e in events if e[0] == "replace"))
    assert {inode for _, inode in events[:first_rename]} == inodes
    assert ("replace", out.stat().st_ino) in events[first_rename:]
    assert events[-1] == ("fsync", tmp_path.stat().st_ino)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# the train stage with the .pt writer's `open` on a disk that has room for one checkpoint
ON_A_FULL_DISK = """
import runpy, sys
sys.path.insert(0, {tests!r})
import full_disk
import vaelab.core.tensor_files
vaelab.core.tensor_files.open = full_disk.FillsUp(room=1)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_a_full_disk_while_training_is_one_line_and_the_next_run_resumes(tmp_path, prepared_data):
    project = stage_project(tmp_path, prepared_data, epochs=3, batch_size=16)
    args = [*TRAIN_T, "--limit", "64"]
    driver = ON_A_FULL_DISK.format(tests=str(ROOT / "tests"))
    full = subprocess.run(
        [sys.executable, "-c", driver, str(ROOT / "stages/train.py"), "t", *args],
        cwd=project,
        env=run_env(),
        capture_output=True,
        text=True,
    )
    assert full.returncode == 2, full.stderr
    assert "Traceback" not in full.stderr
    assert [line for line in full.stderr.splitlines() if line.startswith("error:")] == [
        f"error: cannot write models/t/checkpoint.pt: {FULL}; the previous checkpoint.pt is kept "
        "unchanged, no partial file left; dvclive's files in reports/t/train removed; the "
        "checkpoint after epoch 1 (models/t/checkpoint.pt) is kept: the next run resumes from "
        f"it; {FREE_SOME}"
    ]
    checkpoint = project / "models/t/checkpoint.pt"
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 1
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == ["checkpoint.pt"]
    assert [p for p in (project / "reports/t/train").rglob("*") if p.is_file()] == []

    resumed = run_stage(project, "train.py", "t", *args)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from the checkpoint after epoch 1" in resumed.stderr
    model = torch.load(project / "models/t/model.pt", weights_only=True)
    assert [r["epoch"] for r in model["history"]] == [1, 2, 3]
    frames = project / "reports/t/train/plots/images/reconstructions"
    assert sorted(p.name for p in frames.iterdir()) == ["1.png", "2.png", "3.png"]


@pytest.mark.parametrize(
    "module, room, written",
    [
        # dvclive's per-metric tables: the second epoch's first line is cut short
        ("dvclive.plots.metric", 6, "a metric's .tsv"),
        # its params.yaml at the start goes through; its summary at the end does not
        ("dvclive.serialize", 1, "metrics.json"),
    ],
)
def test_a_full_disk_under_dvclive_removes_its_files_and_the_next_run_resumes(
    prepared_data, tmp_path, monkeypatch, module, room, written
):
    import importlib

    from vaelab.training.experiment import Outputs, fit
    from vaelab.training.loop import Run

    spec = experiment(epochs=2, batch_size=16)
    out, live = tmp_path / "models/t", tmp_path / "live"
    data, outputs = prepared_data / "binary28", Outputs(out, out / "checkpoint.pt", live)
    filling = FillsUp(room)
    monkeypatch.setattr(importlib.import_module(module), "open", filling, raising=False)
    with pytest.raises(WriteError) as caught:
        fit(Run(spec, "t"), data, outputs=outputs, limit=64)
    assert filling.opened == room + 1, written
    message = str(caught.value)
    assert message.startswith(f"cannot write {live}: {FULL}; dvclive's files in {live} removed")
    # each epoch's checkpoint went through; dvclive's partial file does not stay
    kept_epoch = 1 if room == 6 else 2
    assert f"the checkpoint after epoch {kept_epoch} ({out / 'checkpoint.pt'}) is kept" in message
    assert "\n" not in message
    assert [p for p in live.rglob("*") if p.is_file()] == []
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt"]

    monkeypatch.undo()
    resumed = fit(Run(spec, "t"), data, outputs=outputs, limit=64)
    assert resumed.resumed_from == kept_epoch
    assert sorted(p.name for p in out.iterdir()) == ["model.pt"]
    tables = sorted(live.rglob("*.tsv"))
    assert tables and all(len(t.read_text().splitlines()) == 3 for t in tables)  # header + 2
    assert (live / "metrics.json").stat().st_size > PARTIAL_BYTES
    logged = yaml.safe_load((live / "params.yaml").read_text())
    assert logged["hardware"] == processor(torch.device("cpu")) != ""  # the report shows it


# a stage as `dvc repro` runs it: its command fails in one line under user_errors
FAILING_STAGE = """
import pathlib, sys
from vaelab.core.cli import user_errors
from vaelab.core.errors import DataError

@user_errors
def main():
    if pathlib.Path("fail").exists():
        raise DataError("the input is bad")
    pathlib.Path("cached.txt").write_text("cached")
    pathlib.Path("in_git.txt").write_text("in git")

try:
    main()
except SystemExit as exit:
    sys.exit(exit.code)
"""


def test_a_stage_that_fails_under_dvc_says_how_to_restore_what_dvc_removed(tmp_path):
    env = dict(run_env(), PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")

    def run(*command):
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)

    (tmp_path / "stage.py").write_text(FAILING_STAGE)
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n"
        "  make:\n"
        f"    cmd: {sys.executable} stage.py\n"
        "    deps: [stage.py]\n"
        "    outs: [cached.txt, {in_git.txt: {cache: false}}]\n"
    )
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid"]
    assert run("git", "init", "-q").returncode == 0
    assert run(str(BIN / "dvc"), "init", "-q").returncode == 0
    assert run(str(BIN / "dvc"), "repro").returncode == 0
    assert run(*git, "add", "-A").returncode == 0
    assert run(*git, "commit", "-qm", "recorded").returncode == 0

    (tmp_path / "fail").write_text("")
    failed = run(str(BIN / "dvc"), "repro", "--force")
    assert failed.returncode != 0
    command = "dvc checkout make && git checkout -- in_git.txt"
    assert [line for line in failed.stderr.splitlines() if line.startswith("error:")] == [
        "error: the input is bad; DVC removed the outputs of make before running it: "
        f"`{command}` brings back the last recorded ones"
    ]
    assert not (tmp_path / "cached.txt").exists() and not (tmp_path / "in_git.txt").exists()
    restored = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True)
    assert restored.returncode == 0, restored
    assert (tmp_path / "cached.txt").read_text() == "cached"
    assert (tmp_path / "in_git.txt").read_text() == "in git"


def test_outside_dvc_the_error_line_has_no_restore_hint(monkeypatch, capsys):
    import typer

    from vaelab.core.cli import user_errors
    from vaelab.core.errors import DataError

    monkeypatch.delenv("DVC_STAGE", raising=False)

    @user_errors
    def failing():
        raise DataError("the input is bad")

    # user_errors installs its own; pytest's own are put back
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with pytest.raises(typer.Exit):
            failing()
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert capsys.readouterr().err == "error: the input is bad\n"
