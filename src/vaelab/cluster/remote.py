"""What the git remote holds: the sweep's commit, and the experiments pushed from it.

DVC keeps an experiment as the ref `refs/exps/AB/CDEF.../NAME` (AB/CDEF...: its baseline
commit), so one `git ls-remote` tells which points of a sweep are done.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from vaelab.core.errors import VaelabError


def git(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if check and result.returncode != 0:
        reason = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()[-1]
        raise VaelabError(f"git {args[0]} failed in {cwd or Path.cwd()}: {reason}")
    return result


def remote_url(repo: Path, remote: str) -> str:
    result = git("remote", "get-url", remote, cwd=repo, check=False)
    if result.returncode != 0:
        raise VaelabError(
            f"git remote {remote!r} is not set in {repo}: `git remote add {remote} URL`, or "
            "name another with --git-remote"
        )
    return result.stdout.strip()


def experiment_prefix(commit: str) -> str:
    return f"refs/exps/{commit[:2]}/{commit[2:]}/"


def experiments_on_remote(url: str, commit: str) -> dict[str, str]:
    """Experiment name -> its commit, for every experiment of baseline `commit` at `url`."""
    prefix = experiment_prefix(commit)
    out = git("ls-remote", url, f"{prefix}*").stdout
    found = {}
    for line in out.splitlines():
        sha, _, ref = line.partition("\t")
        if ref.startswith(prefix):
            found[ref[len(prefix) :]] = sha
    return found


def local_experiment(repo: Path, commit: str, name: str) -> str | None:
    result = git(
        "rev-parse", "--verify", "--quiet", experiment_prefix(commit) + name, cwd=repo, check=False
    )
    return result.stdout.strip() or None


def check_clean(repo: Path) -> None:
    changed = git("status", "--porcelain", cwd=repo).stdout.splitlines()
    if changed:
        raise VaelabError(
            f"the work tree has {len(changed)} uncommitted change(s) ({changed[0].strip()}, ...): "
            "a sweep runs a commit, so commit (and push) them first"
        )


def check_on_remote(repo: Path, url: str, commit: str) -> None:
    """Refuse `commit` unless a branch or tag at `url` holds it."""
    heads = git("ls-remote", "--heads", "--tags", url, cwd=repo).stdout.split()[::2]
    for head in heads:
        if head == commit or (
            git("cat-file", "-e", f"{head}^{{commit}}", cwd=repo, check=False).returncode == 0
            and git("merge-base", "--is-ancestor", commit, head, cwd=repo, check=False).returncode
            == 0
        ):
            return
    raise VaelabError(
        f"commit {commit[:10]} is not on the git remote {url}: the tasks clone it from there, "
        "so `git push` it first"
    )
