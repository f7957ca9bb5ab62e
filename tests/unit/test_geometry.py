import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from src.errors import ScaleprobeError
from src.probes.geometry import angle_deg, cosine, cumulative_norm, maps_for_norm_fraction


@pytest.mark.parametrize(
    ("u", "v", "cos", "angle"),
    [
        ([1.0, 0.0], [0.0, 1.0], 0.0, 90.0),
        ([1.0, 2.0], [2.0, 4.0], 1.0, 0.0),
        ([1.0, 2.0], [-3.0, -6.0], -1.0, 180.0),
        ([1.0, 0.0], [5.0, 5.0], np.sqrt(0.5), 45.0),
        ([0.0, 0.0, 3.0], [0.0, 0.0, 0.5], 1.0, 0.0),
    ],
)
def test_known_angles(u, v, cos, angle):
    assert cosine(u, v) == pytest.approx(cos, abs=1e-12)
    assert angle_deg(u, v) == pytest.approx(angle, abs=1e-6)


def test_zero_vector_gives_nan():
    assert np.isnan(cosine([0.0, 0.0], [1.0, 2.0]))
    assert np.isnan(angle_deg([1.0, 2.0], [0.0, 0.0]))


def test_length_mismatch_raises():
    with pytest.raises(ScaleprobeError, match="same length"):
        cosine([1.0, 2.0], [1.0, 2.0, 3.0])


@settings(max_examples=50, deadline=None)
@given(
    arrays(np.float64, 8, elements=st.floats(-1e3, 1e3)),
    arrays(np.float64, 8, elements=st.floats(-1e3, 1e3)),
)
def test_angle_in_range_and_symmetric(u, v):
    a = angle_deg(u, v)
    if np.isnan(a):
        assert np.linalg.norm(u) == 0 or np.linalg.norm(v) == 0
        return
    assert 0.0 <= a <= 180.0
    assert a == pytest.approx(angle_deg(v, u))


def test_cumulative_norm_monotone_and_ends_at_one():
    v = np.random.default_rng(0).normal(size=300)
    curve = cumulative_norm(v)
    assert curve.shape == (300,)
    assert np.all(np.diff(curve) >= 0)
    assert curve[-1] == pytest.approx(1.0, abs=1e-12)
    # the first value is the largest normalized entry
    assert curve[0] == pytest.approx(np.abs(v).max() / np.linalg.norm(v))
    assert cumulative_norm(v, top=10).shape == (10,)
    np.testing.assert_allclose(cumulative_norm(v, top=10), curve[:10])
    assert cumulative_norm(v, top=1000).shape == (300,)


def test_cumulative_norm_one_hot_and_scale_invariant():
    one_hot = np.zeros(50)
    one_hot[17] = -4.0
    curve = cumulative_norm(one_hot)
    assert curve[0] == 1.0
    assert np.all(curve == 1.0)
    v = np.array([3.0, -4.0, 0.0])
    np.testing.assert_allclose(cumulative_norm(v), cumulative_norm(10 * v))
    np.testing.assert_allclose(cumulative_norm(v), [0.8, 1.0, 1.0])


def test_cumulative_norm_zero_vector_is_nan():
    assert np.all(np.isnan(cumulative_norm(np.zeros(4))))


def test_maps_for_norm_fraction():
    v = np.array([0.0, 3.0, 4.0, 0.0])  # curve 0.8, 1, 1, 1
    assert maps_for_norm_fraction(v, 0.5) == 1
    assert maps_for_norm_fraction(v, 0.8) == 1
    assert maps_for_norm_fraction(v, 0.9) == 2
    assert maps_for_norm_fraction(v, 1.0) == 2
    # equal weights over k maps: fraction f needs ceil(f^2 * k) maps
    flat = np.r_[np.ones(100), np.zeros(900)]
    assert maps_for_norm_fraction(flat, 0.9) == 81
    assert maps_for_norm_fraction(flat, 0.99) == 99


@pytest.mark.parametrize("fraction", [0.0, 1.5, -0.1, True, "0.9"])
def test_maps_for_norm_fraction_rejects_fraction(fraction):
    with pytest.raises(ScaleprobeError, match="fraction="):
        maps_for_norm_fraction([1.0, 2.0], fraction)


def test_maps_for_norm_fraction_zero_vector_raises():
    with pytest.raises(ScaleprobeError, match="zero norm"):
        maps_for_norm_fraction(np.zeros(3), 0.9)
