from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Two xdist workers already keep both cores busy: a torch that also ran two intra-op
# threads in each of them (and in every stage it starts) would have four threads wait on
# each other at every parallel region. One thread each, set before torch is imported, and
# inherited by every subprocess; a test that is about threads sets its own.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
SHARED_DATASETS = (ROOT.parent / "shared" / "datasets").resolve()
sys.path.insert(0, str(Path(__file__).parent))

from synthetic import write_manifest, write_mirror  # noqa: E402


@pytest.fixture
def synthetic_mirror(tmp_path):
    """A mirror folder with synthetic mnist and fashion_mnist, and a manifest for it."""
    mirror = tmp_path / "mirror"
    entries = {
        name: write_mirror(mirror, name, seed=i)
        for i, name in enumerate(("mnist", "fashion_mnist"))
    }
    manifest = write_manifest(tmp_path / "manifest.yaml", entries)
    return mirror, manifest


def _shared_mirror(dataset: str) -> Path:
    if not (SHARED_DATASETS / dataset / "train-images-idx3-ubyte.gz").exists():
        pytest.fail(
            f"real {dataset} missing from the mirror at {SHARED_DATASETS}; it must sit "
            f"beside the repository as ../shared/datasets"
        )
    return SHARED_DATASETS


@pytest.fixture(scope="session")
def real_mnist_mirror() -> Path:
    return _shared_mirror("mnist")


@pytest.fixture(scope="session")
def real_fashion_mirror() -> Path:
    """The shared mirror, holding the real Fashion-MNIST (Debian's re-gzipped copies)."""
    return _shared_mirror("fashion_mnist")


def run_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, CI="true", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


BIN = Path(sys.executable).parent
OUTPUT_FOLDERS = ("data/", "models/", "reports/", "dvc_plots/")


def project_copy(dest: Path) -> Path:
    """A throwaway git repository holding this checkout's files (tracked and new ones)."""
    import shutil
    import subprocess

    def git_files(*extra: str) -> list[str]:
        out = subprocess.run(
            ["git", "ls-files", "-z", *extra], cwd=ROOT, capture_output=True, check=True
        ).stdout
        return [p for p in out.decode().split("\0") if p]

    # tracked files, plus new files not yet committed, but never a developer's DVC outputs
    files = git_files("--cached") + [
        p for p in git_files("--others", "--exclude-standard") if not p.startswith(OUTPUT_FOLDERS)
    ]
    for rel in files:
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    git = ["git", "-c", "user.name=vaelab-tests", "-c", "user.email=tests@vaelab.invalid"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=dest, check=True)
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "copy"], cwd=dest, check=True)
    return dest


