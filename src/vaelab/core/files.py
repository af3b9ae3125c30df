"""Write outputs so that neither a kill -9, nor a crash of the machine, nor a full disk
leaves a half-written file behind.

Everything is written beside its destination under a temporary name, flushed to the disk
(fsync), and renamed into place; rename within one filesystem is atomic on POSIX, and the
folder is flushed after the rename so that the rename itself survives a power cut. A
write that fails (a full disk, a quota, an I/O error) removes its temporary file and
raises WriteError, one line naming the destination and the cause.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from vaelab.core.errors import VaelabError, WriteError


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


def _remove_stale_copies(dest: Path) -> None:
    """Delete what a kill -9 or a crash left of earlier writes of `dest`: a temporary file,
    or a folder being written or set aside (for a prepared set, tens of MB)."""
    name, random = glob.escape(dest.name), "?" * 8  # tempfile's names: 8 random characters
    for pattern in (
        f".{name}.{random}{_TMP_SUFFIX}",
        f".{name}.tmp-{random}",
        f".{name}.old-{random}",
    ):
        for stale in dest.parent.glob(pattern):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)


def flush_file(path: Path | str) -> None:
    """fsync `path`: its data reaches the disk before anything renames it into place.

    fsync flushes the file, not the descriptor, so a file that a library wrote and
    closed is flushed through a descriptor of our own."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# what fsync of a folder returns on filesystems that cannot flush one (some network and
# FUSE filesystems): there is nothing more to do there
_FOLDER_FLUSH_UNSUPPORTED = {errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF}


def flush_folder(path: Path | str) -> None:
    """fsync a folder, so that the renames and new names in it survive a crash."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _FOLDER_FLUSH_UNSUPPORTED:
            raise
    finally:
        os.close(fd)


def flush_tree(folder: Path | str) -> None:
    """fsync every file and folder under `folder`, and `folder` itself."""
    for parent, _, files in os.walk(folder, topdown=False):
        for name in files:
            flush_file(os.path.join(parent, name))
        flush_folder(parent)


def os_error_behind(exc: BaseException) -> OSError | None:
    """The OSError that caused `exc`, if any: torch, imageio and matplotlib raise their own
    exceptions while handling the OSError of a full disk. A context that `raise ... from
    None` suppressed is not followed: that error was handled."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return None


def write_error(dest: Path, cause: OSError, kept: list[str], staging: Path | None = None):
    """A WriteError for `dest` from the OSError that stopped it, saying what to do."""
    reason = cause.strerror or str(cause)
    if cause.filename and staging is not None and Path(cause.filename) != staging:
        # a file inside the temporary folder: name it where it would have landed
        inner = Path(cause.filename)
        if staging in inner.parents:
            reason = f"{dest / inner.relative_to(staging)}: {reason}"
    if cause.errno in (errno.ENOSPC, errno.EDQUOT):
        remedy = "free some space on its disk (or use another folder) and run it again"
    elif cause.errno == errno.EROFS:
        remedy = "its filesystem is mounted read-only; write to another folder"
    elif cause.errno in (errno.EACCES, errno.EPERM):
        remedy = "fix the permissions of the file or its folder and run it again"
    else:
        remedy = "check the disk and run it again"
    return WriteError(dest, reason, kept, remedy)


def _kept(dest: Path, existed: bool, folder: bool = False) -> list[str]:
    name = f"{dest.name}/" if folder else dest.name
    what = f"the previous {name} is kept unchanged" if existed else f"no {name} written"
    return [f"{what}, no partial file left"]


def io_failure(exc: BaseException) -> OSError | None:
    """The OSError to report for `exc`, or None when `exc` is to be raised as it is: an
    interrupt, or a failure that is already one line."""
    if not isinstance(exc, Exception) or isinstance(exc, VaelabError):
        return None
    return os_error_behind(exc)


@contextlib.contextmanager
def atomic_path(dest: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `dest`; on success flush it, rename it onto `dest`
    and flush the folder.

    On any exception (KeyboardInterrupt included) the temporary file is removed and
    `dest` is left as it was; an I/O error (a full disk) becomes a WriteError.
    """
    dest = Path(dest)
    ensure_writable_dir(dest.parent)
    _remove_stale_copies(dest)
    existed = dest.exists()
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{dest.name}.", suffix=_TMP_SUFFIX, dir=dest.parent
        )
        os.close(fd)
    except OSError as exc:
        raise write_error(dest, exc, _kept(dest, existed)) from None
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():  # mkstemp makes private files; outputs get the usual permissions
            os.chmod(tmp, 0o666 & ~_umask())
            flush_file(tmp)
        os.replace(tmp, dest)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        cause = io_failure(exc)
        if cause is None:
            raise
        raise write_error(dest, cause, _kept(dest, existed)) from None
    _flush_new_name(dest)


def _flush_new_name(dest: Path) -> None:
    try:
        flush_folder(dest.parent)
    except OSError as exc:
        kept = [f"{dest} is written but may not survive a crash of the machine"]
        raise write_error(dest.parent, exc, kept) from None


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
    """Yield an empty temporary folder beside `dest`; on success its files are flushed and
    it replaces `dest`.

    On failure the temporary folder is removed and `dest` is left as it was; an I/O error
    (a full disk) becomes a WriteError.
    """
    dest = Path(dest)
    ensure_writable_dir(dest.parent)
    _remove_stale_copies(dest)
    existed = dest.exists()
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    except OSError as exc:
        raise write_error(dest, exc, _kept(dest, existed, folder=True)) from None
    old = None
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's folders are private, outputs are not
        flush_tree(tmp)
        if dest.exists():
            # aside first, so that `dest` is never a half-deleted folder
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
            os.replace(dest, old)
        os.replace(tmp, dest)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not dest.exists():
            os.replace(old, dest)
        elif old is not None:
            old.rmdir()
        cause = io_failure(exc)
        if cause is None:
            raise
        raise write_error(dest, cause, _kept(dest, existed, folder=True), staging=tmp) from None
    _flush_new_name(dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
