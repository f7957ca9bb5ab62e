"""SIGTERM and SIGINT stop a run promptly (#19.5), however far it got.

SLURM's time limit and ``scancel`` send SIGTERM; Lightning's signal connector
used to print "Received SIGTERM" and carry on to exit 0. Now the run stops
with one line and ``128 + signum`` (143, 130), keeps its partial cache entry
for the next run to resume, and a sweep's MLflow parent ends KILLED.
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
from tiny_run import TINY, run_tool

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
STOP_WITHIN_S = 20  # from the signal to the exit, on 2 loaded cores

# src.run with one stage slowed: it says when it got there, then works slowly.
SLOWED = textwrap.dedent(
    """
    import pathlib, runpy, sys, time
    import src.features.extract
    import src.probes.protocol

    flag, stage = pathlib.Path(sys.argv[1]), sys.argv[2]
    batches = []

    if stage == "extract":
        step = src.features.extract.PooledFeatures.predict_step

        def slow_step(self, batch, batch_idx):
            batches.append(1)
            flag.write_text(str(len(batches)))  # the second batch starts: one is recorded
            time.sleep(2.0)
            return step(self, batch, batch_idx)

        src.features.extract.PooledFeatures.predict_step = slow_step
    else:
        def stalled(*args, **kwargs):
            flag.write_text("probing")
            time.sleep(600)

        src.probes.protocol.evaluate_pair = stalled
    sys.argv = ["src.run", *sys.argv[3:]]
    runpy.run_module("src.run", run_name="__main__", alter_sys=True)
    """
)


def _signal_at(cwd: Path, stage: str, ready: str, signum: int, *args: str):
    """Run src.run with ``stage`` slowed, send ``signum`` once its flag reads ``ready``.

    Returns the exit code, stderr and the seconds from the signal to the exit.
    The child has its own process group, ended in ``finally`` (DataLoader workers too).
    """
    script = cwd / "slowed.py"
    script.write_text(SLOWED)
    flag = cwd / "stage.flag"
    child = subprocess.Popen(
        [sys.executable, str(script), str(flag), stage, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 600
        while not (flag.exists() and flag.read_text() == ready):
            assert child.poll() is None, child.stderr.read()[-3000:]
            assert time.monotonic() < deadline, f"the run never reached {stage} {ready}"
            time.sleep(0.05)
        sent = time.monotonic()
        child.send_signal(signum)
        try:
            _, stderr = child.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the run did not stop within 120 s of signal {signum}")
        return child.returncode, stderr, time.monotonic() - sent
    finally:
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        child.wait()


def _runs(cwd: Path):
    client = MlflowClient(tracking_uri=f"sqlite:///{cwd}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name("scaleprobe")
    return [] if experiment is None else client.search_runs([experiment.experiment_id])


def _partials(cwd: Path) -> list[Path]:
    return sorted((cwd / "cache" / "features").glob(".partial-*"))


def test_sigterm_mid_extraction_stops_keeps_partial_and_the_next_run_resumes(tmp_path):
    code, stderr, took = _signal_at(tmp_path, "extract", "2", signal.SIGTERM, "alpha=0.001", *TINY)
    assert code == 143, stderr[-3000:]
    assert took < STOP_WITHIN_S
    assert "stopped: interrupted by SIGTERM" in stderr
    assert "Traceback" not in stderr
    partials = _partials(tmp_path)
    assert len(partials) == 1
    assert list(partials[0].glob("progress-*.npy"))  # the finished batch is recorded
    assert [
        p.name for p in (tmp_path / "cache" / "features").iterdir() if not p.name.startswith(".")
    ] == []  # no entry committed
    assert _runs(tmp_path) == []  # a single run had made no MLflow run yet
    again = run_tool(tmp_path, "alpha=0.001", *TINY)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming extraction: 1 of 2 batches already done" in again.stdout + again.stderr
    assert _partials(tmp_path) == []


def test_sigterm_mid_extraction_marks_the_sweep_parent_killed(tmp_path):
    code, stderr, took = _signal_at(
        tmp_path, "extract", "2", signal.SIGTERM, "-m", "alpha=0,0.01", *TINY
    )
    assert code == 143, stderr[-3000:]
    assert took < STOP_WITHIN_S
    runs = _runs(tmp_path)
    assert [r.info.status for r in runs] == ["KILLED"]  # the parent; no child was logged
    assert runs[0].data.tags["scaleprobe.reason"] == "interrupted by SIGTERM"
    assert len(_partials(tmp_path)) == 1


def test_sigint_while_probing_stops_with_one_line(tmp_path):
    code, stderr, took = _signal_at(
        tmp_path, "probe", "probing", signal.SIGINT, "alpha=0.001", *TINY
    )
    assert code == 130, stderr[-3000:]
    assert took < STOP_WITHIN_S
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("stopped: interrupted by SIGINT")


def test_sigterm_while_probing_stops_the_run(tmp_path):
    code, stderr, took = _signal_at(
        tmp_path, "probe", "probing", signal.SIGTERM, "alpha=0.001", *TINY
    )
    assert code == 143, stderr[-3000:]
    assert took < STOP_WITHIN_S
    assert _runs(tmp_path) == []
