"""Issue 16 items 1-3: the random-weights and pixel controls of every job, and their paired gaps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import open_dict
from PIL import Image
from tiny_run import TINY, assert_one_line_and_nothing_cached

import src.job
from src.data.boxes import Box
from src.data.records import ImageRecord
from src.features.batchnorm import recalibrate_batchnorm
from src.features.extract import Preprocessing, load_image_row
from src.features.pixels import histogram_features, pixel_features
from src.probes.controls import control_metrics, evaluate_controls
from src.probes.disk_memo import ResultStore
from src.probes.memo import ProbeMemo
from src.probes.ridge import RidgeProbe


def test_control_metrics_are_paired_per_split_and_pixels_is_the_better_mean():
    r2 = np.array([0.9, 0.8, 0.7])
    controls = {
        "random_weights": np.array([0.5, 0.6, 0.1]),
        "pixels_histogram": np.array([0.2, 0.3, 0.4]),
        "pixels_thumbnail": np.array([0.6, 0.1, 0.5]),  # mean 0.4 > 0.3
    }
    out = control_metrics(r2, controls)
    np.testing.assert_allclose(out["r2_test_gap_random_weights"], [0.4, 0.2, 0.6])
    np.testing.assert_array_equal(out["r2_test_pixels"], controls["pixels_thumbnail"])
    np.testing.assert_allclose(out["r2_test_gap_pixels"], [0.3, 0.7, 0.2])
    assert control_metrics(r2, {"random_weights": r2}).keys() == {
        "r2_test_random_weights",
        "r2_test_gap_random_weights",
    }


def test_histogram_counts_every_pixel_in_its_joint_rgb_cell():
    image = np.zeros((2, 2, 3), dtype=np.uint8)
    image[0, 0] = (255, 0, 0)  # cell (3, 0, 0) of 4 levels
    out = histogram_features(image, 4)
    assert out.shape == (64,)
    assert out[0] == pytest.approx(0.75)
    assert out[3 * 16] == pytest.approx(0.25)


def _planted(tmp_path, n: int, seed: int) -> tuple[list[ImageRecord], np.ndarray]:
    """Images whose red part covers a fraction r of the image: a pixel statistic is the target."""
    rng = np.random.default_rng(seed)
    ratios = rng.uniform(0.1, 0.9, size=n)
    records = []
    for i, r in enumerate(ratios):
        array = np.full((64, 64, 3), (0, 0, 255), dtype=np.uint8)
        array[: round(64 * r)] = (255, 0, 0)
        path = tmp_path / f"img_{i}.png"
        Image.fromarray(array).save(path)
        records.append(ImageRecord(f"img_{i}", str(path), "a", 64, 64, Box(0, 0, 64, 64)))
    return records, np.round(64 * ratios) / 64


def test_pixel_controls_recover_a_planted_pixel_target_and_are_cached(tmp_path):
    records, y = _planted(tmp_path, 40, seed=0)
    cache = tmp_path / "cache"
    sources = {
        f"pixels_{kind}": {
            "a": pixel_features(records, kind=kind, input_size=32, setting=setting, cache_dir=cache)
        }
        for kind, setting in (("histogram", 4), ("thumbnail", 8))
    }
    assert sources["pixels_histogram"]["a"].shape == (40, 64)
    assert sources["pixels_thumbnail"]["a"].shape == (40, 192)
    again = pixel_features(records, kind="histogram", input_size=32, setting=4, cache_dir=cache)
    np.testing.assert_array_equal(again, sources["pixels_histogram"]["a"])
    assert len(list(cache.glob("*/features.npy"))) == 2  # one entry per setting, reused
    protocol = dict(same_class=True, n_splits=3, n_train=20, n_test=10, seed=0)
    r2 = evaluate_controls(
        {name: {"a": (f["a"], y)} for name, f in sources.items()},
        probe=RidgeProbe(grid=[1e-3]), value=1e-3,
        train_class="a", test_class="a", **protocol,
    )  # fmt: skip
    # the "network" here is the target itself plus noise: R² near 1, and pixels match it
    network = y[:, None] + np.random.default_rng(1).normal(0, 0.01, (40, 1))
    r2_net = evaluate_controls(
        {"net": {"a": (network, y)}}, probe=RidgeProbe(grid=[1e-3]), value=1e-3,
        train_class="a", test_class="a", **protocol,
    )["net"]  # fmt: skip
    out = control_metrics(r2_net, r2)
    assert out["r2_test_pixels"].mean() > 0.95
    assert abs(out["r2_test_gap_pixels"].mean()) < 0.05


@pytest.mark.slow
def test_every_tiny_job_logs_its_controls_and_controls_off_logs_none(cfg_tiny):
    with open_dict(cfg_tiny):
        del cfg_tiny["hydra"]  # its sweep paths need a running Hydra job
    summary = src.job.run(cfg_tiny)
    for name in ("r2_test_random_weights", "r2_test_pixels", "r2_test_pixels_histogram"):
        assert np.isfinite(summary[name]), name
    gap = summary["r2_test_gap_random_weights"]
    assert gap == pytest.approx(summary["r2_test"] - summary["r2_test_random_weights"])
    # TINY's backbone is itself random: the control is the same network, so the gap is 0
    assert gap == pytest.approx(0.0, abs=1e-9)
    assert summary["r2_test_gap_pixels_ci95"] >= 0
    with open_dict(cfg_tiny):
        del cfg_tiny["controls"]
    off = src.job.run(cfg_tiny)
    assert not [k for k in off if "random_weights" in k or "pixels" in k]
    assert off["r2_test"] == summary["r2_test"]


def test_random_bn_sets_batchnorm_statistics_to_those_of_the_images(tmp_path):
    records, _ = _planted(tmp_path, 10, seed=2)
    model = torch.nn.Sequential(torch.nn.BatchNorm2d(3))
    prep = Preprocessing(size=16, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    out = recalibrate_batchnorm(model, records, prep, batch_size=5)  # equal batches
    assert not out.training
    images = np.stack([load_image_row(r.path, 16)[0] for r in records]).astype(np.float64)
    np.testing.assert_allclose(out[0].running_mean, images.mean(axis=(0, 2, 3)) / 255, rtol=1e-5)
    assert out[0].momentum == 0.1  # restored after the cumulative passes


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["controls.kinds=[random_weights,pixel]"], r"controls.kinds has 'pixel'; allowed: "),
        (["controls.histogram_bins=0"], r"controls.histogram_bins=0 is out of range"),
        (["controls.thumbnail_size=100"], r"controls.thumbnail_size=100 is out of range"),
        (["controls.random_bn=sometimes"], r"controls.random_bn='sometimes' is not allowed"),
    ],
)
def test_a_bad_control_setting_is_one_line_and_caches_nothing(
    overrides, message, compose_config, shared_dirs, tmp_path
):
    cfg = compose_config([*TINY, *overrides])
    assert_one_line_and_nothing_cached(cfg, shared_dirs, tmp_path, message)


def test_controls_of_a_sweeps_other_values_are_read_not_refitted(tmp_path):
    """Issue 16.7 / 18.3: a control is fitted on the probe's grid once per sweep, not per job."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 5)), rng.normal(size=30)
    sources = {"random_weights": {"a": (X, y)}}
    protocol = dict(
        same_class=True, n_splits=3, n_train=20, n_test=10, seed=0,
        train_class="a", test_class="a",
    )  # fmt: skip
    probe = RidgeProbe(grid=[0.1, 1.0, 10.0])
    memo, store = ProbeMemo(), ResultStore(tmp_path / "memo")
    first = evaluate_controls(sources, probe=probe, value=0.1, memo=memo, store=store, **protocol)
    misses = memo.misses
    second = evaluate_controls(sources, probe=probe, value=10.0, memo=memo, store=store, **protocol)
    assert memo.misses == misses  # the second value is read off the first job's grid
    alone = evaluate_controls(sources, probe=RidgeProbe(grid=[10.0]), value=10.0, **protocol)
    np.testing.assert_allclose(second["random_weights"], alone["random_weights"], rtol=1e-10)
    assert not np.allclose(first["random_weights"], second["random_weights"])
    # another process (a fresh memo) reads the on-disk store: no fit at all
    other = ResultStore(store.root)
    again = evaluate_controls(
        sources, probe=probe, value=1.0, memo=ProbeMemo(), store=other, **protocol
    )
    assert len(again["random_weights"]) == 3
    assert (other.hits, other.misses) == (3, 0)  # one entry a split
    assert store.misses == 3  # the first job's one fit of the grid, written to disk
