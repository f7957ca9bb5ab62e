"""A one-node SLURM cluster on this machine, with accounting, for the SLURM tests.

Debian's munge, MariaDB, slurmdbd, slurmctld and slurmd, each in the
foreground in its own process group, all under one temporary BASE (recipe and
pitfalls: ../shared/NOTES.md "A one-node SLURM cluster in a test").
Accounting matters: without slurmdbd, submitit cannot see a job that died
before writing its result and waits for it forever. Every daemon is stopped,
group and all, in the fixture's finally, after the jobs left are cancelled.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hydra.experimental.callback import Callback
from pipeline_repo import free_port

PARTITION = "debug"
BINARIES = ("munged", "mungekey", "mariadbd", "mariadb-install-db", "slurmdbd", "slurmctld",
            "slurmd", "sbatch", "sinfo", "sacct", "scancel")  # fmt: skip
INSTALL = (
    "apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge "
    "slurmdbd mariadb-server (.ci/run does)"
)
START_TIMEOUT_S = 90


@dataclass(frozen=True)
class Cluster:
    """A running cluster: ``env`` holds SLURM_CONF for every client (sbatch, sinfo, submitit)."""

    base: Path
    env: dict[str, str]
    partition: str
    node_memory_mb: int

    def slurm(self, *args: str) -> str:
        """Run a SLURM client command against this cluster; return its stdout."""
        done = subprocess.run(
            list(args), env=self.env, capture_output=True, text=True, timeout=60, check=True
        )
        return done.stdout


def _sbin(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    assert found is not None, name
    return found


def _missing() -> list[str]:
    return [b for b in BINARIES if (shutil.which(b) or shutil.which(b, path="/usr/sbin")) is None]


def _wait(what: str, ready, processes: dict[str, subprocess.Popen], logs: list[Path]) -> None:
    """Poll ``ready()`` until true; fail with the daemons' log tails if one died or time ran out."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready():
        dead = [name for name, p in processes.items() if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            tails = "\n".join(
                f"--- {log.name}\n{log.read_text(errors='replace')[-1500:]}"
                for log in logs
                if log.exists()
            )
            pytest.fail(f"SLURM test cluster: {what} not ready (dead: {dead})\n{tails}")
        time.sleep(0.3)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _quiet(cmd: list[str], env: dict[str, str] | None = None) -> bool:
    try:
        return subprocess.run(cmd, env=env, capture_output=True, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the daemon's process group, SIGKILL it after 15 s."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)
    except ProcessLookupError:
        pass


def _write_confs(base: Path, host: str, sock: Path, ports: dict[str, int]) -> Path:
    """Write slurm.conf and slurmdbd.conf (mode 600, beside it); return slurm.conf."""
    user = getpass.getuser()
    memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 - 512
    conf = base / "slurm.conf"
    conf.write_text(
        f"""ClusterName=scaleprobe
SlurmctldHost={host}(127.0.0.1)
SlurmUser={user}
SlurmdUser={user}
SlurmctldPort={ports["ctld"]}
SlurmdPort={ports["slurmd"]}
AuthType=auth/munge
AuthInfo=socket={sock}
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=sched_interval=1
MailProg=/bin/true
ReturnToService=2
KillWait=5
StateSaveLocation={base}/state
SlurmdSpoolDir={base}/spool
SlurmctldPidFile={base}/slurmctld.pid
SlurmdPidFile={base}/slurmd.pid
SlurmctldLogFile={base}/slurmctld.log
SlurmdLogFile={base}/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={ports["dbd"]}
AccountingStoragePass={sock}
NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={memory_mb}
PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""
    )
    dbd = base / "slurmdbd.conf"
    dbd.write_text(
        f"""AuthType=auth/munge
AuthInfo=socket={sock}
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={ports["dbd"]}
SlurmUser={user}
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={ports["mariadb"]}
StorageUser=root
StorageLoc=slurm_acct_db
LogFile={base}/slurmdbd.log
PidFile={base}/slurmdbd.pid
"""
    )
    dbd.chmod(0o600)
    return conf


@pytest.fixture(scope="module", name="slurm_cluster")
def slurm_cluster_fixture() -> Iterator[Cluster]:
    """Start the cluster (≈ 15 s), yield it, and stop every daemon it started."""
    missing = _missing()
    if missing:
        pytest.skip(f"SLURM is not installed (no {', '.join(missing)}): {INSTALL}")
    # munged needs o+x on every folder above its socket, and a socket path under 108 chars:
    # a short folder of its own, not pytest's 0700 tmp tree.
    base = Path(tempfile.mkdtemp(prefix="sp-slurm-", dir="/tmp"))
    base.chmod(0o755)
    for sub in ("state", "spool", "munge", "mysql"):
        (base / sub).mkdir()
    host = socket.gethostname().split(".")[0]
    ports = {k: free_port() for k in ("ctld", "slurmd", "dbd", "mariadb")}
    sock = base / "munge" / "sock"
    conf = _write_confs(base, host, sock, ports)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    logs = [base / f"{n}.log" for n in ("munged", "mariadb", "slurmdbd", "slurmctld", "slurmd")]
    processes: dict[str, subprocess.Popen] = {}

    def start(name: str, cmd: list[str]) -> None:
        with open(base / f"{name}.out", "w") as out:
            processes[name] = subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    try:
        key = base / "munge" / "munge.key"
        subprocess.run([_sbin("mungekey"), "--create", f"--keyfile={key}"], check=True)
        start("munged", [
            _sbin("munged"), "-F", f"--key-file={key}", f"--socket={sock}",
            f"--pid-file={base}/munge/munged.pid", f"--log-file={base}/munged.log",
            f"--seed-file={base}/munge/seed", "--force",
        ])  # fmt: skip
        _wait("munged", lambda: _quiet(["munge", "-S", str(sock), "-n"]), processes, logs)
        subprocess.run(
            [_sbin("mariadb-install-db"), "--no-defaults", f"--datadir={base}/mysql",
             "--auth-root-authentication-method=normal", f"--user={getpass.getuser()}"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        start("mariadb", [
            _sbin("mariadbd"), "--no-defaults", f"--datadir={base}/mysql",
            f"--port={ports['mariadb']}", "--bind-address=127.0.0.1",
            f"--socket={base}/mysql.sock", f"--pid-file={base}/mariadb.pid",
            f"--log-error={base}/mariadb.log", f"--user={getpass.getuser()}",
        ])  # fmt: skip
        _wait("MariaDB", lambda: _listening(ports["mariadb"]), processes, logs)
        start("slurmdbd", [_sbin("slurmdbd"), "-D"])
        _wait("slurmdbd", lambda: _listening(ports["dbd"]), processes, logs)
        start("slurmctld", [_sbin("slurmctld"), "-D", "-c", "-f", str(conf)])
        start("slurmd", [_sbin("slurmd"), "-D", "-f", str(conf)])

        def idle() -> bool:
            try:
                done = subprocess.run(
                    ["sinfo", "-h", "-N", "-o", "%T"], env=env, capture_output=True,
                    text=True, timeout=20,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                return False
            return done.stdout.strip() == "idle"

        _wait("the node (sinfo: idle)", idle, processes, logs)
        memory = subprocess.run(
            ["sinfo", "-h", "-o", "%m"], env=env, capture_output=True, text=True, check=True
        ).stdout
        yield Cluster(base, env, PARTITION, int(memory.strip().rstrip("+")))
    finally:
        if "slurmctld" in processes and processes["slurmctld"].poll() is None:
            _quiet(["scancel", "--full", "--user", getpass.getuser()], env=env)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                left = subprocess.run(
                    ["squeue", "-h", "-o", "%i"], env=env, capture_output=True, text=True,
                    timeout=20, check=False,
                )  # fmt: skip
                if not left.stdout.strip():
                    break
                time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "slurmdbd", "mariadb", "munged"):
            if name in processes:
                _stop(processes[name])
        shutil.rmtree(base, ignore_errors=True)


class StallJob(Callback):
    """Hydra callback that holds one job of a sweep until it is cancelled (the scancel test).

    ``+hydra.callbacks.stall._target_=slurm_cluster.StallJob`` with ``alpha`` and
    ``flag``: the job whose alpha it is writes its SLURM job id to ``flag``
    (``<array id>_<task>``, as squeue shows it: scancel refuses a running
    array task's raw id here), then sleeps; the others run as usual. It runs
    in the job, so the module must be importable there (PYTHONPATH, which
    submitit passes on).
    """

    def __init__(self, alpha: float, flag: str) -> None:
        self.alpha = float(alpha)
        self.flag = Path(flag)

    def on_job_start(self, config, **kwargs) -> None:
        """Stall the chosen job: say which SLURM job it is, then wait to be killed."""
        if float(config.alpha) != self.alpha:
            return
        if "SLURM_ARRAY_JOB_ID" in os.environ:
            task = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
        else:  # submitit's local executor: the job's process, for a SIGKILL
            task = str(os.getpid())
        partial = self.flag.with_suffix(".partial")
        partial.write_text(task)
        partial.rename(self.flag)  # the test reads the id whole
        time.sleep(600)
