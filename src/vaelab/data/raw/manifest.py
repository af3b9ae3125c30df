"""The data manifest: which raw files each dataset has, in which format, and how to
recognise them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from vaelab.core.errors import DataError

DEFAULT_MANIFEST = Path(__file__).with_name("manifest.yaml")
# The files of each format, by role: IDX (MNIST's) comes with labels; Larochelle &
# Murray's .amat files are unlabelled images with a validation split of their own.
ROLES = {
    "idx": ("train_images", "train_labels", "test_images", "test_labels"),
    "amat": ("train_images", "valid_images", "test_images"),
}


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
    classes: tuple[str, ...]  # empty for unlabelled data
    files: dict[str, RawFile]
    format: str = "idx"


def load_manifest(dataset: str, path: Path | str = DEFAULT_MANIFEST) -> DatasetManifest:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(f"data manifest {path} cannot be read: {exc}") from None
    if dataset not in raw:
        raise DataError(f"data manifest {path} has no dataset {dataset!r}; it has {', '.join(raw)}")
    entry = raw[dataset]
    kind = entry.get("format", "idx")
    if kind not in ROLES:
        raise DataError(
            f"data manifest {path}: {dataset}.format = {kind!r} is invalid: allowed values are "
            f"{', '.join(ROLES)}"
        )
    files = {}
    for role in ROLES[kind]:
        spec = entry["files"][role]
        if not (spec.get("sha256") or spec.get("md5_gz")):
            raise DataError(f"data manifest {path}: {dataset}.{role} needs sha256 or md5_gz")
        files[role] = RawFile(
            name=spec["name"],
            shape=tuple(spec["shape"]),
            sha256=spec.get("sha256"),
            md5_gz=spec.get("md5_gz"),
        )
    return DatasetManifest(
        name=dataset, classes=tuple(entry.get("classes", ())), files=files, format=kind
    )
