"""Geometry of probe coefficient vectors.

The paper compares probes trained on different classes by the cosine and the
angle between their coefficient vectors, and measures how concentrated a
probe is by the cumulative norm of its largest normalized coefficients
(how many feature maps carry 90% or 99% of the norm).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from src.errors import ScaleprobeError

__all__ = ["angle_deg", "cosine", "cosines", "cumulative_norm", "maps_for_norm_fraction"]


def _vector(value: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ScaleprobeError(f"{name} with shape {arr.shape!r} is not a non-empty 1-D vector")
    return arr


def cosine(u: ArrayLike, v: ArrayLike) -> float:
    """Signed cosine similarity ``u·v / (|u| |v|)``.

    Parameters
    ----------
    u, v : array-like of shape (d,)
        Coefficient vectors in the same feature space.

    Returns
    -------
    float
        Cosine in ``[-1, 1]``. ``nan`` if either vector has zero norm (for
        instance a Lasso probe whose alpha removed every feature): the
        direction is undefined, and a ``nan`` keeps that visible in summaries
        instead of crashing a sweep.

    Raises
    ------
    ScaleprobeError
        If the vectors are not 1-D or differ in length.

    Examples
    --------
    >>> cosine([1.0, 0.0], [1.0, 1.0])  # doctest: +ELLIPSIS
    0.7071...
    """
    a, b = _vector(u, "u"), _vector(v, "v")
    if a.shape != b.shape:
        raise ScaleprobeError(
            f"u has {a.size} entries but v has {b.size}; compare vectors of the same length"
        )
    return float(cosines(a, b))


def cosines(U: np.ndarray, V: np.ndarray) -> np.ndarray:
    """Signed cosines of matching vectors along the last axis, without validation.

    The batched form of :func:`cosine` for the protocol's many probe pairs
    (splits x permutations x alphas at once).

    Parameters
    ----------
    U, V : ndarray of shape (..., d)
        Vectors, compared pairwise along the last axis (broadcast).

    Returns
    -------
    ndarray of shape (...)
        Cosines in ``[-1, 1]``; ``nan`` where either vector has zero norm.

    Examples
    --------
    >>> cosines(np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([[1.0, 1.0], [1.0, 0.0]]))
    array([0.70710678,        nan])
    """
    nu = np.linalg.norm(U, axis=-1, keepdims=True)
    nv = np.linalg.norm(V, axis=-1, keepdims=True)
    # Normalized first: parallel vectors then give exactly 1 (angle 0), not 1 - 2e-16.
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.asarray(np.einsum("...d,...d->...", U / nu, V / nv))
    cos[((nu == 0) | (nv == 0))[..., 0]] = np.nan
    return np.clip(cos, -1.0, 1.0)


def angle_deg(u: ArrayLike, v: ArrayLike) -> float:
    """Angle between two vectors in degrees.

    Parameters
    ----------
    u, v : array-like of shape (d,)
        Coefficient vectors in the same feature space.

    Returns
    -------
    float
        ``degrees(arccos(cosine(u, v)))`` in ``[0, 180]`` (the cosine is
        clipped to ``[-1, 1]`` against rounding); ``nan`` if either vector has
        zero norm.

    Examples
    --------
    >>> angle_deg([1.0, 0.0], [0.0, 2.0])
    90.0
    """
    return float(np.degrees(np.arccos(cosine(u, v))))


def cumulative_norm(coef: ArrayLike, top: int | None = None) -> np.ndarray:
    """Norm of the normalized vector kept to its ``k`` largest entries, for each ``k``.

    With ``v̂ = v / |v|`` sorted by decreasing ``|v̂_i|``, entry ``k - 1`` is
    ``sqrt(sum_{i<=k} v̂_i²)``: how much of the probe's norm the ``k`` most
    weighted feature maps carry (the paper's ``|v̂_{1..d'}|``).

    Parameters
    ----------
    coef : array-like of shape (d,)
        Coefficient vector.
    top : int or None, default=None
        Keep only the first ``min(top, d)`` values; ``None`` keeps all ``d``.

    Returns
    -------
    ndarray of shape (min(top, d),)
        Non-decreasing values in ``(0, 1]``; the full curve ends at 1. All
        ``nan`` if ``coef`` has zero norm.

    Raises
    ------
    ScaleprobeError
        If ``coef`` is not a non-empty 1-D vector or ``top`` is not a positive
        integer.

    Examples
    --------
    >>> cumulative_norm([0.0, 3.0, 4.0])
    array([0.8, 1. , 1. ])
    """
    v = _vector(coef, "coef")
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise ScaleprobeError(f"top={top!r} is invalid; use None or an integer >= 1")
    k = v.size if top is None else min(top, v.size)
    norm = np.linalg.norm(v)
    if norm == 0:
        return np.full(k, np.nan)
    sq = np.sort((v / norm) ** 2)[::-1][:k]
    out = np.sqrt(np.cumsum(sq))
    return np.minimum(out, 1.0)


def maps_for_norm_fraction(coef: ArrayLike, fraction: float) -> int:
    """Smallest number of feature maps whose cumulative norm reaches ``fraction``.

    Parameters
    ----------
    coef : array-like of shape (d,)
        Coefficient vector.
    fraction : float
        Target fraction of the norm, in ``(0, 1]`` (e.g. 0.9 or 0.99).

    Returns
    -------
    int
        Smallest ``d'`` with ``cumulative_norm(coef)[d' - 1] >= fraction``
        (with a ``1e-12`` allowance for rounding, so ``fraction=1`` gives the
        number of non-zero coefficients).

    Raises
    ------
    ScaleprobeError
        If ``fraction`` is outside ``(0, 1]`` or ``coef`` has zero norm (no
        number of maps carries any fraction of a zero vector).

    Examples
    --------
    >>> maps_for_norm_fraction([0.0, 3.0, 4.0], 0.9)
    2
    """
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, int | float)
        or not (0 < fraction <= 1)
    ):
        raise ScaleprobeError(f"fraction={fraction!r} is invalid; use a float in (0, 1]")
    curve = cumulative_norm(coef)
    if np.isnan(curve[0]):
        raise ScaleprobeError(
            "coef has zero norm; maps_for_norm_fraction needs a probe with a non-zero "
            "coefficient (lower alpha)"
        )
    return int(np.searchsorted(curve, fraction - 1e-12, side="left") + 1)
