"""How good samples are, judged by a classifier: a Fréchet distance in its feature space
("FID-MNIST"), and the class coverage and confidence of its labels.

The distance is torchmetrics' FrechetInceptionDistance with the classifier's penultimate
features in place of Inception's: features are computed once per set (the test set is
compared with every sampler) and handed to it through a pass-through extractor.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from vaelab.evaluation.classifier import DigitCNN, predict
from vaelab.evaluation.samplers import SAMPLERS, fit_sampler, samplers_for
from vaelab.models.base import LatentModel
from vaelab.models.inference import decode_probs, posterior_means
from vaelab.pictures.grids import to_uint8


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
    train_codes: np.ndarray,
    count: int,
    components: int,
    seed: int,
    binarize: str,
) -> tuple[dict, dict[str, np.ndarray]]:
    """Each sampler's Fréchet distance to `test` and class statistics of `count` decoded
    samples, keyed by sampler; and a grid of the first 64 samples of each, which the
    samples stage writes as sampler_grids/SAMPLER.png."""
    test_features, _ = predict(net, test)
    scores, grids = {}, {}
    for offset, name in enumerate(samplers_for(model.variational)):
        sampler = fit_sampler(name, train_codes, components, seed)
        images = pixels_of(
            decode_probs(model, sampler.sample(count, seed + offset)), binarize, seed + offset
        )
        features, probs = predict(net, images)
        scores[name] = {
            "fid": frechet_distance(test_features, features),
            **class_statistics(probs),
            "description": SAMPLERS[name].description,
        }
        grids[name] = to_uint8(images[:64], nrow=8, padding=2)
    return scores, grids


def training_codes(model: LatentModel, images: torch.Tensor) -> np.ndarray:
    """The posterior means (an autoencoder's codes) of the training images."""
    device = next(model.parameters()).device
    means, _ = posterior_means(model, images.to(device))
    return means.cpu().numpy()
