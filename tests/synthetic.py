"""Small synthetic IDX datasets in the MNIST format, with a manifest that matches them."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import yaml

FILE_NAMES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


def idx_bytes(array: np.ndarray) -> bytes:
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def make_arrays(n_train: int, n_test: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Blobby 28x28 images whose brightness depends on the label, so models can learn."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        yy, xx = np.mgrid[0:28, 0:28]
        centres = 6 + 1.6 * labels[:, None, None]
        blob = np.exp(-((yy - centres) ** 2 + (xx - 14) ** 2) / 18.0)
        noise = rng.uniform(0, 0.25, size=(n, 28, 28))
        arrays[f"{split}_images"] = np.clip((blob + noise) * 255, 0, 255).astype(np.uint8)
        arrays[f"{split}_labels"] = labels
    return arrays


def write_mirror(
    root: Path, dataset: str, n_train: int = 300, n_test: int = 100, seed: int = 0
) -> dict:
    """Write `root/dataset/*.gz` and return a manifest entry with their sha256s."""
    folder = Path(root) / dataset
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for role, array in make_arrays(n_train, n_test, seed).items():
        raw = idx_bytes(array)
        (folder / FILE_NAMES[role]).write_bytes(gzip.compress(raw, mtime=0))
        files[role] = {
            "name": FILE_NAMES[role],
            "shape": list(array.shape),
            "sha256": hashlib.sha256(raw).hexdigest(),
        }
    classes = FASHION_CLASSES if dataset == "fashion_mnist" else [str(d) for d in range(10)]
    return {"classes": classes, "files": files}


def write_manifest(path: Path, entries: dict[str, dict]) -> Path:
    path.write_text(yaml.safe_dump(entries, sort_keys=False))
    return path


AMAT_NAMES = {
    "train_images": "binarized_mnist_train.amat",
    "valid_images": "binarized_mnist_valid.amat",
    "test_images": "binarized_mnist_test.amat",
}


def amat_bytes(images: np.ndarray) -> bytes:
    """Larochelle's text format: one image a line, its 784 pixels as 0 or 1 with spaces."""
    rows = images.reshape(len(images), -1)
    return "".join(" ".join(map(str, row)) + "\n" for row in rows.tolist()).encode()


def write_amat_mirror(
    root: Path, n_train: int = 60, n_valid: int = 20, n_test: int = 20, seed: int = 0
) -> dict:
    """Write `root/binarized_mnist/*.amat` (a fixed Bernoulli draw of blobby digits) and
    return its manifest entry, with their sha256s."""
    folder = Path(root) / "binarized_mnist"
    folder.mkdir(parents=True, exist_ok=True)
    grey = make_arrays(n_train + n_valid, n_test, seed)
    rng = np.random.default_rng(seed + 100)
    pools = {
        "train_images": grey["train_images"][:n_train],
        "valid_images": grey["train_images"][n_train:],
        "test_images": grey["test_images"],
    }
    files = {}
    for role, array in pools.items():
        binary = (rng.uniform(size=array.shape) < array / 255.0).astype(np.uint8)
        raw = amat_bytes(binary)
        (folder / AMAT_NAMES[role]).write_bytes(raw)
        files[role] = {
            "name": AMAT_NAMES[role],
            "shape": list(array.shape),
            "sha256": hashlib.sha256(raw).hexdigest(),
        }
    return {"format": "amat", "files": files}


def flip_tensor_byte(path) -> None:
    """Change one byte inside the largest tensor record of the .pt file at `path`, as a bad
    sector would: the zip stays readable, and torch loads it without a word."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        record = max(archive.infolist(), key=lambda info: info.file_size)
    with open(path, "r+b") as file:
        file.seek(record.header_offset + 26)  # the local header's name and extra lengths
        name, extra = (int.from_bytes(file.read(2), "little") for _ in range(2))
        where = record.header_offset + 30 + name + extra + record.file_size // 2
        file.seek(where)
        byte = file.read(1)[0]
        file.seek(where)
        file.write(bytes([byte ^ 0xFF]))
