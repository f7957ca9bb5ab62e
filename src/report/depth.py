"""A layer scan's report: test R² against depth, beside the controls, and geometry per layer.

A scan sweep (``experiment=scan``) has one child per layer (and per pair,
alpha, probe); the rest of the report shows one layer, this section all of
them. Each layer's runs are :func:`~src.report.runs.organize_sweep`-d alone
(one feature dimension each) and the section reads the metrics of one run per
layer: the first same-class pair at the Lasso alpha nearest the reference
(least squares if the sweep has no positive alpha). Layers are ordered by the
``layer_depth`` param (network order), so the figure works for any backbone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from src.errors import ScaleprobeError
from src.report.figures import _save
from src.report.runs import JobRecord, ReportData, class_name, organize_sweep
from src.report.tables import Table

__all__ = [
    "DEPTH_FIGURE",
    "LayerRow",
    "depth_figure",
    "depth_rows",
    "depth_section",
    "depth_table",
    "scan_layers",
]

DEPTH_FIGURE = "depth.png"
_NAN = float("nan")
# (label, metric) of the controls drawn beside the trained network's R².
_CONTROLS = (
    ("random weights", "r2_test_random_weights"),
    ("pixels", "r2_test_pixels"),
    ("shuffled null", "r2_test_shuffled"),
)


@dataclass(frozen=True)
class LayerRow:
    """The numbers of one layer of a scan.

    Attributes
    ----------
    layer : str
        The layer's name.
    depth : int
        Its ``layer_depth`` (network order).
    feature_dim : int
        Its number of features.
    run : JobRecord
        The run read (first same-class pair, reference alpha).
    r2 : dict of str to (float, float)
        ``"trained"`` and each control present: mean test R² and its 95%
        CI half-width (NaN when not logged).
    nnz_fraction : float
        Mean non-zero coefficients over ``feature_dim`` (NaN if not logged).
    angle_within : float
        Mean angle (°) of the same-class run.
    angle_cross : float
        Mean angle (°) of the first cross-class pair's run (NaN if none).
    """

    layer: str
    depth: int
    feature_dim: int
    run: JobRecord
    r2: dict[str, tuple[float, float]]
    nnz_fraction: float
    angle_within: float
    angle_cross: float


def scan_layers(records: Sequence[JobRecord]) -> list[str]:
    """Return the records' layers in network order (``layer_depth``, then first appearance)."""
    layers = list(dict.fromkeys(r.params["layer"] for r in records))
    depth = {r.params["layer"]: int(r.params.get("layer_depth", -1)) for r in records}
    return sorted(layers, key=lambda name: depth[name])


def _run(data: ReportData, pair: tuple[str, str]) -> JobRecord | None:
    return data.get(pair, data.lasso_alpha) or data.get(pair, data.nonreg_alpha)


def _metric(run: JobRecord | None, name: str) -> float:
    return float(run.metrics.get(name, _NAN)) if run is not None else _NAN


def depth_rows(
    records: Sequence[JobRecord], reference_alpha: float, select: Mapping[str, Any] | None = None
) -> list[LayerRow]:
    """Arrange a scan's records as one row per layer, in network order.

    Raises
    ------
    ScaleprobeError
        As :func:`~src.report.runs.organize_sweep` for one layer's runs, or if
        a layer has no same-class pair to read.
    """
    rows = []
    for layer in scan_layers(records):
        data = organize_sweep(records, reference_alpha, {**(select or {}), "layer": layer})
        same = [p for p in data.pairs if p[0] == p[1]]
        if not same:
            raise ScaleprobeError(
                f"layer {layer!r} has no same-class pair; the depth figure reads one "
                "(sweep pair=<same class> with the scan)"
            )
        run = _run(data, same[0])
        cross = next((p for p in data.pairs if p[0] != p[1]), None)
        r2 = {"trained": (_metric(run, "r2_test"), _metric(run, "r2_test_ci95"))}
        for label, name in _CONTROLS:
            if name in run.metrics:
                r2[label] = (_metric(run, name), _metric(run, f"{name}_ci95"))
        rows.append(
            LayerRow(
                layer=layer,
                depth=int(run.params.get("layer_depth", len(rows))),
                feature_dim=data.feature_dim,
                run=run,
                r2=r2,
                nnz_fraction=_metric(run, "nnz") / data.feature_dim,
                angle_within=_metric(run, "angle_deg"),
                angle_cross=_metric(None if cross is None else _run(data, cross), "angle_deg"),
            )
        )
    return rows


