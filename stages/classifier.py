"""classifier@NAME: train the small CNN on prepared set NAME -> OUT (classifier.pt) and
its test accuracy -> METRICS."""

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from vaelab.config.params import load_params
from vaelab.core.cli import DataDir, Limit, ParamsFile, stage_app, user_errors
from vaelab.core.files import write_text
from vaelab.core.progress import say
from vaelab.data.splits import load_split, read_meta
from vaelab.evaluation.classifier import accuracy, save_classifier, train_classifier
from vaelab.runtime.device import describe, resolve_device, training_precision

app = stage_app(__doc__)


@app.command()
@user_errors
def main(
    name: Annotated[str, typer.Argument(help="A prepared set: a key of data.prepared.")],
    data: DataDir,
    out: Annotated[Path, typer.Option(help="The classifier.pt to write.")],
    metrics: Annotated[Path, typer.Option(help="The metrics.json to write.")],
    params: ParamsFile = Path("params.yaml"),
    limit: Limit = None,
) -> None:
    """Train the classifier of prepared set NAME and measure its test accuracy."""
    config = load_params(params)
    config.prepared(name)
    knobs = config.classifier
    device = resolve_device(config.device, config.threads)
    meta = read_meta(data)
    train, test = load_split(data, "train", limit), load_split(data, "test", limit)
    precision = training_precision(knobs.amp, device)
    say(
        f"classifier {name}: {len(train)} images, {knobs.epochs} epochs on {describe(device)}, "
        f"{precision}"
    )
    started = time.perf_counter()
    model = train_classifier(
        train.images,
        train.labels,
        len(meta["classes"]),
        knobs.epochs,
        knobs.batch_size,
        knobs.lr,
        knobs.seed,
        device,
        knobs.amp,
    )
    seconds = time.perf_counter() - started
    result = {
        "data": name,
        "dataset": meta["dataset"],
        "test_images": len(test),
        "test_accuracy": accuracy(model, test.images, test.labels),
        "precision": precision,
        "train_seconds": round(seconds, 1),
    }
    save_classifier(out, model, result)
    write_text(metrics, json.dumps(result, indent=2) + "\n")
    say(f"classifier {name}: test accuracy {result['test_accuracy']:.4f} -> {out}")


if __name__ == "__main__":
    app()
