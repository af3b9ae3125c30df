"""Write outputs so that a crash or kill -9 never leaves a half-written file behind.

Everything is written beside its destination under a temporary name and renamed into
place; rename within one filesystem is atomic on POSIX.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from vaelab.core.errors import VaelabError


def ensure_writable_dir(path: Path) -> Path:
    """Create `path` (and parents); fail with one line if that is impossible."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VaelabError(f"cannot create output folder {path}: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise VaelabError(f"output folder {path} is not writable; fix its permissions or path")
    return path


_TMP_SUFFIX = ".tmp"


def remove_stale_temporaries(folder: Path) -> None:
    """Delete temporary files that a kill -9 left behind in `folder`."""
    for stale in Path(folder).glob(f".*{_TMP_SUFFIX}"):
        stale.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(dest: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `dest`; on success rename it onto `dest`.

    On any exception (KeyboardInterrupt included) the temporary file is removed and
    `dest` is left as it was.
    """
    dest = Path(dest)
    ensure_writable_dir(dest.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=_TMP_SUFFIX, dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():  # mkstemp makes private files; outputs get the usual permissions
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_text(dest: Path | str, text: str) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(dest: Path | str, data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


@contextlib.contextmanager
def atomic_dir(dest: Path | str) -> Iterator[Path]:
    """Yield an empty temporary folder beside `dest`; on success it replaces `dest`.

    On failure the temporary folder is removed and nothing appears at `dest`.
    """
    dest = Path(dest)
    ensure_writable_dir(dest.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        yield tmp
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
