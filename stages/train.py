"""train@EXP: train one experiment; log per-epoch metrics and reconstructions with dvclive.

With `processes: N` in the experiment, or when started by `torchrun --nproc-per-node N`,
the training is data-parallel over N ranks (vaelab.training.distributed) and rank 0 alone writes.
"""

from pathlib import Path
from typing import Annotated

import torch
import typer

from vaelab.config.experiments import load_experiment
from vaelab.core.cli import (
    DataDir,
    Experiment,
    Limit,
    OutDir,
    ParamsFile,
    TrackName,
    stage_app,
    user_errors,
)
from vaelab.core.errors import ParamsError
from vaelab.core.files import ensure_writable_dir, remove_stale_temporaries
from vaelab.core.progress import say
from vaelab.data.splits import hold_out, load_split, read_meta
from vaelab.models.saved import save_model
from vaelab.runtime.device import describe, resolve_device, training_precision
from vaelab.training import distributed
from vaelab.training.checkpoint import Checkpoint, fingerprint
from vaelab.training.epoch_log import EpochLog
from vaelab.training.loop import check_batch_fits, train

app = stage_app(__doc__)


@app.command()
@user_errors
def main(
    name: Experiment,
    data: DataDir,
    out: OutDir,
    live: Annotated[Path, typer.Option(help="The dvclive folder for per-epoch logs.")],
    params: ParamsFile = Path("params.yaml"),
    track: TrackName = "references",
    limit: Limit = None,
) -> None:
    """Train experiment NAME on DATA into OUT/model.pt, resuming an interrupted run."""
    ranks = distributed.from_env()
    config, spec = load_experiment(params, name, track)
    distributed.check_processes(f"experiments.{name}", spec.processes, ranks)
    if spec.processes > 1 and not ranks.under_torchrun:
        # torchrun's own agent runs this same command as N ranks; nothing else to do here
        distributed.launch(spec.processes, f"experiments.{name}")
        return
    local_rank = ranks.local_rank if ranks.under_torchrun else None
    device = resolve_device(config.device, config.threads, local_rank)
    if ranks.distributed and device.type == "cpu" and not config.threads:
        # torch's default, one thread per core, in every rank would oversubscribe the cores
        torch.set_num_threads(max(1, torch.get_num_threads() // ranks.local_world))
    meta = read_meta(data)
    train_split = load_split(data, "train", limit)
    if spec.validation:
        train_split, eval_split = hold_out(train_split, spec.validation, meta["seed"])
    else:
        eval_split = load_split(data, "test", limit)
    train_x, eval_x = train_split.images.to(device), eval_split.images.to(device)
    check_batch_fits(spec, name, len(train_x))
    if ranks.distributed and (spec.validation or train_split.dynamic):
        raise ParamsError(
            f"experiments.{name}: more than one process does not yet support a validation "
            "split or dynamic binarization; train it in one process"
        )
    # a rank that dies makes the others' next collective fail: one line, not a traceback
    watched = distributed.peers_watched(ranks, f"experiments.{name}")
    with watched, distributed.process_group(ranks, device):
        if not ranks.main:
            train(
                spec, name, train_x, eval_x, None, distributed.broadcast(None, ranks), False, ranks
            )
            return
        out, live = ensure_writable_dir(out), ensure_writable_dir(live)
        remove_stale_temporaries(out)
        processes = f", {ranks.world} processes" if ranks.distributed else ""
        precision = training_precision(spec.amp, device)
        say(
            f"train {name}: {spec.model} on {spec.data} ({meta['dataset']}), "
            f"latent {spec.model_knobs.latent_dim}, {spec.epochs} epochs of batch "
            f"{spec.batch_size}, {spec.optimizer} lr {spec.lr}, {precision}, "
            f"on {describe(device)}{processes}"
        )
        checkpoint = Checkpoint(out / "checkpoint.pt", fingerprint(spec, meta, limit))
        # only rank 0 reads it: the other ranks may sit on nodes that cannot see the file
        resumed = distributed.broadcast(checkpoint.load(), ranks)
        from dvclive import Live  # here, not above: only rank 0 logs, and it is slow to import

        with Live(dir=str(live), save_dvc_exp=False, dvcyaml=None, report=None) as logger:
            # how many ranks trained it, also when torchrun was started by hand
            flat = {**spec.flat(), "processes": ranks.world}
            logger.log_params({"experiment": name, "device": device.type, **flat})
            log = EpochLog(name, spec.epochs, eval_x, checkpoint, logger, resumed)
            state = train(spec, name, train_x, eval_x, log, resumed, train_split.dynamic, ranks)
            experiment = {
                "name": name,
                **flat,
                "dataset": meta["dataset"],
                "binarize": meta["binarize"],
                "precision": precision,
                "classes": meta["classes"],
                "epochs_run": state.epoch,
                "kept_epoch": state.best_epoch if spec.validation else state.epoch,
            }
            save_model(out / "model.pt", state.model, experiment, state.history, state.seconds)
        checkpoint.remove()
        say(f"train {name}: done in {state.seconds:.1f} s of training -> {out / 'model.pt'}")


if __name__ == "__main__":
    app()
