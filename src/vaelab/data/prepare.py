"""Raw IDX files to the prepared folder that `vaelab.data.splits` loads.

A prepared folder holds `train.pt` and `test.pt` (images as uint8 [N, 1, S, S] with the
divisor that maps them to [0, 1], and int64 labels) plus `meta.json`. uint8 keeps the
DVC cache four times smaller than float32 and loses nothing: binarized images are 0/1,
grey ones are the raw bytes over 255.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

from vaelab.config.params import PreparedSpec, load_params
from vaelab.core.errors import DataError
from vaelab.core.files import atomic_dir
from vaelab.core.progress import say
from vaelab.data.raw.formats import format_of
from vaelab.data.raw.manifest import DatasetManifest, load_manifest

SPLITS = ("train", "test")


def read_raw(raw_dir: Path, manifest: DatasetManifest) -> dict[str, tuple]:
    """(images uint8 [N, H, W], labels) per split, from the raw files verified again."""
    files = {}
    for role, spec in manifest.files.items():
        path = Path(raw_dir) / spec.name
        try:
            files[role] = path.read_bytes()
        except OSError as exc:
            raise DataError(
                f"raw file {path} cannot be read ({exc.strerror}); "
                f"rerun `dvc repro download@{manifest.name}`"
            ) from None
    return format_of(manifest).splits(files, manifest, str(raw_dir))


def binarize(images: torch.Tensor, mode: str, generator: torch.Generator) -> torch.Tensor:
    """uint8 pixels to uint8 values on the [0, 1] scale given by `divisor(mode)`.

    threshold: x/255 > 0.5, the TensorFlow tutorial's static binarization.
    stochastic: one Bernoulli draw with p = x/255, fixed by the generator's seed (the
    literature's static binarization).
    dynamic: the grey levels kept; the trainer draws a fresh Bernoulli sample of every batch,
    and `vaelab.data.splits` binarizes the test split once with a fixed seed.
    none: the grey levels unchanged.
    """
    if mode in ("none", "dynamic"):
        return images.clone()
    unit = images.float() / 255.0
    if mode == "threshold":
        return (unit > 0.5).to(torch.uint8)
    if mode == "stochastic":
        return torch.bernoulli(unit, generator=generator).to(torch.uint8)
    raise ValueError(f"binarize mode {mode!r}")


def divisor(mode: str) -> int:
    return 255 if mode in ("none", "dynamic") else 1


def pad_to(images: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad [N, H, W] images evenly to size x size (seed 003 pads 28 to 32)."""
    height, width = images.shape[-2:]
    if (height, width) == (size, size):
        return images
    if height > size or width > size or (size - height) % 2 or (size - width) % 2:
        raise ValueError(f"cannot pad {height}x{width} evenly to {size}x{size}")
    top, left = (size - height) // 2, (size - width) // 2
    return F.pad(images, (left, size - width - left, top, size - height - top), value=0)


def prepare(raw_dir: Path, manifest: DatasetManifest, spec: PreparedSpec, dest: Path) -> dict:
    """Write the prepared folder for one (dataset, transform); return its meta."""
    raw = read_raw(raw_dir, manifest)
    generator = torch.Generator().manual_seed(spec.seed)
    meta = {
        "dataset": spec.dataset,
        "binarize": spec.binarize,
        "size": spec.size,
        "seed": spec.seed,
        "divisor": divisor(spec.binarize),
        "classes": list(manifest.classes),
        "counts": {},
    }
    with atomic_dir(dest) as staging:
        for split in SPLITS:
            keep = getattr(spec, f"{split}_limit")
            images, labels = (tensor[:keep] for tensor in raw[split])
            images = pad_to(binarize(images, spec.binarize, generator), spec.size)
            # a file object, not a path: torch's own file writer reports a full disk as a
            # RuntimeError without errno, a Python file raises the OSError that names it
            with open(staging / f"{split}.pt", "wb") as file:
                torch.save(
                    {
                        "images": images.unsqueeze(1).contiguous(),
                        "labels": labels,
                        "divisor": meta["divisor"],
                        "binarize": spec.binarize,
                        "seed": spec.seed,
                    },
                    file,
                )
            meta["counts"][split] = len(labels)
            values = torch.unique(images).tolist()
            say(
                f"  {split}: {len(labels)} images {spec.size}x{spec.size}, "
                f"{len(values)} distinct values in [{values[0]}, {values[-1]}]/{meta['divisor']}"
            )
        (staging / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def prepare_from_params(name: str, *, params: Path, manifest: Path, raw: Path, out: Path) -> dict:
    """prepare@NAME: the prepared set NAME of `params` (data.prepared or literature.prepared)
    from the raw files in `raw`, checked against `manifest`, into the folder `out`; returns
    its meta."""
    spec = load_params(params).prepared(name)
    say(f"prepare {name}: {spec.dataset}, binarize={spec.binarize}, {spec.size}x{spec.size}")
    return prepare(raw, load_manifest(spec.dataset, manifest), spec, out)
