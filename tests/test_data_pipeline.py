"""`dvc repro` of the data stages, end to end, in a throwaway copy of the project."""

import json

import pytest
import yaml
from conftest import dvc, project_copy, run_env
from synthetic import write_mirror

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


def test_fashion_mnist_path_on_synthetic_files(tmp_path):
    project = project_copy(tmp_path / "project")
    mirror = tmp_path / "mirror"
    manifest_path = project / "src/vaelab/data/raw/manifest.yaml"
    manifest = yaml.safe_load(manifest_path.read_text())
    manifest["fashion_mnist"] = write_mirror(mirror, "fashion_mnist", n_train=120, n_test=40)
    manifest_path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    env = run_env(VAELAB_MIRROR=str(mirror))
    dvc(["repro", "prepare@fashion_grey32"], project, env)
    train = load_split(project / "data/prepared/fashion_grey32", "train")
    assert train.images.shape == (120, 1, 32, 32)
    assert train.images[:, :, :2].eq(0).all() and train.images[:, :, :, -2:].eq(0).all()
    assert sorted((project / "data/raw/fashion_mnist").iterdir())
    assert not (project / "data/raw/mnist").exists()
