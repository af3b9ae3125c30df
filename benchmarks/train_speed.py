"""Training speed: the TensorFlow tutorial, the project's trainer and a plain DataLoader loop.

    python -m benchmarks.train_speed [--steps 1875] [--rounds 3] [--amp] [--no-tf]

benchmarks/README.md (`train_speed`) says what it measures and how to read it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import typer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from vaelab.config.experiments import load_experiment, parse_experiment
from vaelab.data.splits import load_split
from vaelab.models.registry import build_model
from vaelab.objectives.losses import mc_elbo, mean_terms
from vaelab.runtime.device import describe, keep_freed_memory, resolve_device
from vaelab.training.loop import Images, Run, train
from vaelab.training.optimizers import make_optimizer

PREPARED = Path("data/prepared/mnist_binary")
TF_TUTORIAL = Path(__file__).with_name("tf_tutorial.py")
TF_REQUIREMENT = "tensorflow-cpu==2.21.0"


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
    "tf": "TensorFlow tutorial",
    "trainer": "project trainer",
    "plain": "plain DataLoader loop",
    "plain-kept": "plain loop + kept memory",
    "trainer-amp": "trainer, bf16 autocast",
}


def run_way(way: str, steps: int) -> dict:
    """Train one way in this process; its steps per second and the test ELBO it reached."""
    config, spec = load_experiment("params.yaml", "cvae", track="references")
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
        run = train(Run(parse_experiment("cvae", one_epoch), "cvae"), Images(train_x, test_x))
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


def export_npy(dest: Path) -> None:
    """The prepared splits as benchmarks/tf_tutorial.py reads them: float32 NHWC .npy."""
    dest.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        images = load_split(PREPARED, split).images  # (N, 1, 28, 28), in [0, 1]
        np.save(dest / f"{split}.npy", images.permute(0, 2, 3, 1).contiguous().numpy())


def tf_python(requirement: str) -> list[str]:
    """A Python with TensorFlow in a throwaway environment, outside the project's lock."""
    return ["uv", "run", "--isolated", "--no-project"] + [
        *("--with", requirement, "--with", "numpy", "python")
    ]


def tf_missing(requirement: str) -> str | None:
    """Why the tf way cannot run here, or None when it can (this installs TF if need be)."""
    if shutil.which("uv") is None:
        return "uv is not on PATH"
    done = subprocess.run(
        [*tf_python(requirement), "-c", "import tensorflow"], capture_output=True, text=True
    )
    if done.returncode:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        return f"`{requirement}` does not run here: {lines[-1].strip()}"
    return None


def way_command(way: str, steps: int, tf_data: Path, tf_requirement: str) -> list[str]:
    if way != "tf":
        return [sys.executable, "-m", "benchmarks.train_speed", "--way", way] + [
            *("--steps", str(steps))
        ]
    config, spec = load_experiment("params.yaml", "cvae", track="references")
    # threads as the trainer sets torch's; 0 leaves each framework its default
    options = {"data": tf_data, "steps": steps, "seed": spec.seed, "threads": config.threads}
    flags = [part for key, value in options.items() for part in (f"--{key}", str(value))]
    return [*tf_python(tf_requirement), str(TF_TUTORIAL), *flags]


def run_in_fresh_process(way: str, steps: int, tf_data: Path, tf_requirement: str) -> dict:
    command = way_command(way, steps, tf_data, tf_requirement)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"way {way} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def rotated(ways: list[str], round_: int) -> list[str]:
    """The order of round `round_`: each way starts one round, and never runs first twice
    in a row, so that a drift of the machine's speed favours none."""
    shift = round_ % len(ways)
    return ways[shift:] + ways[:shift]


def summary(rates: list[dict[str, float]], references=("tf", "plain")) -> pd.DataFrame:
    """Per way (rows): the median steps per second over the rounds, and for each reference
    way present, the median of the rounds' ratios to it, each taken within its round."""
    table = pd.DataFrame(rates)
    result = pd.DataFrame({"rate": table.median()})
    for reference in references:
        if reference in table:
            result[f"vs {reference}"] = table.div(table[reference], axis=0).median()
    return result


def main(
    steps: int = typer.Option(1875, help="Training steps for each way (1875 = one epoch)."),
    rounds: int = typer.Option(3, min=1, help="Times each way runs; the medians are reported."),
    amp: bool = typer.Option(False, help="Also time the trainer with bf16 autocast."),
    tf: bool = typer.Option(True, "--tf/--no-tf", help="Also time the TensorFlow tutorial."),
    tf_requirement: str = typer.Option(TF_REQUIREMENT, help="The TensorFlow the tf way runs."),
    export: Path | None = typer.Option(
        None, help="Only write the prepared splits as .npy to this folder, for tf_tutorial.py."
    ),
    way: str = typer.Option("", hidden=True, help="Run one way here and print it as JSON."),
) -> None:
    if way:
        print(json.dumps(run_way(way, steps)))
        return
    if not (PREPARED / "train.pt").exists():
        raise SystemExit(f"{PREPARED} is missing: run `dvc repro prepare@mnist_binary` first")
    if export is not None:
        export_npy(export)
        return
    ways = ["trainer", "plain", "plain-kept"] + (["trainer-amp"] if amp else [])
    if tf:
        missing = tf_missing(tf_requirement)
        if missing:
            print(f"tf way skipped: {missing}")
        else:
            ways.insert(0, "tf")
    # One fresh process per way, so that the trainer's host tuning cannot leak into the
    # plain loop; rounds with the order rotated, because a shared VM's speed drifts.
    rates, results = [], {}
    with tempfile.TemporaryDirectory() as tf_data:
        if "tf" in ways:
            export_npy(Path(tf_data))
        for round_ in range(rounds):
            order = rotated(ways, round_)
            results = {
                name: run_in_fresh_process(name, steps, Path(tf_data), tf_requirement)
                for name in order
            }
            rates.append({name: results[name]["rate"] for name in ways})
            print(
                f"round {round_ + 1}: " + ", ".join(f"{n} {results[n]['rate']:.1f}" for n in order)
            )
    table = summary(rates)
    reference = "tf" if "tf" in ways else "plain"
    devices = f"torch {torch.__version__} {results['trainer']['device']}"
    if "tf" in ways:
        devices += f", TensorFlow {results['tf']['tensorflow']} {results['tf']['device']}"
    medians = f"median of {rounds} rounds" if rounds > 1 else "1 round"
    print(f"\n{devices}; cvae, batch 32, {steps} steps each way, {medians}")
    ratio_columns = [column for column in table.columns if column.startswith("vs ")]
    print(
        f"{'':26s}  steps/s  "
        + "".join(f"{column.replace('tf', 'TF'):>9s}" for column in ratio_columns)
        + f"  test ELBO (vs {WAYS[reference]})"
    )
    for name in ways:
        elbo = results[name]["elbo"]
        print(
            f"{WAYS[name]:26s}  {table.loc[name, 'rate']:7.1f}  "
            + "".join(f"{table.loc[name, column]:8.2f}x" for column in ratio_columns)
            + f"  {elbo:9.2f} ({elbo - results[reference]['elbo']:+.2f})"
        )


if __name__ == "__main__":
    typer.run(main)
