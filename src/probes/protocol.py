"""The paper's evaluation protocol for one (train class, test class) pair.

For each of ``n_splits`` seeded splits, a probe is trained on ``n_train``
images of the training class and scored on ``n_test`` images of the test
class (disjoint images when the classes are the same). For the geometry, a
second probe with the same alpha is trained on that split's test images, and
the two coefficient vectors are compared by cosine and angle. The null
repeats both fits with the ratios shuffled by ``n_permutations`` seeded
permutations: it gives the R² and the angle that chance alone produces
(about 0 and 90°), and a permutation p-value for each.

Every alpha of the grid is evaluated on the same splits, with one
standardization per split and the whole grid, for the real ratios and all
their permutations, fitted at once (:func:`~src.probes.fit.fit_alpha_grid`),
so that a grid costs little more than one fit. A :class:`~src.probes.memo.ProbeMemo`
lets a sweep reuse whole evaluations and training-class fits across jobs.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from sklearn.utils.validation import check_X_y

from src.errors import ScaleprobeError
from src.probes._validation import check_alphas, check_count, check_seed
from src.probes.fit import AlphaGridFit, fit_alpha_grid
from src.probes.geometry import cosines
from src.probes.memo import ProbeMemo, content_key
from src.probes.memory import check_null_memory
from src.probes.metrics import r2_rows
from src.probes.nulls import permutation_pvalue, shuffled
from src.probes.progress import log_progress
from src.probes.splits import Split, make_splits

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
    r2_test_null : ndarray of shape (n_splits, n_permutations)
        R² on the test images of probes trained on each permutation of the
        training ratios; column 0 is ``r2_test_shuffled``.
    angle_deg_null : ndarray of shape (n_splits, n_permutations)
        Angle between the training- and test-image probes of each
        permutation; column 0 is ``angle_deg_shuffled``.
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
    r2_test_null: np.ndarray
    angle_deg_null: np.ndarray

    def metrics(self) -> dict[str, np.ndarray]:
        """Per-split values of each scalar metric.

        Returns
        -------
        dict of str to ndarray of shape (n_splits,)
            Keys, in order: ``r2_train``, ``r2_test``, ``nnz``, ``cos``,
            ``angle_deg``, ``r2_test_shuffled``, ``angle_deg_shuffled``.
        """
        return {name: getattr(self, name) for name in METRIC_NAMES}

    def pvalues(self) -> dict[str, float]:
        """Permutation p-values of the mean test R² and the mean angle over splits.

        The statistic is the mean over splits (``nan`` splits left out) of
        the real probes, against the same mean for each permutation: a high
        R² and a small angle are the evidence.

        Returns
        -------
        dict of str to float
            ``r2_test_pvalue`` and ``angle_deg_pvalue``, each in
            ``[1 / (n_permutations + 1), 1]`` (``nan`` if undefined).
        """
        return {
            "r2_test_pvalue": permutation_pvalue(
                float(np.nanmean(self.r2_test)),
                _nanmean_columns(self.r2_test_null),
                alternative="greater",
            ),
            "angle_deg_pvalue": permutation_pvalue(
                float(np.nanmean(self.angle_deg)),
                _nanmean_columns(self.angle_deg_null),
                alternative="less",
            ),
        }


def _nanmean_columns(values: np.ndarray) -> np.ndarray:
    """Mean over splits (rows) of each permutation, ``nan`` where a column is all ``nan``."""
    finite = np.isfinite(values)
    counts = finite.sum(axis=0)
    sums = np.where(finite, values, 0.0).sum(axis=0)
    return np.divide(sums, counts, out=np.full(values.shape[1], np.nan), where=counts > 0)


def _fit(memo: ProbeMemo | None, X: np.ndarray, Y: np.ndarray, alphas: np.ndarray) -> AlphaGridFit:
    """``fit_alpha_grid``, through the memo when there is one."""
    if memo is None:
        return fit_alpha_grid(X, Y, alphas)
    key = content_key("fit_alpha_grid", X, Y, alphas)
    return memo.get_or_compute(key, lambda: fit_alpha_grid(X, Y, alphas))


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
    n_permutations: int = 1,
    memo: ProbeMemo | None = None,
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
        null (``np.random.default_rng([seed, split_index])``, drawing the
        training and the test permutation of each null in turn, so the first
        permutations do not depend on ``n_permutations``).
    n_permutations : int, default=1
        Number of permutations of the ratios per split for the null; each
        costs two more fits per split (all alphas at once).
    memo : ProbeMemo or None, default=None
        Reuse a whole evaluation made before on the same inputs, and
        training-class fits made by another pair on the same training
        images; results are identical with and without it.
    train_class : str, default="train class"
        Name of the training class, for error messages and progress lines.
    test_class : str, default="test class"
        Name of the test class, for error messages and progress lines.

    Returns
    -------
    list of PairResult
        One result per alpha, in the order of ``alphas``. The same inputs give
        identical numbers.

    Raises
    ------
    ScaleprobeError
        If an argument is invalid, the classes have different numbers of
        features, a class has too few images, or the permutation null would
        not fit in the available memory (checked before allocating it, see
        :func:`~src.probes.memory.check_null_memory`).

    Notes
    -----
    Lasso fits use the exact LARS path (see
    :func:`~src.probes.fit.fit_alpha_grid`), so they match
    ``ScaleProbe(alpha)`` fits up to the latter's coordinate-descent
    tolerance.
    """
    alpha_grid = check_alphas(alphas)
    seed = check_seed(seed)
    n_permutations = check_count(n_permutations, "n_permutations")
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
    check_null_memory(
        n_grid=alpha_grid.size,
        n_splits=len(splits),
        n_train=n_train,
        n_test=n_test,
        n_features=XA.shape[1],
        n_permutations=n_permutations,
    )

    def compute() -> list[PairResult]:
        return _evaluate(
            XA, yA, XB, yB, splits, alpha_grid, seed, n_permutations, memo,
            what=f"{train_class}->{test_class} probes ({alpha_grid.size} alphas, "
            f"{n_permutations} permutations), splits",
        )  # fmt: skip

    if memo is None:
        results = compute()
    else:
        key = content_key(
            "evaluate_pair", XA, yA, XB, yB, alpha_grid, same_class, n_splits, n_train,
            n_test, seed, n_permutations,
        )  # fmt: skip
        results = memo.get_or_compute(key, compute)
    return [copy.deepcopy(r) for r in results]


