"""MLP probes: scikit-learn's ``MLPRegressor``, seeded, with early stopping.

The non-linear probe that learns its own features. Each target (the real
ratios and every permutation) and each L2 penalty of the grid is one network
trained from the same seed, so the null differs from the real probe only in
the ratios. Early stopping holds out ``validation_fraction`` of the
*training* split (``MLPRegressor(early_stopping=True)`` draws it from what
``fit`` gets), so the test images never choose when to stop. The target is
standardized on the training split too (its mean and scale undone in
``predict``): a ratio in (0, 1) with a spread of ~0.1 is otherwise far below
the scale of the network's initial outputs, and early stopping ends the fit
before it has learnt anything (measured: test R² -266 raw, -0.1 standardized,
on a planted tanh target with n=80, d=192). A fit that hits
``max_iter`` first is counted in ``n_unconverged_`` (its ``ConvergenceWarning``
caught), which the protocol reports as one warning line naming the split.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor
from sklearn.utils.validation import check_array, check_is_fitted

from src.probes.base import PenaltyGridProbe, check_targets
from src.probes.fit import standardization

__all__ = ["MLPProbe"]


class MLPProbe(PenaltyGridProbe):
    """Standardize-then-MLP probes over an L2-penalty grid, many targets at once.

    Parameters
    ----------
    grid : sequence of float, default=(1e-4,)
        Finite L2 penalties ``>= 0`` (``MLPRegressor``'s ``alpha``).
    hidden_layer_sizes : sequence of int, default=(64,)
        Units per hidden layer.
    max_iter : int, default=500
        Epochs at most; a fit still improving then counts as unconverged.
    validation_fraction : float, default=0.2
        Part of the training split held out for early stopping.
    n_iter_no_change : int, default=10
        Epochs without validation improvement before stopping.
    learning_rate_init : float, default=1e-3
        Adam's step size.
    random_state : int, default=0
        Seed of the weights, the batches and the validation part: the same
        seed gives the same numbers.

    Attributes
    ----------
    models_ : list of list of MLPRegressor
        ``models_[t][g]``: the network of target ``t`` at penalty ``g``.
    n_unconverged_ : int
        Fits that reached ``max_iter`` before early stopping.
    mean_, scale_ : ndarray of shape (n_features,)
        Training feature means and scales.
    y_mean_, y_scale_ : ndarray of shape (n_targets,)
        Training target means and scales (scale 1 for a constant target).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 5))
    >>> probe = MLPProbe(grid=[1e-4, 1e-2], max_iter=50).fit(X, np.c_[X[:, 0], X[:, 1]])
    >>> probe.predict(X).shape
    (2, 2, 40)
    """

    param_name = "mlp_alpha"

    def __init__(
        self,
        grid: Sequence[float] = (1e-4,),
        *,
        hidden_layer_sizes: Sequence[int] = (64,),
        max_iter: int = 500,
        validation_fraction: float = 0.2,
        n_iter_no_change: int = 10,
        learning_rate_init: float = 1e-3,
        random_state: int = 0,
    ):
        super().__init__(grid)
        self.hidden_layer_sizes = hidden_layer_sizes
        self.max_iter = max_iter
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.learning_rate_init = learning_rate_init
        self.random_state = random_state

    def _network(self, alpha: float) -> MLPRegressor:
        """Return the unfitted network this probe trains at penalty ``alpha``."""
        return MLPRegressor(
            hidden_layer_sizes=tuple(self.hidden_layer_sizes),
            alpha=alpha,
            max_iter=self.max_iter,
            early_stopping=True,
            validation_fraction=self.validation_fraction,
            n_iter_no_change=self.n_iter_no_change,
            learning_rate_init=self.learning_rate_init,
            random_state=self.random_state,
        )

    def fit(self, X: ArrayLike, Y: ArrayLike) -> MLPProbe:
        """Train one network per target and penalty; return ``self``."""
        X, Y = check_targets(X, Y)
        alphas = self.grid_values()
        self.mean_, self.scale_ = standardization(X)
        Xs = (X - self.mean_) / self.scale_
        self.y_mean_ = Y.mean(axis=0)
        spread = Y.std(axis=0)
        self.y_scale_ = np.where(spread > 0, spread, 1.0)
        self.n_unconverged_ = 0
        self.models_ = []
        for y in ((Y - self.y_mean_) / self.y_scale_).T:
            row = []
            for alpha in alphas:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", ConvergenceWarning)
                    row.append(self._network(float(alpha)).fit(Xs, y))
                self.n_unconverged_ += any(
                    issubclass(w.category, ConvergenceWarning) for w in caught
                )
            self.models_.append(row)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predictions of every fitted probe, shape (n_targets, n_grid, n_samples)."""
        check_is_fitted(self, "models_")
        Xs = (check_array(X, dtype=np.float64) - self.mean_) / self.scale_
        scaled = np.array([[model.predict(Xs) for model in row] for row in self.models_])
        return scaled * self.y_scale_[:, None, None] + self.y_mean_[:, None, None]
