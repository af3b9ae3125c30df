"""One training over several processes, on torchrun: DistributedDataParallel.

Under `torchrun --nproc-per-node N stages/train.py ...` every rank loads the same data,
builds the same seeded model and draws the same seeded batch order and noise. Each rank
trains on a disjoint slice of every global batch, and DistributedDataParallel averages the
ranks' gradients during the backward pass (bucketed, overlapped with it). Each rank weighs
its loss by its share of the batch, so the average is the gradient one process takes on the
whole batch, up to the order of float additions, also when the slices differ in size. Rank
0 alone evaluates, logs and writes files.

How a run is split is chosen once, when it starts (`partition`): a single process takes
the whole batch, draws its noise from its own generator and reduces nothing, so it runs
exactly the computation it would run without any of this.
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

    def partition(self, noise: torch.Generator) -> Partition:
        """How this run splits each batch and reduces its sums: chosen once, at its start."""
        return RankSlices(self, noise) if self.distributed else WholeBatch(noise)


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


def _collective(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (RuntimeError, dist.DistError) as exc:  # gloo raises plain RuntimeErrors
            # "[.../gloo/transport/tcp/pair.cc:545] Read error ...: Connection reset by peer."
            text = re.sub(r"^\[[^\]]*\]\s*", "", str(exc).strip().split("\n")[0])
            raise CollectiveFailed(text.split(". ")[0].rstrip(".")) from None

    return wrapper


class WholeBatch:
    """A single process: the whole batch, its own generator's noise, nothing to reduce.

    Its own `share` of every batch, so the loop asks the same questions in every run."""

    main = True

    def __init__(self, noise: torch.Generator):
        self.noise = noise

    def share(self, rows: int) -> WholeBatch:
        return self

    def take(self, images: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        return images[batch]

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def portion(self, loss: torch.Tensor) -> torch.Tensor:
        return loss

    def reduce_(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        return module


class RankSlices:
    """One of torchrun's ranks: a contiguous slice of every batch, DDP's gradient average."""

    def __init__(self, ranks: Ranks, noise: torch.Generator):
        self.ranks, self.noise = ranks, noise
        self.main = ranks.main

    def share(self, rows: int) -> Share:
        rank, world = self.ranks.rank, self.ranks.world
        return Share(self.noise, rows, world, rows * rank // world, rows * (rank + 1) // world)

    def reduce_(self, tensor: torch.Tensor) -> torch.Tensor:
        return all_reduce_(tensor)

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        device = next(module.parameters()).device
        ids = [device] if device.type == "cuda" else None
        # no buffer to keep in step: every model's state is its parameters
        return DistributedDataParallel(module, device_ids=ids, broadcast_buffers=False)


Partition = WholeBatch | RankSlices


@dataclass
class Share:
    """Rows [start, stop) of a global batch of `rows`, with the noise one process would
    draw for them: the whole batch's noise is drawn from the shared seeded generator and
    sliced, so every rank's generator stays in step and the noise matches a single run's."""

    generator: torch.Generator
    rows: int
    world: int
    start: int
    stop: int

    @property
    def noise(self) -> Share:
        return self

    def take(self, images: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        return images[batch[self.start : self.stop]]

    def normal_like(self, mean: torch.Tensor) -> torch.Tensor:
        full = torch.randn(
            (self.rows, *mean.shape[1:]),
            generator=self.generator,
            device=mean.device,
            dtype=mean.dtype,
        )
        return full[self.start : self.stop]

    def portion(self, loss: torch.Tensor) -> torch.Tensor:
        """This rank's part of the global batch mean: the ranks' parts sum to that mean."""
        if self.stop == self.start:  # a last batch smaller than the world: nothing here
            return loss.nan_to_num() * 0.0
        return loss * ((self.stop - self.start) / self.rows)

    @_collective  # DDP's all-reduce runs in the backward pass: a lost rank fails it
    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate this rank's part, weighed so that DDP's average over the ranks is
        the gradient of the whole batch's mean loss."""
        (self.portion(loss) * self.world).backward()


@_collective
def all_reduce_(tensor: torch.Tensor) -> torch.Tensor:
    dist.all_reduce(tensor)
    return tensor


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


@_collective
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
