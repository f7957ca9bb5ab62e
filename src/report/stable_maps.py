"""The report's stable-maps table: the Lasso's maps selected in most fits, per pair.

Reads each job's ``stability.json`` (:mod:`src.probes.stability`): a map is
listed when its selection frequency over the splits and the bootstrap
resamples reaches the job's threshold, with its mean coefficient.
"""

from __future__ import annotations

from src.report.runs import ReportData, class_name
from src.report.tables import Table

__all__ = ["stable_maps_table"]

COLUMNS = ["train", "test", "alpha", "map", "frequency", "splits", "bootstrap", "mean coef"]


def stable_maps_table(data: ReportData) -> Table:
    """One row per stable map of each pair's Lasso run, most frequent first."""
    table = Table(
        "Stable maps: Lasso selection frequency over splits and bootstrap resamples",
        COLUMNS,
        digits={"alpha": 4, "frequency": 2, "splits": 2, "bootstrap": 2},
    )
    thresholds = set()
    for (train, test, alpha), run in sorted(data.main.items()):
        if run.stability is None:
            continue
        s = run.stability
        thresholds.add(s["threshold"])
        for m in s["stable"]:
            boot = s["frequency_bootstrap"]
            table.rows.append(
                {
                    "train": class_name(train),
                    "test": class_name(test),
                    "alpha": alpha,
                    "map": str(m),
                    "frequency": s["frequency"][m],
                    "splits": s["frequency_splits"][m],
                    "bootstrap": None if boot is None else boot[m],
                    "mean coef": s["mean_coef"][m],
                }
            )
    if thresholds:
        table.notes.append(
            f"Maps selected in >= {', '.join(f'{t:g}' for t in sorted(thresholds))} of the fits; "
            "mean coefficient (standardized features) over the fits that selected the map."
        )
    else:
        table.notes.append("No Lasso run of the report logged its stable maps.")
    return table
