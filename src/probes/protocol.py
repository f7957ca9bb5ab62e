"""The paper's evaluation protocol for one (train class, test class) pair.

For each of ``n_splits`` seeded splits, a probe is trained on ``n_train``
images of the training class and scored on ``n_test`` images of the test
class (disjoint images when the classes are the same). For the geometry of
a linear probe (one with ``coef_``), a second probe with the same
hyperparameter is trained on that split's test images, and the two
coefficient vectors are compared by cosine and angle. Beside the test R²,
Pearson's correlation and the centered R² (see :mod:`src.probes.metrics`)
say whether a cross-class probe that loses R² has the wrong direction or only
the wrong intercept. The null
repeats both fits with the ratios shuffled by ``n_permutations`` seeded
permutations: it gives the R² and the angle that chance alone produces
(about 0 and 90°), and a permutation p-value for each.

The probe is any :class:`~src.probes.base.GridProbe` (the Lasso path,
:class:`~src.probes.lasso.LassoPathProbe`, by default). Every value of its
grid is evaluated on the same splits, the whole grid for the real ratios and
all their permutations fitted in one call, so that a grid costs little more
than one fit. A :class:`~src.probes.memo.ProbeMemo`
lets a sweep reuse whole evaluations and training-class fits across jobs
in one process; a :class:`~src.probes.disk_memo.ResultStore` keeps each
split of an evaluation on disk, so jobs in other processes share them.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import clone
from sklearn.utils.validation import check_X_y

from src.errors import ScaleprobeError
from src.probes.base import GridProbe
from src.probes.geometry import cosines
from src.probes.lasso import LassoPathProbe
from src.probes.memo import ProbeMemo, content_key
from src.probes.memory import check_null_memory
from src.probes.metrics import pearson_rows, r2_centered_rows, r2_rows
from src.probes.nulls import permutation_means, permutation_pvalue, shuffled
from src.probes.progress import log_progress
from src.probes.selection import SELECT_LOO, inner_cv_r2, select_by_loo
from src.probes.splits import Split, make_splits
from src.probes.validation import check_count, check_seed

if TYPE_CHECKING:
    from src.probes.disk_memo import ResultStore

__all__ = [
    "GEOMETRY_NAMES",
    "METRIC_NAMES",
    "SELECTION_NAMES",
    "PairResult",
    "evaluate_job",
    "evaluate_pair",
]

logger = logging.getLogger(__name__)

METRIC_NAMES = (
    "r2_train",
    "r2_test",
    "pearson_test",
    "r2_test_centered",
    "nnz",
    "cos",
    "angle_deg",
    "r2_test_shuffled",
    "angle_deg_shuffled",
)
# Training-side choice of the hyperparameter, when computed (inner CV, leave-one-out).
SELECTION_NAMES = ("r2_cv", "alpha_selected")
# The metrics of a linear probe only (they compare coefficient vectors).
GEOMETRY_NAMES = ("nnz", "cos", "angle_deg", "angle_deg_shuffled")
# Metrics stored as such; the shuffled ones are the first column of their null.
_FITTED = ("r2_train", "r2_test", "pearson_test", "r2_test_centered", "nnz", "cos", "angle_deg")


@dataclass
class PairResult:
    """Per-split results of one hyperparameter value on one class pair.

    The geometry (``nnz``, ``cos``, ``angle_deg``, ``angle_deg_shuffled``,
    ``coef``, ``coef_test``, ``angle_deg_null``) is ``None`` for a probe
    without ``coef_``.

    Attributes
    ----------
    alpha : float
        The probe's hyperparameter value (for the Lasso: its strength, 0 least
        squares).
    r2_train : ndarray of shape (n_splits,)
        R² of the probe on its own training images.
    r2_test : ndarray of shape (n_splits,)
        R² of the probe on the split's test images.
    pearson_test : ndarray of shape (n_splits,)
        Pearson correlation of the probe's predictions with the test images'
        ratios (``nan`` where the predictions are constant, e.g. an all-zero
        Lasso).
    r2_test_centered : ndarray of shape (n_splits,)
        R² on the test images after shifting the predictions' mean onto the
        ratios' mean: what ``r2_test`` would be with the right intercept.
    nnz : ndarray of shape (n_splits,)
        Number of non-zero coefficients of the probe.
    cos : ndarray of shape (n_splits,)
        Signed cosine between the probe and a probe fitted on the test images
        (``nan`` where either has no non-zero coefficient).
    angle_deg : ndarray of shape (n_splits,)
        Angle in degrees, in ``[0, 180]``, between the same two probes.
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
    param : str, default="alpha"
        The hyperparameter's name (``GridProbe.param_name``).
    n_unconverged : int, default=0
        Fits of the grid's evaluation (all splits, values and targets) that
        stopped at their iteration limit (``GridProbe.n_unconverged_``).
    r2_cv : ndarray of shape (n_splits,) or None, default=None
        Inner K-fold CV R² on the split's training images
        (:func:`~src.probes.selection.inner_cv_r2`); ``None`` without
        ``inner_folds``. Chooses hyperparameters without the test images.
    loo_mse, loo_mse_null : ndarray of shape (n_splits,) and (n_splits, n_permutations) or None
        Leave-one-out error on the training images of the real and permuted
        targets' probes, for probes that give it (ridge's ``loo_mse_``).
    alpha_selected : ndarray of shape (n_splits,) or None, default=None
        Each split's value chosen by leave-one-out error (``probe.value=gcv``).
    """

    alpha: float
    r2_train: np.ndarray
    r2_test: np.ndarray
    pearson_test: np.ndarray
    r2_test_centered: np.ndarray
    nnz: np.ndarray | None
    cos: np.ndarray | None
    angle_deg: np.ndarray | None
    coef: np.ndarray | None
    coef_test: np.ndarray | None
    r2_test_null: np.ndarray
    angle_deg_null: np.ndarray | None
    param: str = "alpha"
    n_unconverged: int = 0
    r2_cv: np.ndarray | None = None
    loo_mse: np.ndarray | None = None
    loo_mse_null: np.ndarray | None = None
    alpha_selected: np.ndarray | None = None

    @property
    def linear(self) -> bool:
        """Whether the probe had ``coef_`` (and so the result has its geometry)."""
        return self.coef is not None

    @property
    def r2_test_shuffled(self) -> np.ndarray:
        """R² on the test images of a probe trained on shuffled ratios: the null's first column."""
        return self.r2_test_null[:, 0]

    @property
    def angle_deg_shuffled(self) -> np.ndarray | None:
        """Angle between the probes of the null's first permutation (``None`` without coef_)."""
        return None if self.angle_deg_null is None else self.angle_deg_null[:, 0]

    def metrics(self) -> dict[str, np.ndarray]:
        """Per-split values of each scalar metric.

        Returns
        -------
        dict of str to ndarray of shape (n_splits,)
            Keys, in order: ``r2_train``, ``r2_test``, ``pearson_test``,
            ``r2_test_centered``, ``nnz``, ``cos``,
            ``angle_deg``, ``r2_test_shuffled``, ``angle_deg_shuffled``,
            ``r2_cv``, ``alpha_selected`` (without the geometry for a probe
            without ``coef_``, and each of the last two only when computed).
        """
        return {
            name: getattr(self, name)
            for name in (*METRIC_NAMES, *SELECTION_NAMES)
            if getattr(self, name) is not None
        }

    def pvalues(self) -> dict[str, float]:
        """Permutation p-values of the mean test R² and the mean angle over splits.

        The statistic is the mean over splits (``nan`` splits left out, by
        the null's own :func:`~src.probes.nulls.permutation_means`, so that
        all-``nan`` angles of all-zero probes give ``nan`` without a warning)
        of the real probes, against the same mean for each permutation: a
        high R² and a small angle are the evidence.

        Returns
        -------
        dict of str to float
            ``r2_test_pvalue`` and ``angle_deg_pvalue``, each in
            ``[1 / (n_permutations + 1), 1]`` (``nan`` if undefined); no
            angle for a probe without ``coef_``.
        """
        out = {
            "r2_test_pvalue": permutation_pvalue(
                _observed_mean(self.r2_test),
                permutation_means(self.r2_test_null),
                alternative="greater",
            )
        }
        if self.angle_deg is not None and self.angle_deg_null is not None:
            out["angle_deg_pvalue"] = permutation_pvalue(
                _observed_mean(self.angle_deg),
                permutation_means(self.angle_deg_null),
                alternative="less",
            )
        return out


