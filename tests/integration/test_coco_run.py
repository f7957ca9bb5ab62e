"""Issue 14 item 4: a tiny data=coco sweep over target.area extracts once and logs each child."""

from __future__ import annotations

import pytest
from coco_tree import write_coco_run_tree
from mlflow.tracking import MlflowClient
from tiny_run import TINY, run_tool

pytestmark = pytest.mark.slow

#: TINY without the synthetic set's own key (data.n_per_class).
COCO_TINY = [o for o in TINY if not o.startswith("data.")]


def test_a_coco_sweep_over_box_and_mask_areas_logs_two_children(tmp_path):
    tree = write_coco_run_tree(tmp_path / "coco")
    result = run_tool(
        tmp_path,
        "-m",
        *COCO_TINY,
        "n_permutations=2",
        "controls=[]",
        "data=coco",
        f"data.root={tree['images']}",
        f"data.annotations={tree['annotations']}",
        "pair=custom",
        "pair.train_class=bird",
        "pair.test_class=2",  # the kite, by its category id
        "target.area=box,mask",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    first, second = log.split("#1 : ", 1)  # Hydra's line starting the second job
    assert first.count("extracting blocks.5") == 2, log[-3000:]  # bird, kite
    assert "extracting" not in second, log[-3000:]  # the target is not in the cache key
    assert "class bird: {'kept': 16, 'no_box': 0, 'multi_object': 0" in log, log[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("scaleprobe")
    runs = client.search_runs([experiment.experiment_id])
    children = {
        r.data.params["target.area"]: r for r in runs if "mlflow.parentRunId" in r.data.tags
    }
    assert set(children) == {"box", "mask"}
    for child in children.values():
        params = child.data.params
        assert (params["data"], params["train_class"], params["test_class"]) == (
            "coco",
            "bird",
            "2",
        )
        assert child.info.status == "FINISHED"
    metrics = {area: child.data.metrics for area, child in children.items()}
    # the birds are rectangles: mask and box areas agree, so the training fits do too
    assert metrics["mask"]["r2_train"] == pytest.approx(metrics["box"]["r2_train"], abs=1e-9)
    # the kites are disks: the mask covers pi/4 of the box, so the test class's y differs
    assert abs(metrics["mask"]["r2_test"] - metrics["box"]["r2_test"]) > 0.05, metrics
