"""#12.3 done-when: a probe defined only under tests/ runs `python -m src.run` end to end."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from tiny_run import REPO, TINY, run_tool

pytestmark = pytest.mark.slow

PLUGIN = Path(__file__).resolve().parents[1] / "probe_plugin"


def test_probe_from_a_test_directory_runs_end_to_end(tmp_path):
    result = run_tool(
        tmp_path,
        *TINY,
        "n_permutations=3",
        "probe=plugin_ridge",
        f"hydra.searchpath=[file://{PLUGIN / 'conf'}]",
        env={"PYTHONPATH": os.pathsep.join([str(REPO), str(PLUGIN)])},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("scaleprobe")
    runs = client.search_runs([experiment.experiment_id])
    (child,) = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    params, metrics = child.data.params, child.data.metrics
    assert params["probe"] == "plugin_ridge"
    assert params["probe_param"] == "l2"
    assert float(params["l2"]) == 0.1
    assert child.info.run_name.endswith("l2=0.1")
    # a linear probe: R², its null and the geometry
    for name in ("r2_test", "r2_test_pvalue", "r2_test_shuffled", "cos", "angle_deg", "nnz"):
        assert name in metrics, name
    artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
    assert {"coef.npy", "coef_test.npy", "path.json", "null.json"} <= artifacts
