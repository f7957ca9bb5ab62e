"""Sweeps on a real one-node SLURM cluster through Hydra's submitit launcher (issue 18).

The commands are the README's "Running on a cluster" ones. Every job logs
under the parent the sweep callback made before submission; a job cancelled
with scancel leaves a KILLED child, the parent FAILED, and a line naming it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from slurm_cluster import Cluster, slurm_cluster_fixture  # noqa: F401 (the fixture)
from tiny_run import TINY

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
# cpus_per_task=1: two of the three jobs run at once on a 2-core node; controls=[]: fewer fits.
SWEEP = [
    "-m",
    "hydra/launcher=slurm",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=2",
    "alpha=0,0.001,0.01",
    "controls=[]",
    *TINY,
]


def _env(cluster: Cluster) -> dict[str, str]:
    """The cluster's env (SLURM_CONF), this repo and the stall callback importable in the jobs."""
    env = {k: v for k, v in cluster.env.items() if not k.startswith(("MLFLOW_", "SCALEPROBE_"))}
    tests = REPO / "tests"
    return {**env, "PYTHONPATH": f"{REPO}:{tests}:{tests / 'integration'}"}


def _runs(cwd: Path) -> tuple[object, list[object]]:
    """Return the sweep's parent run and its children from ``cwd``'s MLflow store."""
    client = MlflowClient(tracking_uri=f"sqlite:///{cwd}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name("scaleprobe")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1, [r.info.run_name for r in runs]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    return parents[0], children


def _sacct_states(cluster: Cluster, n: int) -> list[str]:
    """States of the cluster's jobs (array tasks one by one); records reach sacct late: poll."""
    deadline = time.monotonic() + 60
    while True:
        out = cluster.slurm("sacct", "-n", "-X", "-P", "-o", "JobID,State")
        states = [line.split("|")[1] for line in out.splitlines() if "|" in line]
        if len(states) >= n or time.monotonic() > deadline:
            return states
        time.sleep(1)


def test_slurm_sweep_logs_every_job_under_a_finished_parent(slurm_cluster, tmp_path):
    before = len(_sacct_states(slurm_cluster, 0))
    result = subprocess.run(
        [sys.executable, "-m", "src.run", *SWEEP],
        cwd=tmp_path, env=_env(slurm_cluster), capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    parent, children = _runs(tmp_path)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["scaleprobe.n_jobs"] == "3"
    assert sorted(float(c.data.params["alpha"]) for c in children) == [0.0, 0.001, 0.01]
    assert {c.info.status for c in children} == {"FINISHED"}
    # They ran on SLURM: three more jobs, all COMPLETED, and their logs where the README says.
    states = _sacct_states(slurm_cluster, before + 3)[before:]
    assert states == ["COMPLETED"] * 3, states
    (sweep_dir,) = (tmp_path / "multirun").glob("*/*")
    assert len(list(sweep_dir.glob(".submitit/*/*_log.out"))) == 3


def test_scancel_leaves_a_killed_child_a_failed_parent_and_names_the_job(slurm_cluster, tmp_path):
    flag = tmp_path / "stalled.flag"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "src.run", *SWEEP,
         "+hydra.callbacks.stall._target_=slurm_cluster.StallJob",
         "+hydra.callbacks.stall.alpha=0.001", f"+hydra.callbacks.stall.flag={flag}"],
        cwd=tmp_path, env=_env(slurm_cluster), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 400
        while not flag.exists():
            assert sweep.poll() is None, sweep.communicate()[1][-4000:]
            assert time.monotonic() < deadline, "the stalled job never started"
            time.sleep(0.5)
        job_id = flag.read_text().strip()
        slurm_cluster.slurm("scancel", job_id)
        try:
            out, err = sweep.communicate(timeout=400)
        except subprocess.TimeoutExpired:
            sweep.kill()
            out, err = sweep.communicate()
            jobs = slurm_cluster.slurm("sacct", "-P", "-X", "-o", "JobID,State,ExitCode,Elapsed")
            pytest.fail(f"the sweep did not end after scancel {job_id}:\n{jobs}\n{err[-4000:]}")
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.communicate()
    assert sweep.returncode == 1, (out + err)[-4000:]
    assert "error: 1 of 3 jobs of the sweep did not finish" in err, err[-4000:]
    (line,) = [x for x in err.splitlines() if x.strip().startswith("job #")]
    assert line.strip().startswith("job #1 (alpha=0.001 "), line
    assert ": KILLED: ended without a result (scheduler state CANCELLED" in line, line
    parent, children = _runs(tmp_path)
    assert parent.info.status == "FAILED"
    assert parent.data.tags["scaleprobe.failed_jobs"] == "1"
    by_status = sorted((c.info.status, c.data.tags.get("scaleprobe.job_num")) for c in children)
    assert [s for s, _ in by_status] == ["FINISHED", "FINISHED", "KILLED"], by_status
    assert by_status[-1][1] == "1"
    finished = [float(c.data.params["alpha"]) for c in children if c.info.status == "FINISHED"]
    assert sorted(finished) == [0.0, 0.01]


def test_a_partition_the_cluster_lacks_stops_the_sweep_before_any_run(slurm_cluster, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "src.run", *SWEEP, "hydra.launcher.partition=gpu-a100"],
        cwd=tmp_path, env=_env(slurm_cluster), capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    errors = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert errors == [
        "error: hydra.launcher.partition='gpu-a100' is not a partition of this cluster; "
        "sinfo lists ['debug']"
    ], result.stderr[-3000:]
    assert not (tmp_path / "multirun").exists()
    assert not (tmp_path / "cache").exists()
    assert not (tmp_path / "mlruns").exists()


def test_local_launcher_sweep_with_a_sigkilled_job_fails_its_parent(tmp_path):
    """hydra/launcher=local (no scheduler): the README's laptop command; SIGKILL one job."""
    flag = tmp_path / "stalled.flag"
    tests = REPO / "tests"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SCALEPROBE_"))}
    sweep = subprocess.Popen(
        [sys.executable, "-m", "src.run", "-m", "hydra/launcher=local", "alpha=0,0.01",
         "controls=[]", *TINY, "+hydra.callbacks.stall._target_=slurm_cluster.StallJob",
         "+hydra.callbacks.stall.alpha=0.01", f"+hydra.callbacks.stall.flag={flag}"],
        cwd=tmp_path, env={**env, "PYTHONPATH": f"{REPO}:{tests}:{tests / 'integration'}"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 400
        while not flag.exists():
            assert sweep.poll() is None, sweep.communicate()[1][-4000:]
            assert time.monotonic() < deadline, "the stalled job never started"
            time.sleep(0.5)
        os.kill(int(flag.read_text()), signal.SIGKILL)
        out, err = sweep.communicate(timeout=400)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.communicate()
    assert sweep.returncode == 1, (out + err)[-4000:]
    (line,) = [x for x in err.splitlines() if x.strip().startswith("job #")]
    assert line.strip().startswith("job #1 (alpha=0.01 "), line
    assert "ended without a result" in line, line
    parent, children = _runs(tmp_path)
    assert parent.info.status == "FAILED"
    by_num = {c.data.tags.get("scaleprobe.job_num"): c.info.status for c in children}
    assert by_num["0"] == "FINISHED"  # job 0 logged its own child, tagged with its number
    assert by_num["1"] in ("KILLED", "FAILED"), by_num
    assert len(children) == 2
    assert len(list((tmp_path / "multirun").glob("*/*/.submitit/*/*_log.err"))) == 2
