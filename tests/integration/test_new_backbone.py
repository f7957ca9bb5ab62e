"""#12 done-when: a torchvision backbone not shipped in conf/ is one YAML, run end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from tiny_run import TINY, run_tool

pytestmark = pytest.mark.slow

EXTRA_CONF = Path(__file__).resolve().parent / "conf"


def test_a_backbone_added_by_one_yaml_runs_end_to_end(tmp_path):
    assert not (EXTRA_CONF.parents[2] / "conf" / "backbone" / "resnet18.yaml").exists()
    result = run_tool(
        tmp_path,
        f"hydra.searchpath=[file://{EXTRA_CONF}]",
        "backbone=resnet18",
        "layer.name=stage3",  # the YAML's own alias
        "backbone.input_size=64",
        *TINY,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name("scaleprobe")
    (child,) = [
        r
        for r in client.search_runs([experiment.experiment_id])
        if "mlflow.parentRunId" in r.data.tags
    ]
    params = child.data.params
    assert params["backbone"] == "resnet18"
    assert params["layer"] == "stage3"
    assert params["feature_dim"] == "256"  # resnet18's layer3
    assert params["features.builder"] == "resnet18"
    assert params["features.preprocessing.size"] == "64"
    assert -1e9 < child.data.metrics["r2_test"] <= 1.0
