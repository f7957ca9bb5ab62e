"""Choosing a probe's hyperparameter on its training images only, never on the test split.

Two criteria, both computed inside each split's training images:

- :func:`inner_cv_r2`: the R² of out-of-fold predictions of a seeded K-fold
  split of the training images, for any :class:`~src.probes.base.GridProbe`
  (the report's linear vs non-linear table picks every probe's value by it,
  the same way for every probe);
- :func:`select_by_loo`: per split, the grid value of smallest leave-one-out
  error, which a probe gives in closed form (ridge's ``loo_mse_``, as
  scikit-learn's ``RidgeCV``): the result of a job with ``probe.value=gcv``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import clone

from src.errors import ScaleprobeError
from src.probes.base import GridProbe
from src.probes.metrics import r2_rows

if TYPE_CHECKING:  # the protocol imports this module
    from src.probes.protocol import PairResult

__all__ = ["SELECT_LOO", "inner_cv_r2", "select_by_loo"]

# probe.value that asks for the leave-one-out choice (RidgeCV's "GCV").
SELECT_LOO = "gcv"
# A seed stream of its own: the inner folds never reuse the null's permutations.
_INNER_STREAM = 1


def inner_cv_r2(
    probe: GridProbe, X: np.ndarray, y: np.ndarray, *, n_folds: int, seed: int, split: int
) -> np.ndarray:
    """R² of every grid value's out-of-fold predictions on one split's training images.

    Each fold's probe standardizes on the other folds only, as the protocol's
    probe does on the training split.

    Parameters
    ----------
    probe : GridProbe
        The unfitted probe with its grid.
    X : ndarray of shape (n_train, n_features)
        The split's training images.
    y : ndarray of shape (n_train,)
        Their targets (the real ones: only they choose).
    n_folds : int
        Folds (``>= 2``, at most ``n_train``).
    seed, split : int
        The folds are ``np.random.default_rng([seed, split, 1])``'s permutation
        of the images cut in ``n_folds`` near-equal parts.

    Returns
    -------
    ndarray of shape (n_grid,)
        One R² per grid value, over all training images.
    """
    order = np.random.default_rng([seed, split, _INNER_STREAM]).permutation(y.size)
    pred = np.empty((probe.grid_values().size, y.size))
    for held in np.array_split(order, n_folds):
        rest = np.setdiff1d(order, held)
        pred[:, held] = clone(probe).fit(X[rest], y[rest]).predict(X[held])[0]
    return r2_rows(y, pred)


def select_by_loo(path: list[PairResult]) -> PairResult:
    """Return the result whose every split uses the grid value of least leave-one-out error.

    Each permutation of the null chooses its own value the same way (the null
    repeats the whole procedure, selection included).

    Parameters
    ----------
    path : list of PairResult
        Every grid value's result, with ``loo_mse`` and ``loo_mse_null``.

    Returns
    -------
    PairResult
        ``alpha`` is ``nan``; ``alpha_selected`` holds each split's choice.

    Raises
    ------
    ScaleprobeError
        If the probe gives no leave-one-out errors.
    """
    if path[0].loo_mse is None:
        raise ScaleprobeError(
            f"probe.value={SELECT_LOO!r} needs leave-one-out errors, which the "
            f"{path[0].param} probe does not give; use probe=ridge or a number"
        )
    grid = np.array([r.alpha for r in path])
    best = np.argmin(np.stack([r.loo_mse for r in path]), axis=0)  # (n_splits,)
    best_null = np.argmin(np.stack([r.loo_mse_null for r in path]), axis=0)  # (n_splits, n_perm)
    rows = np.arange(best.size)
    values = {}
    for field in dataclasses.fields(path[0]):
        stacked = [getattr(r, field.name) for r in path]
        if not isinstance(stacked[0], np.ndarray):
            continue
        stacked = np.stack(stacked)  # (n_grid, n_splits, ...)
        if field.name.endswith("_null"):
            values[field.name] = np.take_along_axis(stacked, best_null[None], axis=0)[0]
        else:
            values[field.name] = stacked[best, rows]
    return dataclasses.replace(path[0], alpha=float("nan"), alpha_selected=grid[best], **values)
