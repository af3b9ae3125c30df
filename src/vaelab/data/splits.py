"""Prepared data on its way to a model: a split's images scaled to [0, 1], and its meta.

Apart from `vaelab.data.prepare` (raw files to the prepared folder), so that the stages which
only read prepared data do not depend on the code that parses raw files.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from vaelab.core.errors import DataError
from vaelab.core.tensor_files import load_tensors

# The fixed draws that binarize dynamically binarized data's held-out images once, so
# every epoch and every stage scores the same binary images.
_TEST_DRAW, _VALIDATION_DRAW = 1, 2


@dataclass(frozen=True)
class Split:
    """One split on its way to the model: images in [0, 1] as float32, and labels.

    `dynamic`: grey levels that the trainer binarizes afresh for every batch.
    """

    images: torch.Tensor
    labels: torch.Tensor
    dynamic: bool = False

    def __len__(self) -> int:
        return len(self.labels)


def binarize_once(images: torch.Tensor, seed: int) -> torch.Tensor:
    return torch.bernoulli(images, generator=torch.Generator().manual_seed(seed))


def hold_out(split: Split, count: int, seed: int = 0) -> tuple[Split, Split]:
    """The last `count` images as a validation split, and the rest to train on."""
    if not 0 < count < len(split):
        raise DataError(
            f"cannot hold out {count} of {len(split)} training images; "
            f"validation must be between 1 and {len(split) - 1}"
        )
    keep = len(split) - count
    held = split.images[keep:]
    if split.dynamic:
        held = binarize_once(held, seed * 1000 + _VALIDATION_DRAW)
    return (
        Split(split.images[:keep], split.labels[:keep], split.dynamic),
        Split(held, split.labels[keep:]),
    )


def read_meta(prepared_dir: Path) -> dict:
    path = Path(prepared_dir) / "meta.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(
            f"prepared data {path} is missing or corrupt ({exc}); "
            f"rerun `dvc repro` for its prepare stage"
        ) from None


# what a prepared folder holds (vaelab.data.prepare writes them)
PREPARED_FILES = ("meta.json", "train.pt", "test.pt")


def prepared_fingerprint(prepared_dir: Path) -> str:
    """A hash of a prepared folder's files, names and contents: model.pt records the one
    it trained on, and the stages after training compare it with the folder they are
    given. About 0.1 s for the full MNIST."""
    digest = hashlib.sha256()
    for name in PREPARED_FILES:
        path = Path(prepared_dir) / name
        digest.update(f"{name}\0".encode())
        try:
            with open(path, "rb") as file:
                while chunk := file.read(1 << 20):
                    digest.update(chunk)
        except OSError as exc:
            raise DataError(
                f"prepared file {path} cannot be read ({exc.strerror}); "
                "run `dvc repro` for its prepare stage"
            ) from None
    return digest.hexdigest()


def load_split(prepared_dir: Path, split: str, limit: int | None = None) -> Split:
    """One prepared split as float images in [0, 1]; a clear DataError if it is damaged."""
    path = Path(prepared_dir) / f"{split}.pt"
    blob = load_tensors(path, "prepared file", "rerun its prepare stage (`dvc repro`)")
    try:
        images, labels, scale = blob["images"], blob["labels"], blob["divisor"]
    except KeyError as exc:
        raise DataError(
            f"prepared file {path} lacks {exc}; rerun its prepare stage (`dvc repro`)"
        ) from None
    if images.dtype != torch.uint8 or images.ndim != 4 or len(images) != len(labels):
        raise DataError(
            f"prepared file {path} has unexpected contents "
            f"(images {tuple(images.shape)} {images.dtype}, {len(labels)} labels)"
        )
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    images = images.float() / scale
    if blob.get("binarize") != "dynamic":
        return Split(images, labels)
    if split == "train":
        return Split(images, labels, dynamic=True)
    return Split(binarize_once(images, blob["seed"] * 1000 + _TEST_DRAW), labels)
