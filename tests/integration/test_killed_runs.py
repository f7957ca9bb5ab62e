"""A run killed while probing never leaves a FINISHED run with missing metrics.

A single run logs its parent and child only after the work succeeded, so a
kill leaves nothing; a killed sweep leaves its parent RUNNING, and the next
sweep on the host closes it as KILLED.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from tiny_run import TINY

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]

# src.run with probing stalled: it says when it got there, then waits to be killed.
STALLED = textwrap.dedent(
    """
    import pathlib, runpy, sys, time
    import src.probes.protocol

    flag = pathlib.Path(sys.argv[1])

    def stalled(*args, **kwargs):
        flag.write_text("probing")
        time.sleep(600)

    src.probes.protocol.evaluate_pair = stalled
    sys.argv = ["src.run", *sys.argv[2:]]
    runpy.run_module("src.run", run_name="__main__", alter_sys=True)
    """
)


def _kill_while_probing(cwd: Path, *args: str) -> None:
    script = cwd / "stalled.py"
    script.write_text(STALLED)
    flag = cwd / "probing.flag"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, str(script), str(flag), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 600
    while not flag.exists():
        assert child.poll() is None, child.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.1)
    child.send_signal(signal.SIGKILL)
    child.wait()


def _runs(cwd: Path):
    client = MlflowClient(tracking_uri=f"sqlite:///{cwd}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name("scaleprobe")
    return [] if experiment is None else client.search_runs([experiment.experiment_id])


def test_killed_single_run_logs_nothing(tmp_path):
    _kill_while_probing(tmp_path, "alpha=0.001", *TINY)
    assert [r.info.status for r in _runs(tmp_path)] == []


def test_killed_sweep_parent_is_closed_as_killed_by_the_next_sweep(tmp_path):
    _kill_while_probing(tmp_path, "-m", "alpha=0,0.01", *TINY)
    runs = _runs(tmp_path)
    assert [r.info.status for r in runs] == ["RUNNING"]  # the parent; no child at all
    stale = runs[0].info.run_id
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "src.run", "-m", "alpha=0.01", *TINY],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    by_id = {r.info.run_id: r for r in _runs(tmp_path)}
    assert by_id[stale].info.status == "KILLED"
    assert by_id[stale].data.tags["scaleprobe.reason"] == "launcher process gone"
    others = [r for r in by_id.values() if r.info.run_id != stale]
    assert {r.info.status for r in others} == {"FINISHED"}
    children = [r for r in others if "mlflow.parentRunId" in r.data.tags]
    assert children
    assert all("r2_test" in r.data.metrics for r in children)
