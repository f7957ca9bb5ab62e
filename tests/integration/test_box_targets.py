"""Issue 14 item 1/5: a sweep over the box targets extracts once and logs each target."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient
from tiny_run import TINY, run_tool

pytestmark = pytest.mark.slow


def test_a_sweep_over_scale_position_and_aspect_extracts_once(tmp_path):
    result = run_tool(tmp_path, "-m", *TINY, "n_permutations=2", "target=scale,position,aspect")
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert log.count("extracting blocks.5") == 1, log[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("scaleprobe")
    runs = client.search_runs([experiment.experiment_id])
    children = {r.data.params["target"]: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert set(children) == {"scale", "position", "aspect"}
    assert children["position"].data.params["target.axis"] == "x"
    assert len({c.data.params["cache_key"] for c in children.values()}) == 1
    r2 = {name: child.data.metrics["r2_train"] for name, child in children.items()}
    assert len(set(r2.values())) == 3, r2  # three different y on the same features
