"""Input-space controls: image statistics that need no network, as cached feature sources.

A probe that reaches a high R² on a backbone's features says little if a
colour histogram or a tiny thumbnail of the same images reaches it too. Both
are computed from the image decoded and resized exactly as the extraction
does (:func:`~src.data.images.resize_square` to the backbone's input size),
and cached in the feature cache under a key of their settings and the images'
content, like any backbone's features.

- ``histogram``: the joint RGB histogram with ``bins`` levels per channel
  (``bins**3`` cells, 64 by default), as fractions of the image's pixels.
- ``thumbnail``: the image box-averaged down to ``size`` x ``size`` pixels,
  RGB in [0, 1], flattened (``3 * size**2`` values, 192 by default).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image

from src.data.images import load_rgb_image, resize_square
from src.data.records import ImageRecord
from src.errors import ScaleprobeError
from src.features.cache import FeatureCache, entry_key, hash_images

__all__ = ["PIXEL_KINDS", "histogram_features", "pixel_features", "thumbnail_features"]

PIXEL_KINDS = ("histogram", "thumbnail")


def histogram_features(image: np.ndarray, bins: int) -> np.ndarray:
    """Return the joint RGB histogram of a (H, W, 3) uint8 image: (bins**3,) fractions."""
    levels = (image.reshape(-1, 3).astype(np.int64) * bins) // 256
    cells = (levels[:, 0] * bins + levels[:, 1]) * bins + levels[:, 2]
    counts = np.bincount(cells, minlength=bins**3)
    return (counts / cells.size).astype(np.float32)


def thumbnail_features(image: Image.Image, size: int) -> np.ndarray:
    """Return the image box-averaged to (size, size, 3), in [0, 1], flattened."""
    small = image.resize((size, size), Image.Resampling.BOX)
    return (np.asarray(small, dtype=np.float32) / 255.0).reshape(-1)


def _row(path: str, kind: str, input_size: int, setting: int) -> np.ndarray:
    image = resize_square(load_rgb_image(path), input_size)
    if kind == "histogram":
        return histogram_features(np.asarray(image, dtype=np.uint8), setting)
    return thumbnail_features(image, setting)


def pixel_features(
    records: Sequence[ImageRecord],
    *,
    kind: str,
    input_size: int,
    setting: int,
    cache_dir: str | os.PathLike[str],
) -> np.ndarray:
    """Return one input-space control's (n_images, dim) features, rows in record order.

    Parameters
    ----------
    records : sequence of ImageRecord
        The images (already filtered to readable ones by the backbone's extraction).
    kind : {"histogram", "thumbnail"}
        Which statistic.
    input_size : int
        The side the image is resized to first (the backbone's input size).
    setting : int
        Levels per channel for ``histogram``, side in pixels for ``thumbnail``.
    cache_dir : path-like
        The feature cache's root; the entry is reused when the images and
        settings are the same.
    """
    if kind not in PIXEL_KINDS:
        raise ScaleprobeError(f"pixel control kind {kind!r} is not one of {PIXEL_KINDS}")
    fields = {
        "source": "pixels",
        "kind": kind,
        "input_size": int(input_size),
        "setting": int(setting),
        "images": hash_images(records),
    }
    key = entry_key(fields)
    cache = FeatureCache(cache_dir)
    with cache.lock(key):
        entry = cache.load(key)
        if entry is None:
            try:
                rows = np.stack([_row(r.path, kind, input_size, setting) for r in records])
            except ScaleprobeError as error:
                raise ScaleprobeError(f"pixel control {kind}: {error}") from None
            partial = cache.open_partial(
                key, n_rows=len(records), dim=rows.shape[1], batch_size=len(records), fields=fields
            )
            partial.write_rows(np.arange(len(records)), rows)
            entry = cache.commit(partial, records, fields)
    ids = [r.image_id for r in records]
    if list(entry.image_ids) != ids:
        raise ScaleprobeError(f"cache entry {entry.path} does not match the images it was made of")
    return np.asarray(entry.features)
