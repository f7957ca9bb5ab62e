"""Linear probes of scale: standardization, least squares and Lasso.

A probe standardizes the features on its own training images (zero mean,
unit variance per feature map; a constant map gets scale 1) and regresses the
scale ratio on them. ``alpha = 0`` is ordinary least squares (the
minimum-norm solution when there are fewer images than features), ``alpha > 0``
is scikit-learn's Lasso, whose objective is
``(1 / (2 n)) * RSS + alpha * |w|_1`` (the paper's Eq. 2 drops the ``1/(2n)``;
its alpha = 0.001 only matches this scale). Coefficients are reported in the
standardized space, where the paper compares probes across classes.

:func:`fit_alpha_grid` fits one training set at many alphas for many targets
at once (the exact LARS-Lasso homotopy by default, or coordinate descent with
warm starts); :class:`~src.probes.lasso.LassoPathProbe` exposes it as the
protocol's probe.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import lars_path, lasso_path
from sklearn.utils.validation import check_array
from threadpoolctl import threadpool_limits

from src.errors import ScaleprobeError
from src.probes.base import check_targets
from src.probes.validation import check_alphas

__all__ = ["AlphaGridFit", "fit_alpha_grid", "standardization"]

# Relative KKT violation above which a LARS solution is polished on its active
# set and, failing that, refitted by coordinate descent (LARS solutions are
# exact up to rounding, ~1e-10 in practice, except near the end of the path
# where the active set nears n and LARS may miss one variable).
_KKT_RTOL = 1e-6
# Active-set polishing: outside variables whose |gradient| exceeds alpha by
# more than this (relative) enter; at most this many changes of the set.
_POLISH_RTOL = 1e-9
_POLISH_ROUNDS = 20
# Probe problems are small (hundreds of rows): BLAS threads only add
# synchronization, and on a loaded 2-core machine two OpenBLAS threads made a
# 220 x 1280 least-squares solve ~80x slower than one. Solves run with one
# BLAS thread (threadpoolctl is a scikit-learn dependency).
_BLAS_THREADS = 1
# Interpolated LARS coefficients this small relative to the largest are zero.
_ZERO_RTOL = 1e-12


def standardization(X: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and scale of a training set.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Training features only: statistics of test images must not leak in.

    Returns
    -------
    mean : ndarray of shape (n_features,)
        Column means; for a constant column, its value (so that it centers to
        exactly 0).
    scale : ndarray of shape (n_features,)
        Column standard deviations (``ddof=0``); 1 for a constant column.
    """
    X = np.asarray(X, dtype=float)
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    constant = X.max(axis=0) == X.min(axis=0)
    mean[constant] = X[0, constant]
    scale[constant] = 1.0
    return mean, scale


def _check_solver_params(max_iter: object, tol: object) -> tuple[int, float]:
    if isinstance(max_iter, bool) or not isinstance(max_iter, Integral) or max_iter < 1:
        raise ScaleprobeError(f"max_iter={max_iter!r} is invalid; use an integer >= 1")
    if (
        isinstance(tol, bool)
        or not isinstance(tol, Real)
        or not math.isfinite(float(tol))
        or tol <= 0
    ):
        raise ScaleprobeError(f"tol={tol!r} is invalid; use a finite float > 0")
    return int(max_iter), float(tol)


def _min_norm_lstsq(Xs: np.ndarray, Yc: np.ndarray) -> np.ndarray:
    """Minimum-norm least squares for centered data, all targets in one SVD."""
    coef, *_ = np.linalg.lstsq(Xs - Xs.mean(axis=0), Yc, rcond=None)
    return coef


def _cd_path(
    Xs_f: np.ndarray, yc: np.ndarray, alphas: np.ndarray, max_iter: int, tol: float
) -> np.ndarray:
    """Coordinate-descent Lasso coefs, shape (len(alphas), d), in the given order."""
    order = np.argsort(-alphas, kind="stable")
    _, coefs, _ = lasso_path(
        Xs_f, yc, alphas=alphas[order], precompute=False, max_iter=max_iter, tol=tol
    )
    out = np.empty((alphas.size, Xs_f.shape[1]))
    out[order] = coefs.T
    return out


def _lars_at(Xs: np.ndarray, yc: np.ndarray, alphas: np.ndarray, max_steps: int) -> np.ndarray:
    """Exact Lasso coefs at ``alphas`` (> 0) by interpolating the LARS path."""
    # LARS warns when the active set degenerates or it stops early; every
    # solution is KKT-checked (and refitted by coordinate descent) afterwards.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        knots, _, path = lars_path(
            Xs, yc, method="lasso", alpha_min=float(alphas.min()), max_iter=max_steps
        )
    out = np.empty((alphas.size, Xs.shape[1]))
    for i, a in enumerate(alphas):
        # knots decrease; the path is linear in alpha between consecutive knots
        j = int(np.searchsorted(-knots, -a, side="right"))
        if j == 0:
            out[i] = path[:, 0]
        elif j >= knots.size:
            out[i] = path[:, -1]
        else:
            hi, lo = knots[j - 1], knots[j]
            t = 0.0 if hi == lo else (hi - a) / (hi - lo)
            out[i] = (1.0 - t) * path[:, j - 1] + t * path[:, j]
    # A coefficient dropped from the active set reaches its knot as rounding
    # residue (~1e-20) instead of 0; left in, it counts as active with an
    # arbitrary sign. Zero such residues.
    tiny = _ZERO_RTOL * np.abs(out).max(axis=1, keepdims=True)
    out[np.abs(out) <= tiny] = 0.0
    return out


