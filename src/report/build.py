"""Assemble the report: read a sweep from MLflow, write Markdown, JSON and PNGs.

``load_sweep`` is the only part that reads MLflow (through
:mod:`src.tracking.query`); ``write_report`` works on records alone,
so tests can feed it synthetic records.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from src.atomic import atomic_open
from src.errors import ScaleprobeError
from src.probes.nulls import permutation_means, random_directions
from src.probes.progress import log_progress
from src.report.analysis import (
    alignment_curve,
    path_summary,
    random_alignment_curve,
    transfer_matrices,
)
from src.report.comparison import comparison_table
from src.report.depth import DEPTH_FIGURE, depth_section, scan_layers
from src.report.figures import alignment_figure, null_figure, sparsity_figure, transfer_figure
from src.report.montage import MONTAGE
from src.report.runs import JobRecord, ReportData, class_name, job_record, organize_sweep
from src.report.stable_maps import stable_maps_table
from src.report.summary import sweep_summary
from src.report.tables import (
    PAPER_TABLE1,
    Table,
    alignment_table,
    null_table,
    table1,
    table2,
    transfer_tables,
)
from src.tracking.log import log_report
from src.tracking.query import (
    RunData,
    find_sweep,
    list_children,
    read_binary_artifact,
    read_json_artifact,
    read_npy_artifact,
    sweep_status,
)
from src.tracking.store import TrackingTarget

__all__ = ["FIGURES", "build_report", "load_sweep", "write_report"]

logger = logging.getLogger(__name__)

FIGURES = {
    "fig3": "fig3_alignment.png",
    "fig4": "fig4_sparsity_same_class.png",
    "fig5": "fig5_sparsity_cross_class.png",
    "nulls": "nulls_permutation.png",
    "transfer": "transfer_matrix.png",
}


def load_sweep(
    target: TrackingTarget,
    *,
    parent_run_id: str | None,
    experiment: str | None,
    reference_alpha: float,
    select: Mapping[str, Any] | None = None,
) -> tuple[RunData, ReportData]:
    """Read a sweep's finished jobs and the artifacts the report needs.

    Artifacts are downloaded only for the runs the tables use: least squares
    and the Lasso alpha of each pair (coefficients, permutation null) and one
    alpha path per pair.

    Returns
    -------
    parent : RunData
        The sweep's parent run.
    data : ReportData
        The arranged runs, with artifacts attached.

    Raises
    ------
    ScaleprobeError
        If the sweep cannot be found, has no finished job, or its runs cannot
        be compared (see :func:`~src.report.runs.organize`).
    """
    parent = find_sweep(target, parent_run_id=parent_run_id, experiment=experiment)
    children = list_children(target, parent)
    records = [job_record(c.run_id, c.params, c.metrics) for c in children]
    data = _organize_scan(records, reference_alpha, dict(select or {}))
    logger.info(
        "sweep %s (%s): %d finished jobs, %d pairs, alphas %s",
        parent.run_id,
        parent.run_name,
        len(records),
        len(data.pairs),
        [f"{a:g}" for a in data.alphas],
    )
    wanted = [
        (pair, alpha)
        for pair in data.pairs
        for alpha in dict.fromkeys((data.nonreg_alpha, data.lasso_alpha))
        if data.get(pair, alpha) is not None
    ]
    for pair, alpha in log_progress(wanted, len(wanted), "reading artifacts", steps=4):
        run = data.get(pair, alpha)
        data.main[(*pair, alpha)] = replace(
            run,
            coef=read_npy_artifact(target, run.run_id, "coef.npy"),
            coef_test=read_npy_artifact(target, run.run_id, "coef_test.npy"),
            null=read_json_artifact(target, run.run_id, "null.json"),
            stability=read_json_artifact(target, run.run_id, "stability.json")
            if "n_stable_maps" in run.metrics
            else None,
            montage=read_binary_artifact(target, run.run_id, MONTAGE)
            if pair[0] == pair[1] and alpha == data.lasso_alpha and run.metrics.get("n_stable_maps")
            else None,
        )
    for pair in data.pairs:
        alpha = data.lasso_alpha if data.get(pair, data.lasso_alpha) else data.nonreg_alpha
        key = (*pair, alpha)
        if key not in data.main:  # only other alphas: any run of the pair carries the path
            key = next(k for k in data.main if k[:2] == pair)
        run = data.main[key]
        data.main[key] = replace(run, path=read_json_artifact(target, run.run_id, "path.json"))
    for other in data.probes.values():  # several probes: one path per pair of each
        for pair in other.pairs:
            key = next(k for k in other.main if k[:2] == pair)
            run = other.main[key]
            other.main[key] = replace(run, path=read_json_artifact(target, run.run_id, "path.json"))
    return parent, data


def _organize_scan(
    records: list[JobRecord], reference_alpha: float, select: dict[str, Any]
) -> ReportData:
    """Organize a sweep; a layer scan shows its deepest layer, with every layer in ``scan``."""
    kept = [r for r in records if all(r.params.get(k) == str(v) for k, v in select.items())]
    if "layer" in select or len({r.params["layer"] for r in kept}) < 2:
        return organize_sweep(records, reference_alpha, select)
    deepest = scan_layers(kept)[-1]
    data = organize_sweep(kept, reference_alpha, {**select, "layer": deepest})
    return replace(data, scan=kept)


def _pair_title(pair: tuple[str, str]) -> str:
    return f"{class_name(pair[0])} → {class_name(pair[1])}"


def _fig3(data: ReportData, out: Path) -> tuple[str, list[Table]]:
    same = [p for p in data.pairs if p[0] == p[1]] or data.pairs
    pair = same[0]
    probes: dict[str, Any] = {}
    curves = {}
    for label, alpha in (("non-reg", data.nonreg_alpha), ("Lasso", data.lasso_alpha)):
        run = data.get(pair, alpha)
        if run is None or run.coef is None:
            probes[label] = None
            continue
        probes[label] = (run, run.coef)
        r2 = run.metrics["r2_test"]
        curves[f"{label} (alpha={run.alpha:g}, R² test {r2:.3f})"] = alignment_curve(run.coef)
    if not curves:
        return "Fig. 3 needs runs at alpha=0 or a positive alpha; this sweep has none.\n", []
    d = data.feature_dim
    probes["random direction"] = (None, random_directions(d, 100, 0))
    alignment_figure(
        curves,
        random_alignment_curve(d),
        out / FIGURES["fig3"],
        f"Fig. 3: alignment of the {class_name(pair[0])} {data.target} probe "
        "(mean, 95% CI over splits)",
        paper=data.paper_target,
    )
    paper = (
        "; the paper's non-reg R² is 0.874, Lasso 0.839 with 40 of 1280 maps"
        if data.paper_target
        else ""
    )
    text = (
        f"![Fig. 3]({FIGURES['fig3']})\n\n{data.target} probes trained on "
        f"{class_name(pair[0])} ({_pair_title(pair)} runs){paper}.\n"
    )
    return text, [alignment_table(data, probes)]


def _figure_name(key: str, probe: str | None) -> str:
    """File of a figure; another linear probe's Fig. 4-5 carry its name."""
    return FIGURES[key] if probe is None else f"{key}_path_{probe}.png"


