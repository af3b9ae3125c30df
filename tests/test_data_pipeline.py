"""`dvc repro` of the data stages, end to end, in a throwaway copy of the project."""

import json

import pytest
import yaml
from conftest import dvc, project_copy, run_env

from vaelab.data.splits import load_split

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mnist_project(tmp_path_factory, request):
    shared = request.getfixturevalue("real_mnist_mirror")
    project = project_copy(tmp_path_factory.mktemp("project"))
    env = run_env(VAELAB_MIRROR=str(shared))
    first = dvc(["repro", "prepare@mnist_binary", "prepare@mnist_grey"], project, env)
    return project, env, first


def test_mnist_stages_produce_the_published_split(mnist_project):
    project, _, first = mnist_project
    assert "Running stage 'download@mnist'" in first.stdout
    assert "download@fashion_mnist" not in first.stdout
    binary_train = load_split(project / "data/prepared/mnist_binary", "train")
    binary_test = load_split(project / "data/prepared/mnist_binary", "test")
    assert binary_train.images.shape == (60000, 1, 28, 28)
    assert binary_test.images.shape == (10000, 1, 28, 28)
    assert set(binary_train.images.unique().tolist()) == {0.0, 1.0}
    assert sorted(binary_test.labels.unique().tolist()) == list(range(10))
    grey = load_split(project / "data/prepared/mnist_grey", "test")
    assert len(grey.images.unique()) == 256
    assert grey.images.min() == 0.0 and grey.images.max() == 1.0
    meta = json.loads((project / "data/prepared/mnist_grey/meta.json").read_text())
    assert meta["counts"] == {"train": 60000, "test": 10000}


def test_second_repro_reruns_nothing(mnist_project):
    project, env, _ = mnist_project
    again = dvc(["repro", "prepare@mnist_binary", "prepare@mnist_grey"], project, env)
    assert "Running stage" not in again.stdout
    assert "didn't change, skipping" in again.stdout


def test_unrelated_param_change_reruns_nothing(mnist_project):
    project, env, _ = mnist_project
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["data"]["mirrors"]["fashion_mnist"] = ["https://elsewhere.invalid/"]
    params["data"]["prepared"]["fashion_grey32"]["seed"] = 5
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = dvc(
        ["status", "download@mnist", "prepare@mnist_binary", "prepare@mnist_grey"], project, env
    )
    assert "up to date" in status.stdout, status.stdout


def test_fashion_mnist_stages_on_the_real_files(real_fashion_mirror, tmp_path):
    """Debian's re-gzipped copies verify by the sha256 of their contents (their .gz md5
    is not the published one), and prepare pads a slice of them to 32x32."""
    project = project_copy(tmp_path / "project")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["data"]["prepared"]["fashion_grey32"].update(train_limit=120, test_limit=40)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = run_env(VAELAB_MIRROR=str(real_fashion_mirror))
    result = dvc(["repro", "prepare@fashion_grey32"], project, env)
    assert "checksum ok (c59f468a2f67" in result.stdout + result.stderr  # by sha256
    train = load_split(project / "data/prepared/fashion_grey32", "train")
    assert train.images.shape == (120, 1, 32, 32)
    assert train.images[:, :, :2].eq(0).all() and train.images[:, :, :, -2:].eq(0).all()
    assert train.labels[:5].tolist() == [9, 0, 0, 3, 0]
    assert sorted(p.name for p in (project / "data/raw/fashion_mnist").iterdir()) == [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
    ]
    assert not (project / "data/raw/mnist").exists()
