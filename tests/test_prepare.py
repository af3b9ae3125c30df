import numpy as np
import pytest
import torch

from vaelab.config.params import PreparedSpec
from vaelab.core.errors import DataError
from vaelab.data.prepare import binarize, pad_to, prepare
from vaelab.data.raw.manifest import load_manifest
from vaelab.data.splits import load_split, read_meta

PIXELS = torch.tensor([[[0, 127, 128, 255]]], dtype=torch.uint8)


def test_threshold_is_strictly_above_half():
    out = binarize(PIXELS, "threshold", torch.Generator())
    assert out.tolist() == [[[0, 0, 1, 1]]]


def test_none_keeps_grey_levels():
    assert binarize(PIXELS, "none", torch.Generator()).tolist() == PIXELS.tolist()


def test_stochastic_is_seeded_and_matches_probabilities():
    images = torch.full((200, 28, 28), 64, dtype=torch.uint8)
    first = binarize(images, "stochastic", torch.Generator().manual_seed(3))
    again = binarize(images, "stochastic", torch.Generator().manual_seed(3))
    other = binarize(images, "stochastic", torch.Generator().manual_seed(4))
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert set(first.unique().tolist()) == {0, 1}
    assert first.float().mean().item() == pytest.approx(64 / 255, abs=0.01)
    extremes = binarize(PIXELS, "stochastic", torch.Generator().manual_seed(0))
    assert extremes[0, 0, 0] == 0 and extremes[0, 0, 3] == 1


def test_pad_to_32_centres_with_zeros():
    images = torch.ones(2, 28, 28, dtype=torch.uint8)
    padded = pad_to(images, 32)
    assert padded.shape == (2, 32, 32)
    assert padded[:, 2:30, 2:30].eq(1).all() and padded.sum() == 2 * 28 * 28
    assert pad_to(images, 28) is images
    with pytest.raises(ValueError):
        pad_to(images, 31)


@pytest.mark.parametrize(
    ("mode", "size", "values"), [("threshold", 28, {0.0, 1.0}), ("none", 32, None)]
)
def test_prepare_writes_both_splits_of_real_fashion_mnist(
    real_fashion_mirror, tmp_path, mode, size, values
):
    spec = PreparedSpec(
        dataset="fashion_mnist", binarize=mode, size=size, train_limit=300, test_limit=100
    )
    meta = prepare(
        real_fashion_mirror / "fashion_mnist",
        load_manifest("fashion_mnist"),
        spec,
        tmp_path / "prepared",
    )
    assert meta["counts"] == {"train": 300, "test": 100}
    assert read_meta(tmp_path / "prepared")["classes"][0] == "T-shirt/top"
    train = load_split(tmp_path / "prepared", "train")
    test = load_split(tmp_path / "prepared", "test")
    assert train.images.shape == (300, 1, size, size) and train.images.dtype == torch.float32
    assert 0.0 <= train.images.min() and train.images.max() <= 1.0
    if values:
        assert set(train.images.unique().tolist()) == values
    else:
        assert len(train.images.unique()) > 2
        assert train.images[:, :, :2].eq(0).all() and train.images[:, :, :, -2:].eq(0).all()
    assert train.labels.dtype == torch.int64 and len(train) == 300
    # the published order: the first labels of each split, as zalandoresearch lists them
    assert train.labels[:5].tolist() == [9, 0, 0, 3, 0]
    assert test.labels[:5].tolist() == [9, 2, 1, 1, 6]


def test_whole_real_fashion_mnist_is_the_published_set(real_fashion_mirror, tmp_path):
    spec = PreparedSpec(dataset="fashion_mnist", binarize="none", size=28)
    prepare(real_fashion_mirror / "fashion_mnist", load_manifest("fashion_mnist"), spec, tmp_path)
    train, test = load_split(tmp_path, "train"), load_split(tmp_path, "test")
    assert torch.bincount(train.labels).tolist() == [6000] * 10
    assert torch.bincount(test.labels).tolist() == [1000] * 10
    assert train.images.mean().item() == pytest.approx(0.2860, abs=5e-5)
    assert train.images.std().item() == pytest.approx(0.3530, abs=5e-5)


def test_prepare_rejects_a_raw_file_changed_after_download(synthetic_mirror, tmp_path):
    mirror, manifest_path = synthetic_mirror
    target = mirror / "mnist" / "t10k-labels-idx1-ubyte.gz"
    target.write_bytes(target.read_bytes()[:-8])
    spec = PreparedSpec(dataset="mnist", binarize="none", size=28)
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz.*checksum mismatch"):
        prepare(mirror / "mnist", load_manifest("mnist", manifest_path), spec, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_corrupt_prepared_file_is_a_clear_error(tmp_path):
    torch.save(
        {
            "images": torch.zeros(4, 1, 28, 28, dtype=torch.uint8),
            "labels": torch.zeros(4, dtype=torch.int64),
            "divisor": 1,
        },
        tmp_path / "train.pt",
    )
    blob = (tmp_path / "train.pt").read_bytes()
    (tmp_path / "train.pt").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="train.pt is corrupt, truncated or not a vaelab file"):
        load_split(tmp_path, "train")
    with pytest.raises(DataError, match="test.pt not found"):
        load_split(tmp_path, "test")


def test_grey_images_scale_to_unit_interval(tmp_path):
    images = torch.tensor(np.array([0, 51, 255], dtype=np.uint8)).reshape(3, 1, 1, 1)
    torch.save({"images": images, "labels": torch.arange(3), "divisor": 255}, tmp_path / "test.pt")
    assert load_split(tmp_path, "test").images.flatten().tolist() == pytest.approx([0, 0.2, 1])
