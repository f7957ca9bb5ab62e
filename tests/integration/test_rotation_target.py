"""#14.3 done-when: the synthetic set's rotation, read back through target=csv, is decoded;
the same angles shuffled against the images (a factor the pixels do not carry) are not.

One class of 60 rotated images (the smallest size at which the margin was clear: 40
gave test R² < 0 for the real angle, 48 about 0.5, 60 about 0.6 with seeds 0 and 1),
the trained Lite0 (offline), its default layer, and the ridge probe with its GCV
penalty: the angle in degrees is far from unit scale, which the ridge's
standardization absorbs and a Lasso at the default alpha does not.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from omegaconf import open_dict

import src.job

pytestmark = pytest.mark.slow

N_PERMUTATIONS = 39  # smallest p-value 1/40 = 0.025
ROTATION = [
    "data.rotation=true",
    "data.n_per_class=60",
    "pair=albatross_albatross",
    "n_train=30",
    "n_test=24",
    "n_splits=3",
    f"n_permutations={N_PERMUTATIONS}",
    "probe=ridge",
    "probe.value=gcv",
    "controls.kinds=[]",
    "stability.n_bootstrap=0",
    "inner_folds=null",
    "extract.progress=false",
    "extract.batch_size=16",
    "target=csv",
    "target.column=rotation_deg",
]


def _config(compose_config, tmp_path: Path, path: str):
    cfg = compose_config([*ROTATION, f"data.root={tmp_path / 'rotated'}", f"target.path={path}"])
    with open_dict(cfg):
        del cfg["hydra"]  # its sweep paths need a running Hydra job
        cfg.paths.cache_dir = str(tmp_path / "cache")
        cfg.paths.mlruns_dir = str(tmp_path / "mlruns")
    return cfg


def _shuffled(factors: Path, out: Path) -> Path:
    """Write the factors' angles permuted (seeded) against the image ids."""
    with factors.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    order = np.random.default_rng(0).permutation(len(rows))
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "rotation_deg"])
        for row, j in zip(rows, order, strict=True):
            writer.writerow([row["image_id"], rows[j]["rotation_deg"]])
    return out


def test_rotation_is_decoded_and_the_shuffled_angle_stays_at_the_null(compose_config, tmp_path):
    # The relative form: factors.csv is found under data.root (target.root).
    real = src.job.run(_config(compose_config, tmp_path, "factors.csv"))
    floor = 1 / (N_PERMUTATIONS + 1)
    assert real["r2_test"] > 0.4, real
    assert real["r2_test_pvalue"] == pytest.approx(floor), real  # above every permutation

    shuffled = _shuffled(tmp_path / "rotated" / "factors.csv", tmp_path / "shuffled.csv")
    cfg = _config(compose_config, tmp_path, str(shuffled))
    null = src.job.run(cfg)
    assert null["r2_test"] < 0.1, null
    assert null["r2_test_pvalue"] > 0.2, null  # inside the null, not in its upper tail
    assert real["r2_test"] > null["r2_test"] + 0.4

    client = MlflowClient(tracking_uri=cfg.tracking.uri)
    (experiment,) = [e for e in client.search_experiments() if e.name == "scaleprobe"]
    jobs = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`scaleprobe.role` = 'job'"
    )
    params = {(r.data.params["target.path"], r.data.params["target.column"]) for r in jobs}
    assert params == {("factors.csv", "rotation_deg"), (str(shuffled), "rotation_deg")}
    assert {r.data.params["cache_key"] for r in jobs} == {jobs[0].data.params["cache_key"]}
