"""A probe that lives outside src/ and conf/: the seam's done-when test adds it.

``RidgeProbe`` is one class (a ridge regression over a grid of penalties, all
targets at once through one SVD, with ``coef_``: the protocol adds the
geometry); ``RidgeNoCoefProbe`` hides ``coef_`` (the protocol then reports R²
and its null only).
"""

from __future__ import annotations

import numpy as np

from src.probes.base import GridProbe, check_targets, linear_predictions
from src.probes.fit import standardization

__all__ = ["RidgeNoCoefProbe", "RidgeProbe"]


class RidgeProbe(GridProbe):
    """Standardize, then ridge with penalty ``l2 * n_samples`` (scikit-learn's Ridge scale / n)."""

    param_name = "l2"

    def fit(self, X, Y):
        """Fit every penalty of the grid for every target column."""
        X, Y = check_targets(X, Y)
        grid = self.grid_values()
        self.mean_, self.scale_ = standardization(X)
        Xs = (X - self.mean_) / self.scale_
        x_mean, y_mean = Xs.mean(axis=0), Y.mean(axis=0)
        U, s, Vt = np.linalg.svd(Xs - x_mean, full_matrices=False)
        UtY = U.T @ (Y - y_mean)  # (k, n_targets)
        s = np.where(s > s.max() * max(Xs.shape) * np.finfo(float).eps, s, 0.0)  # rank cut
        denom = s**2 + X.shape[0] * grid[:, None]  # (n_grid, k)
        shrink = np.divide(s, denom, out=np.zeros_like(denom), where=denom > 0)
        self.coef_ = np.einsum("gk,kt,kd->tgd", shrink, UtY, Vt)
        self.intercept_ = y_mean[:, None] - self.coef_ @ x_mean
        return self

    def predict(self, X):
        """Predictions of every fitted probe, (n_targets, n_grid, n_samples)."""
        return linear_predictions(self, X)


class RidgeNoCoefProbe(RidgeProbe):
    """The same fits, exposed through ``predict`` only (as a non-linear probe would be)."""

    def fit(self, X, Y):
        """Fit as RidgeProbe, keeping the coefficients private."""
        super().fit(X, Y)
        self._coef, self._intercept = self.coef_, self.intercept_
        del self.coef_
        return self

    def predict(self, X):
        """Predictions of every fitted probe, (n_targets, n_grid, n_samples)."""
        Xs = (np.asarray(X, dtype=float) - self.mean_) / self.scale_
        return np.einsum("tgd,nd->tgn", self._coef, Xs) + self._intercept[:, :, None]
