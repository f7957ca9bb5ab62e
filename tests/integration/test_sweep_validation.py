"""A bad value inside a sweep stops it before any job runs (issue 19.10)."""

from __future__ import annotations

import pytest
from tiny_run import TINY, run_tool

pytestmark = pytest.mark.slow


def test_bad_value_in_a_sweep_stops_it_before_any_job(tmp_path):
    result = run_tool(tmp_path, "-m", "alpha=0.001,-1,0.01", *TINY)
    assert result.returncode == 1, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert "Traceback" not in log, log[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: sweep job #1 (alpha=-1): alpha=-1 is out of range; expected a value >= 0.0"
    ]
    assert "#0 : alpha=0.001" not in log  # no job was launched
    assert not (tmp_path / "cache").exists()  # no extraction
    assert not (tmp_path / "mlruns").exists()  # no parent, no child run