def _observed_mean(values: np.ndarray) -> float:
    """Mean over the finite splits, computed like each permutation's (``nan`` if none)."""
    return float(permutation_means(values[:, None])[0])


def _probe_key(probe: GridProbe) -> list:
    """Return what identifies a probe's fits: its class and parameters (sequences by content)."""
    parts: list = [f"{type(probe).__module__}.{type(probe).__qualname__}"]
    for name, value in sorted(probe.get_params(deep=False).items()):
        parts += [name, np.asarray(value) if isinstance(value, list | tuple) else value]
    return parts


def _fit(memo: ProbeMemo | None, probe: GridProbe, X: np.ndarray, Y: np.ndarray) -> GridProbe:
    """Return a fitted copy of ``probe``, through the memo when there is one."""
    if memo is None:
        return clone(probe).fit(X, Y)
    key = content_key("fit", *_probe_key(probe), X, Y)
    return memo.get_or_compute(key, lambda: clone(probe).fit(X, Y))


def evaluate_pair(
    X_train_class: ArrayLike,
    y_train_class: ArrayLike,
    X_test_class: ArrayLike,
    y_test_class: ArrayLike,
    *,
    probe: GridProbe | None = None,
    alphas: Sequence[float] | None = None,
    same_class: bool,
    n_splits: int,
    n_train: int,
    n_test: int,
    seed: int,
    n_permutations: int = 1,
    inner_folds: int | None = None,
    memo: ProbeMemo | None = None,
    store: ResultStore | None = None,
    train_class: str = "train class",
    test_class: str = "test class",
) -> list[PairResult]:
    """Run the probe protocol on one class pair for a probe's whole grid.

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
    probe : GridProbe or None, default=None
        The probe, with its grid; every grid value uses the same splits.
    alphas : sequence of float or None, default=None
        Shorthand for ``probe=LassoPathProbe(grid=alphas)`` (finite alphas
        ``>= 0``); give exactly one of ``probe`` and ``alphas``.
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
    inner_folds : int or None, default=None
        Folds of the inner cross-validation on each split's training images
        (``r2_cv``, real ratios only: ``inner_folds`` more fits per split);
        ``None``: none.
    memo : ProbeMemo or None, default=None
        Reuse a whole evaluation made before on the same inputs, and
        training-class fits made by another pair on the same training
        images; results are identical with and without it.
    store : ResultStore or None, default=None
        The same reuse of whole evaluations across processes (an on-disk
        memo, :mod:`src.probes.disk_memo`), looked up after ``memo``.
    train_class : str, default="train class"
        Name of the training class, for error messages and progress lines.
    test_class : str, default="test class"
        Name of the test class, for error messages and progress lines.

    Returns
    -------
    list of PairResult
        One result per grid value, in the grid's order. The same inputs give
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
    :func:`~src.probes.fit.fit_alpha_grid`), so they match separate
    scikit-learn ``Lasso`` fits up to the latter's coordinate-descent
    tolerance.
    """
    if (probe is None) == (alphas is None):
        raise ScaleprobeError("evaluate_pair takes exactly one of probe= and alphas=")
    if probe is None:
        probe = LassoPathProbe(grid=alphas)
    alpha_grid = probe.grid_values()
    seed = check_seed(seed)
    n_permutations = check_count(n_permutations, "n_permutations")
    if inner_folds is not None and (
        check_count(inner_folds, "inner_folds") < 2 or inner_folds > n_train
    ):
        raise ScaleprobeError(
            f"inner_folds={inner_folds!r} is out of range; use an integer from 2 to "
            f"n_train={n_train}, or null for no inner cross-validation"
        )
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

    key = content_key(
        "evaluate_pair", *_probe_key(probe), XA, yA, XB, yB, alpha_grid, same_class,
        n_splits, n_train, n_test, seed, n_permutations, inner_folds,
    )  # fmt: skip
    what = (
        f"{train_class}->{test_class} probes ({alpha_grid.size} {probe.param_name} values, "
        f"{n_permutations} permutations), splits"
    )

    def compute() -> list[PairResult]:
        def one(i: int) -> dict[str, np.ndarray]:
            part = _evaluate_split(
                XA, yA, XB, yB, splits[i], i, probe, seed, n_permutations, inner_folds, memo,
                pair=f"{train_class}->{test_class}",
            )  # fmt: skip
            next(ticks, None)
            return part

        ticks = log_progress(range(len(splits)), len(splits), what)  # one tick a split done here
        next(ticks)  # starts its clock
        if store is None:
            parts = [one(i) for i in range(len(splits))]
        else:  # split by split, so that processes needing this pair share its splits
            keys = [content_key(key, "split", i) for i in range(len(splits))]
            parts = store.get_or_compute_each(keys, one)
        return _assemble(parts, probe, alpha_grid)

    results = compute() if memo is None else memo.get_or_compute(key, compute)
    return [copy.deepcopy(r) for r in results]


