"""Control metrics of a job: the controls' test R² and the paired gaps to the backbone's.

Every control is evaluated with the same probe, value and seed as the job,
so split ``i`` holds the same training and test images for all of them: the
gap ``r2_test - r2_test_<control>`` is taken per split and its 95% CI is the
paired one (the job log's ``summarize`` of the per-split differences).

``r2_test_pixels`` is the better of the two input-space controls, chosen by
mean test R² over splits. That is a selection on the test images, so it is an
upper bound on the input-space control and makes ``r2_test_gap_pixels``
conservative (never flattering to the network); both controls are logged
too (``r2_test_pixels_histogram``, ``r2_test_pixels_thumbnail``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from src.probes.base import GridProbe
from src.probes.protocol import evaluate_job

__all__ = ["control_metrics", "evaluate_controls"]

_PIXEL_SOURCES = ("pixels_histogram", "pixels_thumbnail")


def control_metrics(
    r2_test: np.ndarray, controls: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Return the per-split control metrics of a job.

    Parameters
    ----------
    r2_test : ndarray of shape (n_splits,)
        The backbone probe's test R² per split.
    controls : mapping of str to ndarray of shape (n_splits,)
        Each control source's test R² on the same splits (``random_weights``,
        ``pixels_histogram``, ``pixels_thumbnail``; any subset).

    Returns
    -------
    dict of str to ndarray of shape (n_splits,)
        ``r2_test_<source>`` for each source; where pixels were given,
        ``r2_test_pixels`` (the source with the higher mean); and
        ``r2_test_gap_<control>`` for ``random_weights`` and ``pixels``.
    """
    r2_test = np.asarray(r2_test, dtype=float)
    out = {f"r2_test_{name}": np.asarray(values, dtype=float) for name, values in controls.items()}
    pixels = [name for name in _PIXEL_SOURCES if name in controls]
    if pixels:
        best = max(pixels, key=lambda name: float(np.nanmean(controls[name])))
        out["r2_test_pixels"] = np.asarray(controls[best], dtype=float)
    for control in ("random_weights", "pixels"):
        if f"r2_test_{control}" in out:
            out[f"r2_test_gap_{control}"] = r2_test - out[f"r2_test_{control}"]
    return out


def evaluate_controls(
    sources: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]],
    *,
    probe: GridProbe,
    value: float | str,
    **protocol: Any,
) -> dict[str, np.ndarray]:
    """Return each control source's per-split test R² with the job's probe, value and splits.

    ``sources`` maps a source to its per-class ``(features, targets)`` (keys
    ``protocol["train_class"]`` and ``protocol["test_class"]``; the job's own
    rows, :func:`~src.targets.select.probe_rows`); ``protocol``
    is the job's :func:`~src.probes.protocol.evaluate_pair` keywords (same
    seed, so the same splits; its ``memo`` and ``store`` too). Each control is
    fitted on the probe's whole grid, as the job's own features are, so every
    job of a sweep over the value reads the first job's fits from the memo or
    the on-disk store instead of refitting its controls; with one permutation
    and no inner cross-validation (the controls need no null or ``r2_cv``).
    """
    settings = {**protocol, "n_permutations": 1, "inner_folds": None}
    train, test = protocol["train_class"], protocol["test_class"]
    return {
        name: evaluate_job(*rows[train], *rows[test], probe=probe, value=value, **settings)[
            0
        ].r2_test
        for name, rows in sources.items()
    }
