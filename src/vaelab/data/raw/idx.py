"""Verify IDX files (the MNIST format): checksum first, then the header.

Parsing proper is torchvision's (`read_image_file`, `read_label_file`); this module makes
sure it is only ever handed a file that is complete and the one we expected.
"""

from __future__ import annotations

import hashlib
import math
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch

from vaelab.core.errors import DataError
from vaelab.data.raw.manifest import DatasetManifest, RawFile

_UBYTE = 0x08


@dataclass(frozen=True)
class Verified:
    """A raw file that passed every check, with its decompressed IDX bytes."""

    idx_bytes: bytes
    checksum: str


def header_size(ndim: int) -> int:
    """An IDX header's bytes: the magic number, then one 32-bit size per dimension."""
    return 4 + 4 * ndim


def idx_size(spec: RawFile) -> int:
    """The bytes of an IDX file of the manifest's shape: its header, then one byte a value."""
    return header_size(len(spec.shape)) + math.prod(spec.shape)


def gunzip_tolerant(data: bytes, limit: int) -> tuple[bytes, str | None]:
    """Decompress a gzip stream, stopping after `limit` + 1 bytes (so a longer stream shows
    as longer than `limit`); return what decompressed and the error, if any.

    A corrupt stream still yields the bytes before the damage, so that the error can
    report a checksum of what was actually received. The cap keeps a hostile or damaged
    copy that inflates to gigabytes from ever being held in memory.
    """
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        return b"", f"gzip stream corrupt: {exc}"
    if not inflater.eof and len(out) <= limit:
        return out, "gzip stream truncated"
    return out, None


def verify(gz_bytes: bytes, spec: RawFile, source: str) -> Verified:
    """Check one downloaded .gz against the manifest; raise DataError with one line if not.

    The file passes when any checksum the manifest records matches: the sha256 of the
    decompressed bytes (which survives re-gzipping, as Debian's and our mirror's copies
    are) or the published md5 of the .gz itself.
    """
    size = idx_size(spec)
    idx_bytes, gzip_error = gunzip_tolerant(gz_bytes, size)
    if len(idx_bytes) > size:
        check_header(idx_bytes[:size], spec, source)  # a file of another shape says so
        raise DataError(
            f"{spec.name} from {source}: inflates beyond the {size:,} bytes of shape "
            f"{list(spec.shape)}, so decompression stopped there (a damaged or hostile "
            f"copy); remove it from that mirror or list another"
        )
    checks = []
    if spec.sha256:
        checks.append(("sha256", spec.sha256, hashlib.sha256(idx_bytes).hexdigest()))
    if spec.md5_gz:
        checks.append(("md5 of .gz", spec.md5_gz, hashlib.md5(gz_bytes).hexdigest()))
    matched = next((actual for _, expected, actual in checks if actual == expected), None)
    if matched is None or gzip_error:
        note = f" ({gzip_error})" if gzip_error else ""
        expected = " or ".join(f"{algo} {want}" for algo, want, _ in checks)
        got = ", ".join(f"{algo} {actual}" for algo, _, actual in checks)
        raise DataError(
            f"{spec.name} from {source}: checksum mismatch, expected {expected}, got {got}{note}"
        )
    check_header(idx_bytes, spec, source)
    return Verified(idx_bytes=idx_bytes, checksum=matched)


def check_header(idx_bytes: bytes, spec: RawFile, source: str) -> None:
    """The IDX magic number, dimensions and length match the expected shape."""
    ndim = len(spec.shape)
    header_len = header_size(ndim)
    if len(idx_bytes) < header_len:
        raise DataError(
            f"{spec.name} from {source}: IDX header truncated "
            f"({len(idx_bytes)} bytes, need {header_len})"
        )
    zero, dtype, got_ndim = struct.unpack(">HBB", idx_bytes[:4])
    if zero != 0 or dtype != _UBYTE or got_ndim != ndim:
        raise DataError(
            f"{spec.name} from {source}: bad IDX magic number "
            f"0x{idx_bytes[:4].hex()}, expected 0x000008{ndim:02x}"
        )
    shape = struct.unpack(f">{ndim}I", idx_bytes[4:header_len])
    if shape != spec.shape:
        raise DataError(
            f"{spec.name} from {source}: IDX header shape {list(shape)}, "
            f"expected {list(spec.shape)}"
        )
    payload = math.prod(shape)
    if len(idx_bytes) != header_len + payload:
        raise DataError(
            f"{spec.name} from {source}: IDX body has {len(idx_bytes) - header_len} "
            f"bytes, header says {payload}"
        )


def splits(files: dict[str, bytes], manifest: DatasetManifest, source: str) -> dict:
    """(images, labels) per split, from the four .gz files verified again (they may have
    been edited since download) and parsed by torchvision."""
    # torchvision costs seconds to import (it loads torch._dynamo); only prepare needs it
    from torchvision.datasets.mnist import read_image_file, read_label_file

    tensors: dict[str, torch.Tensor] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for role, gz_bytes in files.items():
            spec = manifest.files[role]
            plain = Path(tmp) / spec.name.removesuffix(".gz")
            plain.write_bytes(verify(gz_bytes, spec, source).idx_bytes)
            reader = read_image_file if spec.is_images else read_label_file
            tensors[role] = reader(str(plain))
    return {
        split: (tensors[f"{split}_images"], tensors[f"{split}_labels"])
        for split in ("train", "test")
    }