def _evaluate_split(
    XA: np.ndarray,
    yA: np.ndarray,
    XB: np.ndarray,
    yB: np.ndarray,
    split: Split,
    i: int,
    probe: GridProbe,
    seed: int,
    n_permutations: int,
    inner_folds: int | None,
    memo: ProbeMemo | None,
    pair: str,
) -> dict[str, np.ndarray]:
    """Evaluate the whole grid on split ``i``: its arrays by name, the grid on axis 0.

    A split depends only on its images and ``(seed, i)``, so splits can be
    made in any order or by another process (the on-disk store's unit).
    """
    rng = np.random.default_rng([seed, i])
    Xa, ya = XA[split.train], yA[split.train]
    Xb, yb = XB[split.test], yB[split.test]
    perms_a, perms_b = [], []
    for _ in range(n_permutations):
        perms_a.append(shuffled(ya, rng))
        perms_b.append(shuffled(yb, rng))
    # Only the training-class fit can recur in another pair (same images).
    fit_a = _fit(memo, probe, Xa, np.column_stack([ya, *perms_a]))
    unconverged = getattr(fit_a, "n_unconverged_", 0)  # iterative probes (the MLP)
    if unconverged:
        logger.warning(
            "%s split %d: %d of %d %s probe fits did not converge; raise probe.max_iter",
            pair, i, unconverged, (1 + n_permutations) * probe.grid_values().size,
            type(probe).__name__,
        )  # fmt: skip
    pred_b = fit_a.predict(Xb)  # (1 + n_permutations targets, n_values, n_test)
    r2_test = r2_rows(yb, pred_b)  # (targets, n_values)
    part = {
        "r2_train": r2_rows(ya, fit_a.predict(Xa)[0]),  # real ratios: (n_values,)
        "r2_test": r2_test[0],
        "pearson_test": pearson_rows(yb, pred_b[0]),
        "r2_test_centered": r2_centered_rows(yb, pred_b[0]),
        "r2_test_null": r2_test[1:].T,  # (n_values, n_permutations)
        "n_unconverged": np.asarray(unconverged),
    }
    if inner_folds is not None:
        part["r2_cv"] = inner_cv_r2(probe, Xa, ya, n_folds=inner_folds, seed=seed, split=i)
    if hasattr(fit_a, "loo_mse_"):
        part["loo_mse"] = fit_a.loo_mse_[0]
        part["loo_mse_null"] = fit_a.loo_mse_[1:].T
    if not hasattr(fit_a, "coef_"):
        return part  # no coefficients: R² and its null only
    fit_b = clone(probe).fit(Xb, np.column_stack([yb, *perms_b]))
    cos = cosines(fit_a.coef_, fit_b.coef_)  # (targets, n_values)
    angle = np.degrees(np.arccos(cos))
    part.update(
        nnz=np.count_nonzero(fit_a.coef_[0], axis=1),
        cos=cos[0],
        angle_deg=angle[0],
        angle_deg_null=angle[1:].T,
        coef=fit_a.coef_[0],
        coef_test=fit_b.coef_[0],
    )
    return part


