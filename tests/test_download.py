import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, run_env

from vaelab.core.errors import DataError
from vaelab.data.download import download_dataset, mirrors_for
from vaelab.data.raw.manifest import load_manifest


def test_download_from_local_folder_mirror(synthetic_mirror, tmp_path):
    mirror, manifest_path = synthetic_mirror
    manifest = load_manifest("mnist", manifest_path)
    dest = tmp_path / "raw" / "mnist"
    download_dataset(manifest, [str(tmp_path / "nowhere"), str(mirror / "mnist")], dest)
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        spec.name for spec in manifest.files.values()
    )
    assert [p.name for p in dest.parent.iterdir()] == ["mnist"]


def test_debian_folder_follows_the_public_mirror_and_is_skipped_when_missing(
    real_fashion_mirror, tmp_path
):
    import yaml

    listed = yaml.safe_load((ROOT / "params.yaml").read_text())["data"]["mirrors"]
    assert listed["fashion_mnist"][1:] == ["/usr/share/datasets/fashion-mnist/"]
    assert listed["fashion_mnist"][0].startswith("http")
    dest = tmp_path / "raw" / "fashion_mnist"
    download_dataset(
        load_manifest("fashion_mnist"),
        [
            str(tmp_path / "usr/share/datasets/fashion-mnist"),
            str(real_fashion_mirror / "fashion_mnist"),
        ],
        dest,
    )
    assert len(list(dest.iterdir())) == 4


def test_file_url_mirror_works(synthetic_mirror, tmp_path):
    mirror, manifest_path = synthetic_mirror
    dest = tmp_path / "raw"
    download_dataset(load_manifest("mnist", manifest_path), [(mirror / "mnist").as_uri()], dest)
    assert len(list(dest.iterdir())) == 4


def test_environment_variable_replaces_the_mirror_list(monkeypatch):
    monkeypatch.setenv("VAELAB_MIRROR", "/srv/mirror")
    assert mirrors_for("mnist", ["https://a/", "https://b/"]) == ["/srv/mirror/mnist"]
    monkeypatch.setenv("VAELAB_MIRROR", "https://mirror.example/data/")
    assert mirrors_for("fashion_mnist", []) == ["https://mirror.example/data/fashion_mnist"]
    monkeypatch.delenv("VAELAB_MIRROR")
    assert mirrors_for("mnist", ["https://a/"]) == ["https://a/"]


def test_corrupt_file_leaves_nothing_behind(synthetic_mirror, tmp_path):
    mirror, manifest_path = synthetic_mirror
    target = mirror / "mnist" / "t10k-images-idx3-ubyte.gz"
    data = bytearray(target.read_bytes())
    data[100] ^= 0x01
    target.write_bytes(bytes(data))
    dest = tmp_path / "raw" / "mnist"
    with pytest.raises(
        DataError,
        match=r"t10k-images-idx3-ubyte.gz from .*mirror/mnist: "
        r"checksum mismatch, expected sha256 [0-9a-f]{64}, "
        r"got sha256 [0-9a-f]{64}",
    ):
        download_dataset(load_manifest("mnist", manifest_path), [str(mirror / "mnist")], dest)
    assert list((tmp_path / "raw").iterdir()) == []


def test_stage_command_prints_one_line_and_exits_non_zero(real_mnist_mirror, tmp_path):
    """The acceptance case: real MNIST with one flipped byte in one .gz."""
    mirror = tmp_path / "mirror"
    shutil.copytree(real_mnist_mirror / "mnist", mirror / "mnist")
    target = mirror / "mnist" / "train-labels-idx1-ubyte.gz"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    out = tmp_path / "raw" / "mnist"
    result = subprocess.run(
        [sys.executable, "stages/download.py", "mnist", "--out", str(out)],
        cwd=ROOT,
        env=run_env(VAELAB_MIRROR=str(mirror)),
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert (
        f"train-labels-idx1-ubyte.gz from {mirror / 'mnist'}: checksum mismatch, expected "
        f"sha256 65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5 or md5 of .gz "
        f"d53e105ee54ea40749a09fcbcd1e9432, got sha256 " in errors[0]
    )
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_stage_help_works():
    result = subprocess.run(
        [sys.executable, "stages/download.py", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=run_env(),
    )
    assert result.returncode == 0 and "VAELAB_MIRROR" in result.stdout
