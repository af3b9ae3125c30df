"""Bad input gets a clear error and loses nothing: interruptions, devices, folders."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from conftest import ROOT, run_env

from vaelab.core.cli import _SHELLS as SHELLS
from vaelab.core.errors import ParamsError, VaelabError
from vaelab.core.files import atomic_path, ensure_writable_dir, write_text
from vaelab.runtime.device import resolve_device

DEFAULTS = yaml.safe_load((ROOT / "params.yaml").read_text())


def stage_project(tmp_path, prepared_data, **experiment):
    """A folder laid out like the project root for one synthetic experiment `t`."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["prepared"]["binary28"] = {
        "dataset": "mnist",
        "binarize": "threshold",
        "size": 28,
    }
    params["experiments"] = {
        "t": {**params["experiments"]["cvae"], "data": "binary28", **experiment}
    }
    params["published"] = {}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.copytree(prepared_data / "binary28", tmp_path / "data/prepared/binary28")
    return tmp_path


TRAIN_T = ["--data", "data/prepared/binary28", "--out", "models/t", "--live", "reports/t/train"]


def run_stage(project, *args, env=None, **popen):
    command = [sys.executable, str(ROOT / "stages" / args[0]), *args[1:]]
    return subprocess.run(
        command, cwd=project, env=env or run_env(), capture_output=True, text=True, **popen
    )


def test_cuda_without_a_gpu_is_one_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(
        ParamsError,
        match=r"^device = 'cuda' but no CUDA GPU is visible to "
        r"torch .*; use device: auto or cpu$",
    ):
        resolve_device("cuda")
    assert resolve_device("auto").type in ("cpu", "mps")


def test_train_stage_with_cuda_on_a_machine_without_one(tmp_path, prepared_data):
    project = stage_project(tmp_path, prepared_data)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["device"] = "cuda"
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    result = run_stage(project, "train.py", "t", *TRAIN_T, env=run_env(CUDA_VISIBLE_DEVICES=""))
    assert result.returncode == 2
    assert result.stderr.startswith("error: device = 'cuda' but no CUDA GPU is visible")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (project / "models").exists()


def test_unwritable_output_folder_is_a_clear_error(tmp_path, prepared_data):
    project = stage_project(tmp_path, prepared_data, epochs=1)
    blocker = project / "not_a_folder"
    blocker.write_text("a file where a folder should be")
    args = [*TRAIN_T[:2], "--out", str(blocker / "models" / "t"), *TRAIN_T[4:]]
    result = run_stage(project, "train.py", "t", *args)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: cannot create output folder {blocker / 'models' / 't'}: Not a directory"
    )
    with pytest.raises(VaelabError, match="cannot create output folder"):
        ensure_writable_dir(blocker / "x")


def test_failed_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "metrics.json"
    write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def _started(command, project) -> subprocess.Popen:
    """`command` running in `project`, its output piped for the test to read."""
    return subprocess.Popen(
        command,
        cwd=project,
        env=run_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_checkpoint(path, process, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and process.poll() is None:
            return
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint appeared at {path}")


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_interrupted_training_resumes_cleanly(tmp_path, prepared_data, how):
    # many short epochs, so that the run is still going when the signal lands (at most
    # 50 ms after the first checkpoint, of 20 epochs; a loaded machine only slows them)
    epochs, args = 20, [*TRAIN_T, "--limit", "128"]
    project = stage_project(tmp_path, prepared_data, epochs=epochs, batch_size=16)
    process = _started([sys.executable, str(ROOT / "stages/train.py"), "t", *args], project)
    checkpoint = project / "models/t/checkpoint.pt"
    _wait_for_checkpoint(checkpoint, process)
    process.send_signal(how)
    _, stderr = process.communicate(timeout=60)
    if how == signal.SIGKILL:
        assert process.returncode == -signal.SIGKILL
    else:
        assert process.returncode == 130, stderr
        assert "interrupted" in stderr and "Traceback" not in stderr
    assert not (project / "models/t/model.pt").exists()
    interrupted_after = torch.load(checkpoint, weights_only=True)["epoch"]
    assert 1 <= interrupted_after < epochs

    resumed = run_stage(project, "train.py", "t", *args)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from the checkpoint after epoch {interrupted_after}" in resumed.stderr
    model = torch.load(project / "models/t/model.pt", weights_only=True)
    assert [r["epoch"] for r in model["history"]] == list(range(1, epochs + 1))
    frames = sorted(
        int(p.stem) for p in (project / "reports/t/train/plots/images/reconstructions").iterdir()
    )
    assert frames == list(range(1, epochs + 1))
    assert sorted(p.name for p in (project / "models/t").iterdir()) == ["model.pt"]


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_to_dvc_alone_stops_its_stage(tmp_path, prepared_data, how):
    """What a supervisor, a scheduler's time limit or a closed terminal sends reaches the
    DVC process only: the stage must not run on without it and write its outputs."""
    import psutil

    epochs, args = 40, [*TRAIN_T, "--limit", "128"]
    project = stage_project(tmp_path, prepared_data, epochs=epochs, batch_size=16)
    command = " ".join([sys.executable, str(ROOT / "stages/train.py"), "t", *args])
    stages = {"train": {"cmd": command, "outs": ["models/t/model.pt"]}}
    (project / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "--no-scm", "-q"], cwd=project, check=True)
    runner = _started([*dvc, "repro"], project)
    checkpoint = project / "models/t/checkpoint.pt"
    _wait_for_checkpoint(checkpoint, runner)
    # DVC runs the cmd through $SHELL, or /bin/sh when that is unset (as under CI): dash
    # keeps itself between DVC and the stage, bash execs the stage. The stage is the
    # process that is not a shell, by the set the stage's own watch of DVC skips.
    (stage,) = [
        child
        for child in psutil.Process(runner.pid).children(recursive=True)
        if "stages/train.py" in " ".join(child.cmdline()) and child.name() not in SHELLS
    ]
    runner.send_signal(how)  # DVC alone, not its process group
    assert runner.wait(timeout=60) != 0
    stage.wait(timeout=30)  # psutil.TimeoutExpired if it runs on
    _, stderr = runner.communicate(timeout=30)
    assert "interrupted: nothing half-written is left" in stderr, stderr
    assert "Traceback" not in stderr
    assert not (project / "models/t/model.pt").exists()
    assert 1 <= torch.load(checkpoint, weights_only=True)["epoch"] < epochs


def test_atomic_writes_honour_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        write_text(tmp_path / "metrics.json", "{}")
    finally:
        os.umask(previous)
    assert (tmp_path / "metrics.json").stat().st_mode & 0o777 == 0o644