def _sparsity(data: ReportData, out: Path, probe: str | None = None) -> str:
    text = []
    what = f"{'Lasso' if probe is None else probe} path of {data.target}"
    for key, pairs, title in (
        ("fig4", [p for p in data.pairs if p[0] == p[1]], f"Fig. 4: {what}, same class"),
        ("fig5", [p for p in data.pairs if p[0] != p[1]], f"Fig. 5: {what}, across classes"),
    ):
        panels = {}
        for pair in pairs:
            run = next((r for k, r in data.main.items() if k[:2] == pair and r.path), None)
            if run is None:
                continue
            refs = {}
            paper = PAPER_TABLE1.get(pair) if probe is None and data.paper_target else None
            if paper:
                refs = {
                    f"paper non-reg (R² {paper[0][0]})": (float(data.feature_dim), paper[0][0]),
                    f"paper Lasso alpha=0.001 (R² {paper[1][0]})": (40.0, paper[1][0]),
                }
            panels[_pair_title(pair)] = (path_summary(run.path), refs)
        if not panels:
            text.append(f"{title}: no such pair in this sweep.\n")
            continue
        name = _figure_name(key, probe)
        sparsity_figure(panels, out / name, title + " (R² against non-zero coefficients)")
        text.append(f"![{title}]({name})\n")
    text.append(
        "\nEach job logs the whole alpha path (`path.json`, the config's `path_alphas`) on its "
        "splits; points are alphas, x the mean number of non-zero coefficients.\n"
    )
    return "\n".join(text)


