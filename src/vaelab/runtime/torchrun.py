"""Where a process sits among torchrun's ranks, and the run's life among them: joining
the process group, sharing rank 0's checkpoint, launching N ranks on this machine, and one
line instead of a traceback when a rank is lost. How a batch is split over the ranks is
training's (vaelab.training.ddp).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import signal
import sys
import uuid
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from vaelab.core.errors import ParamsError, VaelabError


@dataclass(frozen=True)
class Ranks:
    """Where this process sits among torchrun's; the defaults are a plain single process."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    under_torchrun: bool = False

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def local_rank_if_launched(self) -> int | None:
        """The GPU index torchrun gives this rank; None outside torchrun (claim a GPU)."""
        return self.local_rank if self.under_torchrun else None


SINGLE = Ranks()


def from_env() -> Ranks:
    """The ranks torchrun describes in the environment, or a single process."""
    if "WORLD_SIZE" not in os.environ:
        return SINGLE
    env = os.environ
    return Ranks(
        rank=int(env["RANK"]),
        world=int(env["WORLD_SIZE"]),
        local_rank=int(env.get("LOCAL_RANK", 0)),
        local_world=int(env.get("LOCAL_WORLD_SIZE", 1)),
        under_torchrun=True,
    )


class CollectiveFailed(Exception):
    """A collective failed, which in a run that worked so far means another rank is gone."""


def collective(func):
    """`func` runs collectives: their failure becomes CollectiveFailed, with the first
    line of the backend's message."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (RuntimeError, dist.DistError) as exc:  # gloo raises plain RuntimeErrors
            # "[.../gloo/transport/tcp/pair.cc:545] Read error ...: Connection reset by peer."
            text = re.sub(r"^\[[^\]]*\]\s*", "", str(exc).strip().split("\n")[0])
            raise CollectiveFailed(text.split(". ")[0].rstrip(".")) from None

    return wrapper


def check_processes(where: str, processes: int, ranks: Ranks) -> None:
    """Under torchrun the experiment's `processes` must be its default 1 or torchrun's count."""
    if ranks.under_torchrun and processes not in (1, ranks.world):
        raise ParamsError(
            f"{where}.processes = {processes} is invalid: torchrun started {ranks.world} "
            f"processes (WORLD_SIZE); set processes to {ranks.world} or 1, or launch "
            f"torchrun with --nproc-per-node {processes}"
        )


@contextmanager
def process_group(ranks: Ranks, device: torch.device):
    """Join torchrun's process group for the block: NCCL on GPUs, gloo on CPUs."""
    if not ranks.distributed:
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield
    finally:
        dist.destroy_process_group()


@collective
def broadcast(value, ranks: Ranks):
    """Rank 0's `value` on every rank (a resumed checkpoint: other nodes may not see it)."""
    if not ranks.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class PeerLost(VaelabError):
    """Another rank of the run stopped: the collective this rank waited in failed."""

    exit_code = 4


# How a rank exits when the agent stops it (SIGTERM arrives as KeyboardInterrupt): 128 + SIGINT
STOPPED_BY_AGENT = 130

# Set by `launch` for its ranks: the agent reports a dead rank, so the others keep quiet.
AGENT_REPORTS = "VAELAB_AGENT_REPORTS"


@contextmanager
def peers_watched(ranks: Ranks, where: str):
    """A collective that fails because another rank died becomes one line, not a trace."""
    try:
        yield
    except KeyboardInterrupt:
        if os.environ.get(AGENT_REPORTS):  # the agent was stopped too and says so once
            raise SystemExit(STOPPED_BY_AGENT) from None
        raise
    except CollectiveFailed as exc:
        if os.environ.get(AGENT_REPORTS):
            raise SystemExit(PeerLost.exit_code) from None
        raise PeerLost(
            f"{where}: rank {ranks.rank} lost another rank ({exc}); the checkpoint of the last "
            "finished epoch is kept and the next run resumes from it"
        ) from None


def launch(processes: int, where: str) -> None:
    """Run this same command as `processes` ranks under torchrun's elastic agent, on this
    machine (what `torchrun --standalone --nproc-per-node N` does), and turn a dead rank
    into one line instead of the agent's report."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    # The agent's progress messages and its failure report would bury the one line below.
    for logger in list(logging.root.manager.loggerDict):
        if logger.startswith("torch.distributed"):
            logging.getLogger(logger).setLevel(logging.CRITICAL)
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=processes,
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        monitor_interval=0.5,
    )
    os.environ[AGENT_REPORTS] = "1"
    try:
        elastic_launch(config, sys.executable)(*sys.argv)
    except SignalException:  # Ctrl-C or SIGTERM: the agent has stopped the ranks
        raise KeyboardInterrupt from None
    except ChildFailedError as exc:
        # the rank that failed first, not those that lost it (PeerLost) or that the agent
        # then stopped (SIGTERM, or its KeyboardInterrupt if the rank was in Python code)
        consequences = (PeerLost.exit_code, STOPPED_BY_AGENT, -signal.SIGTERM)
        causes = {r: f for r, f in exc.failures.items() if f.exitcode not in consequences}
        rank, failure = min(causes.items()) if causes else exc.get_first_failure()
        code = failure.exitcode
        if code in (2, 3):  # a user error: the rank has printed its own one line
            raise SystemExit(code) from None
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        raise RankFailed(
            f"{where}: rank {rank} of {processes} {how}; the checkpoint of the last finished "
            "epoch is kept and the next run resumes from it",
            code,
        ) from None


class RankFailed(VaelabError):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.exit_code = code if code > 0 else 1
