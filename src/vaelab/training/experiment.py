"""Training one experiment from its prepared folder: the train stage's one call, and `fit`,
which the stage and the tests share.

`train_experiment` reads params, starts torchrun's agent when the experiment asks for
`processes: N`, and picks the device; `fit` loads the splits, resumes from a checkpoint,
trains, logs every epoch (dvclive, the reconstruction grid, the checkpoint) and saves
model.pt. Under torchrun every rank runs `fit`; rank 0 alone reads the checkpoint and
writes anything.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from vaelab.config.experiments import ExperimentSpec, load_experiment
from vaelab.core.errors import ParamsError, WriteError
from vaelab.core.files import (
    ensure_writable_dir,
    flush_tree,
    io_failure,
    remove_stale_temporaries,
    write_error,
)
from vaelab.core.progress import say
from vaelab.data.splits import Split, hold_out, load_split, prepared_fingerprint, read_meta
from vaelab.models.saved import experiment_record, save_model
from vaelab.runtime.device import describe, resolve_device, training_precision
from vaelab.training import distributed
from vaelab.training.checkpoint import Checkpoint, fingerprint
from vaelab.training.epoch_log import EpochLog
from vaelab.training.loop import TrainState, check_batch_fits, train

CPU = torch.device("cpu")


@dataclass
class Fitted:
    """A finished training: its state, the per-epoch grids, the epoch it resumed after."""

    state: TrainState
    grids: list[torch.Tensor]
    resumed_from: int

    @property
    def model(self):
        return self.state.model

    @property
    def history(self) -> list[dict]:
        return self.state.history


def train_experiment(
    *, name: str, params: Path, data: Path, out: Path, live: Path, track: str, limit: int | None
) -> None:
    """Train experiment `name` of `track` on the prepared folder `data` into out/model.pt,
    logging every epoch into the dvclive folder `live` and resuming from
    out/checkpoint.pt. With `processes: N` in the experiment, or under `torchrun
    --nproc-per-node N`, the training is data-parallel over N ranks."""
    ranks = distributed.from_env()
    config, spec = load_experiment(params, name, track=track)
    where = f"experiments.{name}"
    distributed.check_processes(where, spec.processes, ranks)
    if spec.processes > 1 and not ranks.under_torchrun:
        # torchrun's own agent runs this same command as N ranks; nothing else to do here
        distributed.launch(spec.processes, where)
        return
    device = resolve_device(config.device, config.threads, ranks.local_rank_if_launched)
    fit(
        spec,
        name=name,
        data=data,
        device=device,
        out=out,
        checkpoint=out / "checkpoint.pt",
        live=live,
        limit=limit,
        ranks=ranks,
    )


def fit(
    spec: ExperimentSpec,
    *,
    name: str,
    data: Path,
    device: torch.device = CPU,
    out: Path | None = None,
    checkpoint: Path | None = None,
    live: Path | None = None,
    limit: int | None = None,
    ranks: distributed.Ranks = distributed.SINGLE,
) -> Fitted:
    """Train `spec` on the prepared folder `data`: resume from `checkpoint` and keep it
    after every epoch, log to the dvclive folder `live`, and save out/model.pt (then the
    checkpoint is no longer needed and goes). Any of the three may be left out."""
    where = f"experiments.{name}"
    meta = read_meta(data)
    data_fingerprint = prepared_fingerprint(data) if out is not None and ranks.main else None
    images = _on_device(spec, name, data, meta, limit, device, ranks)
    # a rank that dies makes the others' next collective fail: one line, not a traceback
    with distributed.peers_watched(ranks, where), distributed.process_group(ranks, device):
        if not ranks.main:  # rank 0 alone reads the checkpoint and writes files
            out = live = checkpoint = None
        out, live = _writable(out, live)
        precision = training_precision(spec.amp, device)
        if ranks.main:
            say(_announcement(spec, name, meta["dataset"], precision, device, ranks))
        saver = (
            None if checkpoint is None else Checkpoint(checkpoint, fingerprint(spec, meta, limit))
        )
        resumed = _resumed(saver, spec, where, ranks)
        # how many ranks trained it, also when torchrun was started by hand
        flat = {**spec.flat(), "processes": ranks.world}
        with _saying_what_is_kept(saver):
            with _dvclive(live, name, device, flat) as logger:
                state, log = _train(spec, name, images, saver, logger, resumed, ranks)
            # after dvclive's last write: a run that fails to log leaves no new model.pt
            if out is not None:
                record = {"data_fingerprint": data_fingerprint, "precision": precision}
                _save(out / "model.pt", state, spec, name, flat, meta, **record)
        if out is not None:
            if saver is not None:
                saver.remove()
            say(f"train {name}: done in {state.seconds:.1f} s of training -> {out / 'model.pt'}")
    return Fitted(state, log.grids if log else [], resumed["epoch"] if resumed else 0)


def _train(spec, name: str, images: OnDevice, saver, logger, resumed, ranks):
    """The training, with rank 0's log of every epoch (dvclive, the reconstruction grid,
    the checkpoint): the state it ends in, and the log (None on the other ranks)."""
    log = None
    if ranks.main:
        log = EpochLog(
            name,
            spec.epochs,
            images.eval_x,
            grid_labels=images.eval_y,
            checkpoint=saver,
            live=logger,
            resumed=resumed,
        )
    state = train(
        spec,
        name,
        images.train_x,
        images.eval_x,
        on_epoch_end=log,
        resume=resumed,
        dynamic=images.dynamic,
        ranks=ranks,
        train_labels=images.train_y,
        eval_labels=images.eval_y,
    )
    return state, log


@dataclass
class OnDevice:
    """A run's images and labels on its device: what it trains on and what each epoch is
    scored on (a class-conditional model is given each image's label)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    eval_x: torch.Tensor
    eval_y: torch.Tensor
    dynamic: bool  # grey levels, each batch a fresh Bernoulli draw


def _on_device(spec, name: str, data: Path, meta: dict, limit, device, ranks) -> OnDevice:
    """The splits of `data` on `device`, refused in one line where the run cannot train
    on them (a batch larger than the training set; ranks with what they cannot split)."""
    train_split, eval_split = _splits(spec, data, meta, limit)
    check_batch_fits(spec, name, len(train_split.images))
    if ranks.distributed and (spec.validation or train_split.dynamic):
        raise ParamsError(
            f"experiments.{name}: more than one process does not yet support a validation "
            "split or dynamic binarization; train it in one process"
        )
    return OnDevice(
        train_split.images.to(device),
        train_split.labels.to(device),
        eval_split.images.to(device),
        eval_split.labels.to(device),
        train_split.dynamic,
    )


def _writable(out: Path | None, live: Path | None) -> tuple[Path | None, Path | None]:
    """The output folders, made and checked writable, out/ cleared of a killed run's
    temporary files."""
    if out is not None:
        out = ensure_writable_dir(out)
    if live is not None:
        live = ensure_writable_dir(live)
    if out is not None:
        remove_stale_temporaries(out)
    return out, live


def _announcement(spec, name: str, dataset: str, precision: str, device, ranks) -> str:
    processes = f", {ranks.world} processes" if ranks.distributed else ""
    return (
        f"train {name}: {spec.model} on {spec.data} ({dataset}), "
        f"latent {spec.model_knobs.latent_dim}, {spec.epochs} epochs of batch "
        f"{spec.batch_size}, {spec.optimizer} lr {spec.lr}, {precision}, "
        f"on {describe(device)}{processes}"
    )


def _resumed(
    saver: Checkpoint | None, spec: ExperimentSpec, where: str, ranks: distributed.Ranks
) -> dict | None:
    """The checkpoint's state to resume from, on every rank (the other ranks may sit on
    nodes that cannot see the file: rank 0 sends it), or None to start afresh."""
    resumed = distributed.broadcast(saver.load() if saver else None, ranks)
    if resumed is not None and resumed["epoch"] > spec.epochs:
        raise ParamsError(
            f"{where}.epochs = {spec.epochs} is below the {resumed['epoch']} epochs its "
            f"checkpoint {saver.path} has run: set epochs to at least {resumed['epoch']} "
            "to resume it, or delete the checkpoint to start over"
        )
    return resumed


def _save(path: Path, state, spec: ExperimentSpec, name: str, flat: dict, meta: dict, **run):
    """model.pt: the weights kept, the history, and the record that ties them to the
    experiment's keys and data (`run`: its data_fingerprint and precision)."""
    experiment = experiment_record(
        name,
        flat,
        dataset=meta["dataset"],
        data_fingerprint=run["data_fingerprint"],
        binarize=meta["binarize"],
        precision=run["precision"],
        classes=meta["classes"],
        epochs_run=state.epoch,
        kept_epoch=state.best_epoch if spec.validation else state.epoch,
    )
    save_model(path, state.model, experiment, state.history, state.seconds)


def _splits(spec: ExperimentSpec, data: Path, meta: dict, limit: int | None) -> tuple[Split, Split]:
    """The training split and the split each epoch is scored on: the held-out validation
    images when the experiment holds some out, else the test split."""
    train_split = load_split(data, "train", limit)
    if spec.validation:
        return hold_out(train_split, spec.validation, meta["seed"])
    return train_split, load_split(data, "test", limit)


@contextlib.contextmanager
def _saying_what_is_kept(saver: Checkpoint | None):
    """A failed write of the run (the checkpoint, model.pt, dvclive's files) says which
    checkpoint the next run resumes from."""
    try:
        yield
    except WriteError as exc:
        if saver is None:
            raise
        raise exc.keeping(saver.kept()) from None


@contextlib.contextmanager
def _dvclive(folder: Path | None, name: str, device: torch.device, flat: dict):
    """dvclive's logger over `folder` with the run's params logged, or None without one.

    dvclive writes its files in place, so a full disk can cut one short: after any I/O
    failure its files go, and the next run writes them all again (it logs every epoch
    of the checkpoint it resumes from). Once it has ended, they are flushed to the disk.
    """
    if folder is None:
        yield None
        return
    from dvclive import Live  # here, not above: only rank 0 logs, and it is slow to import

    logger = None
    try:
        logger = Live(dir=str(folder), save_dvc_exp=False, dvcyaml=None, report=None)
        logger.log_params({"experiment": name, "device": device.type, **flat})
        yield logger
        logger.end()
        flush_tree(folder)
    except BaseException as exc:
        if isinstance(exc, WriteError):  # the checkpoint's: the disk is full for dvclive too
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
