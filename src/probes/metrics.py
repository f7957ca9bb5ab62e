"""Goodness of fit and summaries over splits.

R² is computed here rather than with ``sklearn.metrics.r2_score`` so that a
constant target gives ``nan`` (undefined) instead of a silently substituted
0 or 1, and so that the protocol can score many predictions at once.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from src.errors import ScaleprobeError

__all__ = ["r2", "r2_rows", "summarize"]


def r2_rows(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """Coefficient of determination of each row of predictions.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True targets.
    y_pred : array-like of shape (..., n_samples)
        Predictions; the last axis runs over samples.

    Returns
    -------
    ndarray of shape (...)
        ``1 - RSS / TSS`` per row; ``nan`` where ``y_true`` is constant.
    """
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    if y_true.ndim != 1 or y_pred.shape[-1:] != y_true.shape:
        raise ScaleprobeError(
            f"y_pred with shape {y_pred.shape!r} does not match y_true with shape "
            f"{y_true.shape!r}; the last axis of y_pred must have length {y_true.shape[-1:]}"
        )
    tss = np.sum((y_true - y_true.mean()) ** 2)
    rss = np.sum((y_pred - y_true) ** 2, axis=-1)
    if tss == 0:
        return np.full(rss.shape, np.nan)
    return 1.0 - rss / tss


def r2(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Coefficient of determination ``1 - RSS / TSS``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True targets.
    y_pred : array-like of shape (n_samples,)
        Predictions.

    Returns
    -------
    float
        R², at most 1 and unbounded below; ``nan`` if ``y_true`` is constant.

    Examples
    --------
    >>> r2([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    1.0
    >>> r2([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])
    0.0
    """
    return float(r2_rows(y_true, np.asarray(y_pred, dtype=float).reshape(-1)))


def summarize(values: ArrayLike) -> dict[str, float]:
    """Mean, standard deviation and 95% confidence half-width over splits.

    Parameters
    ----------
    values : array-like of shape (n,)
        One value per split.

    Returns
    -------
    dict of str to float
        ``mean``; ``std`` with ``ddof=1`` (``nan`` for ``n == 1``); ``ci95``,
        the half-width of the 95% Student-t interval of the mean,
        ``t.ppf(0.975, n - 1) * std / sqrt(n)`` (0 for ``n == 1``).

    Raises
    ------
    ScaleprobeError
        If ``values`` is empty or not one-dimensional.

    Examples
    --------
    >>> summarize([1.0, 2.0, 3.0])["std"]
    1.0
    """
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ScaleprobeError(
            f"values with shape {arr.shape!r} is not a non-empty 1-D array of per-split values"
        )
    n = arr.size
    mean = float(arr.mean())
    if n == 1:
        return {"mean": mean, "std": float("nan"), "ci95": 0.0}
    std = float(arr.std(ddof=1))
    ci95 = float(stats.t.ppf(0.975, n - 1) * std / np.sqrt(n))
    return {"mean": mean, "std": std, "ci95": ci95}
