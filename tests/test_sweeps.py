"""Sweeps on a real one-node SLURM (Debian's slurmctld and slurmd, started here): points as
array tasks, their experiments meeting on a bare git remote and a local DVC remote."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from conftest import BIN, dvc, git_commit, offline_project
from slurm_cluster import PACKAGES, Cluster, missing_programs

from vaelab.cluster import grid
from vaelab.cluster.record import Slurm
from vaelab.cluster.slurm import array_spec
from vaelab.core.errors import VaelabError

pytestmark = pytest.mark.slow
VAELAB = str(BIN / "vaelab")
IDENTITY = dict(
    GIT_AUTHOR_NAME="vaelab-tests",
    GIT_AUTHOR_EMAIL="tests@vaelab.invalid",
    GIT_COMMITTER_NAME="vaelab-tests",
    GIT_COMMITTER_EMAIL="tests@vaelab.invalid",
)


def git(*args, cwd=None, env=None):
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    missing = missing_programs()
    if missing:
        pytest.fail(
            f"SLURM is not installed ({', '.join(missing)} missing): "
            f"`apt-get install {PACKAGES}`, as .ci/run does"
        )
    running = Cluster(tmp_path_factory.mktemp("slurm")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def team(cluster, tmp_path_factory, real_mnist_mirror):
    """A tiny-profile project on a bare git remote and a local DVC remote, and the
    environment its users (and, through sbatch, the tasks) run with."""
    root = tmp_path_factory.mktemp("team")
    project, env = offline_project(root, real_mnist_mirror)
    env = dict(
        env,
        **IDENTITY,
        SLURM_CONF=cluster.env["SLURM_CONF"],
        UV_OFFLINE="1",
        VAELAB_SWEEPS=str(root / "sweeps"),
        PATH=f"{BIN}:{env['PATH']}",
    )
    dvc(["remote", "modify", "storage", "url", str(root / "storage")], project, env)
    git_commit(project, "the team's DVC remote")
    origin = root / "origin.git"
    git("init", "-q", "--bare", "-b", "main", str(origin))
    git("remote", "add", "origin", str(origin), cwd=project)
    git("push", "-q", "origin", "main", cwd=project)
    return project, origin, env


def vaelab(args, cwd, env, check=True):
    result = subprocess.run([VAELAB, *args], cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(
            f"vaelab {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result


def point_states(name, cwd, env) -> dict[str, str]:
    out = vaelab(["sweep", "status", name], cwd, env).stdout
    return dict(re.findall(rf"^  ({name}-\d+)\s+(\S+(?: started)?)", out, re.M))


def wait_for(name, cwd, env, cluster, timeout=600) -> tuple[dict[str, str], int]:
    """The points' states once none is pending or running, and the most tasks seen
    running at once."""
    deadline, most = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        queued = cluster.command(
            "squeue", "--noheader", "--array", "--format=%T", f"--name=vaelab-{name}"
        ).stdout.split()
        most = max(most, queued.count("RUNNING"))
        if not queued:  # a task's last steps (removing its clone) follow its push
            states = point_states(name, cwd, env)
            if not {"pending", "running", "requeued", "completing"} & set(states.values()):
                return states, most
        time.sleep(1)
    states = point_states(name, cwd, env)
    raise AssertionError(f"sweep {name} still busy after {timeout} s: {states}")


def experiment_refs(origin: Path) -> dict[str, str]:
    out = git("for-each-ref", "--format=%(refname) %(objectname)", "refs/exps", cwd=origin)
    return {ref.rsplit("/", 1)[1]: sha for ref, sha in (line.split() for line in out.splitlines())}


def test_the_grid_is_dvcs_and_the_array_names_its_points():
    assert grid.expand(["experiments.cvae.latent_dim=2,8", "experiments.cvae.lr=0.1,0.2"]) == [
        ["experiments.cvae.latent_dim=2", "experiments.cvae.lr=0.1"],
        ["experiments.cvae.latent_dim=2", "experiments.cvae.lr=0.2"],
        ["experiments.cvae.latent_dim=8", "experiments.cvae.lr=0.1"],
        ["experiments.cvae.latent_dim=8", "experiments.cvae.lr=0.2"],
    ]
    assert array_spec([1, 2, 3, 5, 7, 8], 2) == "1-3,5,7-8%2"
    assert array_spec([4], None) == "4"
    # the task is told to requeue itself before its limit: two minutes, or a tenth of it
    assert Slurm(time="1").sbatch_options() == ["--signal=B:USR1@6", "--time=1"]
    assert Slurm(time="1-2:30").time_limit_s() == ((24 + 2) * 60 + 30) * 60
    assert Slurm(gpus=2).sbatch_options() == ["--signal=B:USR1@120", "--gres=gpu:2"]
    with pytest.raises(VaelabError, match="'2h' is not a SLURM time"):
        Slurm(time="2h").sbatch_options()


def test_submit_refuses_a_dirty_tree_and_an_unpushed_commit(team, tmp_path):
    project, origin, env = team
    work = tmp_path / "work"
    git("clone", "-q", str(origin), str(work))
    (work / "params.yaml").write_text((work / "params.yaml").read_text() + "\n# edited\n")
    dirty = vaelab(
        ["sweep", "submit", "x", "-S", "experiments.cvae.latent_dim=3,4"], work, env, check=False
    )
    assert dirty.returncode == 2 and "uncommitted change" in dirty.stderr, dirty.stderr
    git_commit(work, "not pushed")
    unpushed = vaelab(
        ["sweep", "submit", "x", "-S", "experiments.cvae.latent_dim=3,4"], work, env, check=False
    )
    assert unpushed.returncode == 2, unpushed.stderr
    assert unpushed.stderr.count("\n") == 1 and "is not on the git remote" in unpushed.stderr
    assert not (Path(env["VAELAB_SWEEPS"]) / "x").exists()


def test_a_sweep_runs_as_an_array_resumes_its_failed_point_and_meets_in_a_clone(
    team, cluster, tmp_path
):
    """Three cvae points, two at a time; point 3's clone folder is taken by a file (a
    disk problem), so it fails and shows so; `resume` runs it alone; a second `submit`
    runs nothing; a third clone collects every point's metrics."""
    project, origin, env = team
    name, dims = "lat", (3, 5, 7)
    points = Path(env["VAELAB_SWEEPS"]) / name / "points"
    points.mkdir(parents=True)
    (points / "3").write_text("in the way\n")
    submit = [
        "sweep",
        "submit",
        name,
        "-S",
        f"experiments.cvae.latent_dim={','.join(map(str, dims))}",
        "train@cvae",
        "evaluate@cvae",
        "--max-parallel",
        "2",
    ]
    vaelab(submit, project, env)
    states, most = wait_for(name, project, env, cluster)
    assert states == {"lat-1": "done", "lat-2": "done", "lat-3": "failed"}, states
    assert most == 2, "two points never ran at once"
    shown = vaelab(["sweep", "status", name], project, env).stdout
    assert f"| error: {points / '3'} is in the way" in shown and "resume" in shown, shown
    logs = Path(env["VAELAB_SWEEPS"]) / name / "logs"
    first = {n: (logs / f"lat-{n}.out").read_text() for n in (1, 2)}

    (points / "3").unlink()
    resumed = vaelab(["sweep", "resume", name], project, env).stdout
    assert "point(s) 3 of 3 submitted" in resumed, resumed
    states, _ = wait_for(name, project, env, cluster)
    assert set(states.values()) == {"done"}, states
    assert {n: (logs / f"lat-{n}.out").read_text() for n in (1, 2)} == first
    assert not points.joinpath("3").exists(), "a done point's clone stays behind"
    refs = experiment_refs(origin)

    vaelab(submit, project, env)
    states, _ = wait_for(name, project, env, cluster)
    assert set(states.values()) == {"done"}
    for n in (1, 2, 3):
        log = (logs / f"lat-{n}.out").read_text()
        assert log.rstrip().endswith(f"lat-{n} is already on {origin}: nothing to run"), log
    assert experiment_refs(origin) == refs

    third = tmp_path / "third"
    git("clone", "-q", str(origin), str(third))
    collected = vaelab(["sweep", "collect", name], third, env).stdout
    lines = collected.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Experiment "))
    table = dict(line.split(maxsplit=1) for line in lines[start : start + 2])
    assert table["Experiment"].split() == ["lat-1", "lat-2", "lat-3"], collected
    assert table["experiments.cvae.latent_dim"].split() == ["3", "5", "7"], collected
    shown = json.loads(dvc(["exp", "show", "--json"], third, env).stdout)
    found = {}

    def walk(node):
        if isinstance(node, dict):
            data = node.get("data")
            if (node.get("name") or "").startswith("lat-") and isinstance(data, dict):
                metrics = data["metrics"]["reports/experiments/cvae/metrics.json"]["data"]
                found[node["name"]] = metrics["latent"]["dims"]
            node = list(node.values())
        if isinstance(node, list):
            for child in node:
                walk(child)

    walk(shown)
    assert found == {f"lat-{i}": d for i, d in enumerate(dims, 1)}, found


