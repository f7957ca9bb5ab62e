"""The report's figures (matplotlib, Agg backend: no display needed).

One PNG per figure, with labelled axes and units, and the paper's values
drawn as references where the paper gives a number to compare with.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from src.report.analysis import AlignmentCurve, PathSummary, TransferMatrices
from src.report.runs import class_name

__all__ = [
    "PAPER_FIG3",
    "alignment_figure",
    "null_figure",
    "sparsity_figure",
    "transfer_figure",
]

# Fig. 3 of the paper: Lasso at alpha = 0.001 keeps 40 of 1280 maps; test R².
PAPER_FIG3 = {"lasso_nnz": 40, "d": 1280, "r2_nonreg": 0.874, "r2_lasso": 0.839}
_DPI = 120


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path


def alignment_figure(
    curves: Mapping[str, AlignmentCurve],
    random_curve: AlignmentCurve,
    path: Path,
    title: str,
    *,
    paper: bool = True,
) -> Path:
    """Fig. 3: cumulative norm of the normalized probe against the number of maps kept.

    Parameters
    ----------
    curves : mapping of str to AlignmentCurve
        Label (e.g. ``"non-reg (R² 0.96)"``) to mean and CI over splits.
    random_curve : AlignmentCurve
        The same curve for random directions (chance level).
    path : Path
        Where to write the PNG.
    title : str
        Figure title.
    paper : bool, default=True
        Draw the paper's Lasso map count (its numbers are of the scale target only).

    Returns
    -------
    Path
        ``path``.
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for label, curve in curves.items():
        x = np.arange(1, curve.mean.size + 1)
        (line,) = ax.plot(x, curve.mean, label=label)
        ax.fill_between(
            x, curve.mean - curve.ci95, curve.mean + curve.ci95, color=line.get_color(), alpha=0.2
        )
    x = np.arange(1, random_curve.mean.size + 1)
    ax.plot(x, random_curve.mean, color="gray", linestyle="--", label="random directions")
    if paper:
        ax.axvline(
            PAPER_FIG3["lasso_nnz"],
            color="black",
            linestyle=":",
            label=f"paper: Lasso keeps {PAPER_FIG3['lasso_nnz']} of {PAPER_FIG3['d']} maps",
        )
    ax.set_xlabel("number of feature maps d' (largest |v̂ᵢ| first)")
    ax.set_ylabel("norm |v̂₁…d'| of the normalized probe (fraction of 1)")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(1, max(x.max(), 2))
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def sparsity_figure(
    panels: Mapping[str, tuple[PathSummary, Mapping[str, tuple[float, float]]]],
    path: Path,
    title: str,
) -> Path:
    """Fig. 4/5: R² on train and test against the mean number of non-zero coefficients.

    Parameters
    ----------
    panels : mapping of str to (PathSummary, mapping of str to (float, float))
        Panel title to the pair's path and the paper's reference points
        (label to ``(nnz, R²)``).
    path : Path
        Where to write the PNG.
    title : str
        Figure title.

    Returns
    -------
    Path
        ``path``.
    """
    n = max(len(panels), 1)
    fig, axes = plt.subplots(1, n, figsize=(5.6 * n, 4.2), squeeze=False)
    for ax, (panel, (summary, refs)) in zip(axes[0], panels.items(), strict=False):
        order = np.argsort(summary.nnz)
        x = np.maximum(summary.nnz[order], 1e-1)
        for name, mean, ci, style in (
            ("train", summary.r2_train, summary.r2_train_ci95, "--"),
            ("test", summary.r2_test, summary.r2_test_ci95, "-"),
        ):
            (line,) = ax.plot(x, mean[order], style, marker="o", markersize=3, label=f"R² {name}")
            ax.fill_between(
                x, (mean - ci)[order], (mean + ci)[order], color=line.get_color(), alpha=0.2
            )
        for label, (ref_x, ref_y) in refs.items():
            ax.plot([ref_x], [ref_y], marker="*", markersize=11, linestyle="", label=label)
        ax.set_xscale("log")
        right = max([float(x.max()), *(ref_x for ref_x, _ in refs.values())])
        ax.set_xlim(right=right * 1.5)
        ax.set_xlabel("mean number of non-zero coefficients (log scale)")
        ax.set_ylabel("R² (mean and 95% CI over splits)")
        ax.set_title(panel)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="small", loc="lower right")
    fig.suptitle(title)
    return _save(fig, path)


