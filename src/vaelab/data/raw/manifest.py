"""The data manifest: which raw files each dataset has and how to recognise them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from vaelab.core.errors import DataError

DEFAULT_MANIFEST = Path(__file__).with_name("manifest.yaml")
SPLIT_FILES = ("train_images", "train_labels", "test_images", "test_labels")


@dataclass(frozen=True)
class RawFile:
    name: str
    shape: tuple[int, ...]
    sha256: str | None = None
    md5_gz: str | None = None

    @property
    def is_images(self) -> bool:
        return len(self.shape) == 3


@dataclass(frozen=True)
class DatasetManifest:
    name: str
    classes: tuple[str, ...]
    files: dict[str, RawFile]


def load_manifest(dataset: str, path: Path | str = DEFAULT_MANIFEST) -> DatasetManifest:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(f"data manifest {path} cannot be read: {exc}") from None
    if dataset not in raw:
        raise DataError(f"data manifest {path} has no dataset {dataset!r}; it has {', '.join(raw)}")
    entry = raw[dataset]
    files = {}
    for role in SPLIT_FILES:
        spec = entry["files"][role]
        if not (spec.get("sha256") or spec.get("md5_gz")):
            raise DataError(f"data manifest {path}: {dataset}.{role} needs sha256 or md5_gz")
        files[role] = RawFile(
            name=spec["name"],
            shape=tuple(spec["shape"]),
            sha256=spec.get("sha256"),
            md5_gz=spec.get("md5_gz"),
        )
    return DatasetManifest(name=dataset, classes=tuple(entry["classes"]), files=files)
