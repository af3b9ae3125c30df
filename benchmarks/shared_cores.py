"""Two trainings on one CPU at once against the same two one after the other.

    python -m benchmarks.shared_cores [--processes 2] [--images 12000] [--rounds 3] [--threads 0]

benchmarks/README.md (`shared_cores`) says what it measures and how to read it.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import typer

WORKER = """
import sys, time, torch
from vaelab.config.experiments import parse_experiment
from vaelab.runtime.device import describe, resolve_device
from vaelab.training.loop import Images, Run, train

images, threads = int(sys.argv[1]), int(sys.argv[2])
device = resolve_device("cpu", threads)
spec = parse_experiment("experiments.cvae", dict(
    data="bench", model="cvae", objective="mc_elbo", latent_dim=2, epochs=1, batch_size=32,
    optimizer="adam", lr=1e-4, seed=0, amp=False))
x = (torch.rand(images, 1, 28, 28, generator=torch.Generator().manual_seed(0)) > 0.5).float()
print("ready", describe(device), flush=True)
sys.stdin.readline()  # the signal to start
started = time.perf_counter()
train(Run(spec, "cvae"), Images(x, x[:256]))
print(f"{time.perf_counter() - started:.2f}", describe(device), flush=True)
"""


def _start(images: int, threads: int) -> subprocess.Popen:
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(images), str(threads)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = worker.stdout.readline()
    if not line.startswith("ready"):
        raise SystemExit(f"shared_cores: a worker failed to start (exit {worker.wait()})")
    return worker


def _go(workers: list[subprocess.Popen]) -> tuple[float, list[str]]:
    """Start `workers` together; the wall seconds until the last ends, and their lines."""
    started = time.perf_counter()
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    lines = [worker.stdout.readline().strip() for worker in workers]
    wall = time.perf_counter() - started  # to the last epoch's end, not the processes' exit
    for worker in workers:
        worker.wait()
    return wall, lines


def main(
    processes: int = typer.Option(2, min=2, help="Trainings at once."),
    images: int = typer.Option(12000, min=32, help="Training images of each epoch."),
    rounds: int = typer.Option(3, min=1),
    threads: int = typer.Option(0, min=0, help="params.yaml's threads for every process."),
) -> None:
    ratios = []
    for round_ in range(1, rounds + 1):
        walls = {}
        ways = ["together", "in turn"] if round_ % 2 else ["in turn", "together"]
        for way in ways:
            if way == "together":
                walls[way], lines = _go([_start(images, threads) for _ in range(processes)])
            else:
                walls[way], lines = 0.0, []
                for _ in range(processes):
                    seconds, line = _go([_start(images, threads)])
                    walls[way] += seconds
                    lines += line
            print(f"round {round_} {way:8s}: {walls[way]:6.1f} s wall  ({'; '.join(lines)})")
        ratios.append(walls["together"] / walls["in turn"])
    print(
        f"{processes} cvae epochs at once / one after the other: median "
        f"{statistics.median(ratios):.2f} (rounds: {', '.join(f'{r:.2f}' for r in ratios)})"
    )


if __name__ == "__main__":
    typer.run(main)