def null_figure(
    panels: Mapping[str, tuple[np.ndarray, float, float, str]],
    path: Path,
    title: str,
    controls: Mapping[str, Mapping[str, tuple[float, float]]] | None = None,
) -> Path:
    """Permutation null distributions with the observed statistic and its p-value.

    Parameters
    ----------
    panels : mapping of str to (ndarray, float, float, str)
        Panel title to ``(null statistics, observed, p-value, x-axis label)``.
    path : Path
        Where to write the PNG.
    title : str
        Figure title.
    controls : mapping of str to mapping of str to (float, float), optional
        Panel title to the controls drawn beside the observed value on the
        same axis: label to ``(mean, 95% CI half-width)`` over splits (the
        in-job random-weights and pixel controls' R²).

    Returns
    -------
    Path
        ``path``.
    """
    n = max(len(panels), 1)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.0 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, (panel, (null, observed, pvalue, xlabel)) in zip(
        axes.flat, panels.items(), strict=False
    ):
        finite = np.asarray(null, dtype=float)
        finite = finite[np.isfinite(finite)]
        if finite.size:
            ax.hist(finite, bins=min(30, max(5, finite.size // 3)), color="gray", alpha=0.7)
        ax.axvline(observed, color="tab:red", label=f"observed (p = {pvalue:.3g})")
        for (label, (mean, half)), color in zip(
            (controls or {}).get(panel, {}).items(), ("tab:blue", "tab:green"), strict=False
        ):
            ax.axvspan(mean - half, mean + half, color=color, alpha=0.2)
            ax.axvline(mean, color=color, linestyle="--", label=f"{label} {mean:.2f} ± {half:.2f}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("permutations")
        ax.set_title(panel, fontsize="medium")
        ax.legend(fontsize="small")
    fig.suptitle(title)
    return _save(fig, path)


def transfer_figure(matrices: TransferMatrices, path: Path, title: str) -> Path:
    """Transfer R² and cosine matrices as heatmaps (rows: training class).

    Parameters
    ----------
    matrices : TransferMatrices
        The matrices.
    path : Path
        Where to write the PNG.
    title : str
        Figure title.

    Returns
    -------
    Path
        ``path``.
    """
    names = [class_name(c) for c in matrices.classes]
    n = len(names)
    fig, axes = plt.subplots(1, 2, figsize=(5.2 + 1.2 * n, 2.4 + 0.9 * n))
    cmap = plt.get_cmap("viridis").with_extremes(bad="lightgray")
    for ax, values, label in (
        (axes[0], matrices.r2, "test R² (colour clipped at -1)"),
        (axes[1], matrices.cos, "cosine between probes"),
    ):
        image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=-1.0, vmax=1.0)
        for i in range(n):
            for j in range(n):
                finite = np.isfinite(values[i, j])
                text = f"{values[i, j]:.2f}" if finite else "n/a"
                color = "white" if finite and values[i, j] < 0.5 else "black"
                ax.text(j, i, text, ha="center", va="center", color=color, fontsize="small")
        ax.set_xticks(range(n), names, rotation=30, ha="right")
        ax.set_yticks(range(n), names)
        ax.set_xlabel("test class")
        ax.set_ylabel("training class")
        ax.set_title(label)
        fig.colorbar(image, ax=ax, label=label)
    fig.suptitle(title)
    return _save(fig, path)
