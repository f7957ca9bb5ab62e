"""#15 done-when: one sweep over the four probes logs four comparable children."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient
from tiny_run import REPO, TINY, run_tool

pytestmark = pytest.mark.slow

PROBES = {
    "lasso": "alpha",
    "ridge": "ridge_alpha",
    "kernel_ridge": "kernel_alpha",
    "mlp": "mlp_alpha",
}
GEOMETRY = ("cos", "angle_deg", "nnz", "angle_deg_pvalue")


def test_a_sweep_over_the_four_probes_logs_four_children(tmp_path):
    result = run_tool(tmp_path, "-m", *TINY, "n_permutations=3", f"probe={','.join(PROBES)}")
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("scaleprobe")
    runs = client.search_runs([experiment.experiment_id])
    children = {r.data.params["probe"]: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert set(children) == set(PROBES)
    for name, param in PROBES.items():
        params, metrics = children[name].data.params, children[name].data.metrics
        assert params["probe_param"] == param
        assert param in params
        for key in ("r2_train", "r2_test", "r2_test_shuffled", "r2_test_pvalue"):
            assert key in metrics, (name, key)
        linear = name in ("lasso", "ridge")
        assert all((key in metrics) == linear for key in GEOMETRY), name
        artifacts = {a.path for a in client.list_artifacts(children[name].info.run_id)}
        assert ("coef.npy" in artifacts) == linear
        assert "r2_cv" in metrics, name  # the training-side score the report chooses by
    report = subprocess.run(
        [sys.executable, "-m", "src.report", "report.output_dir=reports"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr[-3000:]
    text = (tmp_path / "reports" / "report.md").read_text()
    assert "### Linear vs non-linear probes" in text
    assert "gap: " in text  # best non-linear - best linear, paired over the same splits
    assert (tmp_path / "reports" / "fig4_path_ridge.png").is_file()


def test_an_mlp_that_does_not_converge_warns_per_split_and_tags_the_run(tmp_path):
    result = run_tool(
        tmp_path, *TINY, "n_permutations=1", "probe=mlp", "probe.max_iter=1", "controls=[]"
    )  # the controls fit the MLP too: their lines are not the job's
    assert result.returncode == 0, result.stderr[-3000:]
    warnings = [line for line in result.stdout.splitlines() if "did not converge" in line]
    assert len(warnings) == 3  # one per split (Hydra logs to stdout)
    assert "split 0: 6 of 6 MLPProbe probe fits did not converge" in warnings[0]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("scaleprobe")
    (child,) = [
        r for r in client.search_runs([experiment.experiment_id])
        if "mlflow.parentRunId" in r.data.tags
    ]  # fmt: skip
    assert child.data.tags["scaleprobe.unconverged_fits"] == "18"
