"""Stable maps: how often the Lasso selects each feature map across refits.

One Lasso fit selects a set of feature maps (its non-zero coefficients), but
with correlated maps that set moves from one training sample to the next. A
map that a scale-carrying layer really uses is selected by (nearly) every fit:
over the protocol's splits and over bootstrap resamples of the training
images. This module counts those selections (stability selection,
Meinshausen & Bühlmann 2010) and keeps the maps selected in at least a
threshold fraction of the fits, with their mean coefficient. Selection is
defined for the Lasso only: a ridge probe's coefficients are all non-zero.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from src.errors import ScaleprobeError
from src.probes.lasso import LassoPathProbe
from src.probes.validation import check_alpha, check_count, check_seed

__all__ = ["StableMaps", "bootstrap_coefs", "stable_maps"]

# Seeds the bootstrap apart from the splits and permutations drawn from the same seed.
_BOOTSTRAP_STREAM = 5


@dataclass(frozen=True)
class StableMaps:
    """Selection frequencies of the feature maps over a set of Lasso fits.

    Attributes
    ----------
    frequency : ndarray of shape (n_features,)
        Fraction of all fits with a non-zero coefficient for each map.
    frequency_splits : ndarray of shape (n_features,)
        The same over the protocol's splits only.
    frequency_bootstrap : ndarray of shape (n_features,) or None
        The same over the bootstrap fits only (``None`` without any).
    mean_coef : ndarray of shape (n_features,)
        Mean coefficient (standardized space) over the fits that selected the
        map: its typical effect when it is in the model (``nan`` if never).
    threshold : float
        The selection frequency a map needs to be stable.
    """

    frequency: np.ndarray
    frequency_splits: np.ndarray
    frequency_bootstrap: np.ndarray | None
    mean_coef: np.ndarray
    threshold: float

    @property
    def stable(self) -> np.ndarray:
        """Indices of the maps with ``frequency >= threshold``, most frequent and largest first."""
        index = np.flatnonzero(self.frequency >= self.threshold)
        order = np.lexsort((-np.abs(self.mean_coef[index]), -self.frequency[index]))
        return index[order]

    def to_json(self) -> str:
        """Serialize for the job's ``stability.json`` artifact (no pickle)."""

        def listed(values: np.ndarray | None) -> list | None:
            if values is None:
                return None
            return [None if not np.isfinite(v) else float(v) for v in values]

        return json.dumps(
            {
                "threshold": self.threshold,
                "stable": self.stable.tolist(),
                "frequency": listed(self.frequency),
                "frequency_splits": listed(self.frequency_splits),
                "frequency_bootstrap": listed(self.frequency_bootstrap),
                "mean_coef": listed(self.mean_coef),
            }
        )


def bootstrap_coefs(
    X: ArrayLike, y: ArrayLike, *, alpha: float, n_bootstrap: int, n_train: int, seed: int
) -> np.ndarray:
    """Coefficients of Lasso probes fitted on bootstrap resamples of the training images.

    Parameters
    ----------
    X : array-like of shape (n_images, n_features)
        Features of the training class (its whole pool).
    y : array-like of shape (n_images,)
        Targets of those images.
    alpha : float
        The job's Lasso strength.
    n_bootstrap : int
        Number of resamples (0: none).
    n_train : int
        Images per resample, drawn with replacement (the protocol's training size).
    seed : int
        Seeds the resamples (``np.random.default_rng([seed, 5])``).

    Returns
    -------
    ndarray of shape (n_bootstrap, n_features)
        One standardized-space coefficient vector per resample.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    alpha = check_alpha(alpha)
    n_bootstrap = check_count(n_bootstrap, "stability.n_bootstrap", minimum=0)
    n_train = check_count(n_train, "n_train", minimum=2)
    rng = np.random.default_rng([check_seed(seed), _BOOTSTRAP_STREAM])
    out = np.empty((n_bootstrap, X.shape[1]))
    for b in range(n_bootstrap):
        rows = rng.integers(0, X.shape[0], size=n_train)
        out[b] = LassoPathProbe(grid=[alpha]).fit(X[rows], y[rows]).coef_[0, 0]
    return out


def stable_maps(
    split_coef: ArrayLike, bootstrap_coef: ArrayLike | None = None, *, threshold: float = 0.8
) -> StableMaps:
    """Return the selection frequency and mean coefficient of each map over all fits.

    Parameters
    ----------
    split_coef : array-like of shape (n_splits, n_features)
        The protocol's coefficients per split (``PairResult.coef``).
    bootstrap_coef : array-like of shape (n_bootstrap, n_features) or None
        Coefficients of the bootstrap fits (:func:`bootstrap_coefs`).
    threshold : float, default=0.8
        Selection frequency, in ``(0, 1]``, a map needs to be stable.

    Returns
    -------
    StableMaps
    """
    if not (isinstance(threshold, int | float) and 0.0 < threshold <= 1.0):
        raise ScaleprobeError(f"stability.threshold={threshold!r} must be in (0, 1]")
    split_coef = np.atleast_2d(np.asarray(split_coef, dtype=np.float64))
    boot = None if bootstrap_coef is None else np.asarray(bootstrap_coef, dtype=np.float64)
    if boot is not None and boot.shape[0] == 0:
        boot = None
    coefs = split_coef if boot is None else np.vstack([split_coef, boot])
    selected = coefs != 0
    n_selected = selected.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_coef = np.where(selected, coefs, 0.0).sum(axis=0) / n_selected
    return StableMaps(
        frequency=selected.mean(axis=0),
        frequency_splits=(split_coef != 0).mean(axis=0),
        frequency_bootstrap=None if boot is None else (boot != 0).mean(axis=0),
        mean_coef=np.where(n_selected > 0, mean_coef, np.nan),
        threshold=float(threshold),
    )
