"""Pictures of a trained model: latent scatter, manifolds, reconstructions, samples, GIF.

Image grids are written pixel-exact (n x n tiles of the image size, no axes), so that a
20 x 20 manifold of 28-pixel digits is a 560 x 560 PNG; the scatter is a matplotlib figure.
"""

from __future__ import annotations

from pathlib import Path
from statistics import NormalDist

import imageio.v3 as iio
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from vaelab.core.files import atomic_path, write_bytes  # noqa: E402
from vaelab.models.base import LatentModel  # noqa: E402
from vaelab.models.inference import decode_probs  # noqa: E402
from vaelab.pictures.grids import to_uint8  # noqa: E402


def save_png(array: np.ndarray, path: Path) -> None:
    # encoded in memory: imageio's writer, left open by a full disk's error, would try
    # to write the file once more when it is garbage-collected, and print a traceback
    write_bytes(path, iio.imwrite("<bytes>", array, extension=".png"))


def principal_axes(means: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre, the first two principal directions [2, D], and the spread along each."""
    centre = means.mean(axis=0)
    _, singular, directions = np.linalg.svd(means - centre, full_matrices=False)
    spread = singular[:2] / np.sqrt(max(len(means) - 1, 1))
    return centre, directions[:2], spread


def latent_plane(means: np.ndarray, prior: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where a 2D grid sits in latent space: origin, two axes, and a scale per axis.

    A 2D model with a `prior` (a VAE, a WAE) uses its own axes with unit scale (the
    prior's); a wider one the first two principal directions of the posterior means, the
    other dimensions at their mean; an autoencoder, having no prior, its embeddings' mean
    and spread.
    """
    if means.shape[1] == 2:
        if prior:
            return np.zeros(2), np.eye(2), np.ones(2)
        return means.mean(0), np.eye(2), means.std(0)
    centre, axes, spread = principal_axes(means)
    return centre, axes, np.ones(2) if prior else spread


def manifold(model: LatentModel, means: np.ndarray, n: int, coordinates: str) -> np.ndarray:
    """An n x n grid of decoded images over `quantiles` (Gaussian 0.05..0.95, references 000/001)
    or `linspace` (-3..3, reference 002) along the latent plane."""
    if coordinates == "quantiles":
        ticks = np.array([NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, n)])
    elif coordinates == "linspace":
        ticks = np.linspace(-3, 3, n)
    else:
        raise ValueError(f"coordinates {coordinates!r}")
    if means.shape[1] == 1:
        z = means.mean() + ticks[:, None] * (means.std() if not model.has_prior else 1.0)
        return to_uint8(decode_probs(model, torch.tensor(z, dtype=torch.float32)), nrow=n)
    centre, axes, scale = latent_plane(means, model.has_prior)
    # rows run top to bottom from high to low on the second axis, as the references draw them
    grid_y, grid_x = np.meshgrid(ticks[::-1], ticks, indexing="ij")
    offsets = (
        grid_x.reshape(-1, 1) * scale[0] * axes[0] + grid_y.reshape(-1, 1) * scale[1] * axes[1]
    )
    z = torch.tensor(centre + offsets, dtype=torch.float32)
    return to_uint8(decode_probs(model, z), nrow=n)


def sample_codes(model: LatentModel, means: np.ndarray, count: int, seed: int) -> torch.Tensor:
    """`count` seeded codes [count, D], float32: from N(0, I) for a model with a prior, else
    uniform in the embeddings' bounding box, as reference 003 does."""
    generator = torch.Generator().manual_seed(seed)
    dims = means.shape[1]
    if model.has_prior:
        return torch.randn(count, dims, generator=generator)
    low, high = torch.tensor(means.min(0)), torch.tensor(means.max(0))
    z = low + (high - low) * torch.rand(count, dims, generator=generator, dtype=low.dtype)
    return z.float()


