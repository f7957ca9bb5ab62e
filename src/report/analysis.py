"""Numbers behind the report's figures, computed from logged records only.

Everything here starts from what the jobs logged (coefficient arrays, the
alpha path, the permutation null), never from features, and reuses the probe
package's geometry, summaries and nulls, so that the report computes a curve
or a count exactly the way the probes define it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from src.probes.geometry import cosine, cumulative_norm, maps_for_norm_fraction
from src.probes.metrics import summarize
from src.probes.nulls import random_direction_angles, random_directions
from src.report.runs import JobRecord, ReportData

__all__ = [
    "AlignmentCurve",
    "PathSummary",
    "TransferMatrices",
    "alignment_curve",
    "maps_for_fraction",
    "path_summary",
    "random_alignment_curve",
    "random_direction_stats",
    "transfer_matrices",
]

TOP_MAPS = 200  # Fig. 3 shows the 200 largest normalized coefficients
_NULL_SEED = 0  # random directions are seeded: the same report twice is identical


@dataclass(frozen=True)
class AlignmentCurve:
    """Cumulative norm ``|v̂_1..d'|`` over splits (Fig. 3).

    Attributes
    ----------
    mean : ndarray of shape (top,)
        Mean over splits for ``d' = 1..top``.
    ci95 : ndarray of shape (top,)
        Half-width of the 95% t-interval of the mean.
    """

    mean: np.ndarray
    ci95: np.ndarray


def _curve(curves: np.ndarray) -> AlignmentCurve:
    stats = [summarize(curves[:, k]) for k in range(curves.shape[1])]
    return AlignmentCurve(
        mean=np.array([s["mean"] for s in stats]), ci95=np.array([s["ci95"] for s in stats])
    )


def alignment_curve(coef: np.ndarray, top: int = TOP_MAPS) -> AlignmentCurve:
    """Mean and CI over splits of the cumulative norm of each split's probe.

    Parameters
    ----------
    coef : ndarray of shape (n_splits, d)
        One probe per split; probes with no non-zero coefficient are left out.
    top : int, default=200
        Largest ``d'``.

    Returns
    -------
    AlignmentCurve
        Curves of length ``min(top, d)`` (all ``nan`` if every probe is zero).
    """
    curves = np.array([cumulative_norm(c, top=top) for c in coef])
    finite = curves[np.isfinite(curves[:, 0])]
    return _curve(finite if finite.size else curves)


def random_alignment_curve(d: int, n: int = 100, top: int = TOP_MAPS) -> AlignmentCurve:
    """Compute the same curve for random unit directions in ``d`` dimensions (chance level)."""
    dirs = random_directions(d, n, _NULL_SEED)
    return _curve(np.array([cumulative_norm(v, top=top) for v in dirs]))


def maps_for_fraction(coef: np.ndarray, fraction: float) -> np.ndarray:
    """Feature maps holding ``fraction`` of each split's probe norm (``nan`` for a zero probe)."""
    return np.array(
        [
            maps_for_norm_fraction(c, fraction) if np.any(c != 0) else np.nan
            for c in np.asarray(coef)
        ],
        dtype=float,
    )


def random_direction_stats(d: int, n_pairs: int = 1000) -> dict[str, float]:
    """Mean and std of the angle and cosine between random directions in ``d`` dimensions."""
    angles = random_direction_angles(d, n_pairs, _NULL_SEED)
    cos = np.cos(np.radians(angles))
    return {
        "angle_deg": float(angles.mean()),
        "angle_deg_std": float(angles.std(ddof=1)),
        "cos": float(cos.mean()),
        "cos_std": float(cos.std(ddof=1)),
    }


