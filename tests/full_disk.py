"""A disk that fills up, for the module under test: its `open` replaced by `FillsUp(room)`.

The first `room` files opened for writing are written whole; every later one takes a few
bytes and then fails with ENOSPC, as on a real full disk, leaving a partial file for the
writer to clean up. Reads pass through.
"""

from __future__ import annotations

import builtins
import errno
import os

PARTIAL_BYTES = 8


class FillsUp:
    def __init__(self, room: int):
        self.room, self.opened = room, 0

    def __call__(self, path, mode="r", *args, **kwargs):
        file = builtins.open(path, mode, *args, **kwargs)
        if not any(flag in mode for flag in "wax+"):
            return file
        self.opened += 1
        return file if self.opened <= self.room else _Filling(file)


class _Filling:
    """A file on a disk with PARTIAL_BYTES left."""

    def __init__(self, file):
        self.file, self.left = file, PARTIAL_BYTES

    def write(self, data):
        if len(data) > self.left:
            self.file.write(data[: self.left])
            self.file.flush()
            self.left = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.left -= len(data)
        return self.file.write(data)

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()
