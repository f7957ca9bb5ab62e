"""The paper's evaluation protocol for one (train class, test class) pair.

For each of ``n_splits`` seeded splits, a probe is trained on ``n_train``
images of the training class and scored on ``n_test`` images of the test
class (disjoint images when the classes are the same). For the geometry, a
second probe with the same alpha is trained on that split's test images, and
the two coefficient vectors are compared by cosine and angle. The null
repeats both fits with the ratios shuffled by a seeded permutation: it gives
the R² and the angle that chance alone produces (about 0 and 90°).

Every alpha of the grid is evaluated on the same splits, with one
standardization per split and the whole grid fitted at once
(:func:`~src.probes.fit.fit_alpha_grid`), so that a grid costs little more
than one fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from sklearn.utils.validation import check_X_y

from src.errors import ScaleprobeError
from src.probes._validation import check_alphas, check_seed
from src.probes.fit import fit_alpha_grid
from src.probes.geometry import angle_deg, cosine
from src.probes.metrics import r2_rows
from src.probes.nulls import shuffled
from src.probes.splits import make_splits

__all__ = ["METRIC_NAMES", "PairResult", "evaluate_pair"]

METRIC_NAMES = (
    "r2_train",
    "r2_test",
    "nnz",
    "cos",
    "angle_deg",
    "r2_test_shuffled",
    "angle_deg_shuffled",
)


@dataclass
class PairResult:
    """Per-split results of one alpha on one class pair.

    Attributes
    ----------
    alpha : float
        Lasso strength (0: least squares).
    r2_train : ndarray of shape (n_splits,)
        R² of the probe on its own training images.
    r2_test : ndarray of shape (n_splits,)
        R² of the probe on the split's test images.
    nnz : ndarray of shape (n_splits,)
        Number of non-zero coefficients of the probe.
    cos : ndarray of shape (n_splits,)
        Signed cosine between the probe and a probe fitted on the test images
        (``nan`` where either has no non-zero coefficient).
    angle_deg : ndarray of shape (n_splits,)
        Angle in degrees, in ``[0, 180]``, between the same two probes.
    r2_test_shuffled : ndarray of shape (n_splits,)
        R² on the test images of a probe trained on shuffled ratios.
    angle_deg_shuffled : ndarray of shape (n_splits,)
        Angle between the shuffled-ratio probes of the training and the test
        images.
    coef : ndarray of shape (n_splits, n_features)
        Coefficients (standardized space) of the training-class probes.
    coef_test : ndarray of shape (n_splits, n_features)
        Coefficients of the probes fitted on the test images.
    """

    alpha: float
    r2_train: np.ndarray
    r2_test: np.ndarray
    nnz: np.ndarray
    cos: np.ndarray
    angle_deg: np.ndarray
    r2_test_shuffled: np.ndarray
    angle_deg_shuffled: np.ndarray
    coef: np.ndarray
    coef_test: np.ndarray

    def metrics(self) -> dict[str, np.ndarray]:
        """Per-split values of each scalar metric.

        Returns
        -------
        dict of str to ndarray of shape (n_splits,)
            Keys, in order: ``r2_train``, ``r2_test``, ``nnz``, ``cos``,
            ``angle_deg``, ``r2_test_shuffled``, ``angle_deg_shuffled``.
        """
        return {name: getattr(self, name) for name in METRIC_NAMES}


def evaluate_pair(
    X_train_class: ArrayLike,
    y_train_class: ArrayLike,
    X_test_class: ArrayLike,
    y_test_class: ArrayLike,
    *,
    alphas: Sequence[float],
    same_class: bool,
    n_splits: int,
    n_train: int,
    n_test: int,
    seed: int,
    train_class: str = "train class",
    test_class: str = "test class",
) -> list[PairResult]:
    """Run the probe protocol on one class pair for a grid of alphas.

    Parameters
    ----------
    X_train_class : array-like of shape (n_images_a, n_features)
        Features of the training class.
    y_train_class : array-like of shape (n_images_a,)
        Scale ratios of the training class.
    X_test_class : array-like of shape (n_images_b, n_features)
        Features of the test class (the same arrays as the training class when
        ``same_class``).
    y_test_class : array-like of shape (n_images_b,)
        Scale ratios of the test class.
    alphas : sequence of float
        Finite alphas ``>= 0``; every alpha uses the same splits.
    same_class : bool
        Whether the two classes are the same; then test images are disjoint
        from training images.
    n_splits : int
        Number of random splits.
    n_train : int
        Training images per split.
    n_test : int
        Test images per split.
    seed : int
        Seed of the splits (``make_splits``) and of the permutations of the
        null (``np.random.default_rng([seed, split_index])``).
    train_class : str, default="train class"
        Name of the training class, for error messages.
    test_class : str, default="test class"
        Name of the test class, for error messages.

    Returns
    -------
    list of PairResult
        One result per alpha, in the order of ``alphas``. The same inputs give
        identical numbers.

    Raises
    ------
    ScaleprobeError
        If an argument is invalid, the classes have different numbers of
        features, or a class has too few images.

    Notes
    -----
    Lasso fits use the exact LARS path (see
    :func:`~src.probes.fit.fit_alpha_grid`), so they match
    ``ScaleProbe(alpha)`` fits up to the latter's coordinate-descent
    tolerance.
    """
    alpha_grid = check_alphas(alphas)
    seed = check_seed(seed)
    XA, yA = check_X_y(X_train_class, y_train_class, y_numeric=True, dtype=np.float64)
    XB, yB = check_X_y(X_test_class, y_test_class, y_numeric=True, dtype=np.float64)
    if XA.shape[1] != XB.shape[1]:
        raise ScaleprobeError(
            f"X_test_class has {XB.shape[1]} features but X_train_class has {XA.shape[1]}; "
            "both classes must come from the same layer"
        )
    splits = make_splits(
        XA.shape[0],
        XB.shape[0],
        n_train=n_train,
        n_test=n_test,
        n_splits=n_splits,
        seed=seed,
        same_class=same_class,
        train_class=train_class,
        test_class=test_class,
    )
    n_alphas, d = alpha_grid.size, XA.shape[1]
    out = {name: np.empty((n_alphas, n_splits)) for name in METRIC_NAMES}
    out["nnz"] = np.empty((n_alphas, n_splits), dtype=int)
    coef = np.empty((n_alphas, n_splits, d))
    coef_test = np.empty((n_alphas, n_splits, d))
    for i, split in enumerate(splits):
        rng = np.random.default_rng([seed, i])
        Xa, ya = XA[split.train], yA[split.train]
        Xb, yb = XB[split.test], yB[split.test]
        fit_a = fit_alpha_grid(Xa, np.column_stack([ya, shuffled(ya, rng)]), alpha_grid)
        fit_b = fit_alpha_grid(Xb, np.column_stack([yb, shuffled(yb, rng)]), alpha_grid)
        pred_b = fit_a.predict(Xb)  # (2 targets, n_alphas, n_test)
        out["r2_train"][:, i] = r2_rows(ya, fit_a.predict(Xa)[0])
        out["r2_test"][:, i] = r2_rows(yb, pred_b[0])
        out["r2_test_shuffled"][:, i] = r2_rows(yb, pred_b[1])
        out["nnz"][:, i] = np.count_nonzero(fit_a.coef[0], axis=1)
        for j in range(n_alphas):
            out["cos"][j, i] = cosine(fit_a.coef[0, j], fit_b.coef[0, j])
            out["angle_deg"][j, i] = angle_deg(fit_a.coef[0, j], fit_b.coef[0, j])
            out["angle_deg_shuffled"][j, i] = angle_deg(fit_a.coef[1, j], fit_b.coef[1, j])
        coef[:, i] = fit_a.coef[0]
        coef_test[:, i] = fit_b.coef[0]
    return [
        PairResult(
            alpha=float(alpha_grid[j]),
            **{name: out[name][j].copy() for name in METRIC_NAMES},
            coef=coef[j].copy(),
            coef_test=coef_test[j].copy(),
        )
        for j in range(n_alphas)
    ]
