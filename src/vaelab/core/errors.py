"""The one exception type a user can cause, and how stages report it."""

from __future__ import annotations


class VaelabError(Exception):
    """A failure the user can fix: bad params, a corrupt file, an unwritable folder.

    Its message is one line that names the bad value and what is allowed; the stage
    command prints it without a traceback and exits non-zero.
    """

    exit_code = 2


class DataError(VaelabError):
    """A raw or prepared data file is missing, corrupt or truncated."""


class ParamsError(VaelabError):
    """params.yaml holds a value the stages cannot use."""


class WriteError(VaelabError):
    """An output could not be written: a full disk, a quota, a read-only or failing disk.

    Its message names the file, the cause, what was kept and what to do; the writer
    removed its temporary file, so nothing half-written is left.
    """

    def __init__(self, path, reason: str, kept: list[str], remedy: str):
        self.path, self.reason, self.kept, self.remedy = path, reason, list(kept), remedy
        super().__init__("; ".join([f"cannot write {path}: {reason}", *self.kept, remedy]))

    def keeping(self, note: str) -> WriteError:
        """The same failure, saying that `note` was kept too (a checkpoint, say)."""
        return WriteError(self.path, self.reason, [*self.kept, note], self.remedy)


class TrainingDiverged(VaelabError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""

    exit_code = 3
