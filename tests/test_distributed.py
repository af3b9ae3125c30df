"""Several GPUs and several processes: GPU claims for parallel queue workers, and one
training over torchrun's ranks that matches a single process."""

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import BIN, ROOT, experiment, fit, run_env

from vaelab.core.errors import ParamsError
from vaelab.runtime import device as device_module
from vaelab.runtime import gpus as gpu_claim
from vaelab.runtime import torchrun as distributed
from vaelab.runtime.device import resolve_device
from vaelab.runtime.gpus import claim_gpu


@pytest.fixture
def locks(tmp_path, monkeypatch):
    """A private lock folder; this process's claims are dropped afterwards."""
    folder = tmp_path / "locks"
    folder.mkdir()
    monkeypatch.setenv(gpu_claim.GPU_LOCKS_ENV, str(folder))
    monkeypatch.setattr(gpu_claim, "_held", [])
    monkeypatch.setattr(device_module, "_claimed", None)
    yield folder
    for fd in gpu_claim._held:
        os.close(fd)


def is_free(folder: Path, key: str) -> bool:
    fd = os.open(folder / f"gpu-{key}.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing drops the test's own lock again


def test_claims_are_distinct_and_shared_only_when_all_are_taken(locks):
    # each claim opens its own file description, so claims conflict as separate processes'
    keys = ["0", "1", "2"]
    assert [claim_gpu(keys) for _ in keys] == [(0, True), (1, True), (2, True)]
    index, exclusive = claim_gpu(keys)
    assert not exclusive and index == os.getpid() % 3


def test_auto_claims_a_free_gpu_of_a_simulated_machine(locks, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    claim_gpu(["0"])  # another process holds GPU 0
    assert resolve_device("auto") == torch.device("cuda", 1)
    assert resolve_device("cuda") == torch.device("cuda", 1)  # one claim per process
    assert not is_free(locks, "1") and is_free(locks, "2")
    # under torchrun the rank's own GPU, with no claim
    assert resolve_device("auto", local_rank=3) == torch.device("cuda", 3)


CLAIMER = """
import sys
from vaelab.runtime.gpus import claim_gpu  # no torch: a quick start
print(*claim_gpu(sys.argv[1].split(",")), flush=True)
sys.stdin.read()  # hold the claim until stdin closes
"""


def test_claims_are_released_on_exit_and_on_kill(locks):
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, "0,1"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=run_env(),
        )
        for _ in range(2)
    ]
    claims = {child.stdout.readline().strip() for child in children}
    assert claims == {"0 True", "1 True"}  # two processes, two GPUs
    assert not is_free(locks, "0") and not is_free(locks, "1")
    first, second = children
    first.kill()  # kill -9: no cleanup code runs, the kernel drops the lock
    first.wait()
    second.stdin.close()  # a normal exit
    assert second.wait() == 0
    assert is_free(locks, "0") and is_free(locks, "1")


def test_processes_must_agree_with_torchrun():
    under = distributed.Ranks(rank=0, world=2, under_torchrun=True)
    distributed.check_processes("experiments.t", 1, under)
    distributed.check_processes("experiments.t", 2, under)
    with pytest.raises(ParamsError, match=r"^experiments.t.processes = 4 is invalid: torchrun "):
        distributed.check_processes("experiments.t", 4, under)


def rank_pid(parent: int, rank: int) -> int | None:
    """The pid of torchrun rank `rank` among the children of the agent process `parent`."""
    children = Path(f"/proc/{parent}/task/{parent}/children")
    for pid in children.read_text().split() if children.exists() else []:
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ:
            return int(pid)
    return None


def test_two_ranks_train_as_one_process_and_a_dead_rank_resumes(prepared_data, tmp_path):
    """2 gloo ranks against 1 process with the same global batch; the last batch of each
    epoch (512 = 7 x 73 + 1) leaves rank 0 with no image at all."""
    keys = dict(epochs=6, batch_size=73, lr=1e-3, data="mnist_binary")
    reference = fit(experiment(**keys), prepared_data / "binary28")

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["experiments"]["t"] = {**experiment(**keys).flat(), "processes": 2}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    work = tmp_path / "work"
    work.mkdir()
    args = [str(ROOT / "stages/train.py"), "t", "--data", str(prepared_data / "binary28")]
    args += ["--out", "out", "--live", "live", "--params", str(tmp_path / "params.yaml")]
    env = run_env(OMP_NUM_THREADS="1")

    # `processes: 2` starts torchrun's agent; rank 1 is killed once an epoch is saved
    run = subprocess.Popen(
        [sys.executable, *args], cwd=work, env=env, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while not (work / "out/checkpoint.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    victim = rank_pid(run.pid, 1)
    assert victim is not None, "rank 1 not found"
    os.kill(victim, signal.SIGKILL)
    stderr = run.communicate(timeout=120)[1]
    assert run.returncode != 0
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: experiments.t: rank 1 of 2 was killed by signal 9; the checkpoint of the last "
        "finished epoch is kept and the next run resumes from it"
    ], stderr
    saved = torch.load(work / "out/checkpoint.pt", weights_only=True)
    assert 1 <= saved["epoch"] < keys["epochs"], "rank 1 died too late to test a resume"

    # torchrun itself, as a user starts it, resumes and finishes the run
    done = subprocess.run(
        [str(BIN / "torchrun"), "--standalone", "--nproc-per-node", "2", *args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert f"resuming from the checkpoint after epoch {saved['epoch']}" in done.stderr

    history = torch.load(work / "out/model.pt", weights_only=True)["history"]
    assert len(history) == len(reference.history) == keys["epochs"]
    for ours, theirs in zip(history, reference.history, strict=True):
        for key, value in theirs.items():
            if key != "epoch_seconds":
                assert ours[key] == pytest.approx(value, rel=1e-4, abs=1e-3), (key, ours, theirs)

    # one set of outputs, by rank 0: nothing from rank 1, nothing left over
    written = sorted(str(p.relative_to(work)) for p in work.rglob("*") if p.is_file())
    frames = [f"live/plots/images/reconstructions/{e}.png" for e in range(1, keys["epochs"] + 1)]
    metrics = [f"live/plots/metrics/{m}.tsv" for m in ("epoch_seconds", "test/elbo_mc")]
    metrics += [f"live/plots/metrics/{m}.tsv" for m in ("test/loss", "train/kl")]
    metrics += [f"live/plots/metrics/train/{m}.tsv" for m in ("loss", "reconstruction_nll")]
    assert written == sorted(
        ["live/metrics.json", "live/params.yaml", "out/model.pt", *frames, *metrics]
    )
    logged = yaml.safe_load((work / "live/params.yaml").read_text())
    assert logged["processes"] == 2
