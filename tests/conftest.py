from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
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


@pytest.fixture(scope="session")
def real_mnist_mirror() -> Path:
    if not (SHARED_DATASETS / "mnist" / "train-images-idx3-ubyte.gz").exists():
        pytest.fail(
            f"real MNIST mirror missing at {SHARED_DATASETS}; it must sit beside the "
            f"repository as ../shared/datasets"
        )
    return SHARED_DATASETS


@pytest.fixture
def no_mirror_env(monkeypatch):
    monkeypatch.delenv("VAELAB_MIRROR", raising=False)


def run_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, CI="true", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


BIN = Path(sys.executable).parent


def project_copy(dest: Path) -> Path:
    """A throwaway git repository holding this checkout's files (tracked and new ones)."""
    import shutil
    import subprocess

    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    for rel in filter(None, listed.decode().split("\0")):
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
    subprocess.run([*git, "commit", "-q", "-m", message], cwd=cwd, check=True)