def prior_samples(model: LatentModel, means: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Decoded draws from N(0, I); for an autoencoder, uniform in the embeddings' bounding
    box, as reference 003 does."""
    z = sample_codes(model, means, count, seed)
    return to_uint8(decode_probs(model, z), nrow=int(np.ceil(np.sqrt(count))), padding=2)


def class_samples(
    model: LatentModel, means: np.ndarray, classes: int, count: int, seed: int
) -> np.ndarray:
    """A class-conditional model's samples: one row per class, each row the same
    `count // classes` codes (from N(0, I), or the embeddings' box without a prior)
    decoded given that row's class."""
    per_class = max(1, count // classes)
    z = sample_codes(model, means, per_class, seed)
    labels = torch.arange(classes).repeat_interleave(per_class)
    probs = decode_probs(model, z.repeat(classes, 1), labels=labels)
    return to_uint8(probs, nrow=per_class, padding=2)


@torch.inference_mode()
def reconstructions(model: LatentModel, images: torch.Tensor, count: int = 16) -> np.ndarray:
    """Originals (top row) above their reconstructions from the posterior mean."""
    device = next(model.parameters()).device
    x = images[:count].to(device)
    recon = torch.sigmoid(model.decode(model.encode(x).mean).float()).cpu()
    return to_uint8(torch.cat([x.cpu(), recon]), nrow=len(x), padding=2)


def epoch_frames(folder: Path) -> list[Path]:
    """The per-epoch pictures EPOCH.png of one dvclive image series, in epoch order."""
    return sorted(
        (p for p in Path(folder).glob("*.png") if p.stem.isdigit()), key=lambda p: int(p.stem)
    )


# the band above each GIF frame that says which epoch it shows
CAPTION_PX = 28


def epoch_gif(
    frames: list[Path],
    path: Path,
    scale: int = 3,
    seconds_per_frame: float = 0.5,
) -> int:
    """The per-epoch reconstruction grids as one looping GIF, each frame under a band that
    reads "epoch E of N" (a loop of a few frames says nothing otherwise); returns the
    frame count."""
    pictures = []
    for epoch, frame in enumerate(frames, start=1):
        picture = iio.imread(frame)
        if picture.ndim == 3:
            picture = picture[..., 0]
        picture = np.kron(picture, np.ones((scale, scale), dtype=picture.dtype))
        band = caption(f"epoch {epoch} of {len(frames)}", picture.shape[1], CAPTION_PX)
        pictures.append(np.vstack([band, picture]))
    encoded = iio.imwrite(  # in memory, as save_png's
        "<bytes>",
        np.stack(pictures),
        extension=".gif",
        duration=int(seconds_per_frame * 1000),
        loop=0,
    )
    write_bytes(path, encoded)
    return len(pictures)


def caption(text: str, width: int, height: int) -> np.ndarray:
    """`text` centred in black on a white grey-level band of width x height pixels."""
    figure = plt.figure(figsize=(width / 100, height / 100), dpi=100)
    figure.text(0.5, 0.5, text, ha="center", va="center", fontsize=height * 0.45)
    figure.canvas.draw()
    band = np.asarray(figure.canvas.buffer_rgba())[..., 0].copy()
    plt.close(figure)
    return band


def latents_table(
    means: np.ndarray, logvars: np.ndarray | None, labels: np.ndarray, classes: list[str]
) -> pd.DataFrame:
    table = pd.DataFrame(means, columns=[f"z_mean_{i}" for i in range(means.shape[1])])
    if logvars is not None:
        for i in range(logvars.shape[1]):
            table[f"z_logvar_{i}"] = logvars[:, i]
    table["label"] = labels
    table["class"] = [classes[i] for i in labels]
    return table


def scatter(table: pd.DataFrame, classes: list[str], title: str, path: Path) -> str:
    """Posterior means coloured by class; PCA-projected (and titled so) beyond 2 dims."""
    means = table.filter(like="z_mean_").to_numpy()
    if means.shape[1] == 1:
        xy = np.column_stack(
            [
                means[:, 0],
                table["label"].to_numpy() + np.random.default_rng(0).uniform(-0.3, 0.3, len(means)),
            ]
        )
        axes_label, how = ("z_mean_0", "label (jittered)"), "1-D latent"
    elif means.shape[1] == 2:
        xy, axes_label, how = means, ("z_mean_0", "z_mean_1"), "latent dims 0 and 1"
    else:
        centre, directions, _ = principal_axes(means)
        xy = (means - centre) @ directions.T
        axes_label = ("principal component 1", "principal component 2")
        how = f"PCA projection of {means.shape[1]}-D posterior means"
    figure, ax = plt.subplots(figsize=(7.5, 6.5), dpi=110)
    cmap = plt.get_cmap("tab10")
    labels = table["label"].to_numpy()
    # points in a seeded random order, not class by class: drawn one class after another,
    # the last classes would cover the first wherever they overlap (Fashion-MNIST's shirts,
    # pullovers and coats)
    order = np.random.default_rng(0).permutation(len(xy))
    ax.scatter(xy[order, 0], xy[order, 1], s=3, alpha=0.6, c=cmap(labels[order] % cmap.N))
    handles = [
        Line2D([], [], marker="o", linestyle="", markersize=5, color=cmap(i % cmap.N), label=name)
        for i, name in enumerate(classes)
    ]
    ax.set_xlabel(axes_label[0])
    ax.set_ylabel(axes_label[1])
    ax.set_title(f"{title}: {how}", fontsize=10)
    ax.legend(
        handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="class"
    )
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
    return how
