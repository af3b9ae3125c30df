"""Data parallelism that stays exact: which rows of every batch this process trains on,
and the noise one process would have drawn for them.

Under `torchrun --nproc-per-node N` every rank loads the same data, builds the same seeded
model and draws the same seeded batch order. Each rank trains on a contiguous slice of
every global batch; DistributedDataParallel averages the ranks' gradients during the
backward pass (bucketed, overlapped with it). Each rank weighs its loss by its part of the
batch, so that average is the gradient one process takes on the whole batch, up to the
order of float additions, also when the slices differ in size. The whole batch's noise is
drawn from the one seeded generator every rank holds, and sliced, so the ranks' generators
stay in step and the noise is a single run's. A single process is the world of one: its
slice is the whole batch, its noise the generator's own draws, and nothing is reduced.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

from vaelab.runtime.torchrun import SINGLE, Ranks, collective


class Slices:
    """This process's slice of every batch, and the sums it shares with the other ranks."""

    def __init__(self, noise: torch.Generator, ranks: Ranks = SINGLE):
        self.noise, self.ranks = noise, ranks
        self.main = ranks.main

    def of(self, rows: int) -> Share:
        """This process's rows of a batch of `rows`."""
        rank, world = self.ranks.rank, self.ranks.world
        return Share(self.noise, rows, world, rows * rank // world, rows * (rank + 1) // world)

    def reduce_(self, tensor: torch.Tensor) -> torch.Tensor:
        """`tensor` summed over the ranks, in place."""
        return _all_reduce_(tensor) if self.ranks.distributed else tensor

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """`module` as the ranks train it: DistributedDataParallel's, when there are ranks."""
        if not self.ranks.distributed:
            return module
        from torch.nn.parallel import DistributedDataParallel

        device = next(module.parameters()).device
        ids = [device] if device.type == "cuda" else None
        # no buffer to keep in step: every model's state is its parameters
        return DistributedDataParallel(module, device_ids=ids, broadcast_buffers=False)


@dataclass
class Share:
    """Rows [start, stop) of a global batch of `rows`, split over `world` processes."""

    generator: torch.Generator
    rows: int
    world: int
    start: int
    stop: int

    @property
    def noise(self):
        """What the model draws its noise from: the generator itself in a single process;
        under ranks, this share, whose `normal_like` slices the whole batch's draw."""
        return self.generator if self.world == 1 else self

    def take(self, tensor: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        """The rows of `tensor` that `batch` indexes and this process trains on."""
        return tensor[batch[self.start : self.stop]]

    def normal_like(self, mean: torch.Tensor) -> torch.Tensor:
        full = torch.randn(
            (self.rows, *mean.shape[1:]),
            generator=self.generator,
            device=mean.device,
            dtype=mean.dtype,
        )
        return full[self.start : self.stop]

    def portion(self, loss: torch.Tensor) -> torch.Tensor:
        """This process's part of the global batch mean: the ranks' parts sum to that mean."""
        if self.world == 1:
            return loss
        if self.stop == self.start:  # a last batch smaller than the world: nothing here
            return loss.nan_to_num() * 0.0
        return loss * ((self.stop - self.start) / self.rows)

    @collective  # DDP's all-reduce runs in the backward pass: a lost rank fails it
    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate this process's part, weighed so that DDP's average over the ranks
        is the gradient of the whole batch's mean loss."""
        part = self.portion(loss)
        (part if self.world == 1 else part * self.world).backward()


@collective
def _all_reduce_(tensor: torch.Tensor) -> torch.Tensor:
    dist.all_reduce(tensor)
    return tensor
