"""train@EXP: train one experiment; log per-epoch metrics and reconstructions with dvclive."""

from pathlib import Path

from dvclive import Live

from vaelab.atomic import ensure_writable_dir, remove_stale_temporaries
from vaelab.cli import Experiment, Limit, ModelsDir, ParamsFile, ReportsDir, stage_app, user_errors
from vaelab.device import describe, resolve_device
from vaelab.params import as_dict, load_params
from vaelab.prepare import read_meta
from vaelab.progress import say
from vaelab.training import save_model, train

app = stage_app(__doc__)


@app.command()
@user_errors
def main(
    name: Experiment,
    params: ParamsFile = Path("params.yaml"),
    models: ModelsDir = Path("models"),
    reports: ReportsDir = Path("reports"),
    limit: Limit = None,
) -> None:
    """Train experiment NAME on its prepared data, resuming an interrupted run."""
    config = load_params(params)
    spec = config.experiment(name)
    device = resolve_device(config.device, config.threads)
    prepared = Path("data/prepared") / spec.data
    meta = read_meta(prepared)
    model_dir = ensure_writable_dir(models / name)
    live_dir = ensure_writable_dir(reports / name / "train")
    remove_stale_temporaries(model_dir)
    say(
        f"train {name}: {spec.model} on {spec.data} ({meta['dataset']}), latent {spec.latent_dim},"
        f" {spec.epochs} epochs of batch {spec.batch_size}, {spec.optimizer} lr {spec.lr}, "
        f"on {describe(device)}"
    )
    with Live(dir=str(live_dir), save_dvc_exp=False, dvcyaml=None, report=None) as live:
        live.log_params({"experiment": name, "device": device.type, **as_dict(spec)})
        run = train(spec, name, prepared, device, model_dir / "checkpoint.pt", live, limit)
        save_model(run, spec, name, meta, model_dir / "model.pt")
    (model_dir / "checkpoint.pt").unlink(missing_ok=True)
    say(f"train {name}: done in {run.seconds:.1f} s of training -> {model_dir / 'model.pt'}")


if __name__ == "__main__":
    app()