def dvc(args: list[str], cwd: Path, env: dict | None = None, check: bool = True):
    import subprocess

    env = env or run_env()
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(
        [str(BIN / "dvc"), *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"dvc {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def git_commit(cwd: Path, message: str) -> None:
    import subprocess

    git = ["git", "-c", "user.name=vaelab-tests", "-c", "user.email=tests@vaelab.invalid"]
    subprocess.run([*git, "add", "-A"], cwd=cwd, check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", message], cwd=cwd, check=True)


def with_change(path: str, value=None, delete: bool = False) -> dict:
    """The shipped params.yaml with the dotted key `path` set to `value` (or deleted)."""
    import yaml

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    *parents, last = path.split(".")
    node = raw
    for key in parents:
        node = node[key]
    if delete:
        del node[last]
    else:
        node[last] = value
    return raw


def edit_params(project: Path, change) -> None:
    """Apply `change` to the project's params.yaml, as a user editing it would."""
    import yaml

    params = yaml.safe_load((project / "params.yaml").read_text())
    change(params)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def experiment(**overrides):
    """An ExperimentSpec for tests: the cvae reference config unless overridden."""
    from vaelab.config.experiments import parse_experiment

    values = dict(
        data="synthetic",
        model="cvae",
        objective="mc_elbo",
        latent_dim=2,
        epochs=1,
        batch_size=32,
        optimizer="adam",
        lr=1e-3,
        seed=0,
        amp=False,  # fp32 whatever the CPU: exact comparisons stay exact on every machine
    )
    values.update(overrides)
    return parse_experiment("experiments.t", values)


@pytest.fixture(scope="session")
def prepared_data(tmp_path_factory):
    """Prepared folders: synthetic binarized MNIST-like 28x28, and grey 32x32 from the
    first 400 + 100 images of the real Fashion-MNIST."""
    from synthetic import write_manifest, write_mirror

    from vaelab.config.params import PreparedSpec
    from vaelab.data.prepare import prepare
    from vaelab.data.raw.manifest import load_manifest

    root = tmp_path_factory.mktemp("prepared")
    manifest = write_manifest(
        root / "manifest.yaml",
        {"mnist": write_mirror(root / "mirror", "mnist", n_train=512, n_test=128)},
    )
    synthetic = {
        "binary28": PreparedSpec(dataset="mnist", binarize="threshold", size=28),
        "grey28": PreparedSpec(dataset="mnist", binarize="none", size=28),
    }
    for name, spec in synthetic.items():
        prepare(root / "mirror/mnist", load_manifest("mnist", manifest), spec, root / name)
    fashion = PreparedSpec(
        dataset="fashion_mnist", binarize="none", size=32, train_limit=400, test_limit=100
    )
    real = _shared_mirror("fashion_mnist") / "fashion_mnist"
    prepare(real, load_manifest("fashion_mnist"), fashion, root / "fashion32")
    return root


def offline_project(tmp_path: Path, shared: Path) -> tuple[Path, dict]:
    """A project copy on the tiny profile whose mirror holds real MNIST and Fashion-MNIST,
    and a synthetic Larochelle binarized MNIST (with the copy's manifest describing the
    synthetic files)."""
    import yaml
    from synthetic import write_amat_mirror

    project = project_copy(tmp_path / "project")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for dataset in ("mnist", "fashion_mnist"):
        (mirror / dataset).symlink_to(shared / dataset)
    manifest_path = project / "src/vaelab/data/raw/manifest.yaml"
    manifest = yaml.safe_load(manifest_path.read_text())
    manifest["binarized_mnist"] = write_amat_mirror(mirror, n_train=200, n_valid=56, n_test=128)
    manifest_path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    from vaelab.tools.profiles import apply_profile

    params = apply_profile(yaml.safe_load((project / "params.yaml").read_text()), "tiny")
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git_commit(project, "tiny profile")
    return project, run_env(VAELAB_MIRROR=str(mirror))


def stages_run(output: str) -> set[str]:
    import re

    return set(re.findall(r"Running stage '([^']+)'", output))


def fit(spec, data_dir: Path, checkpoint: Path | None = None, name: str = "t"):
    """Train as the train stage does (vaelab.training.experiment.fit), without dvclive
    or model.pt: the checkpoint, when given, is kept for the test to look at."""
    from vaelab.training.experiment import Outputs
    from vaelab.training.experiment import fit as fit_experiment
    from vaelab.training.loop import Run

    return fit_experiment(Run(spec, name), data_dir, outputs=Outputs(checkpoint=checkpoint))


def benchmark_module(name: str):
    """A script of benchmarks/ loaded by path: the folder is not part of the package."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        f"benchmarks.{name}", ROOT / "benchmarks" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# How the two xdist workers share the suite (`--dist loadgroup`). A module's tests stay on
# one worker, so its module-scoped fixtures are built once; a module that sets
# `SPREAD_OVER_WORKERS = True` builds its costly fixture once for both workers
# (`built_once`), so its tests go one by one to whichever worker is free. Its first test
# comes first and the other modules follow, so one worker builds that fixture while the
# other runs the unit tests; its long tests then share the two workers at the end.
def pytest_collection_modifyitems(config, items):
    spread, grouped = [], []
    for item in items:
        module = item.module
        if getattr(module, "SPREAD_OVER_WORKERS", False):
            spread.append(item)
            continue
        if not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(module.__name__))
        grouped.append(item)
    items[:] = spread[:1] + grouped + spread[1:]


def built_once(tmp_path_factory, name: str, build):
    """`build(folder) -> dict` run by one xdist worker into a folder every worker sees (the
    session's shared temporary root); the others wait for it and get the same dict. Without
    xdist it simply runs. A failed build leaves no record, so the next asker builds again."""
    import fcntl
    import json

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return build(tmp_path_factory.mktemp(name))
    folder = tmp_path_factory.getbasetemp().parent / name
    folder.mkdir(exist_ok=True)
    record = folder / "built.json"
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not record.exists():
            tree = folder / "tree"
            if tree.exists():
                import shutil

                shutil.rmtree(tree)  # what a failed build left
            tree.mkdir()
            record.write_text(json.dumps(build(tree)))
        return json.loads(record.read_text())
