"""Training speed: the project's trainer against a plain DataLoader loop.

    python -m benchmarks.train_speed [--steps 1875] [--rounds 3] [--amp] [--repro]

Each way trains the cvae reference config (batch 32, Adam 1e-4, latent 2) from the same initial
weights for the same number of steps on the prepared MNIST data, in a fresh process. The
script prints steps per second (the median over the rounds), the ratio to the plain loop
(the median of each round's ratio) and the test ELBO (single-sample MC, full test split)
each way reached.

The plain loop is what a user typically writes: `DataLoader(TensorDataset(x),
batch_size=32, shuffle=True)`, a per-step `loss.item()` for logging, and the tutorial's
architecture ported as is (PyTorch's default NCHW layout, a ConvTranspose2d last layer).
The project's trainer draws batches from a tensor already on the device, never syncs
inside a step, uses fused Adam, in-place ReLUs, channels_last weights and a Conv2d last
layer, and keeps freed memory for reuse (vaelab.device.keep_freed_memory). The third way,
the plain loop with only that allocator setting, shows how much of the difference it makes.
--amp adds the trainer with bf16 autocast (`amp: true`).

--repro also times a full `dvc repro` of every MNIST experiment (download, prepare, train,
evaluate, embed, render) from a clean state, in a throwaway clone of HEAD.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
import typer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from vaelab.data import load_split
from vaelab.device import describe, keep_freed_memory, resolve_device
from vaelab.experiments import experiments_of, load_experiment, parse_experiment
from vaelab.models import build_model
from vaelab.objectives import mc_elbo, mean_terms
from vaelab.params import load_params
from vaelab.training import make_optimizer, train

PREPARED = Path("data/prepared/mnist_binary")


def plain_model(spec) -> nn.Module:
    """The tutorial's cvae as a straightforward port writes it."""
    model = build_model(spec.model, 28, spec.model_knobs).to(memory_format=torch.contiguous_format)
    last = model.decoder[-1]
    port = nn.ConvTranspose2d(32, 1, 3, stride=1, padding=1)
    with torch.no_grad():  # the same function: a stride-1 transposed conv is a flipped conv
        port.weight.copy_(last.weight.flip(2, 3).transpose(0, 1))
        port.bias.copy_(last.bias)
    model.decoder[-1] = port
    return model


def plain_loop(spec, images: torch.Tensor, steps: int, device: torch.device):
    torch.manual_seed(spec.seed)
    model = plain_model(spec).to(device)
    optimizer = make_optimizer(spec, model)
    loader = DataLoader(TensorDataset(images), batch_size=spec.batch_size, shuffle=True)
    losses = []
    started = time.perf_counter()
    for step, (x,) in enumerate(loader):
        if step == steps:
            break
        loss = mc_elbo(model, x.to(device)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return model, time.perf_counter() - started


def test_elbo(model, test_x) -> float:
    return mean_terms(model, test_x, mc_elbo, seed=0)["elbo"]


WAYS = {
    "trainer": "project trainer",
    "plain": "plain DataLoader loop",
    "plain-kept": "plain loop + kept memory",
    "trainer-amp": "trainer, bf16 autocast",
}


def run_way(way: str, steps: int) -> dict:
    """Train one way in this process; its steps per second and the test ELBO it reached."""
    config, spec = load_experiment("params.yaml", "cvae")
    if way in ("trainer", "trainer-amp"):
        device = resolve_device(config.device, config.threads)  # tunes the host as stages do
    else:  # what a user's script gets, optionally with only the allocator setting added
        if way == "plain-kept":
            keep_freed_memory()
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    test_x = load_split(PREPARED, "test").images.to(device)
    if way.startswith("trainer"):
        one_epoch = {**spec.flat(), "epochs": 1, "amp": way == "trainer-amp"}
        train_x = load_split(PREPARED, "train", steps * spec.batch_size).images.to(device)
        run = train(parse_experiment("cvae", one_epoch), "cvae", train_x, test_x)
        seconds, model = run.history[0]["epoch_seconds"], run.model
    else:
        train_x = load_split(PREPARED, "train").images[: steps * spec.batch_size]
        model, seconds = plain_loop(spec, train_x, steps, device)
        model.eval()
    return {
        "way": way,
        "device": describe(device),
        "rate": steps / seconds,
        "seconds": seconds,
        "elbo": test_elbo(model, test_x),
    }


def run_in_fresh_process(way: str, steps: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.train_speed", "--steps", str(steps), "--way", way],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(
    steps: int = typer.Option(1875, help="Training steps for each way (1875 = one epoch)."),
    rounds: int = typer.Option(3, min=1, help="Times each way runs; the medians are reported."),
    repro: bool = typer.Option(False, help="Also time a clean `dvc repro` of the MNIST runs."),
    amp: bool = typer.Option(False, help="Also time the trainer with bf16 autocast."),
    way: str = typer.Option("", hidden=True, help="Run one way here and print it as JSON."),
) -> None:
    if way:
        print(json.dumps(run_way(way, steps)))
        return
    if not (PREPARED / "train.pt").exists():
        raise SystemExit(f"{PREPARED} is missing: run `dvc repro prepare@mnist_binary` first")
    ways = ["trainer", "plain", "plain-kept"] + (["trainer-amp"] if amp else [])
    # One fresh process per way, so that the trainer's host tuning cannot leak into the
    # plain loop; rounds with the order rotated, because a shared VM's speed drifts.
    rates, results = [], {}
    for round_ in range(rounds):
        order = ways[round_ % len(ways) :] + ways[: round_ % len(ways)]
        results = {name: run_in_fresh_process(name, steps) for name in order}
        rates.append({name: results[name]["rate"] for name in ways})
        print(f"round {round_ + 1}: " + ", ".join(f"{n} {r:.1f}" for n, r in rates[-1].items()))
    table = pd.DataFrame(rates)
    ratios = table.div(table["plain"], axis=0)  # within a round, so drifts cancel
    print(f"\ndevice: {results['trainer']['device']}; cvae, batch 32, {steps} steps each way")
    plain_elbo = results["plain"]["elbo"]
    for name in ways:
        print(
            f"{WAYS[name]:26s}: {table[name].median():6.1f} steps/s (median of {rounds}), "
            f"{ratios[name].median():4.2f}x the plain loop, test ELBO "
            f"{results[name]['elbo']:8.2f} ({results[name]['elbo'] - plain_elbo:+.2f})"
        )
    if repro:
        time_repro(mnist_targets(load_params()))


def mnist_targets(config) -> list[str]:
    """Every stage after training of each experiment on MNIST (all need no Fashion-MNIST)."""
    return [
        f"{stage}@{name}"
        for name, spec in experiments_of(config).items()
        if config.prepared(spec.data).dataset == "mnist"
        for stage in ("evaluate", "embed", "render")
    ]


def time_repro(targets: list[str]) -> None:
    """`dvc repro` of the MNIST experiments from nothing, in a throwaway clone of HEAD."""
    root = Path.cwd()
    env = dict(os.environ, CI="true")
    mirror = env.get("VAELAB_MIRROR", "")
    if mirror and "://" not in mirror:
        env["VAELAB_MIRROR"] = str((root / mirror).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "project"
        subprocess.run(["git", "clone", "-q", str(root), str(copy)], check=True)
        started = time.perf_counter()
        subprocess.run(
            ["dvc", "repro", *targets],
            cwd=copy,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        elapsed = time.perf_counter() - started
    print(f"clean `dvc repro` of {', '.join(targets)}: {elapsed:.0f} s ({elapsed / 60:.1f} min)")


if __name__ == "__main__":
    typer.run(main)
