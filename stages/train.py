"""train@EXP: train one experiment; log per-epoch metrics and reconstructions with dvclive."""

from pathlib import Path
from typing import Annotated

import typer
from dvclive import Live

from vaelab.atomic import ensure_writable_dir, remove_stale_temporaries
from vaelab.checkpoint import Checkpoint, fingerprint
from vaelab.cli import (
    DataDir,
    Experiment,
    Limit,
    OutDir,
    ParamsFile,
    TrackName,
    stage_app,
    user_errors,
)
from vaelab.data import hold_out, load_split, read_meta
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
    track: TrackName = "references",
    limit: Limit = None,
) -> None:
    """Train experiment NAME on DATA into OUT/model.pt, resuming an interrupted run."""
    config, spec = load_experiment(params, name, track)
    device = resolve_device(config.device, config.threads)
    meta = read_meta(data)
    train_split = load_split(data, "train", limit)
    if spec.validation:
        train_split, eval_split = hold_out(train_split, spec.validation, meta["seed"])
    else:
        eval_split = load_split(data, "test", limit)
    train_x, eval_x = train_split.images.to(device), eval_split.images.to(device)
    check_batch_fits(spec, name, len(train_x))
    out, live = ensure_writable_dir(out), ensure_writable_dir(live)
    remove_stale_temporaries(out)
    say(
        f"train {name}: {spec.model} on {spec.data} ({meta['dataset']}), "
        f"latent {spec.model_knobs.latent_dim}, {spec.epochs} epochs of batch {spec.batch_size}, "
        f"{spec.optimizer} lr {spec.lr}, on {describe(device)}"
    )
    checkpoint = Checkpoint(out / "checkpoint.pt", fingerprint(spec, meta, limit))
    resumed = checkpoint.load()
    with Live(dir=str(live), save_dvc_exp=False, dvcyaml=None, report=None) as logger:
        logger.log_params({"experiment": name, "device": device.type, **spec.flat()})
        log = EpochLog(name, spec.epochs, eval_x, checkpoint, logger, resumed)
        state = train(spec, name, train_x, eval_x, log, resumed, train_split.dynamic)
        experiment = {
            "name": name,
            **spec.flat(),
            "dataset": meta["dataset"],
            "binarize": meta["binarize"],
            "classes": meta["classes"],
            "epochs_run": state.epoch,
            "kept_epoch": state.best_epoch if spec.validation else state.epoch,
        }
        save_model(out / "model.pt", state.model, experiment, state.history, state.seconds)
    checkpoint.remove()
    say(f"train {name}: done in {state.seconds:.1f} s of training -> {out / 'model.pt'}")


if __name__ == "__main__":
    app()
