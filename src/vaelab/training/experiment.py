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
from dataclasses import dataclass
from pathlib import Path

import torch

from vaelab.config.experiments import ExperimentSpec, load_experiment
from vaelab.core.errors import ParamsError, WriteError
from vaelab.core.files import (
    ensure_writable_dir,
    remove_stale_temporaries,
)
from vaelab.core.progress import say
from vaelab.data.splits import Split, hold_out, load_split, prepared_fingerprint, read_meta
from vaelab.models.saved import experiment_record, save_model
from vaelab.runtime import torchrun
from vaelab.runtime.device import describe, processor, resolve_device, training_precision
from vaelab.runtime.live_log import live_log
from vaelab.training.checkpoint import Checkpoint, fingerprint
from vaelab.training.epoch_log import EpochLog
from vaelab.training.loop import Images, Run, TrainState, train

CPU = torch.device("cpu")


@dataclass(frozen=True)
class Outputs:
    """Where a run writes: model.pt into `folder`, the epoch `checkpoint` it resumes from
    and keeps, dvclive's `live` folder. Any of the three may be left out."""

    folder: Path | None = None
    checkpoint: Path | None = None
    live: Path | None = None


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
    ranks = torchrun.from_env()
    config, spec = load_experiment(params, name, track=track)
    where = f"experiments.{name}"
    torchrun.check_processes(where, spec.processes, ranks)
    if spec.processes > 1 and not ranks.under_torchrun:
        # torchrun's own agent runs this same command as N ranks; nothing else to do here
        torchrun.launch(spec.processes, where)
        return
    device = resolve_device(config.device, config.threads, ranks.local_rank_if_launched)
    outputs = Outputs(out, out / "checkpoint.pt", live)
    fit(Run(spec, name, ranks), data, device=device, outputs=outputs, limit=limit)


def fit(
    run: Run,
    data: Path,
    *,
    device: torch.device = CPU,
    outputs: Outputs = Outputs(),
    limit: int | None = None,
) -> Fitted:
    """Train `run` on the first `limit` images of each split of the prepared folder `data`:
    resume from the checkpoint and keep it after every epoch, log to the dvclive folder,
    and save model.pt (then the checkpoint is no longer needed and goes)."""
    spec, name, ranks = run.spec, run.name, run.ranks
    where = f"experiments.{name}"
    meta = read_meta(data)
    out, checkpoint, live = outputs.folder, outputs.checkpoint, outputs.live
    data_fingerprint = prepared_fingerprint(data) if out is not None and ranks.main else None
    images = _on_device(run, data, meta, limit, device)
    # a rank that dies makes the others' next collective fail: one line, not a traceback
    with torchrun.peers_watched(ranks, where), torchrun.process_group(ranks, device):
        if not ranks.main:  # rank 0 alone reads the checkpoint and writes files
            out = live = checkpoint = None
        out, live = _writable(out, live)
        precision = training_precision(spec.amp, device)
        if ranks.main:
            say(_announcement(run, meta["dataset"], precision, device))
        saver = (
            None if checkpoint is None else Checkpoint(checkpoint, fingerprint(spec, meta, limit))
        )
        resumed = _resumed(saver, spec, where, ranks)
        # how many ranks trained it, also when torchrun was started by hand
        flat = {**spec.flat(), "processes": ranks.world}
        with _saying_what_is_kept(saver):
            run_params = {"experiment": name, "device": device.type, **flat}
            run_params["hardware"] = processor(device)  # of the session that ran it last
            with live_log(live, run_params) as logger:
                state, log = _train(run, images, saver, logger, resumed)
            # after dvclive's last write: a run that fails to log leaves no new model.pt
            if out is not None:
                record = {"data_fingerprint": data_fingerprint, "precision": precision}
                _save(out / "model.pt", state, spec, name, flat, meta, **record)
        if out is not None:
            if saver is not None:
                saver.remove()
            say(f"train {name}: done in {state.seconds:.1f} s of training -> {out / 'model.pt'}")
    return Fitted(state, log.grids if log else [], resumed["epoch"] if resumed else 0)


def _train(run: Run, images: Images, saver, logger, resumed):
    """The training, with rank 0's log of every epoch (dvclive, the reconstruction grid,
    the checkpoint): the state it ends in, and the log (None on the other ranks)."""
    log = None
    if run.ranks.main:
        log = EpochLog(
            run.name,
            run.spec.epochs,
            images.eval_x,
            grid_labels=images.eval_y,
            checkpoint=saver,
            live=logger,
            resumed=resumed,
        )
    return train(run, images, on_epoch_end=log, resume=resumed), log


def _on_device(run: Run, data: Path, meta: dict, limit, device) -> Images:
    """The splits of `data` on `device`, refused in one line where the run cannot train
    on them (a batch larger than the training set; ranks with what they cannot split)."""
    train_split, eval_split = _splits(run.spec, data, meta, limit)
    if run.spec.batch_size > len(train_split.images):
        raise ParamsError(
            f"experiments.{run.name}.batch_size = {run.spec.batch_size} is invalid: "
            f"larger than the training set ({len(train_split.images)} images)"
        )
    if run.ranks.distributed and (run.spec.validation or train_split.dynamic):
        raise ParamsError(
            f"experiments.{run.name}: more than one process does not yet support a "
            "validation split or dynamic binarization; train it in one process"
        )
    return Images(
        train_split.images.to(device),
        eval_split.images.to(device),
        train_split.labels.to(device),
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


def _announcement(run: Run, dataset: str, precision: str, device) -> str:
    spec, name = run.spec, run.name
    processes = f", {run.ranks.world} processes" if run.ranks.distributed else ""
    return (
        f"train {name}: {spec.model} on {spec.data} ({dataset}), "
        f"latent {spec.model_knobs.latent_dim}, {spec.epochs} epochs of batch "
        f"{spec.batch_size}, {spec.optimizer} lr {spec.lr}, {precision}, "
        f"on {describe(device)}{processes}"
    )


def _resumed(
    saver: Checkpoint | None, spec: ExperimentSpec, where: str, ranks: torchrun.Ranks
) -> dict | None:
    """The checkpoint's state to resume from, on every rank (the other ranks may sit on
    nodes that cannot see the file: rank 0 sends it), or None to start afresh."""
    resumed = torchrun.broadcast(saver.load() if saver else None, ranks)
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
