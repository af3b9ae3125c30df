"""dvclive's log of a run, which a failure leaves readable or removes, never half-written:
dvclive writes its files in place, so a full disk can cut one short.
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path

from vaelab.core.errors import WriteError
from vaelab.core.files import flush_tree, io_failure, write_error


@contextmanager
def live_log(folder: Path | None, params: dict):
    """dvclive's logger over `folder` with the run's `params` logged, or None without one.

    After any I/O failure its files go, and the next run writes them all again (it logs every epoch
    of the checkpoint it resumes from). Once it has ended, they are flushed to the disk.
    """
    if folder is None:
        yield None
        return
    from dvclive import Live  # here, not above: it is slow to import, and not every run logs

    logger = None
    try:
        logger = Live(dir=str(folder), save_dvc_exp=False, dvcyaml=None, report=None)
        logger.log_params(params)
        yield logger
        logger.end()
        flush_tree(folder)
    except BaseException as exc:
        if isinstance(
            exc, WriteError
        ):  # another file of the run's (its checkpoint): the disk is full for dvclive too
            _remove_dvclive_files(folder)
            raise exc.keeping(f"dvclive's files in {folder} removed") from None
        cause = io_failure(exc)
        if cause is None:
            # an interrupt or a diverged loss: every epoch logged so far stays readable,
            # unless the disk cannot take dvclive's last summary either
            if not _ended(logger):
                _remove_dvclive_files(folder)
            raise
        _remove_dvclive_files(folder)
        kept = [f"dvclive's files in {folder} removed, no partial file left"]
        raise write_error(folder, cause, kept) from None


def _ended(logger) -> bool:
    """End dvclive's run on the way out of a failure; False if it could not write."""
    if logger is None:
        return True
    try:
        logger.end()
    except OSError:  # the failure on its way out says what happened; this would hide it
        return False
    return True


def _remove_dvclive_files(folder: Path) -> None:
    """Everything dvclive writes under `folder` (as its own cleanup at the start of a run
    removes), and nothing else that may live there."""
    shutil.rmtree(folder / "plots", ignore_errors=True)
    for name in ("metrics.json", "params.yaml"):
        (folder / name).unlink(missing_ok=True)
