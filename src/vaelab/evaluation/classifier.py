"""A small seeded CNN per prepared data set, whose penultimate features score samples.

Its 128 penultimate activations are the feature space of the Fréchet distance in
`vaelab.evaluation.sample_quality` ("FID-MNIST"): Inception features say little about
28-pixel digits, a classifier trained on the same images says which digit and how it is
drawn. One is trained for each prepared set (classifier@NAME, `train_and_save_classifier`),
on the images the models themselves see (binarized or grey, 28 or 32 pixels), so samples
are never fed to a classifier that never saw their kind.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from vaelab.config.params import ClassifierSpec, load_params
from vaelab.core.errors import DataError
from vaelab.core.files import write_text
from vaelab.core.progress import say
from vaelab.core.tensor_files import load_tensors, save_tensors
from vaelab.data.splits import load_split, read_meta
from vaelab.runtime import cores
from vaelab.runtime.device import describe, resolve_device, training_precision, uses_bf16

FEATURES = 128


class DigitCNN(nn.Module):
    """Conv(32,3)-BN-pool-Conv(64,3)-BN-pool-Dense(128)-Dense(classes): the classic small
    MNIST CNN. Without batch norm it stayed just under 99% test accuracy after 4 epochs."""

    def __init__(self, image_size: int, classes: int):
        super().__init__()
        self.image_size, self.classes = image_size, classes
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.norm1, self.norm2 = nn.BatchNorm2d(32), nn.BatchNorm2d(64)
        self.dense = nn.Linear(64 * (image_size // 4) ** 2, FEATURES)
        self.dropout = nn.Dropout(0.25)
        self.out = nn.Linear(FEATURES, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate activations [B, 128]: the space the Fréchet distance lives in."""
        x = F.max_pool2d(F.relu(self.norm1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.norm2(self.conv2(x))), 2)
        return F.relu(self.dense(x.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(self.features(x)))


def shifted(images: torch.Tensor, shift: int, generator: torch.Generator) -> torch.Tensor:
    """Each image moved by up to `shift` pixels along each axis (a seeded draw per image),
    the uncovered border filled with zeros, the background of every prepared set."""
    if shift == 0:
        return images
    count, _, height, width = images.shape
    padded = F.pad(images, (shift, shift, shift, shift))
    dy, dx = torch.randint(0, 2 * shift + 1, (2, count, 1), generator=generator)
    rows = (dy + torch.arange(height)).to(images.device)  # [count, height]
    cols = (dx + torch.arange(width)).to(images.device)
    picked = torch.arange(count, device=images.device)[:, None, None]
    return padded[picked, 0, rows[:, :, None], cols[:, None, :]].unsqueeze(1)


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    classes: int,
    knobs: ClassifierSpec,
    device: torch.device,
) -> DigitCNN:
    """Adam on cross-entropy with a cosine-decaying rate, shuffled by a seeded generator,
    each batch moved by up to `knobs.shift` pixels; comes back in eval mode, its weights
    fp32 whatever `knobs.amp` (true, false or "auto") trained it in. The decay to zero lifts five
    epochs to about 99%, and a shift of a pixel keeps every seed above it on the binarized
    set too (benchmarks/classifier_accuracy.py measures it)."""
    epochs, batch_size, seed, shift = knobs.epochs, knobs.batch_size, knobs.seed, knobs.shift
    torch.manual_seed(seed)
    # NHWC weights: oneDNN's (and cuDNN's) fastest convolution kernels, the same function
    model = DigitCNN(images.shape[-1], classes).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=knobs.lr)
    steps = epochs * -(-len(images) // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    generator = torch.Generator().manual_seed(seed)
    # Unlike the batch-32 VAE steps, its batch-128 convolutions are compute-bound, where
    # native bf16 dot products double the rate (docs/training-speed.md).
    autocast = torch.autocast(
        device.type, dtype=torch.bfloat16, enabled=uses_bf16(knobs.amp, device)
    )
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(images), batch_size):
            cores.rebalance()
            chosen = order[start : start + batch_size]
            x, y = shifted(images[chosen], shift, generator).to(device), labels[chosen].to(device)
            with autocast:
                loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()


def train_and_save_classifier(
    name: str, *, params: Path, data: Path, out: Path, metrics: Path, limit: int | None = None
) -> dict:
    """classifier@NAME: the classifier of prepared set NAME trained on the train split of
    `data` with params' `classifier` section -> `out` (classifier.pt), and its test accuracy
    -> `metrics` (metrics.json); returns those metrics."""
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
        train.images, train.labels, classes=len(meta["classes"]), knobs=knobs, device=device
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
    return result


@torch.inference_mode()
def predict(
    model: DigitCNN, images: torch.Tensor, batch_size: int = 1000
) -> tuple[torch.Tensor, torch.Tensor]:
    """Penultimate features [N, 128] and class probabilities [N, classes], on the CPU."""
    model.eval()
    device = next(model.parameters()).device
    features, probs = [], []
    for start in range(0, len(images), batch_size):
        h = model.features(images[start : start + batch_size].to(device))
        features.append(h.float().cpu())
        probs.append(torch.softmax(model.out(h), dim=1).float().cpu())
    return torch.cat(features), torch.cat(probs)


def accuracy(model: DigitCNN, images: torch.Tensor, labels: torch.Tensor) -> float:
    _, probs = predict(model, images)
    return (probs.argmax(1) == labels).double().mean().item()


def save_classifier(path, model: DigitCNN, info: dict) -> None:
    state = {
        "image_size": model.image_size,
        "classes": model.classes,
        "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
        "info": info,
    }
    save_tensors(path, state)


def load_classifier(path, device: torch.device | str = "cpu") -> tuple[DigitCNN, dict]:
    state = load_tensors(path, "classifier", "rerun its classifier stage")
    try:
        model = DigitCNN(state["image_size"], state["classes"])
        model.load_state_dict(state["state_dict"])
    except Exception as exc:
        raise DataError(
            f"classifier {path} is corrupt or truncated ({type(exc).__name__}); "
            f"rerun its classifier stage"
        ) from None
    # in the layout it trained in: NCHW weights run its inference at half the speed
    return model.to(device, memory_format=torch.channels_last).eval(), state["info"]
