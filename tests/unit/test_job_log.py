"""What one job logs to MLflow: every per-split metric with its summary (real sqlite store)."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from src.probes.metrics import summarize
from src.probes.protocol import evaluate_pair
from src.tracking.job_log import log_job
from src.tracking.store import TrackingTarget, _client

D = 20


def _result(alpha, n_splits=3):
    rng = np.random.default_rng(0)
    w = rng.normal(size=D)
    XA, XB = rng.normal(size=(60, D)), rng.normal(size=(60, D))
    # the test class's ratios sit higher: a class offset
    yA, yB = XA @ w + 0.1 * rng.normal(size=60), XB @ w + 0.1 * rng.normal(size=60) + 3.0
    (result,) = evaluate_pair(
        XA, yA, XB, yB, alphas=[alpha], same_class=False, n_splits=n_splits,
        n_train=30, n_test=30, seed=0,
    )  # fmt: skip
    return result


def _log(tmp_path, result):
    target = TrackingTarget(f"sqlite:///{tmp_path}/mlflow.db", artifact_location=str(tmp_path))
    cfg = OmegaConf.create({"pair": {"name": "a_b"}, "probe": {"value": result.alpha}})
    log_job(target, None, cfg, result, [result], params={"alpha": result.alpha}, weights_sha256="0")
    client = _client(target)
    runs = client.search_runs([client.get_experiment_by_name("scaleprobe").experiment_id])
    (child,) = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return client, child


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("alpha", [0.01, 1e10])  # 1e10: an all-zero Lasso, pearson nan
def test_child_logs_offset_aware_metrics_like_r2_test(tmp_path, alpha):
    result = _result(alpha)
    client, child = _log(tmp_path, result)
    metrics = child.data.metrics
    for name in ("r2_test", "pearson_test", "r2_test_centered"):
        values = getattr(result, name)
        history = client.get_metric_history(child.info.run_id, name)
        assert [m.step for m in history] == [0, 1, 2, 3]
        np.testing.assert_array_equal([m.value for m in history[:3]], values)
        stats = summarize(values)
        for suffix, key in (("", "mean"), ("_std", "std"), ("_ci95", "ci95")):
            np.testing.assert_array_equal(metrics[f"{name}{suffix}"], stats[key])
    assert np.isnan(metrics["pearson_test"]) == (alpha == 1e10)
    if alpha == 0.01:  # the offset costs R², centering recovers it
        assert metrics["r2_test_centered"] > metrics["r2_test"] + 0.5
        assert metrics["pearson_test"] > 0.9
