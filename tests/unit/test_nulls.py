import numpy as np
import pytest

from src.errors import ScaleprobeError
from src.probes.geometry import angle_deg
from src.probes.nulls import (
    permutation_means,
    permutation_pvalue,
    random_direction_angles,
    random_directions,
    shuffled,
)


def test_shuffled_is_a_seeded_permutation():
    y = np.arange(100, dtype=float)
    a = shuffled(y, np.random.default_rng(0))
    b = shuffled(y, np.random.default_rng(0))
    c = shuffled(y, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, y)
    np.testing.assert_array_equal(np.sort(a), y)
    np.testing.assert_array_equal(y, np.arange(100))  # input untouched


def test_shuffled_rejects_2d():
    with pytest.raises(ScaleprobeError, match="not 1-D"):
        shuffled(np.zeros((3, 2)), 0)


def test_random_directions_unit_and_near_orthogonal():
    dirs = random_directions(1280, 200, np.random.default_rng(0))
    assert dirs.shape == (200, 1280)
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=1), 1.0)
    angles = np.array([angle_deg(dirs[i], dirs[i + 1]) for i in range(0, 200, 2)])
    # in 1280 dimensions the angle between random directions is 90° ± ~1.6°
    assert abs(angles.mean() - 90.0) < 1.0
    assert np.all(np.abs(angles - 90.0) < 10.0)
    np.testing.assert_array_equal(random_directions(5, 3, 7), random_directions(5, 3, 7))


def test_random_directions_rejects_bad_counts():
    with pytest.raises(ScaleprobeError, match="d=0"):
        random_directions(0, 3, 0)
    with pytest.raises(ScaleprobeError, match=r"n=2\.0"):
        random_directions(4, 2.0, 0)


def test_permutation_pvalue_counts_the_observed_as_a_permutation():
    null = np.array([0.1, 0.5, np.nan, 0.9])
    assert permutation_pvalue(0.95, null, alternative="greater") == pytest.approx(1 / 4)
    assert permutation_pvalue(0.5, null, alternative="greater") == pytest.approx(3 / 4)
    assert permutation_pvalue(0.05, null, alternative="less") == pytest.approx(1 / 4)
    assert np.isnan(permutation_pvalue(np.nan, null, alternative="less"))
    assert np.isnan(permutation_pvalue(0.5, [np.nan], alternative="less"))
    with pytest.raises(ScaleprobeError, match="alternative='two'"):
        permutation_pvalue(0.5, null, alternative="two")
    with pytest.raises(ScaleprobeError, match="not 1-D"):
        permutation_pvalue(0.5, np.zeros((2, 2)), alternative="less")


def test_random_direction_angles_near_ninety_in_high_dimension():
    angles = random_direction_angles(1280, 300, 0)
    assert angles.shape == (300,)
    assert abs(angles.mean() - 90.0) < 0.5
    assert angles.std() == pytest.approx(np.degrees(1 / np.sqrt(1280)), rel=0.2)
    np.testing.assert_array_equal(angles, random_direction_angles(1280, 300, 0))
    with pytest.raises(ScaleprobeError, match="n_pairs=0"):
        random_direction_angles(3, 0, 0)


def test_permutation_pvalue_counts_rounding_ties_as_extreme():
    # #19.4: permutations equal to the observed statistic up to rounding are ties,
    # whichever side of it the rounding fell on.
    observed = 0.123456789
    null = observed + np.array([-1e-15, 1e-15, -3e-16, 2e-16])
    assert permutation_pvalue(observed, null, alternative="greater") == 1.0
    assert permutation_pvalue(observed, null, alternative="less") == 1.0
    assert permutation_pvalue(0.0, [-1e-15, 1e-15], alternative="greater") == 1.0
    # a real difference still counts
    assert permutation_pvalue(observed, [observed - 1e-6], alternative="greater") == 0.5
    assert permutation_pvalue(observed, [observed + 1e-6], alternative="less") == 0.5


def test_permutation_means_leave_out_nan_splits():
    # #12.7: the one mean over splits per permutation (protocol p-values, report nulls)
    values = np.array([[1.0, np.nan, 2.0], [3.0, np.nan, np.nan]])
    np.testing.assert_array_equal(permutation_means(values), [2.0, np.nan, 2.0])
    np.testing.assert_array_equal(permutation_means(values.tolist()), [2.0, np.nan, 2.0])
    with pytest.raises(ScaleprobeError, match="not 2-D"):
        permutation_means([1.0, 2.0])
