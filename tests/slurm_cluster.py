"""A throw-away single-node Slurm (Debian's packages, daemons started by hand) for the tests."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["JobInfo", "SlurmCluster", "SlurmError", "ensure_commands"]

SLURM_PACKAGES = ("slurmctld", "slurmd", "slurm-client")
SLURM_COMMANDS = ("slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "srun", "scancel")
# Job states after which a job does not run again (a requeued job passes through PENDING).
FINAL_STATES = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY")


class SlurmError(RuntimeError):
    """The local Slurm could not be set up, or a job did not finish in time."""


def ensure_commands(commands: tuple[str, ...], packages: tuple[str, ...], timeout: float = 300.0):
    """Install Debian ``packages`` unless every one of ``commands`` is already on PATH.

    Returns ``None`` when the commands are there, else the reason they cannot be (not root,
    no apt-get, install failed) for ``pytest.skip``. Services are not started by the install.
    """
    if all(shutil.which(c) for c in commands):
        return None
    if os.geteuid() != 0:
        return f"{', '.join(packages)} not installed and not root (cannot apt-get install)"
    if shutil.which("apt-get") is None:
        return f"{', '.join(packages)} not installed and no apt-get on this machine"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"`{' '.join(command)}` took more than {timeout:.0f} s (no network?)"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"`{' '.join(command)}` failed ({last})"
    missing = [c for c in commands if shutil.which(c) is None]
    return f"installed {packages} but {missing} still missing" if missing else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class JobInfo:
    """A job's final record from ``scontrol show job``: state, exit code, restarts, stdout."""

    job_id: str
    state: str
    exit_code: int
    restarts: int
    stdout: Path | None

    def output(self) -> str:
        """The job's standard output file, or "" when it has none (yet)."""
        return self.stdout.read_text() if self.stdout and self.stdout.exists() else ""