def _nulls(data: ReportData, out: Path) -> tuple[str, list[Table]]:
    panels, controls = {}, {}
    for pair in data.pairs:
        run = data.get(pair, data.lasso_alpha) or data.get(pair, data.nonreg_alpha)
        if run is None or run.null is None:
            continue
        r2_null = permutation_means(run.null["r2_test"])
        angle_null = permutation_means(run.null["angle_deg"])
        name = f"{_pair_title(pair)}, alpha={run.alpha:g}"
        controls[f"R², {name}"] = {
            label: (run.metrics[key], run.metrics[f"{key}_ci95"])
            for key, label in (
                ("r2_test_random_weights", "random weights"),
                ("r2_test_pixels", "pixels"),
            )
            if key in run.metrics
        }
        panels[f"R², {name}"] = (
            r2_null,
            run.metrics["r2_test"],
            run.metrics["r2_test_pvalue"],
            "mean test R² over splits",
        )
        panels[f"angle, {name}"] = (
            angle_null,
            run.metrics["angle_deg"],
            run.metrics["angle_deg_pvalue"],
            "mean angle over splits (°)",
        )
    if not panels:
        return "No permutation null was logged.\n", []
    null_figure(
        panels,
        out / FIGURES["nulls"],
        f"Shuffled-{data.target} nulls (gray), observed (red), controls (dashed, 95% CI shaded)",
        controls,
    )
    return f"![nulls]({FIGURES['nulls']})\n", [null_table(data)]


def _transfer(data: ReportData, out: Path) -> tuple[str, list[Table]]:
    alpha = data.lasso_alpha if data.lasso_alpha is not None else data.nonreg_alpha
    matrices = transfer_matrices(data, alpha)
    transfer_figure(matrices, out / FIGURES["transfer"], f"Transfer matrix (alpha={alpha:g})")
    text = (
        f"![transfer]({FIGURES['transfer']})\n\nRows: training class; columns: test class. "
        "For every cell, sweep `pair=custom pair.train_class=<a>,<b>,<c> "
        "pair.test_class=<a>,<b>,<c>`.\n"
    )
    return text, transfer_tables(matrices, alpha)


def _montage(data: ReportData, out: Path) -> str:
    """Write the reference-alpha within-class run's montage (the first pair's); return its text."""
    run = next(
        (r for p in data.pairs if p[0] == p[1] and (r := data.get(p, data.lasso_alpha))
         and r.montage),
        None,
    )  # fmt: skip
    if run is None:
        return "No within-class Lasso run at the reference alpha logged a montage.\n"
    with atomic_open(out / MONTAGE, "wb") as f:
        f.write(run.montage)
    return (
        f"![stable maps]({MONTAGE})\n\nThe {class_name(run.train_class)} Lasso at alpha="
        f"{run.alpha:g}: per stable map, the 6 images that drive it most and least (labelled "
        "with their target values).\n"
    )


def _probe_sections(data: ReportData, out: Path) -> list[tuple[str, str, list[Table]]]:
    """Return the linear vs non-linear table, and Fig. 4-5 of each other linear probe."""
    sections = [("Linear vs non-linear probes", "", [comparison_table(data.probes)])]
    for name, other in data.probes.items():
        linear = any(r.path and "cos" in r.path["metrics"] for r in other.main.values())
        if name != data.probe and linear:
            sections.append((f"Fig. 4 and 5 of {name}", _sparsity(other, out, name), []))
    return sections


