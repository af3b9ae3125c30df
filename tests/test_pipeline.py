"""The whole pipeline, end to end, on a tiny profile in a throwaway git repository."""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import pandas as pd
import pytest
import yaml
from conftest import ROOT, dvc, git_commit, offline_project, stages_run

pytestmark = pytest.mark.slow

EXPERIMENTS = tuple(yaml.safe_load((ROOT / "params.yaml").read_text())["experiments"])
FOLDER = "reports/experiments"
PER_EXPERIMENT = ("train", "evaluate", "embed", "render", "samples")


@pytest.fixture(scope="module")
def template(tmp_path_factory, real_mnist_mirror):
    """The tiny-profile project after one full `dvc repro`, committed; never changed."""
    project, env = offline_project(tmp_path_factory.mktemp("e2e"), real_mnist_mirror)
    first = dvc(["repro"], project, env)
    git_commit(project, "first run")
    return project, env, first


@pytest.fixture
def pipeline(template, tmp_path):
    """A fresh copy of the template, so that every test starts from a clean project."""
    source, env, first = template
    project = tmp_path / "project"
    shutil.copytree(source, project, symlinks=True)
    return project, env, first


def test_repro_runs_every_stage_and_writes_every_output(template):
    project, _, first = template
    prepared = yaml.safe_load((ROOT / "params.yaml").read_text())["data"]["prepared"]
    assert len(stages_run(first.stdout)) == 2 + 2 * len(prepared) + len(EXPERIMENTS) * 5 + 1
    for name in EXPERIMENTS:
        reports = project / FOLDER / name
        for file in (
            "metrics.json",
            "latents.csv",
            "latent_scatter.png",
            "epochs.gif",
            "manifold_quantiles.png",
            "manifold_linspace.png",
            "reconstructions.png",
            "samples.png",
            "paths/interpolations_linear.png",
            "sample_quality.json",
            "sampler_grids/mixture.png",
            "train/metrics.json",
            "train/plots/images/reconstructions/1.png",
        ):
            assert (reports / file).exists(), file
        latents = pd.read_csv(reports / "latents.csv")
        assert len(latents) == 128 and "label" in latents
        size = 32 if name.endswith("conv") else 28
        assert iio.imread(reports / "manifold_quantiles.png").shape == (4 * size, 4 * size)
        assert iio.imread(reports / "epochs.gif", index=None).shape[0] == 1
    metrics = json.loads((project / FOLDER / "cvae/metrics.json").read_text())
    assert metrics["iwae"]["k"] == 5 and metrics["test_images"] == 128
    quality = json.loads((project / FOLDER / "vae_mlp/sample_quality.json").read_text())
    assert quality["samples"] == 64 and set(quality) >= {"prior", "box", "mixture", "floor"}
    assert "prior" not in json.loads((project / FOLDER / "ae_conv/sample_quality.json").read_text())
    classifier = json.loads((project / "reports/classifiers/mnist_grey/metrics.json").read_text())
    assert 0 <= classifier["test_accuracy"] <= 1 and classifier["test_images"] == 128


def summary_rows(project) -> dict[str, list[str]]:
    """The first table's rows (the bounds), keyed by experiment."""
    lines = (project / "reports/summary.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| "))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        if line.startswith("| "):
            table.append(line)
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    rows = {}
    for line in table[1:]:
        cells = dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True))
        rows[cells["experiment"]] = cells
    return rows


def test_summary_sets_each_experiment_beside_its_reference(template):
    project, _, _ = template
    rows = summary_rows(project)
    assert set(rows) == set(EXPERIMENTS)
    cvae = json.loads((project / FOLDER / "cvae/metrics.json").read_text())
    ours = cvae["elbo"]["mc_1sample_nats"]
    assert rows["cvae"]["ours, as the reference measures it"] == f"{ours:.4g}"
    assert rows["cvae"]["test ELBO, MC (nats)"] == f"{ours:.2f}"
    assert rows["vae_mlp"]["reference's published figure"] == "—"
    summary = (project / "reports/summary.md").read_text()
    assert "FID mixture (H, c)" in summary and "floor: test halves, train vs test" in summary
    for name in EXPERIMENTS:
        assert f"](experiments/{name}/manifold_quantiles.png)" in summary
        assert f"](experiments/{name}/sampler_grids/mixture.png)" in summary
        assert f"](experiments/{name}/paths/interpolations_linear.png)" in summary
        assert (project / "reports" / f"experiments/{name}/manifold_quantiles.png").exists()
    chart = iio.imread(project / "reports/test_elbo_per_epoch.png")
    assert chart.ndim == 3 and chart.shape[0] > 200


