"""The report's tables: Table 1-2, alignment counts, nulls, transfer matrices.

Every number of a table is a logged metric of one job (or a statistic of a
logged artifact, said so in the table's notes), kept raw in the table and
formatted only for Markdown, so that ``report.json`` holds exactly what
MLflow holds and tests can compare them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from src.probes.nulls import permutation_means
from src.report.analysis import (
    TransferMatrices,
    maps_for_fraction,
    random_direction_stats,
)
from src.report.runs import JobRecord, ReportData, class_name

__all__ = [
    "PAPER_TABLE1",
    "PAPER_TABLE2",
    "Table",
    "alignment_table",
    "null_table",
    "table1",
    "table2",
    "transfer_tables",
]

ALBATROSS, KITE, CAR = "n02058221", "n01608432", "n04037443"
# Table 1 of the paper: R² (mean, std) non-regularized and Lasso (alpha = 0.001).
PAPER_TABLE1 = {
    (ALBATROSS, ALBATROSS): ((0.843, 0.012), (0.839, 0.023)),
    (ALBATROSS, KITE): ((0.672, 0.076), (0.745, 0.042)),
    (ALBATROSS, CAR): ((0.086, 0.240), (0.560, 0.069)),
}
# Table 2 of the paper: (angle, cos) non-regularized, then Lasso.
PAPER_TABLE2 = {
    (ALBATROSS, ALBATROSS): ((67.7, 0.410), (46.2, 0.66)),
    (ALBATROSS, KITE): ((72.4, 0.315), (64.1, 0.414)),
    (ALBATROSS, CAR): ((86.7, 0.058), (76.9, 0.227)),
}

# A cell: a value, a ``(mean, std)`` pair, a ``(mean, low, high)`` 95% CI, a string, or none.
Cell = float | tuple[float, float] | tuple[float, float, float] | str | None


@dataclass
class Table:
    """A titled table: raw cell values by column, formatted only when rendered.

    Attributes
    ----------
    title : str
        Heading.
    columns : list of str
        Column names, in order.
    rows : list of dict of str to Cell
        One dict per row; a cell is a float, a ``(mean, std)`` pair, a
        ``(mean, low, high)`` 95% CI, a string, or ``None`` (no value).
    digits : dict of str to int
        Decimals per column (default 3).
    notes : list of str
        Lines printed under the table.
    """

    title: str
    columns: list[str]
    rows: list[dict[str, Cell]] = field(default_factory=list)
    digits: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def _format(self, column: str, value: Cell) -> str:
        n = self.digits.get(column, 3)
        if value is None:
            return "—"
        if isinstance(value, str):
            return value
        if isinstance(value, tuple) and len(value) == 3:
            mean, low, high = value
            return f"{mean:.{n}f} [{low:.{n}f}, {high:.{n}f}]"
        if isinstance(value, tuple):
            mean, std = value
            return f"{mean:.{n}f} ± {std:.{n}f}"
        if np.isnan(value):
            return "nan"
        return f"{value:.{n}f}"

    def to_markdown(self) -> str:
        """Render as a Markdown table under a ``###`` heading, notes below."""
        lines = [f"### {self.title}", ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "---|" * len(self.columns))
        for row in self.rows:
            cells = [self._format(c, row.get(c)) for c in self.columns]
            lines.append("| " + " | ".join(cells) + " |")
        lines += [""] + [f"{note}  " for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"

    def to_json(self) -> dict[str, Any]:
        """Raw values (``(mean, std)`` as a two-item list) for ``report.json``."""
        return {
            "title": self.title,
            "columns": self.columns,
            "rows": [
                {c: list(v) if isinstance(v, tuple) else v for c, v in row.items()}
                for row in self.rows
            ],
            "notes": self.notes,
        }


def _mean_std(run: JobRecord | None, name: str) -> tuple[float, float] | None:
    # A run logged before a metric existed (e.g. pearson_test) shows no value, not an error.
    if run is None or name not in run.metrics:
        return None
    return run.metrics[name], run.metrics[f"{name}_std"]


def _mean_ci(run: JobRecord | None, name: str) -> tuple[float, float, float] | None:
    # The logged ``_ci95`` is the half-width of the 95% CI over splits.
    if run is None or name not in run.metrics:
        return None
    mean, half = run.metrics[name], run.metrics[f"{name}_ci95"]
    return mean, mean - half, mean + half


def _metric(run: JobRecord | None, name: str) -> float | None:
    return None if run is None else run.metrics.get(name)


def _alpha_label(alpha: float | None) -> str:
    return "none" if alpha is None else f"alpha={alpha:g}"


def _pair_cells(pair: tuple[str, str]) -> dict[str, Cell]:
    return {"train": class_name(pair[0]), "test": class_name(pair[1])}


def _lasso_note(data: ReportData) -> list[str]:
    if data.lasso_alpha is not None and data.lasso_alpha != data.reference_alpha:
        return [
            f"No run at the reference alpha {data.reference_alpha:g}: the Lasso columns use "
            f"the sweep's nearest alpha, {data.lasso_alpha:g}."
        ]
    return []


@dataclass(frozen=True)
class _Column:
    """One column of Table 1 or 2: a metric of one of a pair's runs.

    ``run`` picks the run: ``"nonreg"`` / ``"lasso"`` (main weights, least
    squares / the Lasso alpha), ``"random nonreg"`` / ``"random lasso"`` (the
    random-weights null, shown only when the sweep has it). ``name`` may hold
    ``{nonreg}`` and ``{lasso}`` (the alpha labels). ``cell`` formats the
    metric: ``"value"``, ``"mean_std"`` or ``"mean_ci"`` (mean [95% CI]).
    ``optional`` columns (the in-job controls) are shown only when some run
    of the sweep logged the metric, so older sweeps still report.
    """

    name: str
    run: str
    metric: str
    cell: str = "value"
    optional: bool = False


_CELLS = {"value": _metric, "mean_std": _mean_std, "mean_ci": _mean_ci}


def _controls(label: str, run: str) -> tuple[_Column, ...]:
    """Table 1's in-job control columns of one run (random weights, pixels, paired gaps)."""
    return (
        _Column(
            f"R² random-weights control {label}", run, "r2_test_random_weights", "mean_std", True
        ),
        _Column(f"R² pixels control {label}", run, "r2_test_pixels", "mean_std", True),
        _Column(
            f"gap to random weights {label}", run, "r2_test_gap_random_weights", "mean_ci", True
        ),
        _Column(f"gap to pixels {label}", run, "r2_test_gap_pixels", "mean_ci", True),
    )


# Tables 1 and 2: the same rows (one per pair), these columns, then the paper's.
_TABLE1 = (
    _Column("R² non-reg ({nonreg})", "nonreg", "r2_test", "mean_std"),
    _Column("p non-reg", "nonreg", "r2_test_pvalue"),
    _Column("pearson non-reg", "nonreg", "pearson_test", "mean_std"),
    _Column("R² centered non-reg", "nonreg", "r2_test_centered", "mean_std"),
    *_controls("non-reg", "nonreg"),
    _Column("R² Lasso ({lasso})", "lasso", "r2_test", "mean_std"),
    _Column("p Lasso", "lasso", "r2_test_pvalue"),
    _Column("pearson Lasso", "lasso", "pearson_test", "mean_std"),
    _Column("R² centered Lasso", "lasso", "r2_test_centered", "mean_std"),
    _Column("nnz Lasso", "lasso", "nnz"),
    _Column("R² shuffled Lasso", "lasso", "r2_test_shuffled"),
    *_controls("Lasso", "lasso"),
    _Column("R² random weights non-reg", "random nonreg", "r2_test", "mean_std"),
    _Column("R² random weights Lasso", "random lasso", "r2_test", "mean_std"),
)
_TABLE2 = (
    _Column("angle non-reg ({nonreg})", "nonreg", "angle_deg"),
    _Column("cos non-reg", "nonreg", "cos"),
    _Column("angle Lasso ({lasso})", "lasso", "angle_deg"),
    _Column("cos Lasso", "lasso", "cos"),
    _Column("p angle Lasso", "lasso", "angle_deg_pvalue"),
    _Column("angle shuffled Lasso", "lasso", "angle_deg_shuffled"),
    _Column("angle random weights Lasso", "random lasso", "angle_deg"),
    _Column("cos random weights Lasso", "random lasso", "cos"),
)


def _pair_table(
    data: ReportData,
    title: str,
    spec: tuple[_Column, ...],
    paper_columns: list[str],
    paper_cells: Callable[[tuple[str, str]], dict[str, Cell]],
) -> tuple[Table, list[str]]:
    """One row per pair: ``spec``'s metrics of the pair's runs, then the paper's values."""
    labels = {
        "nonreg": _alpha_label(data.nonreg_alpha),
        "lasso": _alpha_label(data.lasso_alpha),
    }
    spec = tuple(c for c in spec if data.random or not c.run.startswith("random"))
    logged = {name for run in data.main.values() for name in run.metrics}
    spec = tuple(c for c in spec if not c.optional or c.metric in logged)
    names = [c.name.format(**labels) for c in spec]
    table = Table(title, ["train", "test", *names, *paper_columns])
    alphas = {"nonreg": data.nonreg_alpha, "lasso": data.lasso_alpha}
    for pair in data.pairs:
        runs = {
            key: data.get(
                pair, alphas[key.removeprefix("random ")], random=key.startswith("random")
            )
            for key in {c.run for c in spec}
        }
        row: dict[str, Cell] = _pair_cells(pair)
        for column, name in zip(spec, names, strict=True):
            run = runs[column.run]
            row[name] = _CELLS[column.cell](run, column.metric)
        row.update(paper_cells(pair))
        table.rows.append(row)
    return table, names


def table1(data: ReportData) -> Table:
    """Table 1: test R² within and across classes, least squares beside the Lasso.

    Beside each R², the correlation and the centered R², which tell a probe
    whose direction transfers across classes but whose intercept does not
    from one that does not transfer at all.
    """

    def paper(pair: tuple[str, str]) -> dict[str, Cell]:
        values = PAPER_TABLE1.get(pair)
        return {
            "paper non-reg": values[0] if values else None,
            "paper Lasso": values[1] if values else None,
        }

    values = data.target_values
    table, _ = _pair_table(
        data,
        f"Table 1: {data.target} prediction (test R², mean ± std over splits)",
        _TABLE1,
        *_paper_columns(data, ["paper non-reg", "paper Lasso"], paper),
    )
    table.digits = {"nnz Lasso": 1}
    table.notes = [
        "p: permutation p-value of the mean test R² against the same probe trained on "
        f"shuffled {values} (logged `r2_test_pvalue`); R² shuffled: its first permutation "
        "(`r2_test_shuffled`).",
        f"pearson: correlation of predicted and true {values} on the test images "
        "(`pearson_test`); R² centered: R² after shifting the predictions' mean onto the test "
        f"{values}' mean (`r2_test_centered`). Read across classes: a negative R² with a high "
        "pearson and R² centered means the direction transfers but the class's offset "
        "(the intercept) does not; a low pearson means the direction itself does not "
        "transfer. nan pearson: the probe predicts one value (every coefficient zero).",
        *_lasso_note(data),
    ]
    if any(c.startswith("gap to") for c in table.columns):
        table.notes.append(
            "Controls, in the same job on the same splits: the same network with seeded random "
            "weights (`r2_test_random_weights`) and the better of a colour histogram and a "
            "thumbnail of the pixels (`r2_test_pixels`); gap: the job's R² minus the control's, "
            "mean [paired 95% CI over splits] (`r2_test_gap_*`). A gap whose CI excludes 0 says "
            "the layer carries more than the control."
        )
    if not data.random:
        table.notes.append(_random_weights_note(data))
    return table


def _paper_columns(
    data: ReportData,
    columns: list[str],
    cells: Callable[[tuple[str, str]], dict[str, Cell]],
) -> tuple[list[str], Callable[[tuple[str, str]], dict[str, Cell]]]:
    """Return the paper's columns and cells for the scale target, none for another."""
    if data.paper_target:
        return columns, cells
    return [], lambda pair: {}


def _random_weights_note(data: ReportData) -> str:
    if data.weights == "random":
        return (
            "Random-weights null: every run of this sweep uses random weights (no pretrained "
            "checkpoint), so these rows are that null; add pretrained runs "
            "(backbone.weights=IMAGENET1K_V1) for the trained network."
        )
    return (
        "Random-weights null: not in this sweep; add backbone.weights=IMAGENET1K_V1,random "
        "to the sweep to show it beside each result."
    )


def table2(data: ReportData) -> Table:
    """Table 2: angle and cosine between probes of two training sets, with nulls."""
    paper_columns = [
        "paper angle non-reg",
        "paper cos non-reg",
        "paper angle Lasso",
        "paper cos Lasso",
    ]

    def paper(pair: tuple[str, str]) -> dict[str, Cell]:
        values = PAPER_TABLE2.get(pair)
        if not values:
            return {}
        return dict(zip(paper_columns, (*values[0], *values[1]), strict=True))

    table, names = _pair_table(
        data,
        f"Table 2: angle (°) and cosine between {data.target} probes' coefficient vectors",
        _TABLE2,
        *_paper_columns(data, paper_columns, paper),
    )
    table.digits = {c: 1 for c in table.columns if "angle" in c and not c.startswith("p ")}
    d = data.feature_dim
    rand = random_direction_stats(d)
    table.rows.append(
        {
            "train": f"random directions (d={d})",
            "test": "",
            names[0]: (rand["angle_deg"], rand["angle_deg_std"]),
            "cos non-reg": (rand["cos"], rand["cos_std"]),
            names[2]: (rand["angle_deg"], rand["angle_deg_std"]),
            "cos Lasso": (rand["cos"], rand["cos_std"]),
        }
    )
    table.notes = [
        "Same class: probes of two disjoint training sets of the class; cross class: the "
        "training-class probe against a probe fitted on the test class's images (logged "
        "`angle_deg`, `cos`, means over splits). Angles are arccos of the signed cosine, in "
        "[0°, 180°]" + ("; the paper reports [0°, 90°] and |cos|." if data.paper_target else "."),
        "p angle: permutation p-value of the mean angle against probes of shuffled "
        f"{data.target_values} "
        "(`angle_deg_pvalue`); angle shuffled: the first permutation "
        "(`angle_deg_shuffled`, ≈ 90°).",
        "Random directions: angle and cosine between 1000 pairs of random unit vectors of "
        "the layer's dimension (mean ± std), the chance level of the geometry.",
        *_lasso_note(data),
    ]
    return table


def alignment_table(
    data: ReportData, probes: dict[str, tuple[JobRecord, np.ndarray] | None]
) -> Table:
    """Feature maps holding 90% and 99% of each probe's norm (Fig. 3's companion).

    Parameters
    ----------
    data : ReportData
        The arranged runs.
    probes : dict of str to (JobRecord, ndarray of shape (n_splits, d)) or None
        Label (e.g. ``"non-reg"``) to the run and its per-split probes;
        ``"random direction"`` may map to ``(None, directions)``.
    """
    columns = ["probe", "alpha", "nnz", "maps for 90%", "maps for 99%", "R² test"]
    columns += ["paper"] if data.paper_target else []
    title = f"Alignment: feature maps carrying the {data.target} probe's norm"
    table = Table(title, columns)
    table.digits = {"nnz": 1, "maps for 90%": 1, "maps for 99%": 1, "alpha": 4}
    paper = {"non-reg": "R² 0.874", "Lasso": "40 of 1280 non-zero, R² 0.839"}
    paper = paper if data.paper_target else {}
    for label, entry in probes.items():
        if entry is None:
            table.rows.append({"probe": label})
            continue
        run, coef = entry
        m90, m99 = maps_for_fraction(coef, 0.9), maps_for_fraction(coef, 0.99)
        row = {
            "probe": label,
            "alpha": None if run is None else run.alpha,
            "nnz": float(np.mean(np.count_nonzero(coef, axis=1))),
            "maps for 90%": (float(np.nanmean(m90)), float(np.nanstd(m90, ddof=1))),
            "maps for 99%": (float(np.nanmean(m99)), float(np.nanstd(m99, ddof=1))),
            "R² test": _metric(run, "r2_test"),
        }
        table.rows.append({**row, "paper": paper[label]} if label in paper else row)
    table.notes = [
        f"Mean ± std over splits of the smallest number of feature maps (of "
        f"{data.feature_dim}) whose normalized coefficients carry 90% / 99% of the norm, "
        "from the logged `coef.npy` of the training-class probes.",
        *_lasso_note(data),
    ]
    return table


def null_table(data: ReportData) -> Table:
    """Permutation nulls beside the results they test, from the logged ``null.json``."""
    columns = [
        "train",
        "test",
        "alpha",
        "R² test",
        "null R² (mean [2.5%, 97.5%])",
        "p R²",
        "angle",
        "null angle (mean [2.5%, 97.5%])",
        "p angle",
        "permutations",
    ]
    table = Table(f"Permutation nulls (shuffled {data.target_values})", columns)
    table.digits = {"angle": 1, "alpha": 4}
    for pair in data.pairs:
        for alpha in (data.nonreg_alpha, data.lasso_alpha):
            run = data.get(pair, alpha)
            if run is None or run.null is None:
                continue
            null = run.null
            r2 = permutation_means(null["r2_test"])
            angle = permutation_means(null["angle_deg"])
            table.rows.append(
                {
                    **_pair_cells(pair),
                    "alpha": run.alpha,
                    "R² test": run.metrics["r2_test"],
                    "null R² (mean [2.5%, 97.5%])": _interval(r2, 3),
                    "p R²": run.metrics["r2_test_pvalue"],
                    "angle": run.metrics["angle_deg"],
                    "null angle (mean [2.5%, 97.5%])": _interval(angle, 1),
                    "p angle": run.metrics["angle_deg_pvalue"],
                    "permutations": str(null["n_permutations"]),
                }
            )
    table.notes = [
        f"Each permutation shuffles the {data.target_values} of every split; its statistic is "
        "the mean over "
        "splits, like the observed value. p = (1 + #null at least as extreme) / "
        "(1 + permutations).",
    ]
    return table


def _interval(values: np.ndarray, digits: int) -> str:
    lo, hi = np.nanpercentile(values, [2.5, 97.5])
    return f"{np.nanmean(values):.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def transfer_tables(matrices: TransferMatrices, alpha: float) -> list[Table]:
    """Render the transfer matrices as two tables (rows: training class)."""
    names = [class_name(c) for c in matrices.classes]
    out = []
    for title, values, notes in (
        (
            f"Transfer R² (train → test, alpha={alpha:g})",
            matrices.r2,
            ["Test R² of the probe trained on the row class (logged `r2_test`); — : no run."],
        ),
        (
            f"Cosine between probes of two classes (alpha={alpha:g})",
            matrices.cos,
            [
                "Logged `cos` of the job of the pair (either direction); cells marked * are "
                "means over splits of the cosine between logged probes (`coef.npy`, "
                "`coef_test.npy`) of two jobs; diagonal: two disjoint training sets.",
            ],
        ),
    ):
        table = Table(title, ["train \\ test", *names], notes=notes)
        for i, row_name in enumerate(names):
            row: dict[str, Cell] = {"train \\ test": row_name}
            for j, col in enumerate(names):
                value = values[i, j]
                if np.isnan(value):
                    row[col] = None
                elif values is matrices.cos and matrices.cos_source[i, j] == "coef":
                    row[col] = f"{value:.3f}*"
                else:
                    row[col] = float(value)
            table.rows.append(row)
        out.append(table)
    return out
