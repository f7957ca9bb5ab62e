"""A montage of what the stable maps respond to: the images that drive each most and least.

For each of the top stable maps (:mod:`src.probes.stability`) one row: the
``n_images`` images with the highest value of that map's feature, then the
``n_images`` with the lowest, each tile labelled with its target value (for
scale: the ratio ``r``), so a person can see whether a scale-carrying map
responds to big objects, small ones, or something else. Tiles are placed at
exact pixel offsets (``figimage``), so each tile holds the resized source image
pixel for pixel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from numpy.typing import ArrayLike

from src.atomic import atomic_open
from src.data.images import load_rgb_image, resize_square
from src.errors import ScaleprobeError
from src.probes.stability import StableMaps

__all__ = ["MONTAGE", "MontageLayout", "driving_images", "job_montage", "montage"]

_DPI = 100
# The job artifact (and the report file) holding the montage.
MONTAGE = "stable_maps.png"


@dataclass(frozen=True)
class MontageLayout:
    """Pixel geometry of the montage: where each tile lies in the PNG.

    Attributes
    ----------
    n_rows, n_images : int
        Maps drawn (rows) and images per side (most, least) of a row.
    tile : int
        Tile side in pixels.
    label, header, margin, gap : int
        Pixels for each tile's label above it, the column header, the row
        label on the left and the gap between the "most" and "least" halves.
    """

    n_rows: int
    n_images: int
    tile: int = 64
    label: int = 14
    header: int = 20
    margin: int = 150
    gap: int = 16

    @property
    def size(self) -> tuple[int, int]:
        """PNG ``(width, height)`` in pixels."""
        width = self.margin + 2 * self.n_images * self.tile + self.gap + 4
        return width, self.header + self.n_rows * (self.label + self.tile) + 4

    def tile_box(self, row: int, col: int) -> tuple[int, int]:
        """``(left, top)`` pixel of tile ``col`` (most first, then least) in ``row``."""
        left = self.margin + col * self.tile + (self.gap if col >= self.n_images else 0)
        return left, self.header + row * (self.label + self.tile) + self.label


def driving_images(features: ArrayLike, maps: Sequence[int], n_images: int) -> np.ndarray:
    """Rows of the images with the highest and the lowest value of each map.

    Returns
    -------
    ndarray of shape (len(maps), 2 * n_images)
        Per map, the ``n_images`` highest-valued rows (highest first), then the
        ``n_images`` lowest (lowest first); ties by row order (stable sort).
    """
    X = np.asarray(features, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < n_images:
        raise ScaleprobeError(
            f"the montage needs a (n_images, n_features) matrix with >= {n_images} rows; "
            f"got shape {X.shape}"
        )
    highest = np.argsort(-X[:, list(maps)], axis=0, kind="stable").T
    lowest = np.argsort(X[:, list(maps)], axis=0, kind="stable").T
    return np.hstack([highest[:, :n_images], lowest[:, :n_images]])


def montage(
    features: ArrayLike,
    paths: Sequence[str],
    targets: ArrayLike,
    maps: Sequence[int],
    path: str | Path,
    *,
    coef: ArrayLike | None = None,
    n_maps: int = 5,
    n_images: int = 6,
    tile: int = 64,
) -> tuple[Path, MontageLayout, np.ndarray]:
    """Draw the montage of the first ``n_maps`` of ``maps`` into the PNG ``path``.

    Parameters
    ----------
    features : array-like of shape (n_images, n_features)
        The layer's features, rows in the order of ``paths``.
    paths : sequence of str
        Image file of each feature row (the records' ``path``).
    targets : array-like of shape (n_images,)
        Target value of each row (each tile's label).
    maps : sequence of int
        Feature maps, most stable first (``StableMaps.stable``).
    path : str or Path
        Output PNG (written atomically).
    coef : array-like of shape (n_features,) or None, default=None
        Mean coefficient of each map, shown in the row label.
    n_maps, n_images, tile : int
        Rows, images per side and tile side in pixels.

    Returns
    -------
    path : Path
    layout : MontageLayout
        Where each tile lies (the PNG is ``layout.size`` pixels).
    rows : ndarray of shape (n_rows, 2 * n_images)
        The feature rows drawn (:func:`driving_images`).
    """
    maps = list(maps)[:n_maps]
    if not maps:
        raise ScaleprobeError("the montage needs at least one stable map; there is none")
    targets = np.asarray(targets, dtype=np.float64)
    if len(paths) != len(targets) or len(paths) != np.shape(features)[0]:
        raise ScaleprobeError(
            f"montage: {len(paths)} paths, {len(targets)} targets and "
            f"{np.shape(features)[0]} feature rows must be as many"
        )
    rows = driving_images(features, maps, n_images)
    layout = MontageLayout(n_rows=len(maps), n_images=n_images, tile=tile)
    width, height = layout.size
    fig = plt.figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI)
    for x, text in ((layout.tile_box(0, 0)[0], "most"), (layout.tile_box(0, n_images)[0], "least")):
        fig.text(x / width, 1 - 4 / height, f"{n_images} images the map drives {text}",
                 va="top", fontsize=8)  # fmt: skip
    for r, m in enumerate(maps):
        _, top = layout.tile_box(r, 0)
        label = f"map {m}" + ("" if coef is None else f"\ncoef {np.asarray(coef)[m]:+.3f}")
        fig.text(4 / width, 1 - (top + tile / 2) / height, label, va="center", fontsize=8)
        for c, row in enumerate(rows[r]):
            left, top = layout.tile_box(r, c)
            pixels = np.asarray(resize_square(load_rgb_image(paths[row]), tile))
            fig.figimage(pixels, xo=left, yo=height - top - tile, origin="upper")
            fig.text(left / width, 1 - (top - 1) / height, f"{targets[row]:.3f}", fontsize=7)
    with atomic_open(path, "wb") as out:
        fig.savefig(out, dpi=_DPI, format="png")
    plt.close(fig)
    return Path(path), layout, rows


def job_montage(
    stable: StableMaps | None,
    features: ArrayLike,
    paths: Sequence[str],
    targets: ArrayLike,
    directory: str | Path,
) -> dict[str, Path]:
    """Draw a job's montage into ``directory``; return ``{MONTAGE: its path}``, or ``{}``.

    Nothing is drawn for a probe without selection (``stable`` None) or a Lasso
    with no stable map: there is no map to look at.
    """
    if stable is None or stable.stable.size == 0:
        return {}
    path, _, _ = montage(
        features, paths, targets, stable.stable, Path(directory) / MONTAGE, coef=stable.mean_coef
    )
    return {MONTAGE: path}
