"""The library files a run has imported, and their sha256: what ties a checkpoint to the
code that wrote it.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

_LIBRARY = Path(__file__).resolve().parents[1]  # where the imported modules' files lie
_SOURCE_DIR = _LIBRARY  # where their bytes are read: a test points it at a copy


def loaded_sources(known: dict[str, str] | None = None) -> dict[str, str]:
    """The sha256 of each library file imported by now, by its path in the library; the
    digests in `known` are kept as they are (read when those modules were imported)."""
    sources = dict(known or {})
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if not (name == "vaelab" or name.startswith("vaelab.")) or file is None:
            continue
        relative = Path(file).resolve().relative_to(_LIBRARY).as_posix()
        if relative not in sources:
            sources[relative] = _digest(_SOURCE_DIR / relative)
    return dict(sorted(sources.items()))


def changed_sources(sources: dict[str, str]) -> list[str]:
    """Which of the recorded library files differ now (or are gone)."""
    return [
        relative
        for relative, digest in sources.items()
        if not (_SOURCE_DIR / relative).is_file() or _digest(_SOURCE_DIR / relative) != digest
    ]


def digests(relatives) -> dict[str, str]:
    """The sha256 of each of the library files `relatives` that exists now."""
    return {
        relative: _digest(_SOURCE_DIR / relative)
        for relative in relatives
        if (_SOURCE_DIR / relative).is_file()
    }


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
