"""What flushing the epoch checkpoint to the disk costs a training epoch.

    python -m benchmarks.durable_writes [--experiments cvae,vae_mlp] [--rounds 21]
                                        [--data data/prepared] [--folder DIR]

For each experiment it trains one short epoch (two batches of its prepared set, which
`dvc repro prepare@NAME` makes) to get a real checkpoint (its model, optimizer state,
generators and reconstruction grid), then saves that checkpoint with
`vaelab.training.checkpoint.Checkpoint.save` into `--folder` (by default a temporary folder
beside the models, on the disk the checkpoints live on) in rounds, alternately durable (as
the trainer writes it: fsync of the file before its rename and of the folder after) and
with fsync made a no-op (what an atomic rename alone costs). It prints the median
milliseconds of each and their difference, and that difference as a share of the
experiment's epoch: its committed `epoch_seconds` (the trainer's own per-epoch times in
reports/experiments/EXP/train/plots/metrics/epoch_seconds.tsv), or `--epoch-seconds`.
A checkpoint's size does not depend on the data, only on the model and the epochs logged,
so the short epoch gives the checkpoint of every epoch but the grids of later ones.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import typer


def median_epoch_seconds(name: str) -> float | None:
    table = Path("reports/experiments") / name / "train/plots/metrics/epoch_seconds.tsv"
    if not table.exists():
        return None
    rows = table.read_text().splitlines()[1:]
    return statistics.median(float(row.split("\t")[1]) for row in rows)


def main(
    experiments: str = typer.Option("cvae,vae_mlp", help="Comma-separated experiments."),
    rounds: int = typer.Option(21, min=1, help="Saves of each kind, interleaved."),
    data: Path = typer.Option(Path("data/prepared"), help="The folder of prepared sets."),
    folder: Path = typer.Option(Path("models"), help="Where the temporary checkpoints go."),
    params: Path = typer.Option(Path("params.yaml")),
    epoch_seconds: float = typer.Option(None, help="Replaces the committed epoch times."),
) -> None:
    import torch

    from vaelab.config.experiments import load_experiment
    from vaelab.training.checkpoint import Checkpoint
    from vaelab.training.experiment import fit

    durable_fsync = os.fsync
    for name in experiments.split(","):
        _, spec = load_experiment(params, name, track="references")
        prepared = data / spec.data
        if not (prepared / "meta.json").exists():
            print(f"{name}: no prepared folder at {prepared}; left out")
            continue
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as scratch:
            path = Path(scratch) / "checkpoint.pt"
            short = spec.model_copy(update={"epochs": 1})
            fit(short, name=name, data=prepared, checkpoint=path, limit=2 * spec.batch_size)
            state = torch.load(path, weights_only=True)
            saver = Checkpoint(path, state.pop("fingerprint"))
            times = {"durable": [], "rename only": []}
            for _ in range(rounds):
                for kind in times:
                    os.fsync = durable_fsync if kind == "durable" else (lambda fd: None)
                    try:
                        started = time.perf_counter()
                        saver.save(state)
                        times[kind].append(time.perf_counter() - started)
                    finally:
                        os.fsync = durable_fsync
            size = path.stat().st_size
        durable, rename = (statistics.median(times[k]) * 1000 for k in times)
        epoch = epoch_seconds or median_epoch_seconds(name)
        cost = (durable - rename) / 1000
        share = f", {cost / epoch:.3%} of a {epoch:.1f} s epoch" if epoch else ""
        print(
            f"{name}: checkpoint {size / 1e6:.2f} MB, durable {durable:.1f} ms, rename only "
            f"{rename:.1f} ms per save: +{durable - rename:.1f} ms per epoch{share}"
        )


if __name__ == "__main__":
    typer.run(main)