@dataclass(frozen=True)
class PathSummary:
    """R² against sparsity along the alpha path of one pair (Fig. 4-5).

    Attributes
    ----------
    alphas : ndarray of shape (n_alphas,)
        The path's alphas, as logged.
    nnz : ndarray of shape (n_alphas,)
        Mean number of non-zero coefficients over splits.
    r2_train, r2_test : ndarray of shape (n_alphas,)
        Mean R² over splits.
    r2_train_ci95, r2_test_ci95 : ndarray of shape (n_alphas,)
        Half-widths of the 95% t-intervals.
    """

    alphas: np.ndarray
    nnz: np.ndarray
    r2_train: np.ndarray
    r2_test: np.ndarray
    r2_train_ci95: np.ndarray
    r2_test_ci95: np.ndarray


def path_summary(path: dict) -> PathSummary:
    """Summarize a logged ``path.json`` over splits."""
    metrics = path["metrics"]

    def stats(name: str, key: str) -> np.ndarray:
        return np.array([summarize(np.asarray(v, dtype=float))[key] for v in metrics[name]])

    return PathSummary(
        alphas=np.asarray(path["alphas"], dtype=float),
        nnz=stats("nnz", "mean"),
        r2_train=stats("r2_train", "mean"),
        r2_test=stats("r2_test", "mean"),
        r2_train_ci95=stats("r2_train", "ci95"),
        r2_test_ci95=stats("r2_test", "ci95"),
    )


@dataclass(frozen=True)
class TransferMatrices:
    """Probes trained on each class, tested on / compared with each class.

    Attributes
    ----------
    classes : list of str
        Row and column order.
    r2 : ndarray of shape (n, n)
        Test R² of the probe trained on row class, tested on column class
        (``nan``: the sweep has no such pair).
    cos : ndarray of shape (n, n)
        Mean cosine over splits between probes of the two classes.
    cos_source : ndarray of shape (n, n), dtype object
        ``"run"`` where the cosine is a job's logged ``cos``, ``"coef"``
        where it was computed from logged coefficient arrays of two jobs,
        ``""`` where unavailable.
    """

    classes: list[str]
    r2: np.ndarray
    cos: np.ndarray
    cos_source: np.ndarray


def _class_probes(runs: Sequence[JobRecord], class_id: str) -> np.ndarray | None:
    """Per-split probes fitted on ``class_id``: a run's train-class probes, else test probes."""
    for r in runs:
        if r.train_class == class_id and r.coef is not None:
            return r.coef
    for r in runs:
        if r.test_class == class_id and r.coef_test is not None:
            return r.coef_test
    return None


def transfer_matrices(data: ReportData, alpha: float) -> TransferMatrices:
    """Build the transfer matrices of the main runs at ``alpha``.

    A cell with a job uses its logged metrics; a cosine between two classes
    that no job compared is the mean over splits of the cosine between the
    logged probes of each class on the same split index.
    """
    runs = [r for (_, _, a), r in data.main.items() if a == alpha]
    classes = list(dict.fromkeys(c for r in runs for c in r.pair))
    n = len(classes)
    r2 = np.full((n, n), np.nan)
    cos = np.full((n, n), np.nan)
    source = np.full((n, n), "", dtype=object)
    index = {c: i for i, c in enumerate(classes)}
    for r in runs:
        i, j = index[r.train_class], index[r.test_class]
        r2[i, j] = r.metrics["r2_test"]
        cos[i, j] = r.metrics["cos"]
        source[i, j] = "run"
    for i, a in enumerate(classes):
        for j, b in enumerate(classes):
            if i == j or source[i, j]:
                continue
            if source[j, i]:
                cos[i, j], source[i, j] = cos[j, i], source[j, i]
                continue
            pa, pb = _class_probes(runs, a), _class_probes(runs, b)
            if pa is None or pb is None:
                continue
            k = min(len(pa), len(pb))
            cos[i, j] = float(np.nanmean([cosine(pa[s], pb[s]) for s in range(k)]))
            source[i, j] = "coef"
    return TransferMatrices(classes=classes, r2=r2, cos=cos, cos_source=source)