def _evaluate(
    XA: np.ndarray,
    yA: np.ndarray,
    XB: np.ndarray,
    yB: np.ndarray,
    splits: list[Split],
    alpha_grid: np.ndarray,
    seed: int,
    n_permutations: int,
    memo: ProbeMemo | None,
    what: str,
) -> list[PairResult]:
    n_alphas, n_splits, d = alpha_grid.size, len(splits), XA.shape[1]
    out = {name: np.empty((n_alphas, n_splits)) for name in METRIC_NAMES}
    out["nnz"] = np.empty((n_alphas, n_splits), dtype=int)
    r2_null = np.empty((n_alphas, n_splits, n_permutations))
    angle_null = np.empty((n_alphas, n_splits, n_permutations))
    coef = np.empty((n_alphas, n_splits, d))
    coef_test = np.empty((n_alphas, n_splits, d))
    for i, split in log_progress(enumerate(splits), n_splits, what):
        rng = np.random.default_rng([seed, i])
        Xa, ya = XA[split.train], yA[split.train]
        Xb, yb = XB[split.test], yB[split.test]
        perms_a, perms_b = [], []
        for _ in range(n_permutations):
            perms_a.append(shuffled(ya, rng))
            perms_b.append(shuffled(yb, rng))
        # Only the training-class fit can recur in another pair (same images).
        fit_a = _fit(memo, Xa, np.column_stack([ya, *perms_a]), alpha_grid)
        fit_b = fit_alpha_grid(Xb, np.column_stack([yb, *perms_b]), alpha_grid)
        pred_b = fit_a.predict(Xb)  # (1 + n_permutations targets, n_alphas, n_test)
        cos = cosines(fit_a.coef, fit_b.coef)  # (targets, n_alphas)
        angle = np.degrees(np.arccos(cos))
        r2_test = r2_rows(yb, pred_b)  # (targets, n_alphas)
        pred_a = fit_a.predict(Xa, targets=slice(0, 1))[0]  # real ratios only
        out["r2_train"][:, i] = r2_rows(ya, pred_a)  # (n_alphas,)
        out["r2_test"][:, i] = r2_test[0]
        out["nnz"][:, i] = np.count_nonzero(fit_a.coef[0], axis=1)
        out["cos"][:, i] = cos[0]
        out["angle_deg"][:, i] = angle[0]
        r2_null[:, i] = r2_test[1:].T
        angle_null[:, i] = angle[1:].T
        coef[:, i] = fit_a.coef[0]
        coef_test[:, i] = fit_b.coef[0]
    out["r2_test_shuffled"] = r2_null[:, :, 0]
    out["angle_deg_shuffled"] = angle_null[:, :, 0]
    return [
        PairResult(
            alpha=float(alpha_grid[j]),
            **{name: out[name][j].copy() for name in METRIC_NAMES},
            coef=coef[j].copy(),
            coef_test=coef_test[j].copy(),
            r2_test_null=r2_null[j].copy(),
            angle_deg_null=angle_null[j].copy(),
        )
        for j in range(n_alphas)
    ]
