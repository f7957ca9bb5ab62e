"""The sweep's sqlite store deleted mid-sweep: one line, the sweep stops, nothing recreated.

A wrapper runs ``python -m src.run`` with the records loader of the second job
(of three, basic launcher: one process) deleting ``mlruns/mlflow.db`` first, so
the loss happens while that job computes, deterministically.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tiny_run import TINY

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]

DELETER = textwrap.dedent(
    """
    import pathlib, runpy, sys
    import src.data.sources

    load = src.data.sources.load_records_with_counts
    calls = []

    def load_and_delete(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            pathlib.Path("mlruns/mlflow.db").unlink()
        return load(*args, **kwargs)

    src.data.sources.load_records_with_counts = load_and_delete
    sys.argv = ["src.run", *sys.argv[1:]]
    runpy.run_module("src.run", run_name="__main__", alter_sys=True)
    """
)


def test_store_deleted_mid_sweep_stops_it_with_one_line(tmp_path, shared_dirs):
    script = tmp_path / "deleter.py"
    script.write_text(DELETER)
    paths = [f"paths.data_dir={shared_dirs['data']}", f"paths.cache_dir={shared_dirs['cache']}"]
    result = subprocess.run(
        [sys.executable, str(script), "-m", "alpha=0,0.001,0.01", *TINY, *paths],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 1, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, log[-3000:]
    assert errors[0].startswith(
        f"error: MLflow store {Path('mlruns/mlflow.db')} was deleted during the sweep; stopping it"
    )
    assert (
        "1 job(s) had finished and were logged there: ['albatross_albatross alpha=0']"
        in (errors[0])
    )
    assert "#2 : alpha=0.01" not in log  # the third job never started
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()  # not silently recreated
