"""Selection frequencies of the Lasso's feature maps on planted sparse data."""

import json

import numpy as np
import pytest

from src.errors import ScaleprobeError
from src.probes.protocol import evaluate_pair
from src.probes.stability import bootstrap_coefs, stable_maps

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
