"""`python -m src.run -m alpha=...` end to end on a tiny synthetic set, as a user runs it."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf, open_dict
from tiny_run import TINY, run_tool

from src.errors import ScaleprobeError
from src.job import run

pytestmark = pytest.mark.slow

METRICS = [
    "r2_train",
    "r2_test",
    "nnz",
    "cos",
    "angle_deg",
    "r2_test_shuffled",
    "angle_deg_shuffled",
]
PARAMS = [
    "backbone",
    "layer",
    "train_class",
    "test_class",
    "alpha",
    "seed",
    "n_splits",
    "n_train",
    "n_test",
    "weights",
    "feature_dim",
    "cache_key",
]


def client_for(cwd: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{cwd}/mlruns/mlflow.db")


def test_multirun_logs_parent_and_children_and_extracts_once(tmp_path):
    result = run_tool(tmp_path, "-m", "alpha=0,0.001,0.01", "pair=albatross_kite", *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert log.count("extracting blocks.5") == 2, log[-3000:]  # once per class, not per alpha

    client = client_for(tmp_path)
    experiment = client.get_experiment_by_name("scaleprobe")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1
    assert len(children) == 3
    assert parents[0].info.status == "FINISHED"
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    assert sorted(float(c.data.params["alpha"]) for c in children) == [0.0, 0.001, 0.01]
    for child in children:
        assert child.info.status == "FINISHED"
        assert set(PARAMS) <= set(child.data.params)
        assert child.data.params["weights"] == "random"
        assert child.data.params["feature_dim"] == "192"  # Lite0 blocks.5, the default layer
        assert child.data.params["train_class"] == "n02058221"
        assert child.data.params["test_class"] == "n01608432"
        for name in METRICS:
            history = client.get_metric_history(child.info.run_id, name)
            assert [m.step for m in history] == [0, 1, 2, 3]
            per_split = [m.value for m in history[:3]]
            assert history[-1].value == pytest.approx(sum(per_split) / 3)
            assert child.data.metrics[name] == pytest.approx(history[-1].value)
            assert f"{name}_std" in child.data.metrics
            assert f"{name}_ci95" in child.data.metrics
        # offset-aware transfer (nan pearson_test where a Lasso zeroes every coefficient)
        for name in ("pearson_test", "r2_test_centered"):
            history = client.get_metric_history(child.info.run_id, name)
            assert [m.step for m in history] == [0, 1, 2, 3]
            assert {f"{name}_std", f"{name}_ci95"} <= set(child.data.metrics)
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"coef.npy", "coef_test.npy", "config.yaml"} <= artifacts
        assert str(tmp_path / "mlruns") in child.info.artifact_uri
    lasso = next(c for c in children if c.data.params["alpha"] == "0.01")
    ols = next(c for c in children if c.data.params["alpha"] == "0.0")
    assert lasso.data.metrics["nnz"] < ols.data.metrics["nnz"]

    again = run_tool(tmp_path, "-m", "alpha=0.001", "pair=albatross_kite", *TINY)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "extracting" not in again.stdout + again.stderr


def test_bad_input_on_the_command_line_is_one_line_and_logs_nothing(tmp_path):
    result = run_tool(tmp_path, *TINY, "alpha=-1")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == ["error: alpha=-1 is out of range; expected a value >= 0.0"]
    assert not (tmp_path / "cache").exists()
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("alpha", "abc", "alpha='abc' is not a finite number"),
        (
            "layer.name",
            "mixed99",
            "layer='mixed99' is not a layer of efficientnet_lite0; choose from",
        ),
        ("n_train", 15, "exceeds"),
    ],
)
def test_bad_input_stops_before_any_cache_or_mlflow_write(cfg_tiny, tmp_path, key, value, message):
    with open_dict(cfg_tiny):
        cfg_tiny.paths.cache_dir = str(tmp_path / "cache")
        OmegaConf.update(cfg_tiny, key, value)
    with pytest.raises(ScaleprobeError) as info:
        run(cfg_tiny)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "cache").exists()
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()


def test_unknown_group_option_lists_the_valid_names(tmp_path):
    result = run_tool(tmp_path, "backbone=vgg16")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "inception_v3" in result.stderr
    assert "resnet50" in result.stderr
