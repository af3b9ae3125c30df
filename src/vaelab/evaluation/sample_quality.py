"""How good samples are, judged by a classifier: a Fréchet distance in its feature space
("FID-MNIST"), and the class coverage and confidence of its labels.

The distance is torchmetrics' FrechetInceptionDistance with the classifier's penultimate
features in place of Inception's: features are computed once per set (the test set is
compared with every sampler) and handed to it through a pass-through extractor.
samples@EXP (`score_experiment`) scores every sampler of one experiment.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from vaelab.core.errors import DataError
from vaelab.core.files import atomic_dir, write_text
from vaelab.core.progress import say
from vaelab.data.splits import load_split, read_meta
from vaelab.evaluation.classifier import DigitCNN, load_classifier, predict
from vaelab.evaluation.samplers import SAMPLERS, fit_sampler, samplers_for
from vaelab.models.base import LatentModel
from vaelab.models.inference import decode_probs, posterior_means
from vaelab.pictures.grids import to_uint8
from vaelab.pictures.plots import save_png
from vaelab.runtime.trained import load_trained

# how samples@EXP turns decoded means into pixels, by the prepared set's binarization
PIXELS = {
    "threshold": "decoded means thresholded at 0.5, as the data was",
    "stochastic": "one Bernoulli draw of the decoded means, as the data was",
    "none": "decoded means",
}


class _Precomputed(nn.Module):
    """A 'feature extractor' for features already extracted: torchmetrics reads its
    `num_features` and passes every update through it."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """The Fréchet distance between Gaussians fitted to feature sets a [N, F] and b [M, F]."""
    fid = FrechetInceptionDistance(feature=_Precomputed(a.shape[1]), normalize=True)
    fid.set_dtype(torch.float64)  # covariance products of 128-d features need the precision
    fid.update(a.double(), real=True)
    fid.update(b.double(), real=False)
    # eigenvalues of a product of two PSD matrices are >= 0; rounding can give -1e-12 sums
    return max(fid.compute().item(), 0.0)


def class_statistics(probs: torch.Tensor) -> dict[str, float]:
    """Coverage and confidence of the classifier's labels of samples [N, classes].

    `class_entropy_nats` is the entropy of the histogram of predicted labels: log(classes)
    when every class is drawn equally often, 0 when one class only. `mean_confidence` is
    the mean of the top class probability: low when samples look like no class.
    """
    classes = probs.shape[1]
    counts = torch.bincount(probs.argmax(1), minlength=classes).double()
    share = counts / counts.sum()
    # + 0.0: one class gives -0.0, which would print as a negative entropy
    entropy = -(share[share > 0] * share[share > 0].log()).sum().item() + 0.0
    return {
        "class_entropy_nats": entropy,
        "class_entropy_max_nats": math.log(classes),
        "mean_confidence": probs.max(1).values.double().mean().item(),
    }


def pixels_of(probs: torch.Tensor, binarize: str, seed: int) -> torch.Tensor:
    """Decoded Bernoulli means as images like the data's: binarized the way the prepared
    set was (`threshold`: p > 0.5; `stochastic`: one Bernoulli draw), grey means for
    `none`. Judging a threshold-binarized model by Bernoulli draws would score the speckle
    of its uncertain edge pixels, which its test images never have."""
    if binarize == "threshold":
        return (probs > 0.5).float()
    if binarize == "stochastic":
        return torch.bernoulli(probs, generator=torch.Generator().manual_seed(seed))
    return probs


def floors(net: DigitCNN, test: torch.Tensor, train: torch.Tensor, seed: int) -> dict[str, float]:
    """The distances real data reaches: two disjoint random halves of the test images, and
    as many training images as test images against the test images. Fewer images bias a
    Fréchet distance upwards, so the halves' floor sits above the train-test one. The
    halves are random because MNIST's test file is not shuffled: its first 5,000 digits
    come from other writers than its last 5,000, and the two file halves differ."""
    test_features, _ = predict(net, test)
    train_features, _ = predict(net, train)
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))
    first, second = order[: len(test) // 2], order[len(test) // 2 :]
    return {
        "fid_test_halves": frechet_distance(test_features[first], test_features[second]),
        "fid_train_vs_test": frechet_distance(train_features, test_features),
    }


def score_samplers(
    model: LatentModel,
    net: DigitCNN,
    test: torch.Tensor,
    *,
    train_codes: np.ndarray,
    count: int,
    components: int,
    seed: int,
    binarize: str,
    classes: int | None = None,
) -> tuple[dict, dict[str, np.ndarray]]:
    """Each sampler's Fréchet distance to `test` and class statistics of `count` decoded
    samples, keyed by sampler; and a grid of the first 64 samples of each, which the
    samples stage writes as sampler_grids/SAMPLER.png.

    A class-conditional model decodes each code given a class asked in turn (0, 1, ...,
    `classes` - 1, 0, ...), and its scores add how often the classifier reads back the
    class asked."""
    test_features, _ = predict(net, test)
    scores, grids = {}, {}
    asked = torch.arange(count) % classes if model.conditional else None
    for offset, name in enumerate(samplers_for(model.has_prior, model.discrete)):
        sampler = fit_sampler(name, train_codes, components, seed, model.latent_dim, model)
        probs = decode_probs(model, sampler.sample(count, seed + offset), labels=asked)
        images = pixels_of(probs, binarize, seed + offset)
        features, probs = predict(net, images)
        scores[name] = {
            "fid": frechet_distance(test_features, features),
            **class_statistics(probs),
            "description": SAMPLERS[name].description,
        }
        if asked is not None:
            scores[name]["asked_class_accuracy"] = (probs.argmax(1) == asked).double().mean().item()
        grids[name] = to_uint8(images[:64], nrow=8, padding=2)
    return scores, grids


def training_codes(
    model: LatentModel, images: torch.Tensor, labels: torch.Tensor | None = None
) -> np.ndarray:
    """The posterior means (an autoencoder's codes) of the training images (given their
    labels, for a class-conditional model)."""
    device = next(model.parameters()).device
    means, _ = posterior_means(model, images.to(device), labels=labels)
    return means.cpu().numpy()


def score_experiment(
    name: str,
    *,
    params: Path,
    model: Path,
    data: Path,
    classifier: Path,
    out: Path,
    limit: int | None = None,
) -> dict:
    """samples@EXP: every sampler of experiment NAME (of the references, the one track the
    samples stages run for) scored by the classifier of its data against the test split of
    `data`, beside the floors real data reaches -> OUT/sample_quality.json, and 64 samples of
    each -> OUT/sampler_grids/SAMPLER.png; returns the scores."""
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
        "pixels": PIXELS[binarize],
        "classifier": {"data": info["data"], "test_accuracy": info["test_accuracy"]},
        "floor": floors(net, test, train.images[pick[: len(test)]], knobs.seed),
    }
    scores, grids = score_samplers(
        run.model,
        net,
        test,
        train_codes=training_codes(run.model, train.images, train.labels),
        count=knobs.count,
        components=knobs.mixture_components,
        seed=knobs.seed,
        binarize=binarize,
        classes=len(run.saved.experiment["classes"]),
    )
    result.update(scores)
    with atomic_dir(out / "sampler_grids") as folder:
        for sampler, grid in grids.items():
            save_png(grid, folder / f"{sampler}.png")
    write_text(out / "sample_quality.json", json.dumps(result, indent=2) + "\n")
    say(f"samples {name}: " + json.dumps({k: result[k] for k in ("floor", *scores)}))
    return result
