"""train@EXP: train one experiment; log per-epoch metrics and reconstructions with dvclive.

With `processes: N` in the experiment, or when started by `torchrun --nproc-per-node N`,
the training is data-parallel over N ranks (vaelab.distributed) and rank 0 alone writes.
"""

from pathlib import Path
from typing import Annotated

import torch
import typer

from vaelab import distributed
from vaelab.atomic import ensure_writable_dir, remove_stale_temporaries
from vaelab.checkpoint import Checkpoint, fingerprint
from vaelab.cli import DataDir, Experiment, Limit, OutDir, ParamsFile, stage_app, user_errors
from vaelab.data import load_split, read_meta
from vaelab.device import describe, resolve_device
from vaelab.epoch_log import EpochLog
from vaelab.experiments import load_experiment
from vaelab.model_file import save_model
from vaelab.progress import say
from vaelab.training import check_batch_fits, train

app = stage_app(__doc__)


@app.command()
@user_errors
def main(
    name: Experiment,
    data: DataDir,
    out: OutDir,
    live: Annotated[Path, typer.Option(help="The dvclive folder for per-epoch logs.")],
    params: ParamsFile = Path("params.yaml"),
    limit: Limit = None,
) -> None:
    """Train experiment NAME on DATA into OUT/model.pt, resuming an interrupted run."""
    ranks = distributed.from_env()
    config, spec = load_experiment(params, name)
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
    train_x = load_split(data, "train", limit).images.to(device)
    test_x = load_split(data, "test", limit).images.to(device)
    check_batch_fits(spec, name, len(train_x))
    # a rank that dies makes the others' next collective fail: one line, not a traceback
    watched = distributed.peers_watched(ranks, f"experiments.{name}")
    with watched, distributed.process_group(ranks, device):
        if not ranks.main:
            train(spec, name, train_x, test_x, None, distributed.broadcast(None, ranks), ranks)
            return
        out, live = ensure_writable_dir(out), ensure_writable_dir(live)
        remove_stale_temporaries(out)
        processes = f", {ranks.world} processes" if ranks.distributed else ""
        say(
            f"train {name}: {spec.model} on {spec.data} ({meta['dataset']}), "
            f"latent {spec.model_knobs.latent_dim}, {spec.epochs} epochs of batch "
            f"{spec.batch_size}, {spec.optimizer} lr {spec.lr}, on {describe(device)}{processes}"
        )
        checkpoint = Checkpoint(out / "checkpoint.pt", fingerprint(spec, meta, limit))
        # only rank 0 reads it: the other ranks may sit on nodes that cannot see the file
        resumed = distributed.broadcast(checkpoint.load(), ranks)
        from dvclive import Live  # here, not above: only rank 0 logs, and it is slow to import

        with Live(dir=str(live), save_dvc_exp=False, dvcyaml=None, report=None) as logger:
            # how many ranks trained it, also when torchrun was started by hand
            flat = {**spec.flat(), "processes": ranks.world}
            logger.log_params({"experiment": name, "device": device.type, **flat})
            log = EpochLog(name, spec.epochs, test_x, checkpoint, logger, resumed)
            state = train(spec, name, train_x, test_x, log, resumed, ranks)
            experiment = {
                "name": name,
                **flat,
                "dataset": meta["dataset"],
                "classes": meta["classes"],
            }
            save_model(out / "model.pt", state.model, experiment, state.history, state.seconds)
        checkpoint.remove()
        say(f"train {name}: done in {state.seconds:.1f} s of training -> {out / 'model.pt'}")


if __name__ == "__main__":
    app()