def test_a_task_killed_mid_training_resumes_from_its_checkpoint(team, cluster):
    project, origin, env = team
    name = "long"
    vaelab(
        ["sweep", "submit", name, "-S", "experiments.cvae.epochs=12", "train@cvae"], project, env
    )
    record = json.loads((Path(env["VAELAB_SWEEPS"]) / name / "sweep.json").read_text())
    assert record["experiments"] == ["long-1"] and record["points"] == [
        ["experiments.cvae.epochs=12"]
    ]
    job = record["jobs"][0]
    log = Path(env["VAELAB_SWEEPS"]) / name / "logs" / f"{name}-1.out"
    deadline = time.monotonic() + 300
    while not (log.exists() and re.search(r"epoch ([2-9]|1[01])/12", log.read_text())):
        assert time.monotonic() < deadline, log.read_text() if log.exists() else "no log"
        time.sleep(0.2)
    cluster.command("scontrol", "requeue", f"{job}_1")  # as SLURM does when a node is lost
    time.sleep(1)
    cluster.command("scontrol", "update", f"jobid={job}_1", "StartTime=now")
    states, _ = wait_for(name, project, env, cluster)
    assert states == {"long-1": "done"}, log.read_text()
    text = log.read_text()
    resumed = re.search(r"resuming from the checkpoint after epoch (\d+)", text)
    assert resumed and int(resumed.group(1)) >= 2, text
    assert "epoch 12/12" in text


