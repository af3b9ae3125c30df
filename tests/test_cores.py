"""vaelab processes on one CPU divide its cores instead of each taking all of them."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from conftest import experiment, fit

from vaelab.runtime import cores
from vaelab.runtime.cores import CoreShare


@pytest.fixture
def torch_threads():
    """Put torch's thread count back after a test that changes it."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def lone_share(tmp_path, monkeypatch):
    """This process's share of a 2-core CPU whose locks lie in tmp_path."""
    monkeypatch.setenv(cores.CPU_LOCKS_ENV, str(tmp_path))
    monkeypatch.setattr(cores, "_share", None)
    return tmp_path


def test_processes_divide_the_cores_and_take_them_back(tmp_path):
    first = CoreShare(4, tmp_path).claim()
    assert (first.slot, first.share()) == (0, 4)
    second = CoreShare(4, tmp_path).claim()  # a second open file: flock tells them apart
    assert second.slot == 1
    assert (first.share(), second.share()) == (2, 2)
    third = CoreShare(4, tmp_path).claim()
    assert first.share() == 1  # 4 // 3: never more threads than cores
    third.release()
    second.release()
    assert first.share() == 4


def test_more_processes_than_cores_take_one_thread_each(tmp_path):
    shares = [CoreShare(2, tmp_path).claim() for _ in range(3)]
    assert [share.slot for share in shares] == [0, 1, None]
    assert [share.share() for share in shares] == [1, 1, 1]


def test_a_killed_process_gives_its_cores_back(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from vaelab.runtime.cores import "
            "CoreShare; CoreShare(2, Path(sys.argv[1])).claim(); print('held', flush=True); "
            "time.sleep(60)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        share = CoreShare(2, tmp_path).claim()
        assert (share.slot, share.share()) == (1, 1)
    finally:
        holder.kill()  # SIGKILL: no cleanup of its own runs
        holder.wait()
    assert share.share() == 2


def test_rebalance_sets_torch_threads_at_most_once_a_second(tmp_path, torch_threads):
    share = CoreShare(2, tmp_path).claim()
    assert share.rebalance(now=100.0) == 2 == torch.get_num_threads()
    other = CoreShare(2, tmp_path).claim()
    assert share.rebalance(now=100.5) == 2  # within the second: no probe
    assert share.rebalance(now=101.0) == 1 == torch.get_num_threads()
    other.release()
    assert share.rebalance(now=102.0) == 2 == torch.get_num_threads()


def test_threads_set_by_the_user_win(lone_share, torch_threads):
    from vaelab.runtime.device import resolve_device

    resolve_device("cpu", threads=3)
    assert torch.get_num_threads() == 3
    assert cores._share is None  # no claim: nothing to rebalance
    assert not list(lone_share.iterdir())


def test_an_unset_thread_count_claims_a_share(lone_share, torch_threads):
    from vaelab.runtime.device import resolve_device

    torch.set_num_threads(2)  # a 2-core CPU, whatever this one has
    other = CoreShare(2, lone_share).claim()
    resolve_device("cpu")
    assert cores._share is not None and cores._share.slot == 1
    assert torch.get_num_threads() == 1
    other.release()
    cores._share.release()


def test_training_follows_a_process_that_arrives(
    lone_share, torch_threads, prepared_data, monkeypatch
):
    """A run that started alone drops to its share while it trains, not at its next start."""
    torch.set_num_threads(2)
    from vaelab.runtime.device import resolve_device

    resolve_device("cpu")
    assert torch.get_num_threads() == 2
    other = CoreShare(2, lone_share).claim()
    monkeypatch.setattr(cores, "REBALANCE_EVERY_S", 0.0)
    fit(experiment(batch_size=256), prepared_data / "binary28")
    assert torch.get_num_threads() == 1
    other.release()
    cores._share.release()
