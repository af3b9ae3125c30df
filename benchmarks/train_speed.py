"""Training speed: the project's trainer against a plain DataLoader loop.

    python -m benchmarks.train_speed [--steps 1875] [--amp] [--repro]

Both train the cvae seed config (batch 32, Adam 1e-4, latent 2) from the same initial
weights for the same number of steps on the prepared MNIST data, then report steps per
second, their ratio, and the test ELBO (single-sample MC, full test split) each reached.

The plain loop is what a user typically writes: `DataLoader(TensorDataset(x),
batch_size=32, shuffle=True)`, a per-step `loss.item()` for logging, and the tutorial's
architecture ported as is (PyTorch's default NCHW layout, a ConvTranspose2d last layer).
The project's trainer draws batches from a tensor already on the device, never syncs
inside a step, and builds the model with channels_last weights and a Conv2d last layer.

--repro also times a full `dvc repro` of every MNIST experiment (download, prepare, train,
evaluate, embed, render) from a clean state, in a throwaway clone of HEAD.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import torch
import typer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from vaelab.device import describe, resolve_device
from vaelab.evaluation import mean_terms
from vaelab.models import build_model
from vaelab.objectives import mc_elbo
from vaelab.params import load_params
from vaelab.prepare import load_split
from vaelab.training import make_optimizer, train

PREPARED = Path("data/prepared/mnist_binary")


def plain_model(spec) -> nn.Module:
    """The tutorial's cvae as a straightforward port writes it."""
    model = build_model(spec.model, spec.latent_dim, 28).to(memory_format=torch.contiguous_format)
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


def main(
    steps: int = typer.Option(1875, help="Training steps for each way (1875 = one epoch)."),
    repro: bool = typer.Option(False, help="Also time a clean `dvc repro` of the MNIST runs."),
    amp: bool = typer.Option(False, help="Also time the trainer with bf16 autocast."),
) -> None:
    config = load_params()
    spec = config.experiment("cvae")
    device = resolve_device(config.device, config.threads)
    if not (PREPARED / "train.pt").exists():
        raise SystemExit(f"{PREPARED} is missing: run `dvc repro prepare@mnist_binary` first")
    train_x = load_split(PREPARED, "train").images
    test_x = load_split(PREPARED, "test").images.to(device)
    print(f"device: {describe(device)}; cvae, batch {spec.batch_size}, {steps} steps each way")

    from dataclasses import replace

    def project_trainer(amp: bool):
        with tempfile.TemporaryDirectory() as tmp:
            run = train(
                replace(spec, epochs=1, amp=amp),
                "cvae",
                PREPARED,
                device,
                Path(tmp) / "ckpt.pt",
                limit=steps * spec.batch_size,
            )
        return run.history[0]["epoch_seconds"], test_elbo(run.model, test_x)

    ours_seconds, ours_elbo = project_trainer(amp=False)
    plain, plain_seconds = plain_loop(spec, train_x[: steps * spec.batch_size], steps, device)
    plain_elbo = test_elbo(plain.eval(), test_x.contiguous())

    ours_rate, plain_rate = steps / ours_seconds, steps / plain_seconds
    print(
        f"project trainer : {ours_rate:7.1f} steps/s  ({ours_seconds:6.1f} s)  "
        f"test ELBO {ours_elbo:8.2f}"
    )
    print(
        f"plain DataLoader: {plain_rate:7.1f} steps/s  ({plain_seconds:6.1f} s)  "
        f"test ELBO {plain_elbo:8.2f}"
    )
    print(
        f"ratio           : {ours_rate / plain_rate:7.2f}x  "
        f"(ELBO difference {abs(ours_elbo - plain_elbo):.2f} nats)"
    )
    if amp:
        amp_seconds, amp_elbo = project_trainer(amp=True)
        print(
            f"trainer, bf16 autocast (amp: true): {steps / amp_seconds:7.1f} steps/s, "
            f"{steps / amp_seconds / plain_rate:.2f}x the plain loop, test ELBO {amp_elbo:.2f}"
        )
    if repro:
        time_repro(mnist_targets(config))


def mnist_targets(config) -> list[str]:
    """Every stage after training of each experiment on MNIST (all need no Fashion-MNIST)."""
    return [
        f"{stage}@{name}"
        for name, spec in config.experiments.items()
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