def _assemble(
    parts: list[dict[str, np.ndarray]], probe: GridProbe, alpha_grid: np.ndarray
) -> list[PairResult]:
    """Stack the splits' arrays (splits on axis 1) into one result per grid value."""
    stacked = {
        name: np.stack([part[name] for part in parts], axis=1)
        for name in parts[0]
        if name != "n_unconverged"
    }
    n_unconverged = int(sum(int(part["n_unconverged"]) for part in parts))

    def row(name: str, j: int) -> np.ndarray | None:
        return stacked[name][j].copy() if name in stacked else None

    return [
        PairResult(
            alpha=float(alpha_grid[j]),
            **{name: row(name, j) for name in (*_FITTED, "coef", "coef_test")},
            r2_test_null=row("r2_test_null", j),
            angle_deg_null=row("angle_deg_null", j),
            param=probe.param_name,
            n_unconverged=n_unconverged,
            r2_cv=row("r2_cv", j),
            loo_mse=row("loo_mse", j),
            loo_mse_null=row("loo_mse_null", j),
        )
        for j in range(alpha_grid.size)
    ]


def evaluate_job(
    X_train_class: ArrayLike,
    y_train_class: ArrayLike,
    X_test_class: ArrayLike,
    y_test_class: ArrayLike,
    *,
    probe: GridProbe,
    value: float | str,
    **protocol: Any,
) -> tuple[PairResult, list[PairResult]]:
    """Evaluate a probe's whole grid, then return the result at ``value`` and the grid's.

    ``value="gcv"`` returns, per split, the grid value of least leave-one-out
    error on the training images (:func:`~src.probes.selection.select_by_loo`).

    Every job of a sweep over one pair evaluates the same grid (with a shared
    ``memo``: computed by the first job, reused by the others), so a value on
    the grid costs nothing more; a value off it is fitted alone on the same
    splits. ``protocol`` holds :func:`evaluate_pair`'s keyword arguments.

    Returns
    -------
    result : PairResult
        The probe at ``value``.
    path : list of PairResult
        Every grid value's result (the report's Fig. 4-5).
    """
    path = evaluate_pair(
        X_train_class, y_train_class, X_test_class, y_test_class, probe=probe, **protocol
    )
    if value == SELECT_LOO:
        return select_by_loo(path), path
    on_path = [r for r in path if r.alpha == value]
    if on_path:
        return on_path[0], path
    alone = clone(probe).set_params(grid=[value])
    result = evaluate_pair(
        X_train_class, y_train_class, X_test_class, y_test_class, probe=alone, **protocol
    )[0]
    return result, path
