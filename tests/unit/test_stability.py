"""Selection frequencies of the Lasso's feature maps on planted sparse data."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src.errors import ScaleprobeError
from src.probes.protocol import evaluate_pair
from src.probes.stability import bootstrap_coefs, stable_maps
from src.report.montage import MONTAGE, job_montage

D, PLANTED, ALPHA = 60, np.array([3, 17, 42]), 0.005


def _planted(n=200, seed=0):
    """Targets driven by three maps only; the other maps are independent noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, D))
    y = 0.5 + X[:, PLANTED] @ np.array([0.3, -0.2, 0.25]) + 0.02 * rng.normal(size=n)
    return X, y


def _frequencies(n_bootstrap=20, seed=0):
    X, y = _planted()
    (result,) = evaluate_pair(
        X, y, X, y, alphas=[ALPHA], same_class=True, n_splits=10, n_train=80, n_test=40, seed=seed
    )
    boot = bootstrap_coefs(X, y, alpha=ALPHA, n_bootstrap=n_bootstrap, n_train=80, seed=seed)
    return stable_maps(result.coef, boot, threshold=0.8), boot


def test_planted_maps_are_selected_by_every_fit_and_others_rarely():
    maps, boot = _frequencies()
    assert boot.shape == (20, D)
    np.testing.assert_array_equal(maps.frequency[PLANTED], 1.0)
    others = np.delete(maps.frequency, PLANTED)
    assert 0 < others.mean() < 0.15
    assert others.max() < 0.5
    assert sorted(maps.stable.tolist()) == PLANTED.tolist()
    # mean coefficient carries the planted sign (standardized space, unit-variance features)
    np.testing.assert_allclose(maps.mean_coef[PLANTED], [0.3, -0.2, 0.25], atol=0.05)
    assert maps.stable[0] == 3  # ties on frequency: largest |coef| first


def test_split_and_bootstrap_frequencies_are_kept_apart_and_seeded():
    maps, _ = _frequencies()
    np.testing.assert_allclose(
        maps.frequency, (10 * maps.frequency_splits + 20 * maps.frequency_bootstrap) / 30
    )
    _, boot = _frequencies()
    _, other = _frequencies(seed=1)
    np.testing.assert_array_equal(boot, _frequencies()[1])
    assert not np.array_equal(boot, other)
    stored = json.loads(maps.to_json())
    assert stored["stable"] == maps.stable.tolist()
    assert stored["threshold"] == 0.8
    # a never-selected map has no mean coefficient: null in the json, not NaN
    assert any(v is None for v in stored["mean_coef"])


def test_no_bootstrap_means_splits_only():
    maps, boot = _frequencies(n_bootstrap=0)
    assert boot.shape == (0, D)
    assert maps.frequency_bootstrap is None
    np.testing.assert_array_equal(maps.frequency, maps.frequency_splits)


@pytest.mark.parametrize("threshold", [0.0, 1.5, "high"])
def test_bad_threshold_is_one_clear_error(threshold):
    with pytest.raises(ScaleprobeError, match=r"stability\.threshold"):
        stable_maps(np.ones((2, 3)), threshold=threshold)


@pytest.mark.slow  # MLflow store: ~60 s on the shared cores
def test_job_logs_stable_maps_as_metric_and_json_artifact(tmp_path):
    from omegaconf import OmegaConf

    from src.tracking.job_log import log_job
    from src.tracking.query import read_binary_artifact
    from src.tracking.store import TrackingTarget, _client

    X, y = _planted()
    (result,) = evaluate_pair(
        X, y, X, y, alphas=[ALPHA], same_class=True, n_splits=3, n_train=80, n_test=40, seed=0
    )
    maps = stable_maps(result.coef, threshold=0.8)
    target = TrackingTarget(f"sqlite:///{tmp_path}/mlflow.db", artifact_location=str(tmp_path))
    cfg = OmegaConf.create({"pair": {"name": "a_b"}, "probe": {"value": ALPHA}})
    images = tmp_path / "images"
    images.mkdir()
    paths = []
    for i in range(len(y)):  # one small image per feature row, for the montage
        paths.append(str(images / f"{i}.png"))
        Image.fromarray(np.full((8, 8, 3), i, dtype=np.uint8)).save(paths[-1])
    files = job_montage(maps, X, paths, y, images)
    log_job(
        target, None, cfg, result, [result], params={}, weights_sha256="0", stable=maps,
        files=files,
    )  # fmt: skip
    client = _client(target)
    runs = client.search_runs([client.get_experiment_by_name("scaleprobe").experiment_id])
    (child,) = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert child.data.metrics["n_stable_maps"] == maps.stable.size >= len(PLANTED)
    path = client.download_artifacts(child.info.run_id, "stability.json", str(tmp_path / "dl"))
    with open(path) as f:
        stored = json.load(f)
    assert set(PLANTED.tolist()) <= set(stored["stable"])
    np.testing.assert_array_equal(stored["frequency"], maps.frequency)
    png = client.download_artifacts(child.info.run_id, MONTAGE, str(tmp_path / "dl"))
    assert Path(png).read_bytes() == files[MONTAGE].read_bytes()  # logged as drawn, binary
    assert read_binary_artifact(target, child.info.run_id, MONTAGE) == Path(png).read_bytes()
    assert read_binary_artifact(target, child.info.run_id, "absent.png") is None  # optional
