"""#13 done-when: any torchvision classification model by name, offline, end to end."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient
from tiny_run import TINY, run_tool

pytestmark = pytest.mark.slow


def _child_params(tmp_path) -> dict[str, str]:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name("scaleprobe")
    (child,) = [
        r
        for r in client.search_runs([experiment.experiment_id])
        if "mlflow.parentRunId" in r.data.tags
    ]
    return child.data.params


@pytest.mark.parametrize(
    ("name", "layer", "dim", "size", "layout"),
    [
        ("resnet18", "layer3", "256", "224", "auto"),
        ("vit_b_16", "encoder.layers.encoder_layer_6", "768", "224", "auto"),
    ],
)
def test_a_torchvision_model_by_name_runs_end_to_end(tmp_path, name, layer, dim, size, layout):
    result = run_tool(
        tmp_path, "backbone=torchvision", f"backbone.name={name}", f"layer.name={layer}", *TINY
    )
    assert result.returncode == 0, result.stderr[-3000:]
    params = _child_params(tmp_path)
    assert params["backbone"] == name
    assert params["feature_dim"] == dim
    assert params["features.builder"] == name
    assert params["features.preprocessing.size"] == size  # the weights' meta, not a crop
    assert (params["features.layout"], params["features.pooling"]) == (layout, "mean")
