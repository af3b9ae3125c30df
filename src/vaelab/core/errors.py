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


class TrainingDiverged(VaelabError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""

    exit_code = 3
