"""Prepared data on its way to a model: a split's images scaled to [0, 1], and its meta.

Apart from `vaelab.prepare` (raw files to the prepared folder), so that the stages which
only read prepared data do not depend on the code that parses raw files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from vaelab.errors import DataError


@dataclass(frozen=True)
class Split:
    """One split on its way to the model: images in [0, 1] as float32, and labels."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


def read_meta(prepared_dir: Path) -> dict:
    path = Path(prepared_dir) / "meta.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(
            f"prepared data {path} is missing or corrupt ({exc}); "
            f"rerun `dvc repro` for its prepare stage"
        ) from None


def load_split(prepared_dir: Path, split: str, limit: int | None = None) -> Split:
    """One prepared split as float images in [0, 1]; a clear DataError if it is damaged."""
    path = Path(prepared_dir) / f"{split}.pt"
    try:
        blob = torch.load(path, weights_only=True)
        images, labels, scale = blob["images"], blob["labels"], blob["divisor"]
    except FileNotFoundError:
        raise DataError(
            f"prepared file {path} not found; run `dvc repro` for its prepare stage"
        ) from None
    except Exception as exc:  # torch raises many types for a damaged zip or pickle
        raise DataError(
            f"prepared file {path} is corrupt or truncated "
            f"({type(exc).__name__}: {exc}); rerun its prepare stage"
        ) from None
    if images.dtype != torch.uint8 or images.ndim != 4 or len(images) != len(labels):
        raise DataError(
            f"prepared file {path} has unexpected contents "
            f"(images {tuple(images.shape)} {images.dtype}, {len(labels)} labels)"
        )
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return Split(images=images.float() / scale, labels=labels)
