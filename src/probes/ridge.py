"""Ridge probes: the whole alpha grid and every target from one SVD of a split's features.

With the standardized, centered training features ``Xc = U diag(s) V'``, the
ridge solution of scikit-learn's ``Ridge`` (``|y - Xw - b|^2 + alpha |w|^2``,
intercept unpenalized) is ``w = V diag(s / (s^2 + alpha)) U' yc``: after one
SVD each alpha and each target (the real ratios and their permutations) is a
rescaling and a product, so a grid of alphas and a null of permutations cost
little more than one fit.

The same SVD gives each fit's leave-one-out errors in closed form
(scikit-learn's ``RidgeCV`` "GCV", ``gcv_mode="svd"``): with the hat matrix
``H = U diag(s^2 / (s^2 + alpha)) U' + 1/n`` (the intercept's ``1/n``), the
error on image ``i`` of the fit without it is ``(y_i - yhat_i) / (1 - H_ii)``.
Their mean square per alpha (``loo_mse_``) picks alpha on the training images
only (``alpha_``, and ``probe.value=gcv`` in a job).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from src.probes.base import PenaltyGridProbe, check_targets, linear_predictions
from src.probes.fit import standardization

__all__ = ["RidgeProbe"]

# 1 - H_ii below this: the fit interpolates image i (leave-one-out undefined).
_LEVERAGE_TOL = 1e-10


def _shrinkage(s: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Return ``s / (s^2 + alpha)`` per alpha and singular value, 0 for a null direction.

    A singular value below the rank cut (``s.max() * eps * size``) is treated as
    0, so alpha 0 gives the minimum-norm least-squares solution rather than
    amplified rounding noise.

    Parameters
    ----------
    s : ndarray of shape (k,)
        Singular values (or square roots of kernel eigenvalues), decreasing.
    alphas : ndarray of shape (n_grid,)
        Penalties ``>= 0``.

    Returns
    -------
    ndarray of shape (n_grid, k)
    """
    cut = s.max(initial=0.0) * s.size * np.finfo(float).eps
    s = np.where(s > cut, s, 0.0)
    denom = s**2 + alphas[:, None]
    return np.divide(s, denom, out=np.zeros_like(denom), where=denom > 0)


def _loo_mse(U: np.ndarray, fitted: np.ndarray, UtY: np.ndarray, Yc: np.ndarray) -> np.ndarray:
    """Leave-one-out mean squared error of every ridge fit, shape (n_targets, n_grid).

    Parameters
    ----------
    U : ndarray of shape (n, k)
        Left singular vectors of the centered training features.
    fitted : ndarray of shape (n_grid, k)
        ``s^2 / (s^2 + alpha)`` per alpha (0 for a null direction).
    UtY : ndarray of shape (k, n_targets)
        ``U' yc``.
    Yc : ndarray of shape (n, n_targets)
        Centered training targets.

    Returns
    -------
    ndarray of shape (n_targets, n_grid)
        ``inf`` where a fit interpolates an image (``H_ii = 1``, e.g. alpha 0
        with fewer images than features): it cannot predict a left-out image.
    """
    n = U.shape[0]
    leverage = (U**2) @ fitted.T + 1.0 / n  # (n, n_grid): H_ii per alpha
    resid = Yc[None] - U @ (fitted[:, :, None] * UtY[None])  # (n_grid, n, n_targets)
    keep = 1.0 - leverage.T  # (n_grid, n)
    ok = (keep > _LEVERAGE_TOL).all(axis=1)  # (n_grid,)
    loo = resid / np.where(ok[:, None], keep, 1.0)[:, :, None]
    mse = np.where(ok[:, None], np.mean(loo**2, axis=1), np.inf)  # (n_grid, n_targets)
    return np.ascontiguousarray(mse.T)


class RidgeProbe(PenaltyGridProbe):
    """Standardize-then-ridge probes over an alpha grid, many targets at once.

    Parameters
    ----------
    grid : sequence of float, default=(1.0,)
        Finite penalties ``>= 0`` on scikit-learn's ``Ridge`` scale
        (``RSS + alpha |w|^2``, not divided by n); 0 is minimum-norm least
        squares, the Lasso path's alpha 0.

    Attributes
    ----------
    coef_ : ndarray of shape (n_targets, n_grid, n_features)
        Coefficients in the standardized space.
    intercept_ : ndarray of shape (n_targets, n_grid)
        Intercepts (the training targets' means: the features are centered).
    mean_, scale_ : ndarray of shape (n_features,)
        Training feature means and scales.
    loo_mse_ : ndarray of shape (n_targets, n_grid)
        Leave-one-out mean squared error of every fit on its training images
        (``inf`` where a fit interpolates), ``RidgeCV``'s criterion.
    alpha_ : ndarray of shape (n_targets,)
        Per target, the grid's alpha of smallest ``loo_mse_`` (the first on a
        tie), as ``RidgeCV(alphas=grid, alpha_per_target=True).alpha_``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 5))
    >>> probe = RidgeProbe(grid=[0.1, 10.0]).fit(X, np.c_[X[:, 0], X[:, 1]])
    >>> probe.coef_.shape, probe.predict(X).shape
    ((2, 2, 5), (2, 2, 40))
    """

    param_name = "ridge_alpha"
    gives_loo = True

    def __init__(self, grid: Sequence[float] = (1.0,)):
        super().__init__(grid)

    def fit(self, X: ArrayLike, Y: ArrayLike) -> RidgeProbe:
        """Fit the whole alpha grid for each column of ``Y`` from one SVD; return ``self``."""
        X, Y = check_targets(X, Y)
        alphas = self.grid_values()
        self.mean_, self.scale_ = standardization(X)
        Xs = (X - self.mean_) / self.scale_
        x_mean, y_mean = Xs.mean(axis=0), Y.mean(axis=0)  # x_mean: ~0, rounding only
        U, s, Vt = np.linalg.svd(Xs - x_mean, full_matrices=False)
        UtY = U.T @ (Y - y_mean)  # (k, n_targets)
        shrink = _shrinkage(s, alphas)  # (n_grid, k)
        self.loo_mse_ = _loo_mse(U, shrink * s, UtY, Y - y_mean)
        self.alpha_ = alphas[np.argmin(self.loo_mse_, axis=1)]
        # (n_grid, n_targets, k) @ (k, d): one matrix product per alpha
        coef = (shrink[:, None, :] * UtY.T[None]) @ Vt
        self.coef_ = np.ascontiguousarray(coef.transpose(1, 0, 2))
        self.intercept_ = y_mean[:, None] - self.coef_ @ x_mean
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predictions of every fitted probe, shape (n_targets, n_grid, n_samples)."""
        return linear_predictions(self, X)
