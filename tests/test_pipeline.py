"""The whole pipeline, end to end, on a tiny profile in a throwaway git repository."""

import json
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import pandas as pd
import pytest
import yaml
from conftest import dvc, git_commit, offline_project, stages_run

pytestmark = pytest.mark.slow

EXPERIMENTS = ("cvae", "vae_mlp", "vae_mlp_seed002", "ae_conv", "vae_conv")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, real_mnist_mirror):
    project, env = offline_project(tmp_path_factory.mktemp("e2e"), real_mnist_mirror)
    first = dvc(["repro"], project, env)
    git_commit(project, "first run")
    return project, env, first


def test_repro_runs_every_stage_and_writes_every_output(pipeline):
    project, _, first = pipeline
    assert len(stages_run(first.stdout)) == 2 + 3 + len(EXPERIMENTS) * 4 + 1
    for name in EXPERIMENTS:
        reports = project / "reports" / name
        for file in (
            "metrics.json",
            "latents.csv",
            "latent_scatter.png",
            "epochs.gif",
            "manifold_quantiles.png",
            "manifold_linspace.png",
            "reconstructions.png",
            "samples.png",
            "train/metrics.json",
        ):
            assert (reports / file).exists(), file
        latents = pd.read_csv(reports / "latents.csv")
        assert len(latents) == 128 and "label" in latents
        size = 32 if name.endswith("conv") else 28
        assert iio.imread(reports / "manifold_quantiles.png").shape == (4 * size, 4 * size)
        assert iio.imread(reports / "epochs.gif", index=None).shape[0] == 1
    metrics = json.loads((project / "reports/cvae/metrics.json").read_text())
    assert metrics["iwae"]["k"] == 5 and metrics["test_images"] == 128


def test_summary_has_one_row_per_experiment(pipeline):
    project, _, _ = pipeline
    summary = (project / "reports/summary.md").read_text()
    rows = [line for line in summary.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(EXPERIMENTS)
    for name in EXPERIMENTS:
        assert f"| {name} " in summary
        assert f"]({name}/manifold_quantiles.png)" in summary
    assert "-156.50" in summary


def test_metrics_show_lists_every_experiment(pipeline):
    project, env, _ = pipeline
    shown = json.loads(dvc(["metrics", "show", "--json"], project, env).stdout)
    files = next(iter(shown.values()))["data"]
    for name in EXPERIMENTS:
        assert f"reports/{name}/metrics.json" in files
        assert f"reports/{name}/train/metrics.json" in files


def test_changing_one_experiment_reruns_only_its_stages(pipeline):
    project, env, _ = pipeline
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["experiments"]["cvae"]["latent_dim"] = 3
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    second = dvc(["repro"], project, env)
    assert stages_run(second.stdout) == {
        "train@cvae",
        "evaluate@cvae",
        "embed@cvae",
        "render@cvae",
        "report",
    }
    diff = dvc(["metrics", "diff", "HEAD", "--md"], project, env).stdout
    assert "reports/cvae/metrics.json" in diff and "latent.dims" in diff
    assert "elbo.mc_1sample_nats" in diff
    assert "reports/vae_mlp" not in diff
    changed = json.loads(dvc(["metrics", "diff", "HEAD", "--json"], project, env).stdout)
    assert changed["reports/cvae/metrics.json"]["latent.dims"] == {"old": 2, "new": 3, "diff": 1}
    assert set(changed) <= {"reports/cvae/metrics.json", "reports/cvae/train/metrics.json"}


def find_experiment(node, name):
    """The `data` of experiment `name` anywhere in `dvc exp show --json` output."""
    if isinstance(node, dict):
        if (
            node.get("name") == name
            and isinstance(node.get("data"), dict)
            and node["data"].get("metrics")
        ):
            return node["data"]
        node = list(node.values())
    if isinstance(node, list):
        for child in node:
            found = find_experiment(child, name)
            if found is not None:
                return found
    return None


def wait_for_queue(project, env, timeout=900):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = dvc(["queue", "status"], project, env).stdout
        if "Queued" not in status and "Running" not in status:
            return status
        time.sleep(3)
    raise AssertionError(f"queue still busy after {timeout} s:\n{status}")


def test_queued_sweep_shows_each_experiment(pipeline):
    """`dvc exp run --queue` twice, `dvc queue start`, then both in `dvc exp show`."""
    project, env, _ = pipeline
    git_commit(project, "cvae latent 3")
    for latent_dim in (5, 6):
        dvc(
            [
                "exp",
                "run",
                "--queue",
                "-S",
                f"experiments.cvae.latent_dim={latent_dim}",
                "-n",
                f"latent-{latent_dim}",
            ],
            project,
            env,
        )
    dvc(["queue", "start"], project, env)
    status = wait_for_queue(project, env)
    assert status.count("Success") == 2, status

    shown = json.loads(dvc(["exp", "show", "--json"], project, env).stdout)
    elbos = {}
    for latent_dim in (5, 6):
        data = find_experiment(shown, f"latent-{latent_dim}")
        assert data is not None, f"latent-{latent_dim} missing from dvc exp show"
        metrics = data["metrics"]["reports/cvae/metrics.json"]["data"]
        assert metrics["latent"]["dims"] == latent_dim
        cvae_params = data["params"]["params.yaml"]["data"]["experiments"]["cvae"]
        assert cvae_params["latent_dim"] == latent_dim
        elbos[latent_dim] = metrics["elbo"]["mc_1sample_nats"]
    assert elbos[5] != elbos[6]


def test_pr_report_script_compares_base_and_head(pipeline):
    """What the pull-request workflow runs: the profile on base and head, then a comment."""
    project, env, _ = pipeline
    git_commit(project, "before the pull request")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["experiments"]["vae_mlp"]["latent_dim"] = 3
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git_commit(project, "vae_mlp latent 3")
    env = dict(env, VAELAB_PROFILE="tiny", PATH=f"{Path(sys.executable).parent}:{env['PATH']}")
    result = subprocess.run(
        ["bash", ".github/pr-report.sh", "HEAD~1", "comment.md"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    comment = (project / "comment.md").read_text()
    assert "| experiments.vae_mlp.latent_dim " in comment, comment
    assert "| reports/vae_mlp/metrics.json " in comment and "latent.dims" in comment, comment
    assert "| reports/cvae/metrics.json " not in comment, comment
    summary_rows = [
        line
        for line in comment.splitlines()
        if line.startswith("| ") and "latent_dim" not in line and "metrics.json" not in line
    ]
    assert any(line.startswith("| vae_mlp ") for line in summary_rows), comment
    clean = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=project,
        capture_output=True,
        text=True,
    ).stdout
    assert clean == "", clean
