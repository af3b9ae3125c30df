"""Fetch a dataset's raw files from the first mirror that serves good copies.

A mirror is an http(s) URL or a local folder holding the files (.gz for IDX, .amat). The environment
variable VAELAB_MIRROR (a folder or URL holding `<dataset>/<file>.gz`) replaces the
mirror list, for machines without internet.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from vaelab.config.params import load_params
from vaelab.core.errors import DataError, ParamsError
from vaelab.core.files import atomic_dir
from vaelab.core.progress import bar, say
from vaelab.data.raw.formats import format_of
from vaelab.data.raw.manifest import DatasetManifest, RawFile, load_manifest

MIRROR_ENV = "VAELAB_MIRROR"
_CHUNK = 1 << 16
_TIMEOUT_S = 60


def mirrors_for(dataset: str, configured: list[str]) -> list[str]:
    override = os.environ.get(MIRROR_ENV)
    if override:
        return [_join(override, dataset)]
    return list(configured)


def _join(base: str, name: str) -> str:
    if _is_url(base):
        return base.rstrip("/") + "/" + name
    return str(Path(base) / name)


def _is_url(location: str) -> bool:
    return location.startswith(("http://", "https://", "file://"))


def fetch(mirror: str, name: str) -> bytes:
    """The bytes of `name` from one mirror; OSError if the mirror cannot serve it."""
    location = _join(mirror, name)
    if not _is_url(mirror):
        return Path(location).read_bytes()
    request = urllib.request.Request(location, headers={"User-Agent": "vaelab"})
    with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        chunks = []
        with bar(total=total, desc=name, unit="B", unit_scale=True) as progress:
            while chunk := response.read(_CHUNK):
                chunks.append(chunk)
                progress.update(len(chunk))
    return b"".join(chunks)


def fetch_verified(spec: RawFile, mirrors: list[str], verify) -> bytes:
    """The first copy of `spec` that passes `verify` (its format's), trying the mirrors in
    order."""
    failures = []
    for mirror in mirrors:
        try:
            data = fetch(mirror, spec.name)
        except (OSError, urllib.error.URLError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
            failures.append(f"{spec.name} from {mirror}: cannot fetch ({reason})")
            continue
        try:
            verified = verify(data, spec, mirror)
        except DataError as exc:
            failures.append(str(exc))
            continue
        say(
            f"  {spec.name}: {len(data) / 1e6:.1f} MB from {mirror}, checksum ok "
            f"({verified.checksum[:12]}…), shape {list(spec.shape)} ok"
        )
        return data
    raise DataError("; ".join(failures) if failures else f"{spec.name}: no mirrors configured")


def download_dataset(manifest: DatasetManifest, mirrors: list[str], dest: Path) -> None:
    """Fetch and verify every file of the dataset, then move them into `dest` together.

    Nothing appears at `dest` unless every file verified.
    """
    say(f"download {manifest.name}: {len(manifest.files)} files, mirrors: {', '.join(mirrors)}")
    with atomic_dir(dest) as staging:
        for spec in manifest.files.values():
            data = fetch_verified(spec, mirrors, format_of(manifest).verify)
            (staging / spec.name).write_bytes(data)
    say(f"download {manifest.name}: done -> {dest}")


def download_from_params(dataset: str, *, params: Path, manifest: Path, out: Path) -> None:
    """download@DATASET: the dataset's files from its mirrors in `params` (or VAELAB_MIRROR),
    checked against `manifest`, into the folder `out`."""
    mirrors = load_params(params).mirrors()
    if dataset not in mirrors:
        raise ParamsError(
            f"dataset {dataset!r} is not in data.mirrors nor literature.mirrors; allowed: "
            f"{', '.join(mirrors)}"
        )
    download_dataset(load_manifest(dataset, manifest), mirrors_for(dataset, mirrors[dataset]), out)
