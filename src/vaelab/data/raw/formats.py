"""The raw formats a dataset's files come in: each module verifies one downloaded file
(`verify`) and turns a dataset's verified files into its prepared splits (`splits`)."""

from __future__ import annotations

from types import ModuleType

from vaelab.data.raw import amat, idx
from vaelab.data.raw.manifest import DatasetManifest

FORMATS: dict[str, ModuleType] = {"idx": idx, "amat": amat}


def format_of(manifest: DatasetManifest) -> ModuleType:
    return FORMATS[manifest.format]
