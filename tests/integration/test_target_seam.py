"""A second target, defined only under tests/plugins/, reuses the cached features.

Issue 12, item 2: records carry no target, the cache index holds no ratio, so a
run with another target extracts nothing and is tracked with ``target=<name>``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from pipeline_repo import TINY
from tiny_run import REPO, run_tool

pytestmark = pytest.mark.slow

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
CLASS = "n02058221"  # albatross_albatross: one class, one extraction


def _children(cwd: Path) -> list:
    client = MlflowClient(tracking_uri=f"sqlite:///{cwd}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name("scaleprobe")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    return [r for r in runs if "mlflow.parentRunId" in r.data.tags]


def test_a_target_from_a_test_directory_reuses_the_cache_and_is_tracked(tmp_path):
    first = run_tool(tmp_path, *TINY)
    assert first.returncode == 0, first.stderr[-3000:]
    log = first.stdout + first.stderr
    assert log.count("extracting blocks.5") == 1, log[-3000:]
    # issue 19 item 11: the number of images finally probed, per class
    assert f"class {CLASS}: 16 images probed" in log, log[-3000:]

    second = run_tool(
        tmp_path,
        *TINY,
        "target=center_x",
        f"hydra.searchpath=[file://{PLUGINS / 'conf'}]",
        env={"PYTHONPATH": os.pathsep.join([str(REPO), str(PLUGINS)])},
    )
    assert second.returncode == 0, second.stderr[-3000:]
    assert "extracting" not in second.stdout + second.stderr

    scale, center_x = _children(tmp_path)
    assert scale.data.params["target"] == "scale"
    assert center_x.data.params["target"] == "center_x"
    assert scale.data.params["cache_key"] == center_x.data.params["cache_key"]
    assert scale.data.metrics["r2_train"] != center_x.data.metrics["r2_train"]
