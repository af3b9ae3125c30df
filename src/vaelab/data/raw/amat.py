"""Larochelle & Murray's binarized MNIST (2011): the fixed Bernoulli draw that the
literature's "static MNIST" figures use, as three .amat text files of one image a line,
784 pixels written as 0 or 1 and separated by spaces; 50,000 training, 10,000 validation
and 10,000 test images, unlabelled.

The files are checked against the sha256 that tensorflow-datasets publishes
(tensorflow_datasets/datasets/binarized_mnist/checksums.tsv) before they are parsed.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import torch

from vaelab.core.errors import DataError
from vaelab.data.raw.idx import Verified
from vaelab.data.raw.manifest import DatasetManifest, RawFile

_ZERO, _ONE = ord("0"), ord("1")
_WHITESPACE = np.frombuffer(b" \t\r\n", dtype=np.uint8)


def verify(data: bytes, spec: RawFile, source: str) -> Verified:
    """The file's sha256 against the manifest, then its pixels against its shape; one
    line naming the file and the mirror if either is wrong."""
    checksum = _checksum(data, spec, source)
    parse(data, spec, source)
    return Verified(idx_bytes=data, checksum=checksum)


def _checksum(data: bytes, spec: RawFile, source: str) -> str:
    actual = hashlib.sha256(data).hexdigest()
    if actual != spec.sha256:
        raise DataError(
            f"{spec.name} from {source}: checksum mismatch, expected sha256 {spec.sha256}, "
            f"got {actual}"
        )
    return actual


def parse(data: bytes, spec: RawFile, source: str) -> torch.Tensor:
    """The images as uint8 [N, 28, 28] on the 0..255 scale of grey MNIST (0 or 255), so
    that every binarize mode of prepare leaves them as they are."""
    chars = np.frombuffer(data, dtype=np.uint8)
    pixels = (chars == _ZERO) | (chars == _ONE)
    stray = ~pixels & ~np.isin(chars, _WHITESPACE)
    if stray.any():
        at = int(stray.argmax())
        line = data.count(b"\n", 0, at) + 1
        raise DataError(
            f"{spec.name} from {source}: line {line} holds "
            f"{data[at : at + 1]!r}, not a 0 or 1 pixel; the file is corrupt, download it again"
        )
    count, lines = int(pixels.sum()), len(data.splitlines())
    per_image = math.prod(spec.shape[1:])
    if lines != spec.shape[0] or count != math.prod(spec.shape):
        raise DataError(
            f"{spec.name} from {source}: {lines} lines of {count} pixels in all, expected "
            f"{spec.shape[0]} images of {per_image}; the file is truncated or not this dataset"
        )
    values = (chars[pixels] == _ONE).astype(np.uint8) * 255
    return torch.from_numpy(values.reshape(spec.shape))


def splits(files: dict[str, bytes], manifest: DatasetManifest, source: str) -> dict:
    """(images, labels) per prepared split: train is the training file followed by the
    validation file, so that `validation: 10000` holds out exactly the published split;
    labels are -1, as the files have none."""
    images = {}
    for role, data in files.items():
        spec = manifest.files[role]
        _checksum(data, spec, source)  # the files may have been edited since download
        images[role] = parse(data, spec, source)
    train = torch.cat([images["train_images"], images["valid_images"]])
    test = images["test_images"]
    return {
        "train": (train, torch.full((len(train),), -1, dtype=torch.int64)),
        "test": (test, torch.full((len(test),), -1, dtype=torch.int64)),
    }