def test_metrics_and_plots_show_every_experiment(template):
    project, env, _ = template
    shown = json.loads(dvc(["metrics", "show", "--json"], project, env).stdout)
    files = next(iter(shown.values()))["data"]
    plots = json.dumps(json.loads(dvc(["plots", "show", "--json"], project, env).stdout))
    for name in EXPERIMENTS:
        assert f"{FOLDER}/{name}/metrics.json" in files
        assert f"{FOLDER}/{name}/train/metrics.json" in files
        assert f"{FOLDER}/{name}/train/plots/metrics/train/loss.tsv" in plots
        assert f"{FOLDER}/{name}/train/plots/images/reconstructions/1.png" in plots
    assert "reports/test_elbo_per_epoch.png" in plots


def test_a_new_experiment_is_one_params_entry(pipeline):
    project, env, _ = pipeline
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["experiments"]["cvae_wide"] = {**params["experiments"]["cvae"], "latent_dim": 3}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run = dvc(["repro"], project, env)
    assert stages_run(run.stdout) == {
        "train@cvae_wide",
        "evaluate@cvae_wide",
        "embed@cvae_wide",
        "render@cvae_wide",
        "samples@cvae_wide",
        "report",
    }
    shown = json.loads(dvc(["metrics", "show", "--json"], project, env).stdout)
    metrics = next(iter(shown.values()))["data"][f"{FOLDER}/cvae_wide/metrics.json"]["data"]
    assert metrics["latent"]["dims"] == 3
    plots = json.dumps(json.loads(dvc(["plots", "show", "--json"], project, env).stdout))
    assert f"{FOLDER}/cvae_wide/train/plots/metrics/test/elbo_mc.tsv" in plots
    assert f"{FOLDER}/cvae_wide/latents.csv" in plots
    assert summary_rows(project)["cvae_wide"]["latent"] == "3"
    assert (project / FOLDER / "cvae_wide/paths/traversals.png").exists()
    assert "cvae_wide" not in (project / "dvc.yaml").read_text()


def test_touching_a_module_marks_only_the_stages_that_import_it(pipeline):
    from test_stage_deps import STAGES, loaded_code, script_of

    project, env, _ = pipeline
    assert json.loads(dvc(["status", "--json"], project, env).stdout) == {}
    for module in ("src/vaelab/visual.py", "src/vaelab/evaluation.py", "src/vaelab/grids.py"):
        path = project / module
        original = path.read_text()
        path.write_text(original + "\n# touched\n")
        stale = set(json.loads(dvc(["status", "--json"], project, env).stdout))
        path.write_text(original)
        importers = {name for name in STAGES if module in loaded_code(script_of(name))}
        expected = {
            f"{name}@{key}" if name in PER_EXPERIMENT else name
            for name in importers
            for key in (EXPERIMENTS if name in PER_EXPERIMENT else [""])
        }
        assert importers and stale == {e.removesuffix("@") for e in expected}, module


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
        "samples@cvae",
        "report",
    }
    cvae = f"{FOLDER}/cvae/metrics.json"
    diff = dvc(["metrics", "diff", "HEAD", "--md"], project, env).stdout
    assert cvae in diff and "latent.dims" in diff
    assert "elbo.mc_1sample_nats" in diff
    assert f"{FOLDER}/vae_mlp" not in diff
    changed = json.loads(dvc(["metrics", "diff", "HEAD", "--json"], project, env).stdout)
    assert changed[cvae]["latent.dims"] == {"old": 2, "new": 3, "diff": 1}
    assert set(changed) <= {
        cvae,
        f"{FOLDER}/cvae/train/metrics.json",
        f"{FOLDER}/cvae/sample_quality.json",
    }


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
        metrics = data["metrics"][f"{FOLDER}/cvae/metrics.json"]["data"]
        assert metrics["latent"]["dims"] == latent_dim
        cvae_params = data["params"]["params.yaml"]["data"]["experiments"]["cvae"]
        assert cvae_params["latent_dim"] == latent_dim
        elbos[latent_dim] = metrics["elbo"]["mc_1sample_nats"]
    assert elbos[5] != elbos[6]


def test_pr_report_script_compares_base_and_head(pipeline):
    """What the pull-request workflow runs: the profile on base and head, then a comment."""
    project, env, _ = pipeline
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
    assert f"| {FOLDER}/vae_mlp/metrics.json " in comment and "latent.dims" in comment, comment
    assert f"| {FOLDER}/cvae/metrics.json " not in comment, comment
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
