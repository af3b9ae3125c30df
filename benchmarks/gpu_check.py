"""On a CUDA machine: the cvae reference and a slice of each literature recipe, trained on

benchmarks/README.md (`gpu_check`) says what it measures and how to read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import typer

from vaelab.config.experiments import ExperimentSpec, experiments_of
from vaelab.config.params import load_params
from vaelab.data.splits import hold_out, load_split, read_meta
from vaelab.training.loop import Images, Run, train

EVAL_IMAGES = 1000


class CpuDrawnNoise:
    """Gaussian noise drawn by a CPU generator whatever the device, so that every way
    trains on the same draws."""

    def __init__(self, seed: int):
        self.generator = torch.Generator().manual_seed(seed)

    def normal_like(self, mean: torch.Tensor) -> torch.Tensor:
        eps = torch.randn(mean.shape, generator=self.generator, dtype=mean.dtype)
        return eps.to(mean.device)


@dataclass
class Way:
    label: str
    device: torch.device
    compile: str = "none"


def slice_of(spec: ExperimentSpec, folder: Path, steps: int):
    """A slice of `steps` batches of the recipe's training images (drawn once, for a dynamic
    protocol, so that every way sees the same pixels), test images, and the number of
    steps the whole recipe takes."""
    train_split = load_split(folder, "train")
    if spec.validation:  # the recipe's own training images, not its validation ones
        train_split, _ = hold_out(train_split, spec.validation, read_meta(folder)["seed"])
    images = train_split.images[: steps * spec.batch_size]
    if train_split.dynamic:
        images = torch.bernoulli(images, generator=torch.Generator().manual_seed(spec.seed))
    recipe_steps = -(-len(train_split) // spec.batch_size) * spec.epochs
    return images, load_split(folder, "test").images[:EVAL_IMAGES], recipe_steps


def run(spec: ExperimentSpec, name: str, way: Way, images, test) -> dict:
    spec = spec.model_copy(update={"epochs": 2, "compile": way.compile})
    run = Run(spec, name, noise=CpuDrawnNoise(seed=spec.seed + 1))
    state = train(run, Images(images.to(way.device), test.to(way.device)))
    steps = -(-len(images) // spec.batch_size)
    return {
        "losses": [record["train/loss"] for record in state.history],
        "weights": {k: v.detach().cpu() for k, v in state.model.state_dict().items()},
        "steps_per_s": steps / state.history[-1]["epoch_seconds"],
    }


def largest_difference(ours: dict, reference: dict) -> float:
    """The largest weight difference, relative to that tensor's largest weight."""
    return max(
        ((ours[k] - w).abs().max() / w.abs().max().clamp(min=1e-12)).item()
        for k, w in reference.items()
        if w.is_floating_point()
    )


def main(
    steps: int = typer.Option(200, help="Steps per epoch of each slice (two epochs run)."),
    only: str = typer.Option("", help="Comma-separated experiments; default: all."),
    data: Path = typer.Option(None, help="One prepared folder for every experiment."),
    rtol: float = typer.Option(2e-3, help="Relative tolerance of the losses against the CPU's."),
) -> None:
    params = load_params("params.yaml")
    specs = {"cvae": experiments_of(params, track="references")["cvae"]}
    specs |= experiments_of(params, track="literature")
    if only:
        specs = {name: specs[name] for name in only.split(",")}
    cuda = torch.cuda.is_available()
    ways = [Way("cpu", torch.device("cpu"))]
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False  # the comparison is of fp32 arithmetic
        torch.backends.cudnn.allow_tf32 = False
        gpu = torch.device("cuda")
        ways += [Way("cuda", gpu), Way("cuda+reduce-overhead", gpu, "reduce-overhead")]
        print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    else:
        print("no CUDA device: only the CPU way runs; on a GPU machine this compares all three")
    failed = []
    for name, spec in specs.items():
        folder = data or Path("data/prepared") / spec.data
        if not (folder / "train.pt").exists():
            print(f"{name}: no prepared data at {folder}; run its prepare stage (see --help)")
            failed.append(name)
            continue
        spec = spec.model_copy(update={"amp": False})  # fp32: the comparison is exact arithmetic
        images, test, recipe_steps = slice_of(spec, folder, steps)
        reference = None
        for way in ways:
            result = run(spec, name, way, images, test)
            hours = recipe_steps / result["steps_per_s"] / 3600  # training alone, no evaluation
            line = (
                f"{name:20s} {way.label:22s} {result['steps_per_s']:9.1f} steps/s  "
                f"whole recipe {hours:.3g} h  "
                f"train loss per epoch {', '.join(f'{v:.4f}' for v in result['losses'])}"
            )
            if reference is None:
                reference = result
            else:
                match = all(
                    abs(a - b) <= rtol * abs(b)
                    for a, b in zip(result["losses"], reference["losses"], strict=True)
                )
                weights = largest_difference(result["weights"], reference["weights"])
                line += f"  vs cpu: {'match' if match else 'DIFFERS'}, weights {weights:.1e}"
                if not match:
                    failed.append(f"{name} {way.label}")
            print(line, flush=True)
    if failed:
        print(f"not matched or not run: {', '.join(failed)}")
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