def depth_table(rows: Sequence[LayerRow]) -> Table:
    """Return the table of the depth figure: one row per layer, in network order."""
    labels = list(dict.fromkeys(label for r in rows for label in r.r2))
    columns = ["depth", "layer", "d", *[f"R² {label}" for label in labels]]
    columns += ["nnz / d", "angle within (°)", "angle cross (°)"]
    table = Table("Test R² against depth", columns, digits={"angle within (°)": 1})
    table.digits["angle cross (°)"] = 1
    for row in rows:
        cells: dict[str, Any] = {"depth": str(row.depth), "layer": row.layer}
        cells["d"] = str(row.feature_dim)
        for label in labels:
            cells[f"R² {label}"] = row.r2.get(label)
        cells["nnz / d"] = row.nnz_fraction
        cells["angle within (°)"] = row.angle_within
        cells["angle cross (°)"] = row.angle_cross
        table.rows.append(cells)
    run = rows[0].run if rows else None
    pair = "" if run is None else f" ({class_name(run.train_class)}, {run.param}={run.alpha:g})"
    table.notes = [
        f"One run per layer: the first same-class pair at the reference alpha{pair}; "
        "R² cells are mean ± 95% CI half-width over splits (the shuffled null: its mean).",
        "nnz / d: mean non-zero coefficients over the layer's dimension; angles: the "
        "same-class run and the first cross-class pair's run.",
    ]
    return table


def depth_figure(rows: Sequence[LayerRow], path: Path, title: str) -> Path:
    """Draw R² against depth with 95% CIs (left) and nnz / d and angles per layer (right)."""
    x = np.arange(len(rows))
    names = [r.layer for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for label in dict.fromkeys(label for r in rows for label in r.r2):
        mean = np.array([r.r2.get(label, (_NAN, _NAN))[0] for r in rows])
        half = np.array([r.r2.get(label, (_NAN, _NAN))[1] for r in rows])
        style = "-" if label == "trained" else "--"
        left.errorbar(x, mean, yerr=np.nan_to_num(half), fmt="o" + style, capsize=3, label=label)
    left.axhline(0.0, color="gray", linewidth=0.8)
    left.set(xlabel="layer (network order)", ylabel="test R² (mean, 95% CI)")
    left.set_title("Test R² against depth")
    left.legend(fontsize=8)
    right.plot(x, [r.nnz_fraction for r in rows], "o-", color="C0", label="Lasso nnz / d")
    right.set(xlabel="layer (network order)", ylabel="non-zero coefficients / d")
    right.set_ylim(bottom=0.0)
    angles = right.twinx()
    angles.plot(x, [r.angle_within for r in rows], "s--", color="C1", label="angle within class")
    angles.plot(x, [r.angle_cross for r in rows], "^--", color="C2", label="angle cross class")
    angles.set_ylabel("angle between probes (°)")
    handles = right.get_legend_handles_labels()[0] + angles.get_legend_handles_labels()[0]
    right.legend(handles=handles, fontsize=8)
    right.set_title("Sparsity and angle per layer")
    for axis in (left, right):
        axis.set_xticks(x, names, rotation=45, ha="right")
    fig.suptitle(title)
    return _save(fig, path)


def depth_section(data: ReportData, out: Path) -> tuple[str, list[Table]]:
    """Write ``depth.png`` of ``data.scan`` into ``out``; return the report's text and table."""
    rows = depth_rows(data.scan, data.reference_alpha)
    depth_figure(rows, out / DEPTH_FIGURE, f"Layer scan of {rows[0].run.params['backbone']}")
    text = (
        f"![depth]({DEPTH_FIGURE})\n\nThe other sections show layer `{data.shared['layer']}` "
        "(the deepest; another with `+report.select.layer=<name>`).\n"
    )
    return text, [depth_table(rows)]
