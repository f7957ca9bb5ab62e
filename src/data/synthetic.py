"""A small synthetic stand-in for the ILSVRC classes of the paper.

Tests, smoke runs and CI need data with known scale ratios without downloading
ImageNet.  The generator draws one object per image at a known box, in the
exact ILSVRC train layout (``train/<wnid>/<wnid>_<i>.JPEG`` plus
``Annotation/<wnid>/<wnid>_<i>.xml``), so the same loader reads synthetic and
real data.  Image sizes and aspect ratios vary, so the ratio can only be right
if it is taken from the XML.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from src.data.annotations import AnnotatedObject, Annotation, write_voc_xml
from src.data.boxes import Box
from src.errors import ScaleprobeError

__all__ = [
    "SYNTHETIC_CLASSES",
    "SYNTHETIC_VERSION",
    "generate_synthetic_dataset",
]

logger = logging.getLogger(__name__)

SYNTHETIC_CLASSES: dict[str, str] = {
    "n02058221": "albatross",
    "n01608432": "kite",
    "n04037443": "racing_car",
}
"""WNID to name of the classes the generator can draw (the paper's three)."""

SYNTHETIC_VERSION = "1"
"""Bumped whenever the drawing changes, so a stale directory is detected."""

MANIFEST_NAME = "manifest.json"
IMAGE_SIZE_RANGE = (160, 320)
RATIO_RANGE = (0.1, 0.95)
JPEG_QUALITY = 90

Rng = np.random.Generator
Rgb = tuple[int, int, int]


def generate_synthetic_dataset(
    root: str | os.PathLike[str],
    *,
    n_per_class: int = 120,
    seed: int = 0,
    classes: Sequence[str] = tuple(SYNTHETIC_CLASSES),
) -> Path:
    """Generate the synthetic dataset once, deterministically, under ``root``.

    Each image has a random size (sides in 160..320 px), one object whose scale
    ratio is drawn uniformly in about 0.1..0.95 with a random box aspect, placed
    fully inside the image.  Image ``i`` of class ``c`` is drawn from
    ``np.random.default_rng([seed, index of c in SYNTHETIC_CLASSES, i])``, so the
    same arguments give byte-identical files and a class's images do not
    depend on which other classes are generated.

    The files are written to a temporary directory beside ``root``, which is
    renamed into place at the end (``manifest.json`` written last), so an
    interrupted run never leaves a half-filled ``root``.

    Parameters
    ----------
    root : str or path-like
        Output directory; created, or reused if it holds a dataset made with
        the same arguments (an empty directory is also accepted).
    n_per_class : int, default=120
        Images per class, ``>= 1``.
    seed : int, default=0
        Non-negative base seed.
    classes : sequence of str, default=all of SYNTHETIC_CLASSES
        WNIDs to draw, a subset of :data:`SYNTHETIC_CLASSES`.

    Returns
    -------
    pathlib.Path
        ``root``; images in ``root/train``, annotations in ``root/Annotation``.

    Raises
    ------
    ScaleprobeError
        If an argument is invalid, or ``root`` exists with other arguments, no
        manifest, or is not a directory.
    """
    root = Path(root)
    wnids = _check_args(n_per_class, seed, classes)
    manifest = {
        "generator": "src.data.synthetic",
        "version": SYNTHETIC_VERSION,
        "n_per_class": n_per_class,
        "seed": seed,
        "classes": sorted(wnids),
    }
    if _reuse_existing(root, manifest):
        logger.info("synthetic dataset at %s is up to date; not regenerating", root)
        return root

    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        for wnid in wnids:
            _write_class(tmp, wnid, n_per_class, seed)
        (tmp / MANIFEST_NAME).write_text(
            json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        try:
            os.replace(tmp, root)
        except OSError:
            # Another process finished first: accept its result if it matches.
            if _reuse_existing(root, manifest):
                return root
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info(
        "generated synthetic dataset at %s: %d classes x %d images", root, len(wnids), n_per_class
    )
    return root


def _check_args(n_per_class: object, seed: object, classes: object) -> list[str]:
    if isinstance(n_per_class, bool) or not isinstance(n_per_class, int) or n_per_class < 1:
        raise ScaleprobeError(f"n_per_class={n_per_class!r} is not allowed; expected an int >= 1")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ScaleprobeError(f"seed={seed!r} is not allowed; expected an int >= 0")
    if isinstance(classes, str) or not isinstance(classes, Sequence) or not classes:
        raise ScaleprobeError(
            f"classes={classes!r} is not allowed; expected a non-empty list from "
            f"{list(SYNTHETIC_CLASSES)}"
        )
    wnids = list(classes)
    unknown = [c for c in wnids if c not in SYNTHETIC_CLASSES]
    if unknown:
        raise ScaleprobeError(
            f"synthetic classes {unknown} are not allowed; choose from {list(SYNTHETIC_CLASSES)}"
        )
    if len(set(wnids)) != len(wnids):
        raise ScaleprobeError(f"classes={wnids!r} repeats a class; list each class once")
    return wnids


def _reuse_existing(root: Path, manifest: dict[str, object]) -> bool:
    """Return True if ``root`` already holds this dataset, False if it is free."""
    if not root.exists():
        return False
    if not root.is_dir():
        raise ScaleprobeError(
            f"data root {root} exists and is not a directory; delete it or choose another data.root"
        )
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        if not any(root.iterdir()):
            return False  # an empty directory is replaced by the rename
        raise ScaleprobeError(
            f"data root {root} exists without a synthetic {MANIFEST_NAME}; "
            "delete it or choose another data.root"
        )
    try:
        found = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        found = None
    if found != manifest:
        raise ScaleprobeError(
            f"data root {root} holds a synthetic dataset made with {found!r}, not {manifest!r}; "
            "delete it or choose another data.root"
        )
    return True


def _write_class(tmp: Path, wnid: str, n_per_class: int, seed: int) -> None:
    class_index = list(SYNTHETIC_CLASSES).index(wnid)
    image_dir = tmp / "train" / wnid
    xml_dir = tmp / "Annotation" / wnid
    image_dir.mkdir(parents=True)
    xml_dir.mkdir(parents=True)
    draw_object = _DRAWERS[SYNTHETIC_CLASSES[wnid]]
    for i in range(n_per_class):
        rng = np.random.default_rng([seed, class_index, i])
        image, box = _draw_image(rng, draw_object)
        stem = f"{wnid}_{i}"
        image.save(image_dir / f"{stem}.JPEG", format="JPEG", quality=JPEG_QUALITY)
        annotation = Annotation(
            filename=stem,
            width=image.width,
            height=image.height,
            objects=(AnnotatedObject(name=wnid, box=box),),
        )
        write_voc_xml(xml_dir / f"{stem}.xml", annotation, folder=wnid)


def _draw_image(rng: Rng, draw_object: Callable[..., Image.Image]) -> tuple[Image.Image, Box]:
    low, high = IMAGE_SIZE_RANGE
    width, height = (int(v) for v in rng.integers(low, high + 1, size=2))
    ratio = rng.uniform(*RATIO_RANGE)
    # Box aspect: bw = r*W*s, bh = r*H/s keeps bw*bh = r^2*W*H; s in [r, 1/r] fits.
    s_low, s_high = max(ratio, 0.6), min(1.0 / ratio, 1.6)
    s = math.exp(rng.uniform(math.log(s_low), math.log(s_high)))
    box_w = int(np.clip(round(ratio * width * s), 8, width))
    box_h = int(np.clip(round(ratio * height / s), 8, height))
    x0 = int(rng.integers(0, width - box_w + 1))
    y0 = int(rng.integers(0, height - box_h + 1))
    box = Box(x0, y0, x0 + box_w, y0 + box_h)
    image = draw_object(rng, width, height, box)
    pixels = np.asarray(image, dtype=np.float32)
    pixels += rng.normal(0.0, 6.0, size=pixels.shape).astype(np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), box


def _jitter(rng: Rng, color: Rgb, amount: int = 20) -> Rgb:
    shifted = np.asarray(color) + rng.integers(-amount, amount + 1, size=3)
    return tuple(int(v) for v in np.clip(shifted, 0, 255))  # type: ignore[return-value]


def _vertical_gradient(rng: Rng, width: int, height: int, top: Rgb, bottom: Rgb) -> np.ndarray:
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    a = np.asarray(_jitter(rng, top), dtype=np.float32)
    b = np.asarray(_jitter(rng, bottom), dtype=np.float32)
    return np.broadcast_to(a * (1 - t) + b * t, (height, width, 3)).copy()


def _texture(rng: Rng, width: int, height: int, strength: float) -> np.ndarray:
    """Smooth low-frequency noise (blocky noise upsampled) so backgrounds vary."""
    coarse = rng.normal(0.0, strength, size=(height // 16 + 2, width // 16 + 2)).astype(np.float32)
    field = Image.fromarray(coarse).resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(field, dtype=np.float32)[:, :, None]


def _to_image(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _draw_bird(
    draw: ImageDraw.ImageDraw, rng: Rng, box: Box, body: Rgb, wing: Rgb, tip: Rgb, droop: float
) -> None:
    """Draw a bird seen from below: wings span the box width, the body reaches its bottom."""
    x0, y0, x1, y1 = box.xmin, box.ymin, box.xmax - 1, box.ymax - 1
    w, h = x1 - x0, y1 - y0
    cx = x0 + w / 2
    shoulder_y = y0 + h * rng.uniform(0.35, 0.5)
    tip_y = y0 + h * droop
    for side in (-1, 1):
        outer = x0 if side < 0 else x1
        wing_poly = [
            (cx, shoulder_y - h * 0.08),
            (cx + side * w * 0.25, y0),
            (outer, tip_y),
            (cx + side * w * 0.3, shoulder_y + h * 0.12),
            (cx, shoulder_y + h * 0.1),
        ]
        draw.polygon(wing_poly, fill=wing)
        draw.polygon(
            [(outer, tip_y), (cx + side * w * 0.38, tip_y - h * 0.05), wing_poly[3]],
            fill=tip,
        )
    draw.ellipse([cx - w * 0.09, y0 + h * 0.12, cx + w * 0.09, y1], fill=body)
    draw.ellipse([cx - w * 0.06, y0 + h * 0.05, cx + w * 0.06, y0 + h * 0.25], fill=body)


def _draw_albatross(rng: Rng, width: int, height: int, box: Box) -> Image.Image:
    pixels = _vertical_gradient(rng, width, height, (120, 170, 225), (40, 90, 150))
    horizon = int(rng.integers(height // 3, 2 * height // 3))
    pixels[horizon:] *= np.float32(0.75)  # darker sea below the horizon
    pixels += _texture(rng, width, height, 12.0)
    image = _to_image(pixels)
    draw = ImageDraw.Draw(image)
    _draw_bird(
        draw,
        rng,
        box,
        body=_jitter(rng, (240, 240, 235), 10),
        wing=_jitter(rng, (200, 200, 205), 20),
        tip=_jitter(rng, (60, 60, 65), 15),
        droop=rng.uniform(0.0, 0.2),
    )
    return image


def _draw_kite(rng: Rng, width: int, height: int, box: Box) -> Image.Image:
    pixels = _vertical_gradient(rng, width, height, (200, 215, 235), (230, 235, 240))
    pixels += _texture(rng, width, height, 10.0)
    image = _to_image(pixels)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(0, 4))):  # a few pale clouds
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        rx, ry = rng.uniform(15, 50), rng.uniform(6, 18)
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=_jitter(rng, (245, 245, 248), 5))
    _draw_bird(
        draw,
        rng,
        box,
        body=_jitter(rng, (120, 70, 35), 20),
        wing=_jitter(rng, (140, 90, 45), 20),
        tip=_jitter(rng, (50, 35, 25), 10),
        droop=rng.uniform(0.3, 0.6),
    )
    # Forked tail inside the box, a kite's field mark.
    x0, y1, w = box.xmin, box.ymax - 1, box.width - 1
    cx = x0 + w / 2
    h = box.height
    tail = [(cx - w * 0.1, y1 - h * 0.3), (cx - w * 0.12, y1), (cx, y1 - h * 0.08),
            (cx + w * 0.12, y1), (cx + w * 0.1, y1 - h * 0.3)]  # fmt: skip
    draw.polygon(tail, fill=_jitter(rng, (160, 100, 50), 15))
    return image


def _draw_racing_car(rng: Rng, width: int, height: int, box: Box) -> Image.Image:
    pixels = _vertical_gradient(rng, width, height, (110, 110, 110), (80, 80, 85))
    pixels += _texture(rng, width, height, 8.0)
    image = _to_image(pixels)
    draw = ImageDraw.Draw(image)
    lane_y = float(rng.uniform(0, height))
    for x in range(int(rng.integers(0, 30)), width, 40):  # dashed lane marking
        draw.rectangle([x, lane_y, x + 20, lane_y + 3], fill=(230, 230, 220))
    x0, y0, x1, y1 = box.xmin, box.ymin, box.xmax - 1, box.ymax - 1
    w, h = x1 - x0, y1 - y0
    palette = [(210, 30, 30), (230, 120, 20), (30, 80, 200), (240, 200, 30), (20, 150, 70)]
    body = _jitter(rng, palette[int(rng.integers(len(palette)))], 20)
    accent = _jitter(rng, (240, 240, 240), 15)
    draw.rounded_rectangle(
        [x0, y0 + h * 0.35, x1, y0 + h * 0.85], radius=max(1.0, h * 0.12), fill=body
    )
    draw.polygon([(x0 + w * 0.3, y0 + h * 0.4), (x0 + w * 0.45, y0), (x0 + w * 0.65, y0),
                  (x0 + w * 0.75, y0 + h * 0.4)], fill=body)  # fmt: skip
    draw.ellipse([x0 + w * 0.48, y0 + h * 0.08, x0 + w * 0.62, y0 + h * 0.35], fill=(20, 20, 30))
    draw.rectangle([x0 + w * 0.05, y0 + h * 0.55, x1 - w * 0.05, y0 + h * 0.6], fill=accent)
    for cx in (x0 + w * 0.18, x1 - w * 0.18):  # dark wheels touching the bottom edge
        r = min(w * 0.13, h * 0.3)
        draw.ellipse([cx - r, y1 - 2 * r, cx + r, y1], fill=_jitter(rng, (25, 25, 25), 8))
        draw.ellipse([cx - r / 2, y1 - 1.5 * r, cx + r / 2, y1 - r / 2], fill=(120, 120, 125))
    return image


_DRAWERS: dict[str, Callable[..., Image.Image]] = {
    "albatross": _draw_albatross,
    "kite": _draw_kite,
    "racing_car": _draw_racing_car,
}
