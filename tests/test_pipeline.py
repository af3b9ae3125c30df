"""The whole pipeline, end to end, on a tiny profile in a throwaway git repository."""

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import pandas as pd
import pytest
import yaml
from conftest import (
    BIN,
    ROOT,
    built_once,
    dvc,
    edit_params,
    git_commit,
    offline_project,
    stages_run,
)

pytestmark = pytest.mark.slow
# the template below is built once for both workers; its tests then run wherever one is free
SPREAD_OVER_WORKERS = True

PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
EXPERIMENTS = tuple(PARAMS["experiments"])
PREPARED = tuple(PARAMS["data"]["prepared"])
FOLDER = "reports/experiments"


def build_template(folder: Path, mirror: Path) -> dict:
    project, env = offline_project(folder, mirror)
    first = dvc(["repro"], project, env)
    git_commit(project, "first run")
    return {"project": str(project), "env": env, "stdout": first.stdout, "stderr": first.stderr}


@pytest.fixture(scope="module")
def template(tmp_path_factory, real_mnist_mirror, real_fashion_mirror):
    """The tiny-profile project after one full `dvc repro`, committed; never changed. Each
    worker gets its own copy of the one build, as dvc writes into a project it reads."""
    built = built_once(
        tmp_path_factory,
        "pipeline-template",
        lambda folder: build_template(folder, real_mnist_mirror),
    )
    project = tmp_path_factory.mktemp("e2e") / "project"
    shutil.copytree(built["project"], project, symlinks=True)
    first = subprocess.CompletedProcess(["dvc", "repro"], 0, built["stdout"], built["stderr"])
    return project, built["env"], first


@pytest.fixture
def pipeline(template, tmp_path):
    """A fresh copy of the template, so that every test starts from a clean project."""
    source, env, first = template
    project = tmp_path / "project"
    shutil.copytree(source, project, symlinks=True)
    return project, env, first


# the stages that run once per experiment: dvc.yaml's foreach over `experiments`
PER_EXPERIMENT = tuple(
    name
    for name, stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items()
    if stage.get("foreach") == "${experiments}"
)


def experiment_stages(name: str) -> set[str]:
    """What a change to experiment `name` alone must rerun: its own stages, and the report."""
    return {f"{stage}@{name}" for stage in PER_EXPERIMENT} | {"report"}


def test_repro_runs_every_stage_and_writes_every_output(template):
    project, _, first = template
    # download and report once, prepare and classifier per prepared set, the rest per experiment
    expected = 2 + 2 * len(PREPARED) + len(EXPERIMENTS) * len(PER_EXPERIMENT) + 1
    run = stages_run(first.stdout)
    assert len(run) == expected
    # the literature track's own sets are neither prepared nor classified by the default run
    assert PARAMS["literature"]["prepared"]
    assert not [stage for stage in run if stage.split("@")[-1] in PARAMS["literature"]["prepared"]]
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
            "sampler_grids/box.png",  # every model has it
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
        assert f"](experiments/{name}/sampler_grids/box.png)" in summary  # every model has it
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


def test_touching_a_module_marks_only_the_stages_that_import_it(pipeline):
    from test_stage_deps import STAGES, loaded_code, script_of

    project, env, _ = pipeline
    references = ["status", "--json", "dvc.yaml"]  # the literature track has not run here
    assert json.loads(dvc(references, project, env).stdout) == {}
    modules = (
        "src/vaelab/pictures/plots.py",
        "src/vaelab/evaluation/estimators.py",
        "src/vaelab/pictures/grids.py",
    )
    for module in modules:
        path = project / module
        original = path.read_text()
        path.write_text(original + "\n# touched\n")
        stale = set(json.loads(dvc(references, project, env).stdout))
        path.write_text(original)
        # a stage that loads a whole package names its folder
        importers = {
            name
            for name in STAGES
            if any(module == d or module.startswith(f"{d}/") for d in loaded_code(script_of(name)))
        }
        expected = {
            f"{name}@{key}" for name in importers & set(PER_EXPERIMENT) for key in EXPERIMENTS
        } | (importers - set(PER_EXPERIMENT))
        assert importers and stale == expected, module


