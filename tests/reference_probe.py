"""An independent reference for the grid probes: one scikit-learn fit per alpha and target.

The protocol's probes (src.probes.lasso.LassoPathProbe, over
src.probes.fit.fit_alpha_grid) solve the whole alpha grid by LARS and
least squares at once; tests check them against this plain, separate
``LinearRegression`` / ``Lasso`` fit on the same standardization.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import Lasso, LinearRegression
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from src.probes.fit import _check_solver_params, standardization
from src.probes.validation import check_alpha

__all__ = ["ScaleProbe"]


class ScaleProbe(RegressorMixin, BaseEstimator):
    """Standardize-then-regress probe of the scale ratio.

    Parameters
    ----------
    alpha : float, default=0.0
        Lasso strength on scikit-learn's scale (``(1/(2n)) RSS + alpha |w|_1``);
        0 fits ordinary least squares with ``LinearRegression`` (minimum-norm
        when ``n_samples < n_features``).
    max_iter : int, default=10_000
        Maximum coordinate-descent epochs of the Lasso.
    tol : float, default=1e-4
        Lasso duality-gap tolerance (relative to ``|y|²``).

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
        Feature means of the training set.
    scale_ : ndarray of shape (n_features,)
        Feature standard deviations of the training set (1 for constant ones).
    coef_ : ndarray of shape (n_features,)
        Coefficients in the standardized space.
    intercept_ : float
        Intercept in the standardized space.
    n_nonzero_ : int
        Number of non-zero coefficients.
    n_features_in_ : int
        Number of features seen in ``fit``.

    See Also
    --------
    fit_alpha_grid : The same fits for many alphas and targets at once.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(50, 3))
    >>> y = X @ [1.0, 0.0, -2.0] + 0.5
    >>> probe = ScaleProbe().fit(X, y)
    >>> round(probe.score(X, y), 6)
    1.0
    """

    def __init__(self, alpha: float = 0.0, *, max_iter: int = 10_000, tol: float = 1e-4):
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X: ArrayLike, y: ArrayLike) -> ScaleProbe:
        """Standardize ``X`` on itself and fit the probe.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features.
        y : array-like of shape (n_samples,)
            Scale ratios.

        Returns
        -------
        self : ScaleProbe
            The fitted probe.

        Raises
        ------
        ScaleprobeError
            If ``alpha``, ``max_iter`` or ``tol`` is invalid.
        ValueError
            If ``X`` or ``y`` is malformed (scikit-learn's checks).
        """
        alpha = check_alpha(self.alpha)
        max_iter, tol = _check_solver_params(self.max_iter, self.tol)
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        self.mean_, self.scale_ = standardization(X)
        Xs = (X - self.mean_) / self.scale_
        with threadpool_limits(limits=1, user_api="blas"):
            if alpha == 0:
                model = LinearRegression().fit(Xs, y)
            else:
                model = Lasso(alpha=alpha, max_iter=max_iter, tol=tol).fit(Xs, y)
        self.coef_ = np.asarray(model.coef_, dtype=float).copy()
        self.intercept_ = float(model.intercept_)
        self.n_nonzero_ = int(np.count_nonzero(self.coef_))
        return self

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predict scale ratios, standardizing ``X`` with the training statistics.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.

        Returns
        -------
        ndarray of shape (n_samples,)
            Predicted ratios.
        """
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return ((X - self.mean_) / self.scale_) @ self.coef_ + self.intercept_
