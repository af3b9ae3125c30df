"""A sweep's record: its commit, its points and their experiment names, and its SLURM jobs,
in `ROOT/NAME/sweep.json`, on a disk every node and every teammate sees.

    ROOT/NAME/sweep.json        this record
    ROOT/NAME/task.sh           the batch script of every array task
    ROOT/NAME/logs/NAME-I.out   point I's log, every attempt appended
    ROOT/NAME/points/I/         point I's clone (unless --clones puts it elsewhere)
    ROOT/envs/COMMIT/           the commit's checkout and its locked environment
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vaelab.core.errors import VaelabError
from vaelab.core.files import write_text

ROOT_ENV = "VAELAB_SWEEPS"
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")  # a git ref's part, and a DVC experiment name


def sweeps_root(root: Path | None = None) -> Path:
    """`root`, else $VAELAB_SWEEPS, else ~/vaelab-sweeps."""
    if root is not None:
        return root.expanduser().absolute()
    return Path(os.environ.get(ROOT_ENV) or "~/vaelab-sweeps").expanduser().absolute()


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise VaelabError(
            f"sweep name {name!r} is invalid: letters, digits, '_', '.' and '-', starting with a "
            "letter (its points are NAME-1, NAME-2, ...)"
        )
    return name


@dataclass
class Slurm:
    """What sbatch is asked for, per array task."""

    max_parallel: int | None = None
    gpus: int = 0
    partition: str | None = None
    time: str | None = None

    def time_limit_s(self) -> int | None:
        """`time` in seconds, read as sbatch reads it: MINUTES, MINUTES:SECONDS,
        HOURS:MINUTES:SECONDS, DAYS-HOURS, DAYS-HOURS:MINUTES or DAYS-HOURS:MINUTES:SECONDS."""
        if self.time is None:
            return None
        days, _, clock = self.time.rpartition("-")
        parts = clock.split(":")
        if not (
            (days == "" or days.isdigit())
            and 1 <= len(parts) <= 3
            and all(p.isdigit() for p in parts)
        ):
            raise VaelabError(
                f"--time {self.time!r} is not a SLURM time: MINUTES, HH:MM:SS or DAYS-HH:MM"
            )
        n = [int(p) for p in parts]
        if days:  # DAYS-HOURS[:MINUTES[:SECONDS]]
            hours, minutes, seconds = (n + [0, 0])[:3]
        else:  # MINUTES, MINUTES:SECONDS or HOURS:MINUTES:SECONDS
            hours, minutes, seconds = {1: (0, n[0], 0), 2: (0, *n), 3: tuple(n)}[len(n)]
        return ((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + seconds

    def requeue_notice_s(self) -> int:
        """How long before its time limit a task is told to requeue itself: two minutes,
        or a tenth of a short limit."""
        limit = self.time_limit_s()
        return 120 if limit is None else max(5, min(120, limit // 10))

    def sbatch_options(self) -> list[str]:
        # the batch script requeues itself on USR1, before the time limit ends the task
        options = [f"--signal=B:USR1@{self.requeue_notice_s()}"]
        if self.gpus:
            options.append(f"--gres=gpu:{self.gpus}")
        if self.partition:
            options.append(f"--partition={self.partition}")
        if self.time:
            options.append(f"--time={self.time}")
        return options


@dataclass
class Sweep:
    name: str
    commit: str
    git_remote: str  # the URL every task clones from and pushes to
    points: list[list[str]]  # point I (from 1) is points[I - 1]: its `-S` arguments
    stages: list[str]
    slurm: Slurm
    folder: Path  # ROOT/NAME, where this record lies
    clones: Path | None = None  # where the points' clones go; None: folder/points
    jobs: list[str] = field(default_factory=list)  # SLURM job ids, oldest first

    @property
    def root(self) -> Path:
        return self.folder.parent

    @property
    def numbers(self) -> list[int]:
        return list(range(1, len(self.points) + 1))

    def experiment(self, number: int) -> str:
        """Point `number`'s experiment: DVC's own naming of a queued grid (`-n NAME`)."""
        return f"{self.name}-{number}"

    def log(self, number: int) -> Path:
        return self.folder / "logs" / f"{self.experiment(number)}.out"

    def clone(self, number: int) -> Path:
        return (self.clones or self.folder / "points") / str(number)

    @property
    def environment(self) -> Path:
        """The commit's checkout, whose .venv every task of the commit runs in."""
        return self.root / "envs" / self.commit

    @property
    def script(self) -> Path:
        return self.folder / "task.sh"

    def same_sweep(self, other: Sweep) -> bool:
        return (self.commit, self.points, self.stages) == (other.commit, other.points, other.stages)

    def save(self) -> None:
        data = asdict(self)
        data["folder"] = str(self.folder)
        data["clones"] = str(self.clones) if self.clones else None
        data["experiments"] = [self.experiment(n) for n in self.numbers]  # for people
        write_text(self.folder / "sweep.json", json.dumps(data, indent=2) + "\n")


def record_path(root: Path, name: str) -> Path:
    return root / check_name(name) / "sweep.json"


def load(root: Path, name: str) -> Sweep:
    path = record_path(root, name)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise VaelabError(
            f"no sweep {name!r} in {root}: submit it first (`vaelab sweep submit {name} ...`), "
            f"or name its folder with --root or ${ROOT_ENV}"
        ) from None
    except (OSError, ValueError) as exc:
        raise VaelabError(f"cannot read the sweep record {path}: {exc}") from None
    data.pop("experiments", None)
    data["slurm"] = Slurm(**data["slurm"])
    data["folder"] = path.parent
    data["clones"] = Path(data["clones"]) if data.get("clones") else None
    return Sweep(**data)
