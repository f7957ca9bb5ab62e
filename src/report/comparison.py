"""Linear vs non-linear probes of one sweep: not encoded, or not linearly encoded.

Each probe's hyperparameter is chosen on the training images only: the grid
value of highest mean inner-CV R² over splits (``r2_cv`` in each job's
``path.json``: a seeded K-fold split of every split's training images, the
same way for every probe, see :func:`~src.probes.selection.inner_cv_r2`).
The test split never chooses. The gap (best non-linear minus best linear probe,
each the best of its kind by the same training-side score) is paired over
splits: the probes of one sweep share the seed, so split ``i`` holds the same
images for every probe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from src.probes.metrics import summarize
from src.report.runs import ReportData, class_name
from src.report.tables import Table

__all__ = ["ProbeChoice", "choose_on_training", "comparison_table"]

# Params that must agree for split i to hold the same images in every probe's runs.
_SAME_SPLITS = ("seed", "n_splits", "n_train", "n_test")


@dataclass(frozen=True)
class ProbeChoice:
    """A probe's grid value chosen on training images, and its test R² per split.

    Attributes
    ----------
    probe : str
        The probe's name.
    param : str
        Its hyperparameter's name.
    value : float
        The chosen grid value.
    linear : bool
        Whether the probe has coefficients (its path logs the geometry).
    r2_cv : float
        Mean inner-CV R² over splits at ``value`` (the criterion).
    r2_test : ndarray of shape (n_splits,)
        Test R² per split at ``value``.
    """

    probe: str
    param: str
    value: float
    linear: bool
    r2_cv: float
    r2_test: np.ndarray


def choose_on_training(probe: str, path: Mapping) -> ProbeChoice | None:
    """Pick the grid value of highest mean ``r2_cv``; ``None`` if the path has none.

    Parameters
    ----------
    probe : str
        The probe's name.
    path : mapping
        A job's ``path.json``: ``alphas``, ``param`` and per-split ``metrics``.
    """
    metrics = path["metrics"]
    if "r2_cv" not in metrics:
        return None
    cv = np.array([np.mean(v) for v in metrics["r2_cv"]])
    best = int(np.argmax(cv))  # the first of equal scores
    return ProbeChoice(
        probe=probe,
        param=path["param"],
        value=float(path["alphas"][best]),
        linear="cos" in metrics,
        r2_cv=float(cv[best]),
        r2_test=np.asarray(metrics["r2_test"][best], dtype=float),
    )


def _interval(values: np.ndarray) -> str:
    stats = summarize(values)
    mean, half = stats["mean"], stats["ci95"]
    return f"{mean:.3f} [{mean - half:.3f}, {mean + half:.3f}]"


def _pair_path(data: ReportData, pair: tuple[str, str]) -> Mapping | None:
    return next((r.path for k, r in data.main.items() if k[:2] == pair and r.path), None)


def comparison_table(probes: Mapping[str, ReportData]) -> Table:
    """Return the linear vs non-linear table: per pair, each probe's choice and the gap.

    Parameters
    ----------
    probes : mapping of str to ReportData
        Each probe's runs, with one ``path.json`` per pair loaded.
    """
    columns = ["pair", "probe", "kind", "chosen value", "R² inner CV", "R² test [95% CI]"]
    table = Table("Linear vs non-linear probes", columns)
    runs = [r for d in probes.values() for r in d.main.values()]
    same_splits = all(len({r.params.get(k) for r in runs}) == 1 for k in _SAME_SPLITS)
    pairs = list(dict.fromkeys(p for d in probes.values() for p in d.pairs))
    for pair in pairs:
        title = f"{class_name(pair[0])} → {class_name(pair[1])}"
        best: dict[bool, ProbeChoice] = {}
        for name, data in probes.items():
            path = _pair_path(data, pair)
            choice = None if path is None else choose_on_training(name, path)
            if choice is None:
                table.rows.append({"pair": title, "probe": name, "kind": "no r2_cv logged"})
                continue
            table.rows.append(
                {
                    "pair": title,
                    "probe": name,
                    "kind": "linear" if choice.linear else "non-linear",
                    "chosen value": f"{choice.param}={choice.value:g}",
                    "R² inner CV": choice.r2_cv,
                    "R² test [95% CI]": _interval(choice.r2_test),
                }
            )
            if choice.linear not in best or choice.r2_cv > best[choice.linear].r2_cv:
                best[choice.linear] = choice
        if len(best) == 2 and same_splits:
            gap = best[False].r2_test - best[True].r2_test
            table.rows.append(
                {
                    "pair": title,
                    "probe": f"gap: {best[False].probe} - {best[True].probe}",
                    "kind": "non-linear - linear",
                    "R² test [95% CI]": _interval(gap),
                }
            )
    table.notes = [
        "Chosen value: each probe's grid value of highest mean inner-CV R² (`r2_cv`: seeded "
        "K-fold CV on each split's training images, `inner_folds`), never the test split.",
        "R² test: mean over splits and its 95% Student-t interval; gap: the best non-linear "
        "minus the best linear probe (each the best of its kind by `r2_cv`), paired over "
        "the same splits (same seed, n_splits, n_train, n_test).",
    ]
    if not same_splits:
        table.notes.append(
            "No gap: the probes' runs differ in seed or split sizes, so their splits differ."
        )
    return table