def _polish_active_set(
    Xs: np.ndarray, yc: np.ndarray, coef: np.ndarray, alpha: float
) -> np.ndarray | None:
    """Exact Lasso coefs near ``coef``, by solving on its active set; None if that fails.

    On the active set A with signs s the Lasso solution solves
    ``X_A' X_A w = X_A' y - n alpha s``. A variable whose sign flips leaves
    A; the outside variable violating ``|gradient| <= alpha`` most enters.
    Starting from a LARS solution this ends in 0-1 changes of A.
    """
    n = Xs.shape[0]
    active, signs = coef != 0, np.sign(coef)
    for _ in range(_POLISH_ROUNDS):
        A = np.flatnonzero(active)
        XA = Xs[:, A]
        try:
            w_A = np.linalg.solve(XA.T @ XA, XA.T @ yc - n * alpha * signs[A])
        except np.linalg.LinAlgError:
            return None
        flipped = np.sign(w_A) != signs[A]
        if flipped.any():
            active[A[flipped]] = False
            continue
        grad = Xs.T @ (yc - XA @ w_A) / n
        excess = np.where(active, -np.inf, np.abs(grad) - alpha)
        j = int(np.argmax(excess))
        if excess[j] <= _POLISH_RTOL * alpha:
            out = np.zeros_like(coef)
            out[A] = w_A
            return out
        active[j], signs[j] = True, np.sign(grad[j])
    return None


def _kkt_violation(
    Xs: np.ndarray, yc: np.ndarray, coefs: np.ndarray, alphas: np.ndarray
) -> np.ndarray:
    """Relative violation of the Lasso optimality conditions, one per alpha."""
    n = Xs.shape[0]
    grad = (yc[:, None] - Xs @ coefs.T).T @ Xs / n  # (n_alphas, d)
    excess = np.abs(grad) - alphas[:, None]
    active = coefs != 0
    on_active = np.where(active, np.abs(grad - alphas[:, None] * np.sign(coefs)), 0.0)
    return np.maximum(excess.max(axis=1), on_active.max(axis=1)) / alphas


@dataclass(frozen=True)
class AlphaGridFit:
    """Probes of several targets at several alphas on one training set.

    Attributes
    ----------
    alphas : ndarray of shape (n_alphas,)
        The grid, in the order given.
    coef : ndarray of shape (n_targets, n_alphas, n_features)
        Coefficients in the standardized space.
    intercept : ndarray of shape (n_targets, n_alphas)
        Intercepts.
    mean : ndarray of shape (n_features,)
        Training feature means.
    scale : ndarray of shape (n_features,)
        Training feature scales.
    n_refit : int
        Number of (target, alpha) LARS solutions that failed the optimality
        check, could not be repaired on their active set and were refitted by
        coordinate descent.
    """

    alphas: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    n_refit: int = 0

    def predict(self, X: ArrayLike, targets: slice = slice(None)) -> np.ndarray:
        """Predict with every probe, or with the probes of some targets only.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features, standardized here with the training statistics.
        targets : slice, default=slice(None)
            Which targets' probes (e.g. ``slice(0, 1)``: the real ratios, not
            their permutations).

        Returns
        -------
        ndarray of shape (n_selected_targets, n_alphas, n_samples)
            Predictions.
        """
        Xs = (check_array(X, dtype=np.float64) - self.mean) / self.scale
        return (
            np.einsum("tad,nd->tan", self.coef[targets], Xs) + self.intercept[targets][:, :, None]
        )


