"""The sample classifier's test accuracy on real data, over seeds, with and without the

benchmarks/README.md (`classifier_accuracy`) says what it measures and how to read it.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import typer


def main(
    data: str = typer.Option("mnist_binary,mnist_grey", help="Comma-separated prepared sets."),
    seeds: str = typer.Option("0,1,2", help="Comma-separated seeds."),
    shifts: str = typer.Option("0,1", help="Comma-separated `classifier.shift` values."),
    folder: Path = typer.Option(Path("data/prepared"), help="Where the prepared sets are."),
    params: Path = typer.Option(Path("params.yaml"), help="The params file."),
) -> None:
    from vaelab.config.params import load_params
    from vaelab.data.splits import load_split, read_meta
    from vaelab.evaluation.classifier import accuracy, train_classifier
    from vaelab.runtime.device import describe, resolve_device

    config = load_params(params)
    knobs = config.classifier
    device = resolve_device(config.device, config.threads)
    results: dict[tuple[str, int], list[float]] = {}
    print(f"classifier: {knobs.epochs} epochs, batch {knobs.batch_size}, on {describe(device)}")
    for name in data.split(","):
        meta = read_meta(folder / name)
        train, test = load_split(folder / name, "train"), load_split(folder / name, "test")
        for seed in (int(s) for s in seeds.split(",")):
            for shift in (int(s) for s in shifts.split(",")):
                started = time.perf_counter()
                model = train_classifier(
                    train.images,
                    train.labels,
                    classes=len(meta["classes"]),
                    knobs=knobs.model_copy(update={"seed": seed, "shift": shift}),
                    device=device,
                )
                seconds = time.perf_counter() - started
                score = accuracy(model, test.images, test.labels)
                results.setdefault((name, shift), []).append(score)
                print(f"  {name} shift {shift} seed {seed}: {score:.4f} in {seconds:.0f} s")
    for (name, shift), scores in results.items():
        print(
            f"{name} shift {shift}: lowest {min(scores):.4f}, "
            f"mean {statistics.mean(scores):.4f} over {len(scores)} seeds"
        )


if __name__ == "__main__":
    typer.run(main)