class SlurmCluster:
    """``slurmctld`` + ``slurmd`` for one node of ``cpus`` CPUs, all state under ``root``.

    ``AuthType=auth/none`` (no munge), no accounting, no cgroups; completed jobs stay visible
    to ``scontrol show job`` for an hour. Clients reach it through ``SLURM_CONF`` in ``env``.
    """

    def __init__(self, root: Path, cpus: int = 2, memory_mb: int = 2000) -> None:
        self.root = Path(root)
        self.cpus = cpus
        self.memory_mb = memory_mb
        self.node = socket.gethostname().split(".")[0]
        self.conf = self.root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self._daemons: dict[str, subprocess.Popen] = {}

    def _write_conf(self) -> None:
        for sub in ("state", "spool", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        r = self.root
        self.conf.write_text(
            f"""\
ClusterName=fe2xtest
SlurmctldHost={self.node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/none
CredType=cred/none
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
SlurmdParameters=config_overrides
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
MpiDefault=none
ReturnToService=2
MinJobAge=3600
JobRequeue=1
PropagateResourceLimits=NONE
MailProg=/bin/true
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""
        )

    def start(self, timeout: float = 30.0) -> None:
        """Start both daemons in the foreground of child processes and wait for an idle node."""
        self._write_conf()
        log = self.root / "log"
        commands = {
            "slurmctld": ["slurmctld", "-D", "-c", "-f", str(self.conf)],
            "slurmd": ["slurmd", "-D", "-f", str(self.conf), "-N", self.node],
        }
        for name, command in commands.items():
            with (log / f"{name}.stdout").open("w") as out:
                self._daemons[name] = subprocess.Popen(
                    command, env=self.env, stdout=out, stderr=subprocess.STDOUT
                )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, daemon in self._daemons.items():
                if daemon.poll() is not None:
                    self.stop()
                    raise SlurmError(f"{name} exited ({daemon.returncode}): {self.logs(name)}")
            state = self.run(["sinfo", "-h", "-o", "%T"], check=False).stdout.strip()
            if state == "idle":
                return
            time.sleep(0.2)
        self.stop()
        raise SlurmError(f"node not idle after {timeout:.0f} s: {self.logs('slurmd')}")

    def logs(self, name: str) -> str:
        """The last lines of a daemon's log, for error messages."""
        path = self.root / "log" / f"{name}.log"
        return "\n".join(path.read_text().splitlines()[-15:]) if path.exists() else ""

    def stop(self, timeout: float = 15.0) -> None:
        """Cancel all jobs, then stop the daemons this object started (by their pids)."""
        if "slurmctld" in self._daemons and self._daemons["slurmctld"].poll() is None:
            self.run(["scancel", "--user", "root"], check=False)
            deadline = time.monotonic() + timeout
            while (
                time.monotonic() < deadline
                and self.run(
                    ["squeue", "-h", "-t", "running,completing"], check=False
                ).stdout.strip()
            ):
                time.sleep(0.2)
        for name in ("slurmd", "slurmctld"):
            daemon = self._daemons.pop(name, None)
            if daemon is None or daemon.poll() is not None:
                continue
            os.kill(daemon.pid, signal.SIGTERM)
            try:
                daemon.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(daemon.pid, signal.SIGKILL)
                daemon.wait()

    def __enter__(self) -> SlurmCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run(self, command: list[str], check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        """Run a Slurm client command against this cluster."""
        done = subprocess.run(
            command, env=kwargs.pop("env", self.env), capture_output=True, text=True, **kwargs
        )
        if check and done.returncode != 0:
            raise SlurmError(f"{' '.join(command)}: {done.stderr.strip()}")
        return done

    def sbatch(self, *args: str, cwd: Path | None = None, env: dict | None = None) -> str:
        """Submit a job (``sbatch --parsable ARGS``) and return its id."""
        done = self.run(["sbatch", "--parsable", *args], cwd=cwd, env=env or self.env)
        return done.stdout.strip().split(";")[0]

    def job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job -o`` as a dict (the first record for an array)."""
        text = self.run(["scontrol", "show", "job", "-o", job_id]).stdout.splitlines()[0]
        return dict(re.findall(r"(\w+)=(\S*)", text))

    def start_requeued_now(self, job_id: str, timeout: float = 60.0) -> None:
        """Once ``job_id`` has been requeued, let it start at once.

        Slurm holds a requeued job back for about two minutes (``Reason=BeginTime``); on a
        cluster that is harmless, in a test it is wasted time.
        """
        deadline = time.monotonic() + timeout
        while True:
            record = self.job(job_id)
            if record["JobState"] in FINAL_STATES:
                return
            if record["JobState"] == "PENDING" and int(record.get("Restarts", "0")) > 0:
                self.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"])
                return
            if time.monotonic() > deadline:
                raise SlurmError(f"job {job_id} not requeued after {timeout:.0f} s: {record}")
            time.sleep(0.2)

    def wait(self, job_id: str, timeout: float = 120.0) -> JobInfo:
        """Wait until every record of ``job_id`` (all tasks of an array) is in a final state."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.run(["scontrol", "show", "job", "-o", job_id]).stdout.splitlines()
            records = [dict(re.findall(r"(\w+)=(\S*)", line)) for line in lines]
            if records and all(r["JobState"] in FINAL_STATES for r in records):
                break
            if time.monotonic() > deadline:
                states = [r.get("JobState") for r in records]
                raise SlurmError(f"job {job_id} not finished after {timeout:.0f} s: {states}")
            time.sleep(0.3)
        worst = max(records, key=lambda r: r["JobState"] != "COMPLETED")
        stdout = worst.get("StdOut")
        return JobInfo(
            job_id=job_id,
            state=worst["JobState"],
            exit_code=int(worst["ExitCode"].split(":")[0]),
            restarts=int(worst.get("Restarts", "0")),
            stdout=Path(stdout) if stdout else None,
        )