def fit_alpha_grid(
    X: ArrayLike,
    Y: ArrayLike,
    alphas: Sequence[float] | np.ndarray,
    *,
    solver: Literal["lars", "cd"] = "lars",
    max_iter: int = 10_000,
    tol: float = 1e-4,
) -> AlphaGridFit:
    """Fit probes for several targets over an alpha grid on one training set.

    The features are standardized once. ``alpha = 0`` entries are solved for
    all targets with one minimum-norm least-squares solve. ``alpha > 0``
    entries use, per target, the LARS-Lasso homotopy (``solver="lars"``),
    which follows the exact Lasso solution path in a few hundred steps and is
    interpolated at the requested alphas; any solution that fails the Lasso
    optimality (KKT) check by more than ``1e-6 * alpha`` is re-solved exactly
    on its corrected active set or, failing that, refitted by coordinate
    descent. ``solver="cd"`` uses ``lasso_path`` with warm starts
    instead. Both give the same fits as separate scikit-learn ``Lasso`` /
    ``LinearRegression`` fits on the standardized features (LARS exactly;
    coordinate descent up to ``tol``), much faster: shuffled
    targets at small alpha need 10^4-10^5 coordinate-descent epochs per fit.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Training features.
    Y : array-like of shape (n_samples,) or (n_samples, n_targets)
        One or several target vectors (e.g. the ratios and permutations of
        them).
    alphas : sequence of float
        Finite alphas ``>= 0``, any order.
    solver : {"lars", "cd"}, default="lars"
        Lasso solver for ``alpha > 0``.
    max_iter : int, default=10_000
        Maximum LARS steps, or coordinate-descent epochs.
    tol : float, default=1e-4
        Coordinate-descent tolerance (``solver="cd"`` and refits).

    Returns
    -------
    AlphaGridFit
        Coefficients of shape ``(n_targets, n_alphas, n_features)`` (a 1-D
        ``Y`` counts as one target) and intercepts.

    Raises
    ------
    ScaleprobeError
        If ``alphas``, ``solver``, ``max_iter`` or ``tol`` is invalid.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 5))
    >>> fit = fit_alpha_grid(X, X[:, 0], [0.0, 0.1])
    >>> fit.coef.shape
    (1, 2, 5)
    """
    alphas = check_alphas(alphas)
    if solver not in ("lars", "cd"):
        raise ScaleprobeError(f"solver={solver!r} is invalid; choose from ['lars', 'cd']")
    max_iter, tol = _check_solver_params(max_iter, tol)
    X, Y = check_targets(X, Y)
    with threadpool_limits(limits=_BLAS_THREADS, user_api="blas"):
        return _fit_alpha_grid(X, Y, alphas, solver, max_iter, tol)


def _distinct_columns(Xs: np.ndarray) -> np.ndarray:
    """Return the first column of each group of columns equal up to sign (to 1e-9), in order.

    Duplicated standardized columns (in a small training split, two sparse
    maps that fire on the same single image) make the Lasso solution
    non-unique and break LARS. Fitting on one column per group gives a Lasso
    solution of the full problem, with a group's weight on its first column.
    """
    first_nonzero = np.argmax(Xs != 0, axis=0)
    signs = np.sign(Xs[first_nonzero, np.arange(Xs.shape[1])])
    signs[signs == 0] = 1.0
    _, keep = np.unique(np.round(Xs * signs, 9), axis=1, return_index=True)
    return np.sort(keep)


def _lars_grid(
    Xs: np.ndarray, yc: np.ndarray, alphas: np.ndarray, max_iter: int, tol: float
) -> tuple[np.ndarray, int]:
    """Exact Lasso coefs at ``alphas`` (> 0) for one target, and the CD refits it took."""
    sol = _lars_at(Xs, yc, alphas, max_iter)
    bad = ~(_kkt_violation(Xs, yc, sol, alphas) <= _KKT_RTOL)  # nan is bad
    refit = []
    for i in np.flatnonzero(bad):
        polished = _polish_active_set(Xs, yc, sol[i], alphas[i])
        if (
            polished is not None
            and _kkt_violation(Xs, yc, polished[None], alphas[i : i + 1])[0] <= _KKT_RTOL
        ):
            sol[i] = polished
        else:
            refit.append(i)
    if refit:
        # One coordinate-descent path over the remaining alphas, from zero: a start
        # at a LARS solution that failed this badly made it ~5x slower, not faster.
        sol[refit] = _cd_path(np.asfortranarray(Xs), yc, alphas[refit], max_iter, tol)
    return sol, len(refit)


def _fit_alpha_grid(
    X: np.ndarray, Y: np.ndarray, alphas: np.ndarray, solver: str, max_iter: int, tol: float
) -> AlphaGridFit:
    mean, scale = standardization(X)
    Xs = (X - mean) / scale
    y_mean = Y.mean(axis=0)
    Yc = Y - y_mean
    n_targets, d = Y.shape[1], X.shape[1]
    coef = np.zeros((n_targets, alphas.size, d))
    zero = alphas == 0
    if zero.any():
        coef[:, zero, :] = _min_norm_lstsq(Xs, Yc).T[:, None, :]
    pos = np.flatnonzero(~zero)
    n_refit = 0
    a_pos = alphas[pos]
    if pos.size and solver == "cd":
        Xs_f = np.asfortranarray(Xs)
        for k in range(n_targets):
            coef[k, pos] = _cd_path(Xs_f, Yc[:, k], a_pos, max_iter, tol)
    elif pos.size:
        keep = _distinct_columns(Xs)
        X_keep = Xs[:, keep]
        for k in range(n_targets):
            sol, refits = _lars_grid(X_keep, Yc[:, k], a_pos, max_iter, tol)
            coef[k][np.ix_(pos, keep)] = sol
            n_refit += refits
    intercept = y_mean[:, None] - coef @ Xs.mean(axis=0)
    return AlphaGridFit(
        alphas=alphas, coef=coef, intercept=intercept, mean=mean, scale=scale, n_refit=n_refit
    )