def test_a_new_entry_and_a_changed_one_rerun_only_their_own_stages(pipeline):
    """A new experiment is one params entry, and changing one experiment reruns its stages
    alone: both edits in one `dvc repro`, which must run exactly their two sets."""
    project, env, _ = pipeline

    def change(p):
        p["experiments"]["cvae"].update(latent_dim=3)
        p["experiments"]["vae_mlp_wide"] = {**p["experiments"]["vae_mlp"], "latent_dim": 3}

    edit_params(project, change)
    second = dvc(["repro"], project, env)
    assert stages_run(second.stdout) == experiment_stages("cvae") | experiment_stages(
        "vae_mlp_wide"
    )
    assert "vae_mlp_wide" not in (project / "dvc.yaml").read_text()

    # the changed one: its metrics moved, and no other experiment's did
    cvae = f"{FOLDER}/cvae/metrics.json"
    diff = dvc(["metrics", "diff", "HEAD", "--md"], project, env).stdout
    assert cvae in diff and "latent.dims" in diff
    assert "elbo.mc_1sample_nats" in diff
    assert f"{FOLDER}/vae_mlp/" not in diff
    changed = json.loads(dvc(["metrics", "diff", "HEAD", "--json"], project, env).stdout)
    assert changed[cvae]["latent.dims"] == {"old": 2, "new": 3, "diff": 1}
    changed_elsewhere = {path for path in changed if not path.startswith(f"{FOLDER}/vae_mlp_wide/")}
    assert changed_elsewhere <= {
        cvae,
        f"{FOLDER}/cvae/train/metrics.json",
        f"{FOLDER}/cvae/sample_quality.json",
    }

    # the new one: in the metrics, the plots, the summary and its pictures
    shown = json.loads(dvc(["metrics", "show", "--json"], project, env).stdout)
    metrics = next(iter(shown.values()))["data"][f"{FOLDER}/vae_mlp_wide/metrics.json"]["data"]
    assert metrics["latent"]["dims"] == 3
    plots = json.dumps(json.loads(dvc(["plots", "show", "--json"], project, env).stdout))
    assert f"{FOLDER}/vae_mlp_wide/train/plots/metrics/test/elbo_mc.tsv" in plots
    assert f"{FOLDER}/vae_mlp_wide/latents.csv" in plots
    assert summary_rows(project)["vae_mlp_wide"]["latent"] == "3"
    assert (project / FOLDER / "vae_mlp_wide/paths/traversals.png").exists()


def git(*args, cwd=None, env=None):
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


@pytest.fixture(scope="module")
def shared(template, tmp_path_factory):
    """The template's run shared as a team would: its commit in a bare git remote `origin`,
    its data and models pushed to the default DVC remote. That remote's URL in .dvc/config
    is `~/vaelab-storage`, so the commands here run with a home folder of their own."""
    source, env, _ = template
    root = tmp_path_factory.mktemp("shared")
    home = root / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(
        "[user]\n\tname = vaelab-tests\n\temail = tests@vaelab.invalid\n"
    )
    env = dict(env, HOME=str(home))
    origin = root / "origin.git"
    git("init", "-q", "--bare", "-b", "main", str(origin), env=env)
    project = root / "project"
    shutil.copytree(source, project, symlinks=True)
    git("remote", "add", "origin", str(origin), cwd=project, env=env)
    dvc(["push"], project, env)
    git("push", "-q", "origin", "main", cwd=project, env=env)
    return origin, env, home / "vaelab-storage"


def clone(origin: Path, dest: Path, env: dict, pull: bool = True) -> Path:
    """A new machine: `git clone`, then `dvc pull` from the default remote."""
    git("clone", "-q", str(origin), str(dest), env=env)
    if pull:
        # the references' pipeline: the literature track's outputs were never pushed here
        dvc(["pull", "dvc.yaml"], dest, env)
    return dest


