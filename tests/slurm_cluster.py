"""A one-node SLURM cluster for the tests: Debian's slurmctld and slurmd on loopback, on
free ports, with their config and state in a folder of their own, as children of the test
session, stopped (their jobs first) at the end.

Clients find it through SLURM_CONF, which `env` carries to them and sbatch to the tasks.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMON_DIRS = ("/usr/sbin", "/usr/local/sbin")
PACKAGES = "slurmctld slurmd slurm-client"


def find(program: str) -> str | None:
    path = os.pathsep.join([os.environ.get("PATH", ""), *DAEMON_DIRS])
    return shutil.which(program, path=path)


def missing_programs() -> list[str]:
    return [p for p in ("slurmctld", "slurmd", "sbatch", "squeue", "scontrol") if not find(p)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(folder: Path, cpus: int) -> str:
    user = getpass.getuser()
    return "\n".join(
        [
            "ClusterName=vaelabtest",
            "SlurmctldHost=localhost",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            f"SlurmUser={user}",
            f"SlurmdUser={user}",
            # loopback only, one machine: no munge daemon to run
            "AuthType=auth/none",
            "CredType=cred/none",
            f"StateSaveLocation={folder}/state",
            f"SlurmdSpoolDir={folder}/spool",
            f"SlurmctldPidFile={folder}/slurmctld.pid",
            f"SlurmdPidFile={folder}/slurmd.pid",
            f"SlurmctldLogFile={folder}/slurmctld.log",
            f"SlurmdLogFile={folder}/slurmd.log",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "MpiDefault=none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "SwitchType=switch/none",
            "ReturnToService=2",
            "MinJobAge=600",  # finished tasks stay in squeue for the test's length
            "KillWait=5",
            "SlurmdTimeout=30",
            "MailProg=/bin/true",
            f"NodeName=node1 NodeHostname=localhost NodeAddr=127.0.0.1 CPUs={cpus} "
            "RealMemory=1000 State=UNKNOWN",
            "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


class Cluster:
    def __init__(self, folder: Path, cpus: int = 2):
        self.folder = folder
        for sub in ("state", "spool"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        self.conf = folder / "slurm.conf"
        self.conf.write_text(_config(folder, cpus))
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        self.daemons: list[subprocess.Popen] = []

    def command(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [find(args[0]), *args[1:]], env=self.env, capture_output=True, text=True
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)}: {result.stdout}{result.stderr}")
        return result

    def start(self) -> Cluster:
        for program, extra in (("slurmctld", ["-i"]), ("slurmd", ["-N", "node1"])):
            log = open(self.folder / f"{program}.out", "w")
            self.daemons.append(
                subprocess.Popen(
                    [find(program), "-D", "-f", str(self.conf), *extra],
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(d.poll() is not None for d in self.daemons):
                break
            out = self.command("sinfo", "--noheader", "--format=%T", check=False).stdout
            if out.strip() == "idle":
                return self
            time.sleep(0.5)
        logs = "".join((self.folder / f"{p}.out").read_text() for p in ("slurmctld", "slurmd"))
        self.stop()
        raise AssertionError(f"the one-node SLURM did not come up within 60 s:\n{logs[-3000:]}")

    def stop(self) -> None:
        # slurmstepd keeps running jobs alive when the daemons go: cancel them first
        self.command("scancel", "--partition=debug", check=False)
        deadline = time.monotonic() + 30
        while (
            time.monotonic() < deadline
            and self.command("squeue", "--noheader", check=False).stdout.strip()
        ):
            time.sleep(0.5)
        self.command("scontrol", "shutdown", check=False)
        for daemon in self.daemons:
            try:
                daemon.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
                daemon.wait()
