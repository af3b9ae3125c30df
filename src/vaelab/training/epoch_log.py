"""What happens after each training epoch besides training: the hook `train` calls.

It draws the reconstruction grid, logs the epoch's metrics and grid with dvclive (one
file per epoch in one folder per image series, which dvclive's docs and VS Code's DVC
extension show as a slider over steps), saves the checkpoint and prints one line.
"""

from __future__ import annotations

import torch

from vaelab.core.progress import say
from vaelab.pictures.grids import reconstruction_grid
from vaelab.training.checkpoint import Checkpoint
from vaelab.training.loop import TrainState

GRID_IMAGES = 16
RECONSTRUCTIONS = "reconstructions"  # the image series: plots/images/reconstructions/EPOCH.png


class EpochLog:
    def __init__(
        self,
        name: str,
        epochs: int,
        grid_images: torch.Tensor,
        *,
        grid_labels: torch.Tensor | None = None,
        checkpoint: Checkpoint | None = None,
        live=None,
        resumed: dict | None = None,
    ):
        self.name, self.epochs = name, epochs
        self.grid_images = grid_images[:GRID_IMAGES]
        self.grid_labels = None if grid_labels is None else grid_labels[:GRID_IMAGES]
        self.checkpoint, self.live = checkpoint, live
        # uint8 tensors, not arrays: a checkpoint loads with torch.load(weights_only=True)
        self.grids: list[torch.Tensor] = list(resumed["grids"]) if resumed else []
        if resumed:
            say(f"  resuming from the checkpoint after epoch {resumed['epoch']}")
            for record, grid in zip(resumed["history"], self.grids, strict=True):
                self._log(record, grid)

    def __call__(self, state: TrainState, record: dict) -> None:
        self.grids.append(
            torch.from_numpy(
                reconstruction_grid(state.model.given(self.grid_labels), self.grid_images)
            )
        )
        self._log(record, self.grids[-1])
        if self.checkpoint is not None:
            self.checkpoint.save({**state.state_dict(), "grids": self.grids})
        say(
            f"  epoch {record['epoch']}/{self.epochs}: "
            + ", ".join(f"{key} {value:.6g}" for key, value in record.items() if key != "epoch")
        )

    def _log(self, record: dict, grid: torch.Tensor) -> None:
        if self.live is None:
            return
        self.live.step = record["epoch"]
        for key, value in record.items():
            if key != "epoch":
                self.live.log_metric(key, value)
        self.live.log_image(f"{RECONSTRUCTIONS}/{record['epoch']}.png", grid.numpy())
