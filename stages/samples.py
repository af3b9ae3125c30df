"""samples@EXP: decode samples from each sampler and score them with the classifier of the
experiment's data -> OUT/sample_quality.json and 64 of each, OUT/sampler_grids/SAMPLER.png."""

import json
from pathlib import Path
from typing import Annotated

import torch
import typer

from vaelab.core.cli import (
    DataDir,
    Experiment,
    Limit,
    ModelFile,
    OutDir,
    ParamsFile,
    stage_app,
    user_errors,
)
from vaelab.core.errors import DataError
from vaelab.core.files import atomic_dir, write_text
from vaelab.core.progress import say
from vaelab.data.splits import load_split, read_meta
from vaelab.evaluation.classifier import load_classifier
from vaelab.evaluation.sample_quality import floors, score_samplers, training_codes
from vaelab.pictures.plots import save_png
from vaelab.runtime.trained import load_trained

app = stage_app(__doc__)


@app.command()
@user_errors
def main(
    name: Experiment,
    model: ModelFile,
    data: DataDir,
    classifier: Annotated[Path, typer.Option(help="The classifier.pt of the experiment's data.")],
    out: OutDir,
    params: ParamsFile = Path("params.yaml"),
    limit: Limit = None,
) -> None:
    """Score experiment NAME's samples from every sampler against its test split."""
    run = load_trained(name, params=params, model=model, data=data, track="references", limit=limit)
    knobs = run.params.samples
    net, info = load_classifier(classifier, run.device)
    if info["data"] != run.saved.experiment["data"]:
        raise DataError(
            f"{classifier} was trained on {info['data']!r}, experiment {name} on "
            f"{run.saved.experiment['data']!r}; pass the classifier of its own data"
        )
    binarize = read_meta(data)["binarize"]
    test = run.test.images[: knobs.count]
    train = load_split(data, "train", limit)
    # the floors' training images are drawn at random, not the file's first run of digits
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(knobs.seed))
    result = {
        "samples": knobs.count,
        "reference": f"the first {len(test)} test images",
        "pixels": {
            "threshold": "decoded means thresholded at 0.5, as the data was",
            "stochastic": "one Bernoulli draw of the decoded means, as the data was",
            "none": "decoded means",
        }[binarize],
        "classifier": {"data": info["data"], "test_accuracy": info["test_accuracy"]},
        "floor": floors(net, test, train.images[pick[: len(test)]], knobs.seed),
    }
    scores, grids = score_samplers(
        run.model,
        net,
        test,
        training_codes(run.model, train.images),
        knobs.count,
        knobs.mixture_components,
        knobs.seed,
        binarize,
    )
    result.update(scores)
    with atomic_dir(out / "sampler_grids") as folder:
        for sampler, grid in grids.items():
            save_png(grid, folder / f"{sampler}.png")
    write_text(out / "sample_quality.json", json.dumps(result, indent=2) + "\n")
    say(f"samples {name}: " + json.dumps({k: result[k] for k in ("floor", *scores)}))


if __name__ == "__main__":
    app()