@pytest.mark.xdist_group("shared-remote")  # one build of `shared`
def test_a_fresh_clone_pulls_the_run_and_is_up_to_date(shared, tmp_path):
    from vaelab.models.saved import load_model

    origin, env, storage = shared
    assert (storage / "files/md5").is_dir()
    project = clone(origin, tmp_path / "clone", env)
    # up to date: `dvc repro` would run nothing, and nothing retrains
    assert json.loads(dvc(["status", "--json", "dvc.yaml"], project, env).stdout) == {}
    for name in EXPERIMENTS:
        assert load_model(project / "models" / name / "model.pt").experiment["name"] == name
    assert (project / "reports/experiments/cvae/samples.png").stat().st_size > 0


@pytest.mark.xdist_group("shared-remote")  # one build of `shared`
def test_a_registered_model_artifact_is_fetched_and_loaded(shared, tmp_path):
    """`gto register` versions it; `dvc artifacts get` fetches it by name from git and the
    DVC remote; `load_model` rebuilds it from its own config."""
    from vaelab.models.saved import load_model

    origin, env, _ = shared
    project = clone(origin, tmp_path / "clone", env, pull=False)
    registered = subprocess.run(
        [str(Path(sys.executable).parent / "gto"), "register", "models:cvae", "--push"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    assert registered.returncode == 0, registered.stdout + registered.stderr
    dvc(["artifacts", "get", str(origin), "models:cvae", "-o", "cvae.pt"], tmp_path, env)
    saved = load_model(tmp_path / "cvae.pt")
    assert saved.experiment["name"] == "cvae" and saved.model.config.latent_dim == 2


def experiments_shown(project, env) -> dict[str, dict]:
    """Every named experiment in `dvc exp show --json` that has run (has metrics),
    name -> its `data`."""
    found = {}

    def walk(node):
        if isinstance(node, dict):
            data = node.get("data")
            if node.get("name") and isinstance(data, dict) and data.get("metrics"):
                found[node["name"]] = data
            node = list(node.values())
        if isinstance(node, list):
            for child in node:
                walk(child)

    walk(json.loads(dvc(["exp", "show", "--json"], project, env).stdout))
    return found


def assert_latent_sweep(shown: dict[str, dict], latent_dims) -> None:
    """Each point `latent-D` of a cvae latent-size sweep shows its own size in its params
    and its metrics, and no two points reached the same ELBO."""
    elbos = {}
    for latent_dim in latent_dims:
        data = shown.get(f"latent-{latent_dim}")
        assert data is not None, f"latent-{latent_dim} missing from dvc exp show"
        metrics = data["metrics"][f"{FOLDER}/cvae/metrics.json"]["data"]
        assert metrics["latent"]["dims"] == latent_dim
        cvae_params = data["params"]["params.yaml"]["data"]["experiments"]["cvae"]
        assert cvae_params["latent_dim"] == latent_dim
        elbos[latent_dim] = metrics["elbo"]["mc_1sample_nats"]
    assert len(set(elbos.values())) == len(elbos), elbos


def wait_for_queue(project, env, timeout=900):
    """The queue's final status, and the most experiments seen running at once."""
    deadline = time.monotonic() + timeout
    most = 0
    while time.monotonic() < deadline:
        status = dvc(["queue", "status"], project, env).stdout
        running = sum("Running" in line.split() for line in status.splitlines())
        most = max(most, running)
        if "Queued" not in status and "Running" not in status:
            return status, most
        time.sleep(2)  # each look is a dvc process that takes a core from the workers
    raise AssertionError(f"queue still busy after {timeout} s:\n{status}")


@pytest.mark.xdist_group("shared-remote")  # one build of `shared`
def test_a_sweep_split_over_two_machines_meets_in_a_third_clone(shared, tmp_path):
    """Two machines each queue and run their share of a latent-size sweep at the same time
    and `dvc exp push`; a third clone `dvc exp pull`s them all, sees their metrics in
    `dvc exp show`, applies one and `dvc pull`s its model and pictures. The first machine
    runs its two points with `dvc queue start -j 2`, two workers at once, as on a machine
    without GPUs (on one with GPUs each worker's stages would claim their own); they train
    and evaluate only, the stages a sweep over a training knob is read by."""
    from vaelab.models.saved import load_model

    origin, env, _ = shared
    first, second = clone(origin, tmp_path / "m1", env), clone(origin, tmp_path / "m2", env)
    shares = {5: first, 7: first, 6: second}
    for latent_dim, machine in shares.items():
        targets = ["train@cvae", "evaluate@cvae"] if machine is first else []
        queue = ["exp", "run", "--queue", "-n", f"latent-{latent_dim}"]
        dvc([*queue, "-S", f"experiments.cvae.latent_dim={latent_dim}", *targets], machine, env)
    for machine, jobs in ((first, "2"), (second, "1")):
        # not through dvc(): the workers it starts inherit its output pipes, so a captured
        # run would return only once the whole queue is done, and the polling saw nothing
        subprocess.run(
            [str(BIN / "dvc"), "queue", "start", "-j", jobs],
            cwd=machine,
            env=dict(env, PATH=f"{BIN}:{env['PATH']}"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
    status, most = wait_for_queue(first, env)
    assert status.count("Success") == 2, status
    assert most == 2, "the first machine's two experiments never ran at the same time"
    status, _ = wait_for_queue(second, env)
    assert status.count("Success") == 1, status
    for machine in (first, second):
        dvc(["exp", "push", "origin"], machine, env)

    third = clone(origin, tmp_path / "m3", env, pull=False)
    dvc(["exp", "pull", "origin"], third, env)
    assert_latent_sweep(experiments_shown(third, env), shares)

    # the README's one-line grid queues one experiment per value
    dvc(["exp", "run", "--queue", "-S", "experiments.cvae.latent_dim=7,8"], third, env)
    assert dvc(["queue", "status"], third, env).stdout.count("Queued") == 2
    dvc(["queue", "remove", "--queued"], third, env)

    applied = dvc(["exp", "apply", "latent-6"], third, env, check=False)
    # the literature track never ran on these machines: its outputs, and only they, have
    # nothing to check out
    unrestored = [
        line for line in applied.stderr.splitlines() if line.startswith(("models/", "reports/"))
    ]
    assert all("literature" in line for line in unrestored), applied.stdout + applied.stderr
    dvc(["pull", "dvc.yaml"], third, env)
    assert json.loads(dvc(["status", "--json", "dvc.yaml"], third, env).stdout) == {}
    assert load_model(third / "models/cvae/model.pt").model.config.latent_dim == 6
    assert (third / f"{FOLDER}/cvae/manifold_quantiles.png").stat().st_size > 0


def tree_digest(*folders: Path) -> dict[str, str]:
    import hashlib

    return {
        str(path): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in folders
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.mark.xdist_group("shared-remote")  # one build of `shared`
def test_a_push_to_an_unreachable_remote_is_one_line_and_changes_nothing(shared, tmp_path):
    origin, env, _ = shared
    project = clone(origin, tmp_path / "clone", env)
    # a path under a plain file: a network share that is not mounted, say
    (tmp_path / "not-mounted").write_text("")
    gone = tmp_path / "not-mounted/vaelab-storage"
    dvc(["remote", "modify", "--local", "storage", "url", str(gone)], project, env)
    folders = [project / "data", project / "models", project / "reports", project / ".dvc/cache"]
    before = tree_digest(*folders)
    push = dvc(["push", "dvc.yaml"], project, env, check=False)
    assert push.returncode != 0
    errors = [line for line in (push.stdout + push.stderr).splitlines() if "ERROR" in line]
    assert len(errors) == 1 and str(tmp_path / "not-mounted") in errors[0], errors
    assert tree_digest(*folders) == before
    assert json.loads(dvc(["status", "--json", "dvc.yaml"], project, env).stdout) == {}


def test_pr_report_script_compares_base_and_head(pipeline):
    """What the pull-request workflow runs: the profile on base and head, then a comment."""
    project, env, _ = pipeline
    edit_params(project, lambda p: p["experiments"]["vae_mlp"].update(latent_dim=3))
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


def screenshot(page: Path, png: Path) -> None:
    """The page as headless Chromium draws it (Debian's `chromium` package)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "headless Chromium is needed to look at the review: apt-get install chromium"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,2400",
            f"--screenshot={png}",
            page.as_uri(),
        ],
        capture_output=True,
        check=True,
        timeout=120,
    )


def test_the_review_of_a_latent_change_shows_it_and_nothing_else(pipeline):
    """What a reviewer reads of branch `try` against main: from the committed results."""
    from vaelab.report.review import HEAD_COLOUR, write_review

    project, env, _ = pipeline
    git("checkout", "-q", "-b", "try", cwd=project)
    run = ["exp", "run", "-S", "experiments.cvae.latent_dim=3"]
    dvc([*run, "train@cvae", "evaluate@cvae", "render@cvae"], project, env)
    git_commit(project, "cvae latent 3")
    out = project / "review"
    review = write_review("main", "HEAD", out, root=project, artifact_url="https://ci.invalid/run")
    page = (out / "review.md").read_text()

    assert review.params.to_dict("records") == [
        {"file": "params.yaml", "param": "experiments.cvae.latent_dim", "main": "2", "HEAD": "3"}
    ]
    cvae = f"{FOLDER}/cvae"
    assert set(review.metrics["metrics file"]) == {
        f"{cvae}/metrics.json",
        f"{cvae}/train/metrics.json",
    }
    before = json.loads(git("show", f"main:{cvae}/metrics.json", cwd=project).stdout)
    after = json.loads((project / cvae / "metrics.json").read_text())
    moved = after["elbo"]["mc_1sample_nats"] - before["elbo"]["mc_1sample_nats"]
    row = review.metrics.set_index("metric").loc["elbo.mc_1sample_nats"]
    assert row["change"][0] == ("+" if moved > 0 else "-")
    assert float(row["change"]) == pytest.approx(moved, rel=1e-3)
    assert "-156.50" in row["published"]  # the tutorial's figure beside our measure of it
    assert review.metrics.set_index("metric").loc["latent.dims", "change"] == "+1"
    assert list(review.series) == [f"{cvae}/train"]
    assert f"{cvae}/train/plots/metrics/test/elbo_mc.tsv" in review.series[f"{cvae}/train"]
    assert review.pictures and all(p.startswith(f"{cvae}/") for p in review.pictures)
    assert f"{cvae}/manifold_quantiles.png" in review.pictures and not review.missing
    for other in set(EXPERIMENTS) - {"cvae"}:
        assert f"/{other}/" not in page, other

    linked = re.findall(r"\]\(([^)]+\.png)\)", page)
    assert len(linked) == 1 + 2 * len(review.pictures)
    for name in linked:
        assert iio.imread(out / name).ndim >= 2
    comment = (out / "comment.md").read_text()
    assert "![" not in comment and comment.count("](https://ci.invalid/run)") == len(linked)

    # the self-contained page as a browser shows it: the head's curves in their own blue
    screenshot(out / "review.html", project / "shot.png")
    pixels = iio.imread(project / "shot.png")[..., :3].astype(int)
    colour = tuple(int(HEAD_COLOUR[i : i + 2], 16) for i in (1, 3, 5))
    blue = (abs(pixels - colour).sum(axis=-1) < 40).sum()
    assert blue > 100, blue  # none without the charts

    # a base picture that neither the cache nor a remote holds is named, not fatal
    md5 = next(
        out["md5"]
        for stage in yaml.safe_load(git("show", "main:dvc.lock", cwd=project).stdout)[
            "stages"
        ].values()
        for out in stage.get("outs", [])
        if out["path"] == f"{cvae}/samples.png"
    )
    (project / ".dvc/cache/files/md5" / md5[:2] / md5[2:]).unlink()
    again = write_review("main", "HEAD", out, root=project)
    assert [m.split(" at ")[0] for m in again.missing] == [f"{cvae}/samples.png"]
    assert f"not shown: {cvae}/samples.png at main" in (out / "review.md").read_text()

    bad = subprocess.run(
        [str(BIN / "vaelab"), "review", "no-such-branch"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
    assert "'no-such-branch' names no commit" in bad.stderr
