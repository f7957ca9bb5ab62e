"""Null baselines for the probes.

Shuffling the scale ratios keeps their distribution but breaks their link to
the images: a probe trained on shuffled ratios tells what R² and what angle
between probes chance alone produces. Random unit directions give the angle
between unrelated vectors in the same ``d``-dimensional space (about 90°).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from src.errors import ScaleprobeError
from src.probes._validation import check_count

__all__ = ["random_directions", "shuffled"]

RNGLike = np.random.Generator | int | None


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