def write_report(data: ReportData, out_dir: str | Path, source: Mapping[str, str]) -> list[Path]:
    """Write ``report.md``, ``report.json`` and the figures of ``data`` into ``out_dir``.

    Parameters
    ----------
    data : ReportData
        Arranged runs with their artifacts.
    out_dir : str or Path
        Output directory (created; files of an earlier report are replaced).
    source : mapping of str to str
        Where the runs came from (parent run id, experiment, tracking URI),
        printed at the top.

    Returns
    -------
    list of Path
        The files written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in (*FIGURES.values(), DEPTH_FIGURE, MONTAGE):
        (out / name).unlink(missing_ok=True)
    for old in out.glob("fig[45]_path_*.png"):  # other linear probes' Fig. 4-5
        old.unlink()
    sections: list[tuple[str, str, list[Table]]] = []
    if data.scan:
        sections.append(("Layer scan: test R² against depth", *depth_section(data, out)))
    fig3_text, fig3_tables = _fig3(data, out)
    sections.append(("Fig. 3: alignment with individual feature maps", fig3_text, fig3_tables))
    sections.append(("Fig. 4 and 5: R² against sparsity", _sparsity(data, out), []))
    sections.append(("Tables 1 and 2: within and across classes", "", [table1(data), table2(data)]))
    sections.append(("Null models", *_nulls(data, out)))
    sections.append(("Stable maps", _montage(data, out), [stable_maps_table(data)]))
    sections.append(("Transfer matrix", *_transfer(data, out)))
    if data.probes:
        sections += _probe_sections(data, out)
    lines = ["# scaleprobe report", ""]
    lines += [f"- {k}: `{v}`" for k, v in source.items()]
    for name, value in data.shared.items():
        if name == "target":  # the name, then what it measures
            lines.append(f"- target: `{value}` ({data.shared.get('target_label', '')})")
        elif name != "target_label":
            lines.append(f"- {name}: `{value}`")
    lines += [
        f"- weights: `{data.weights}`" + (" (and `random`: the null)" if data.random else ""),
        f"- alphas: {', '.join(f'{a:g}' for a in data.alphas)}; reference alpha "
        f"{data.reference_alpha:g}",
        f"- jobs: {len(data.main) + len(data.random)}",
        "",
    ]
    summary = sweep_summary(data)
    lines += ["## What this sweep supports", "", summary, ""]
    tables: list[Table] = []
    for title, text, section_tables in sections:
        lines += [f"## {title}", "", text] + [t.to_markdown() for t in section_tables]
        tables += section_tables
    lines += [
        "## Runs",
        "",
        f"| train | test | {data.param} | weights | run id |",
        "|---|---|---|---|---|",
    ]
    for (train, test, alpha), run in [*sorted(data.main.items()), *sorted(data.random.items())]:
        lines.append(
            f"| {class_name(train)} | {class_name(test)} | {alpha:g} | {run.weights} "
            f"| `{run.run_id}` |"
        )
    report_md = out / "report.md"
    report_md.write_text("\n".join(lines) + "\n")
    report_json = out / "report.json"
    report_json.write_text(
        json.dumps(
            {
                "source": dict(source),
                "lasso_alpha": data.lasso_alpha,
                "nonreg_alpha": data.nonreg_alpha,
                "summary": summary,
                "runs": {f"{t}|{s}|{a:g}": r.run_id for (t, s, a), r in sorted(data.main.items())},
                "tables": [t.to_json() for t in tables],
            },
            indent=1,
        )
    )
    figures = [out / n for n in (*FIGURES.values(), DEPTH_FIGURE) if (out / n).is_file()]
    figures += sorted(out.glob("fig[45]_path_*.png"))
    figures += [out / MONTAGE] if (out / MONTAGE).is_file() else []
    return [report_md, report_json, *figures]


def build_report(
    target: TrackingTarget,
    *,
    parent_run_id: str | None,
    experiment: str | None,
    reference_alpha: float,
    output_dir: str | Path,
    select: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Read a sweep, write its report into ``output_dir`` and log it on the parent run.

    Returns
    -------
    list of Path
        The files written (and logged under the parent's ``report/``).

    Raises
    ------
    ScaleprobeError
        On a missing or unusable sweep, or an output directory that cannot
        be written.
    """
    parent, data = load_sweep(
        target,
        parent_run_id=parent_run_id,
        experiment=experiment,
        reference_alpha=reference_alpha,
        select=select,
    )
    source = {"parent run": parent.run_id, "sweep": parent.run_name, "tracking": target.uri}
    status = sweep_status(target, parent)
    if status is not None:
        source["status"] = status
        logger.warning("%s", status)
    try:
        files = write_report(data, output_dir, source)
    except OSError as error:
        raise ScaleprobeError(
            f"report.output_dir={str(output_dir)!r} cannot be written ({error.strerror}); "
            "pass a writable directory"
        ) from None
    log_report(target, parent.run_id, files)
    logger.info("report: %s (%d files), logged to run %s", files[0], len(files), parent.run_id)
    return files
