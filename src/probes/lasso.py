"""The paper's probe: the Lasso path (alpha = 0: least squares) as a :class:`GridProbe`.

The whole alpha grid for every target is one :func:`~src.probes.fit.fit_alpha_grid`
call (exact LARS-Lasso homotopy, minimum-norm least squares at alpha 0), so the
real ratios, their permutations and all alphas cost little more than one fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from src.probes.base import PenaltyGridProbe, check_targets, linear_predictions
from src.probes.fit import fit_alpha_grid

__all__ = ["LassoPathProbe"]


class LassoPathProbe(PenaltyGridProbe):
    """Standardize-then-Lasso probes over an alpha grid, many targets at once.

    Parameters
    ----------
    grid : sequence of float, default=(0.0,)
        Finite alphas ``>= 0`` on scikit-learn's scale
        (``(1/(2n)) RSS + alpha |w|_1``); 0 is ordinary least squares
        (minimum-norm when ``n_samples < n_features``).
    solver : {"lars", "cd"}, default="lars"
        Lasso solver for ``alpha > 0`` (see :func:`~src.probes.fit.fit_alpha_grid`).
    max_iter : int, default=10_000
        Maximum LARS steps, or coordinate-descent epochs.
    tol : float, default=1e-4
        Coordinate-descent tolerance (``solver="cd"`` and refits).

    Attributes
    ----------
    coef_ : ndarray of shape (n_targets, n_grid, n_features)
        Coefficients in the standardized space.
    intercept_ : ndarray of shape (n_targets, n_grid)
        Intercepts.
    mean_, scale_ : ndarray of shape (n_features,)
        Training feature means and scales.
    n_refit_ : int
        LARS solutions refitted by coordinate descent.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 5))
    >>> probe = LassoPathProbe(grid=[0.0, 0.1]).fit(X, np.c_[X[:, 0], X[:, 1]])
    >>> probe.coef_.shape, probe.predict(X).shape
    ((2, 2, 5), (2, 2, 40))
    """

    param_name = "alpha"
    grid_name = "alphas"  # the name its errors have always used

    def __init__(
        self,
        grid: Sequence[float] = (0.0,),
        *,
        solver: Literal["lars", "cd"] = "lars",
        max_iter: int = 10_000,
        tol: float = 1e-4,
    ):
        super().__init__(grid)
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X: ArrayLike, Y: ArrayLike) -> LassoPathProbe:
        """Fit the whole alpha grid for each column of ``Y``; return ``self``."""
        X, Y = check_targets(X, Y)
        fit = fit_alpha_grid(
            X, Y, self.grid_values(), solver=self.solver, max_iter=self.max_iter, tol=self.tol
        )
        self.coef_, self.intercept_ = fit.coef, fit.intercept
        self.mean_, self.scale_ = fit.mean, fit.scale
        self.n_refit_ = fit.n_refit
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predictions of every fitted probe, shape (n_targets, n_grid, n_samples)."""
        return linear_predictions(self, X)
