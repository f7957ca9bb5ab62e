"""Null baselines for the probes.

Shuffling the scale ratios keeps their distribution but breaks their link to
the images: a probe trained on shuffled ratios tells what R² and what angle
between probes chance alone produces. Random unit directions give the angle
between unrelated vectors in the same ``d``-dimensional space (about 90°).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from src.errors import ScaleprobeError
from src.probes.geometry import cosines
from src.probes.validation import check_count

__all__ = [
    "TIE_ATOL",
    "TIE_RTOL",
    "permutation_means",
    "permutation_pvalue",
    "random_direction_angles",
    "random_directions",
    "shuffled",
]

RNGLike = np.random.Generator | int | None

# Ties between a permutation's statistic and the observed one are decided up to
# rounding: a statistic within ``TIE_ATOL + TIE_RTOL * |observed|`` of the
# observed value counts as at least as extreme. A mean over splits of R² or of
# angles computed in float64 differs by ~1e-15 between permutations that give
# the same fits (e.g. a probe with every coefficient zero predicts the mean
# ratio, whatever its order), and such ties must not decide the p-value.
TIE_RTOL = 1e-9
TIE_ATOL = 1e-12


def shuffled(y: ArrayLike, rng: RNGLike) -> np.ndarray:
    """Return a random permutation of the targets.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Targets (scale ratios).
    rng : numpy.random.Generator or int or None
        Random generator, or a seed for ``np.random.default_rng``.

    Returns
    -------
    ndarray of shape (n_samples,)
        A shuffled copy; ``y`` is left unchanged.

    Examples
    --------
    >>> sorted(shuffled([3.0, 1.0, 2.0], 0).tolist())
    [1.0, 2.0, 3.0]
    """
    arr = np.asarray(y, dtype=float)
    if arr.ndim != 1:
        raise ScaleprobeError(f"y with shape {arr.shape!r} is not 1-D; pass one target per row")
    return np.random.default_rng(rng).permutation(arr)


def random_directions(d: int, n: int, rng: RNGLike) -> np.ndarray:
    """Draw unit vectors uniformly on the sphere in ``d`` dimensions.

    Parameters
    ----------
    d : int
        Dimension (number of feature maps).
    n : int
        Number of directions.
    rng : numpy.random.Generator or int or None
        Random generator, or a seed for ``np.random.default_rng``.

    Returns
    -------
    ndarray of shape (n, d)
        Rows of unit norm (normalized Gaussian draws, hence uniform on the
        sphere).

    Examples
    --------
    >>> np.linalg.norm(random_directions(5, 3, 0), axis=1).round(12).tolist()
    [1.0, 1.0, 1.0]
    """
    d = check_count(d, "d")
    n = check_count(n, "n")
    gen = np.random.default_rng(rng)
    draws = gen.standard_normal((n, d))
    norms = np.linalg.norm(draws, axis=1, keepdims=True)
    # A draw of exactly zero norm has probability zero; redraw defensively.
    while np.any(norms == 0):
        bad = norms[:, 0] == 0
        draws[bad] = gen.standard_normal((int(bad.sum()), d))
        norms = np.linalg.norm(draws, axis=1, keepdims=True)
    return draws / norms


def permutation_means(values: ArrayLike) -> np.ndarray:
    """Mean over splits of each permutation's statistic: the null of a mean over splits.

    The protocol's statistic is a mean over splits (of test R², of the angle),
    so each permutation's null value is the same mean over its column; a
    ``nan`` split (an angle to an all-zero probe) is left out, like in the
    observed mean.

    Parameters
    ----------
    values : array-like of shape (n_splits, n_permutations)
        Per-split statistics of every permutation.

    Returns
    -------
    ndarray of shape (n_permutations,)
        Column means over the finite values; ``nan`` for an all-``nan`` column.

    Raises
    ------
    ScaleprobeError
        If ``values`` is not 2-D.

    Examples
    --------
    >>> permutation_means([[1.0, np.nan], [3.0, np.nan]]).tolist()
    [2.0, nan]
    """
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 2:
        raise ScaleprobeError(
            f"values with shape {arr.shape!r} is not 2-D; pass (n_splits, n_permutations)"
        )
    finite = np.isfinite(arr)
    counts = finite.sum(axis=0)
    sums = np.where(finite, arr, 0.0).sum(axis=0)
    return np.divide(sums, counts, out=np.full(arr.shape[1], np.nan), where=counts > 0)


def permutation_pvalue(
    observed: float, null: ArrayLike, *, alternative: Literal["greater", "less"]
) -> float:
    """One-sided p-value of a statistic against its permutation distribution.

    The observed data count as one of the permutations,
    ``p = (1 + #{null at least as extreme}) / (1 + n)``, so the p-value is
    never 0: with ``n`` permutations the smallest possible value is
    ``1 / (n + 1)`` (Phipson and Smyth, 2010). A permutation whose statistic
    is ``nan`` (e.g. an angle to a probe with no non-zero coefficient) is left
    out of ``n``. A permutation within ``TIE_ATOL + TIE_RTOL * |observed|``
    (1e-12 + 1e-9 relative) of the observed statistic is a tie and counts as
    at least as extreme, so rounding noise cannot make a p-value small.

    Parameters
    ----------
    observed : float
        The statistic on the real data (e.g. mean test R² over splits).
    null : array-like of shape (n_permutations,)
        The same statistic on each permutation of the targets.
    alternative : {"greater", "less"}
        ``"greater"`` when large values are evidence (R²), ``"less"`` when
        small values are (the angle between probes).

    Returns
    -------
    float
        The p-value in ``(0, 1]``; ``nan`` if ``observed`` is ``nan`` or no
        permutation has a finite statistic.

    Raises
    ------
    ScaleprobeError
        If ``null`` is not 1-D or ``alternative`` is invalid.

    Examples
    --------
    >>> permutation_pvalue(0.8, [0.1, -0.2, 0.9, 0.0], alternative="greater")
    0.4
    >>> permutation_pvalue(0.8, [0.8 - 1e-15, 0.8 + 1e-15], alternative="greater")
    1.0
    """
    values = np.asarray(null, dtype=float)
    if values.ndim != 1:
        raise ScaleprobeError(
            f"null with shape {values.shape!r} is not 1-D; pass one statistic per permutation"
        )
    if alternative not in ("greater", "less"):
        raise ScaleprobeError(
            f"alternative={alternative!r} is invalid; choose from ['greater', 'less']"
        )
    values = values[np.isfinite(values)]
    if np.isnan(observed) or values.size == 0:
        return float("nan")
    tie = TIE_ATOL + TIE_RTOL * abs(observed)
    if alternative == "greater":
        extreme = values >= observed - tie
    else:
        extreme = values <= observed + tie
    return float((1 + np.count_nonzero(extreme)) / (1 + values.size))


def random_direction_angles(d: int, n_pairs: int, rng: RNGLike) -> np.ndarray:
    """Angles between independent random directions in ``d`` dimensions.

    The chance level of the angle between two probes: in high dimension two
    unrelated directions are almost orthogonal (``90° ± ~57°/sqrt(d)``), so an
    angle between probes is only meaningful against this spread.

    Parameters
    ----------
    d : int
        Dimension (number of feature maps).
    n_pairs : int
        Number of independent pairs.
    rng : numpy.random.Generator or int or None
        Random generator, or a seed for ``np.random.default_rng``.

    Returns
    -------
    ndarray of shape (n_pairs,)
        Angles in degrees, in ``[0, 180]``.

    Examples
    --------
    >>> bool(abs(random_direction_angles(1280, 50, 0).mean() - 90) < 1)
    True
    """
    n_pairs = check_count(n_pairs, "n_pairs")
    dirs = random_directions(d, 2 * n_pairs, rng)
    return np.degrees(np.arccos(cosines(dirs[0::2], dirs[1::2])))
