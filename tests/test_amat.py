"""Larochelle & Murray's binarized MNIST: download, verification and parsing of .amat
files, on small synthetic ones (the real files are not reachable from this machine)."""

import numpy as np
import pytest
import torch
from synthetic import AMAT_NAMES, write_amat_mirror, write_manifest

from vaelab.config.params import PreparedSpec
from vaelab.core.errors import DataError
from vaelab.data.download import download_dataset
from vaelab.data.prepare import prepare
from vaelab.data.raw.manifest import load_manifest
from vaelab.data.splits import hold_out, load_split, read_meta


@pytest.fixture
def amat_mirror(tmp_path):
    mirror = tmp_path / "mirror"
    entry = write_amat_mirror(mirror)
    return mirror, write_manifest(tmp_path / "manifest.yaml", {"binarized_mnist": entry})


def _pixels(path) -> np.ndarray:
    """The file read the plain way, as pythae's scripts do: np.loadtxt."""
    return np.loadtxt(path, dtype=np.uint8).reshape(-1, 28, 28)


def test_download_verifies_and_prepare_keeps_the_published_split(amat_mirror, tmp_path):
    mirror, manifest_path = amat_mirror
    manifest = load_manifest("binarized_mnist", manifest_path)
    raw = tmp_path / "raw"
    download_dataset(manifest, [str(mirror / "binarized_mnist")], raw)
    assert sorted(p.name for p in raw.iterdir()) == sorted(AMAT_NAMES.values())
    spec = PreparedSpec(dataset="binarized_mnist", binarize="none", size=28)
    prepare(raw, manifest, spec, tmp_path / "prepared")
    train, test = (load_split(tmp_path / "prepared", s) for s in ("train", "test"))
    files = {role: _pixels(raw / name) for role, name in AMAT_NAMES.items()}
    expected_train = np.concatenate([files["train_images"], files["valid_images"]])
    assert torch.equal(train.images[:, 0], torch.from_numpy(expected_train).float())
    assert torch.equal(test.images[:, 0], torch.from_numpy(files["test_images"]).float())
    # `validation: 20` holds out exactly the validation file
    _, held = hold_out(train, 20)
    assert torch.equal(held.images[:, 0], torch.from_numpy(files["valid_images"]).float())
    assert set(train.labels.tolist()) == {-1}  # the files carry no labels
    assert read_meta(tmp_path / "prepared")["dataset"] == "binarized_mnist"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[:-1570], "checksum mismatch, expected sha256"),
        (lambda b: b.replace(b"1", b"2", 1), "checksum mismatch, expected sha256"),
    ],
)
def test_a_corrupt_file_is_one_line_and_nothing_is_kept(amat_mirror, tmp_path, damage, message):
    mirror, manifest_path = amat_mirror
    test_file = mirror / "binarized_mnist" / AMAT_NAMES["test_images"]
    test_file.write_bytes(damage(test_file.read_bytes()))
    dest = tmp_path / "raw"
    with pytest.raises(DataError) as info:
        download_dataset(
            load_manifest("binarized_mnist", manifest_path), [str(test_file.parent)], dest
        )
    assert message in str(info.value) and AMAT_NAMES["test_images"] in str(info.value)
    assert "\n" not in str(info.value)
    assert not dest.exists()


def test_a_file_that_matches_its_checksum_but_not_its_shape_is_refused(amat_mirror, tmp_path):
    """A manifest with the checksum of a file that is not 784 pixels a line (a damaged
    manifest or a different dataset): the parser names the line, not a numpy error."""
    import hashlib

    from vaelab.data.raw import amat

    spec = load_manifest("binarized_mnist", amat_mirror[1]).files["test_images"]
    bad = b"0 1 x 0\n"
    spec = type(spec)(name=spec.name, shape=spec.shape, sha256=hashlib.sha256(bad).hexdigest())
    with pytest.raises(DataError, match=r"line 1 holds b'x', not a 0 or 1 pixel"):
        amat.verify(bad, spec, "mirror")
    short = b"0 1 0\n"
    spec = type(spec)(name=spec.name, shape=spec.shape, sha256=hashlib.sha256(short).hexdigest())
    with pytest.raises(DataError, match=r"1 lines of 3 pixels in all, expected 20 images of 784"):
        amat.verify(short, spec, "mirror")


def test_the_shipped_manifest_carries_tensorflow_datasets_checksums():
    manifest = load_manifest("binarized_mnist")
    assert manifest.format == "amat"
    assert {r: (f.name, f.shape[0]) for r, f in manifest.files.items()} == {
        "train_images": ("binarized_mnist_train.amat", 50000),
        "valid_images": ("binarized_mnist_valid.amat", 10000),
        "test_images": ("binarized_mnist_test.amat", 10000),
    }
    assert manifest.files["test_images"].sha256.startswith("e6687bfea3f8")
