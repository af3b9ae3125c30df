import imageio.v3 as iio
import numpy as np
import pytest
import torch

from vaelab.models.registry import build_model
from vaelab.pictures.grids import to_uint8
from vaelab.pictures.plots import (
    CAPTION_PX,
    caption,
    epoch_frames,
    epoch_gif,
    latents_table,
    manifold,
    prior_samples,
    reconstructions,
    save_png,
    scatter,
)


@pytest.mark.parametrize(
    ("name", "size", "latent_dim"),
    [
        ("cvae", 28, 2),
        ("vae_mlp", 28, 8),
        ("vae_conv", 32, 2),
        ("ae_conv", 32, 2),
        ("ae_conv", 32, 5),
        ("cvae", 28, 1),
    ],
)
@pytest.mark.parametrize("coordinates", ["quantiles", "linspace"])
def test_manifold_is_n_tiles_square(name, size, latent_dim, coordinates):
    model = build_model(name, size, latent_dim=latent_dim).eval()
    means = np.random.default_rng(0).normal(size=(200, latent_dim))
    picture = manifold(model, means, 6, coordinates)
    expected = (size, 6 * size) if latent_dim == 1 else (6 * size, 6 * size)
    assert picture.shape == expected and picture.dtype == np.uint8


def test_gif_has_one_frame_per_epoch_in_epoch_order(tmp_path):
    series = tmp_path / "reconstructions"  # dvclive's layout: one file per step
    series.mkdir()
    for epoch in range(1, 12):
        save_png(np.full((10, 12), epoch * 20, dtype=np.uint8), series / f"{epoch}.png")
    (series / "notes.png").write_bytes(b"")  # not a step: ignored
    frames = epoch_frames(series)
    assert [p.stem for p in frames] == [str(e) for e in range(1, 12)]  # 10 after 9, not 1
    frames = frames[:4]
    assert epoch_gif(frames, tmp_path / "epochs.gif", scale=2) == 4
    gif = iio.imread(tmp_path / "epochs.gif", index=None)
    if gif.ndim == 4:
        gif = gif[..., 0]
    assert gif.shape == (4, CAPTION_PX + 20, 24)
    assert len({int(frame[CAPTION_PX:].mean()) for frame in gif}) == 4


def test_each_gif_frame_says_its_epoch(tmp_path):
    frames = []
    for epoch in (1, 2):
        frames.append(tmp_path / f"{epoch}.png")
        save_png(np.zeros((40, 120), dtype=np.uint8), frames[-1])
    epoch_gif(frames, tmp_path / "epochs.gif", scale=1)
    gif = iio.imread(tmp_path / "epochs.gif", index=None)
    bands = (gif[..., 0] if gif.ndim == 4 else gif)[:, :CAPTION_PX]
    assert bands.min() < 100 and np.median(bands) > 200  # dark text on a light band
    assert not np.array_equal(bands[0], bands[1])  # "epoch 1 of 2", then "epoch 2 of 2"
    assert np.array_equal(bands[0], caption("epoch 1 of 2", 120, CAPTION_PX))


@pytest.mark.parametrize(
    ("count", "nrow", "padding"), [(1, 4, 2), (5, 4, 2), (16, 4, 0), (9, 3, 2), (3, 8, 2)]
)
def test_grids_are_laid_out_as_torchvision_lays_them(count, nrow, padding):
    from torchvision.utils import make_grid

    images = torch.rand(count, 1, 6, 6) * 1.4 - 0.2  # a little outside [0, 1], as logits round
    expected = make_grid(images, nrow=nrow, padding=padding, pad_value=1.0)[0]
    expected = (expected.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    assert np.array_equal(to_uint8(images, nrow=nrow, padding=padding), expected)


def test_samples_and_reconstructions_have_the_right_size():
    model = build_model("ae_conv", 32, latent_dim=2).eval()
    means = np.array([[0.0, 0.0], [1.0, 2.0], [-1.0, 0.5]])
    samples = prior_samples(model, means, 9, seed=0)
    assert samples.shape == (3 * 34 + 2, 3 * 34 + 2)
    pairs = reconstructions(model, torch.rand(16, 1, 32, 32), count=8)
    assert pairs.shape == (2 * 34 + 2, 8 * 34 + 2)


def test_latents_table_and_scatter(tmp_path):
    rng = np.random.default_rng(0)
    means, logvars = rng.normal(size=(300, 4)), rng.normal(size=(300, 4))
    labels = rng.integers(0, 10, 300)
    classes = [str(i) for i in range(10)]
    table = latents_table(means, logvars, labels, classes)
    assert len(table) == 300 and "label" in table and "z_logvar_3" in table
    how = scatter(table, classes, "test", tmp_path / "scatter.png")
    assert how == "PCA projection of 4-D posterior means"
    assert iio.imread(tmp_path / "scatter.png").shape[0] > 400
    two = latents_table(means[:, :2], None, labels, classes)
    assert list(two.columns) == ["z_mean_0", "z_mean_1", "label", "class"]
    assert scatter(two, classes, "t", tmp_path / "s2.png") == "latent dims 0 and 1"
