"""The probe seam: what the protocol needs from a probe, whatever it fits.

A probe is a scikit-learn style estimator with one declared hyperparameter
(:attr:`GridProbe.param_name`, e.g. ``"alpha"``) and a grid of its values
(the constructor's ``grid``). One :meth:`~GridProbe.fit` call fits the whole
grid for many targets at once (the real ratios and their permutations: the
protocol's null), and :meth:`~GridProbe.predict` returns every fitted probe's
predictions. A linear probe also sets ``coef_`` (standardized space), and the
protocol then adds the geometry (cosine, angle, non-zeros); any other probe
gets R² and its permutation null only.

Adding a probe is one subclass plus one YAML file in ``conf/probe/`` whose
``_target_`` names it, e.g. for a ridge probe::

    class RidgeProbe(GridProbe):
        param_name = "ridge_alpha"

        def fit(self, X, Y):
            X, Y = check_targets(X, Y)
            self.mean_, self.scale_ = standardization(X)
            ...  # coef_ (n_targets, n_grid, n_features), intercept_ (n_targets, n_grid)
            return self

        def predict(self, X):
            return linear_predictions(self, X)

    # conf/probe/my_ridge.yaml (src.probes.ridge is the repository's own ridge)
    _target_: mypackage.RidgeProbe
    name: my_ridge
    grid: [0.1, 1.0, 10.0]
    value: 1.0
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_array, check_is_fitted

from src.errors import ScaleprobeError
from src.probes.validation import check_alphas

__all__ = ["GridProbe", "PenaltyGridProbe", "check_targets", "linear_predictions"]


class GridProbe(BaseEstimator, ABC):
    """Base class of probes that fit a whole hyperparameter grid for many targets at once.

    Parameters
    ----------
    grid : sequence of float
        Values of the hyperparameter :attr:`param_name`, fitted together; the
        order is kept in every fitted array.

    Attributes
    ----------
    param_name : str
        Class attribute: the hyperparameter's name (an MLflow param of each job).
    coef_ : ndarray of shape (n_targets, n_grid, n_features)
        Only for linear probes: coefficients in the standardized space, which
        the protocol compares across probes (cosine, angle, non-zeros).
    n_unconverged_ : int
        Only for iterative probes: fits that stopped at their iteration limit;
        the protocol logs a warning line naming the split when it is not 0.
    loo_mse_ : ndarray of shape (n_targets, n_grid)
        Only for probes with :attr:`gives_loo`: each fit's leave-one-out mean
        squared error on its training images (``probe.value=gcv`` picks by it).
    """

    param_name: ClassVar[str] = "value"
    gives_loo: ClassVar[bool] = False

    def __init__(self, grid: Sequence[float] = (0.0,)):
        self.grid = grid

    def grid_values(self) -> np.ndarray:
        """Return the grid as a 1-D float array (validated by the subclass's rules).

        Raises
        ------
        ScaleprobeError
            If the grid is empty or not 1-D numbers.
        """
        values = self.grid
        if isinstance(values, str | bytes) or np.ndim(values) != 1 or len(values) == 0:
            raise ScaleprobeError(
                f"{type(self).__name__}: grid={values!r} is not a non-empty 1-D sequence "
                f"of {self.param_name} values"
            )
        return np.asarray(values, dtype=float)

    @abstractmethod
    def fit(self, X: ArrayLike, Y: ArrayLike) -> GridProbe:
        """Fit every grid value for every target column of ``Y``; return ``self``.

        ``X`` has shape (n_samples, n_features), ``Y`` (n_samples,) or
        (n_samples, n_targets) (see :func:`check_targets`).
        """

    @abstractmethod
    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predictions of every fitted probe, shape (n_targets, n_grid, n_samples)."""


def check_targets(X: ArrayLike, Y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate features and one or several target columns for :meth:`GridProbe.fit`.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    Y : ndarray of shape (n_samples, n_targets)
        A 1-D ``Y`` becomes one column.

    Raises
    ------
    ScaleprobeError
        If ``Y`` does not have one row per row of ``X``.
    """
    X = check_array(X, dtype=np.float64)
    Y = check_array(Y, dtype=np.float64, ensure_2d=False)
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.ndim != 2 or Y.shape[0] != X.shape[0]:
        raise ScaleprobeError(
            f"Y with shape {Y.shape!r} does not match X with {X.shape[0]} rows; "
            "pass one target value per row, shape (n_samples,) or (n_samples, n_targets)"
        )
    return X, Y


def linear_predictions(probe: GridProbe, X: ArrayLike) -> np.ndarray:
    """Predictions of a fitted linear probe with ``mean_``, ``scale_``, ``coef_``, ``intercept_``.

    Returns
    -------
    ndarray of shape (n_targets, n_grid, n_samples)
        ``((X - mean_) / scale_) @ coef_ + intercept_`` for every probe.
    """
    check_is_fitted(probe, "coef_")
    Xs = (check_array(X, dtype=np.float64) - probe.mean_) / probe.scale_
    return np.einsum("tad,nd->tan", probe.coef_, Xs) + probe.intercept_[:, :, None]


class PenaltyGridProbe(GridProbe):
    """A :class:`GridProbe` whose grid holds penalties: finite floats ``>= 0``.

    The Lasso's alphas, ridge's, kernel ridge's and the MLP's L2 penalties
    are all checked by this one rule; an error names the bad value as
    ``<grid_name>[i]`` (default: :attr:`param_name`).
    """

    grid_name: ClassVar[str | None] = None

    def grid_values(self) -> np.ndarray:
        """Return the penalties, each a finite float ``>= 0``.

        Raises
        ------
        ScaleprobeError
            Naming the bad penalty, e.g. ``ridge_alpha[1]=-1``.
        """
        return check_alphas(self.grid, self.grid_name or self.param_name)