def test_a_point_whose_name_another_run_pushed_first_fails(tmp_path, monkeypatch):
    """Two runs of one point (a requeue racing the first attempt, or a name taken): the
    second `dvc exp push` says "diverged" and exits 0; the task must not call that done."""
    from vaelab.cluster.record import Sweep
    from vaelab.cluster.task import push

    for key, value in IDENTITY.items():
        monkeypatch.setenv(key, value)
    origin, work = tmp_path / "origin.git", tmp_path / "work"
    git("init", "-q", "--bare", "-b", "main", str(origin))
    git("init", "-q", "-b", "main", str(work))
    dvc(["init", "-q"], work)
    (work / "dvc.yaml").write_text(
        "stages:\n  s:\n    cmd: echo ${x} > out\n    params: [x]\n    outs: [out]\n"
    )
    (work / "params.yaml").write_text("x: 0\n")
    dvc(["remote", "add", "-d", "storage", str(tmp_path / "storage")], work)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "base", cwd=work)
    git("remote", "add", "origin", str(origin), cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    commit = git("rev-parse", "HEAD", cwd=work).strip()
    sweep = Sweep("p", commit, str(origin), [["x=1"]], [], Slurm(), tmp_path / "sweeps/p")
    first, second = tmp_path / "first", tmp_path / "second"
    for clone, value in ((first, 1), (second, 2)):
        git("clone", "-q", str(origin), str(clone))
        dvc(["exp", "run", "-n", "p-1", "-S", f"x={value}"], clone)
    push(sweep, "p-1", first, BIN)
    with pytest.raises(VaelabError, match="another run of the point pushed first"):
        push(sweep, "p-1", second, BIN)
    assert (
        experiment_refs(origin)["p-1"]
        == git(
            "rev-parse", "refs/exps/" + commit[:2] + "/" + commit[2:] + "/p-1", cwd=first
        ).strip()
    )
