"""Two sweeps started in the same second keep their own Hydra sweep directory (issue 19.8).

The clock Hydra's ``${now:...}`` reads is frozen in a wrapper, so both sweeps
resolve the same date and time, as two sweeps launched together do.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient
from tiny_run import TINY

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]

FROZEN = textwrap.dedent(
    """
    import datetime, runpy, sys
    import hydra.core.utils

    class Frozen(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2026, 12, 1, 12, 0, 0)

    hydra.core.utils.datetime = Frozen
    sys.argv = ["src.run", *sys.argv[1:]]
    runpy.run_module("src.run", run_name="__main__", alter_sys=True)
    """
)


def test_sweeps_in_the_same_second_get_their_own_directory(tmp_path, shared_dirs):
    script = tmp_path / "frozen.py"
    script.write_text(FROZEN)
    paths = [f"paths.data_dir={shared_dirs['data']}", f"paths.cache_dir={shared_dirs['cache']}"]
    for alpha in ("0", "0.01"):
        result = subprocess.run(
            [sys.executable, str(script), "-m", f"alpha={alpha}", *TINY, *paths],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    dirs = sorted((tmp_path / "multirun" / "2026-12-01").iterdir())
    assert len(dirs) == 2, dirs
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name("scaleprobe")
    parents = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`scaleprobe.role` = 'sweep'"
    )
    by_alpha = {}
    for parent in parents:
        (directory,) = [d for d in dirs if d.name == f"12-00-00-{parent.info.run_id}"]
        overrides = yaml.safe_load((directory / "multirun.yaml").read_text())
        task = overrides["hydra"]["overrides"]["task"]
        by_alpha[next(o for o in task if o.startswith("alpha="))] = directory
        assert (directory / "0" / ".hydra" / "overrides.yaml").is_file()  # the job's dir too
    assert sorted(by_alpha) == ["alpha=0", "alpha=0.01"]
