"""Goodness of fit and summaries over splits.

R² is computed here rather than with ``sklearn.metrics.r2_score`` so that a
constant target gives ``nan`` (undefined) instead of a silently substituted
0 or 1, and so that the protocol can score many predictions at once.

R² alone conflates two failures of a cross-class probe: a wrong direction and
a wrong intercept. A probe trained on one class and tested on another whose
ratios sit higher or lower (or whose features carry an offset) can rank the
test images right and still score a negative R². Pearson's correlation and the
centered R² (R² after removing the predictions' mean offset) tell the two
apart: both stay high when only the intercept is wrong.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from src.errors import ScaleprobeError

__all__ = ["pearson_rows", "r2", "r2_centered_rows", "r2_rows", "summarize"]


def _check_rows(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Return both as float arrays, or raise if the predictions' last axis is not the targets'."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    if y_true.ndim != 1 or y_pred.shape[-1:] != y_true.shape:
        raise ScaleprobeError(
            f"y_pred with shape {y_pred.shape!r} does not match y_true with shape "
            f"{y_true.shape!r}; the last axis of y_pred must have length {y_true.shape[-1:]}"
        )
    return y_true, y_pred


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
    y_true, y_pred = _check_rows(y_true, y_pred)
    tss = np.sum((y_true - y_true.mean()) ** 2)
    rss = np.sum((y_pred - y_true) ** 2, axis=-1)
    if tss == 0:
        return np.full(rss.shape, np.nan)
    return 1.0 - rss / tss


def r2_centered_rows(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """R² of each row of predictions after shifting their mean onto the targets' mean.

    ``y_pred - mean(y_pred) + mean(y_true)`` keeps the probe's direction and
    slope and drops only its intercept, so a cross-class probe whose sole
    error is a class-dependent offset scores as well as within its class.
    With ``b = mean(y_pred - y_true)`` the bias,
    ``r2 = r2_centered - n * b**2 / TSS``; a wrong slope or sign still costs
    (``2 * y_true`` gives 0, ``-y_true`` gives -3).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True targets.
    y_pred : array-like of shape (..., n_samples)
        Predictions; the last axis runs over samples.

    Returns
    -------
    ndarray of shape (...)
        Centered R² per row, at most 1; about 0 for constant predictions (an
        all-zero Lasso predicts one value); ``nan`` where ``y_true`` is
        constant.

    Examples
    --------
    >>> r2_centered_rows([1.0, 2.0, 3.0], [11.0, 12.0, 13.0]).tolist()
    1.0
    """
    y_true, y_pred = _check_rows(y_true, y_pred)
    return r2_rows(y_true, y_pred - y_pred.mean(axis=-1, keepdims=True) + y_true.mean())


def pearson_rows(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """Pearson correlation of each row of predictions with the targets.

    Invariant to the predictions' offset and scale, it says whether a probe
    orders the test images by their target (the direction transfers) even
    where its intercept makes R² negative.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True targets.
    y_pred : array-like of shape (..., n_samples)
        Predictions; the last axis runs over samples.

    Returns
    -------
    ndarray of shape (...)
        Correlation per row, in ``[-1, 1]``; ``nan`` (undefined, without a
        warning) where ``y_true`` or the row is constant, e.g. an all-zero
        Lasso, which predicts one value and so has no direction, like its
        ``nan`` cosine.

    Examples
    --------
    >>> pearson_rows([1.0, 2.0, 3.0], [[5.0, 7.0, 9.0], [3.0, 2.0, 1.0], [4.0, 4.0, 4.0]]).tolist()
    [1.0, -1.0, nan]
    """
    y_true, y_pred = _check_rows(y_true, y_pred)
    dev_true = y_true - y_true.mean()
    dev_pred = y_pred - y_pred.mean(axis=-1, keepdims=True)
    cov = dev_pred @ dev_true
    norm = np.sqrt(np.sum(dev_pred**2, axis=-1) * np.sum(dev_true**2))
    # Exact constancy, not norm == 0: the mean of equal values can differ from them by rounding.
    defined = (np.ptp(y_pred, axis=-1) > 0) & (np.ptp(y_true) > 0) & (norm > 0)
    out = np.divide(cov, norm, out=np.full(cov.shape, np.nan), where=defined)
    return np.clip(out, -1.0, 1.0)


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
