"""A small synthetic stand-in for the ILSVRC classes of the paper.

Tests, smoke runs and CI need data with known scale ratios without downloading
ImageNet.  The generator draws one object per image at a known box, in the
exact ILSVRC train layout (``train/<wnid>/<wnid>_<i>.JPEG`` plus
``Annotation/<wnid>/<wnid>_<i>.xml``), so the same loader reads synthetic and
real data.  Image sizes and aspect ratios vary, so the ratio can only be right
if it is taken from the XML.

Beside the images, ``factors.csv`` lists every factor drawn per image (scale
ratio, rotation, centre, aspect, brightness, background), keyed on the image id
the loaders give each record, so ``target=csv`` can probe any of them. With
``rotation=True`` the objects are drawn rotated (a new dataset: the default
images are unchanged, byte for byte).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from src.atomic import atomic_write_text
from src.data.annotations import AnnotatedObject, Annotation, write_voc_xml
from src.data.boxes import Box, scale_ratio
from src.errors import ScaleprobeError

__all__ = [
    "FACTORS_NAME",
    "FACTOR_COLUMNS",
    "ROTATION_RANGE",
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
FACTORS_NAME = "factors.csv"
"""The per-image factors, in the data root beside ``train/`` and ``Annotation/``."""
FACTOR_COLUMNS = (
    "image_id",
    "class",
    "scale_ratio",
    "rotation_deg",
    "center_x",
    "center_y",
    "aspect",
    "brightness",
    "background_id",
)
"""The columns of ``factors.csv``; ``image_id`` is the file stem (the csv target's join key)."""
ROTATION_RANGE = (0.0, 90.0)
"""Degrees, counter-clockwise, of ``rotation=True``: one sign, unambiguous, no wrap-around.

The birds are mirror-symmetric about their vertical axis, so a bird rotated by
-a is the mirror image of one rotated by +a; ImageNet networks are trained
with horizontal flips and hardly tell the two apart (a +-45 range gave test
R^2 < 0 on Lite0's pooled features, this one 0.6). A range of one sign has no
such twin, and no object here has a rotational symmetry within it (the car has
none at all). It has no wrap-around either (unlike 359 vs 1 degrees), so
``rotation_deg`` is regressed as it is, not as its sine and cosine.
"""
IMAGE_SIZE_RANGE = (160, 320)
RATIO_RANGE = (0.1, 0.95)
JPEG_QUALITY = 90

Rng = np.random.Generator
Rgb = tuple[int, int, int]
Factors = dict[str, object]


def generate_synthetic_dataset(
    root: str | os.PathLike[str],
    *,
    n_per_class: int = 120,
    seed: int = 0,
    classes: Sequence[str] = tuple(SYNTHETIC_CLASSES),
    rotation: bool = False,
) -> Path:
    """Generate the synthetic dataset once, deterministically, under ``root``.

    Each image has a random size (sides in 160..320 px), one object whose scale
    ratio is drawn uniformly in about 0.1..0.95 with a random box aspect, placed
    fully inside the image.  Image ``i`` of class ``c`` is drawn from
    ``np.random.default_rng([seed, index of c in SYNTHETIC_CLASSES, i])``, so the
    same arguments give byte-identical files and a class's images do not
    depend on which other classes are generated. ``factors.csv`` (columns
    :data:`FACTOR_COLUMNS`) holds what was drawn; a dataset made before it
    existed gets it on reuse (the same draws, replayed in memory).

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
    rotation : bool, default=False
        Draw each object rotated by an angle uniform in :data:`ROTATION_RANGE`
        (its box is the rotated object's). In the manifest only when true, so
        a default dataset made before this option is still reused.

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
    if not isinstance(rotation, bool):
        raise ScaleprobeError(f"data.rotation={rotation!r} is not allowed; expected true or false")
    manifest: dict[str, object] = {
        "generator": "src.data.synthetic",
        "version": SYNTHETIC_VERSION,
        "n_per_class": n_per_class,
        "seed": seed,
        "classes": sorted(wnids),
    }
    if rotation:
        manifest["rotation"] = True
    if _reuse_existing(root, manifest):
        if not (root / FACTORS_NAME).is_file():  # made before factors.csv existed
            rows = [f for w in wnids for f in _draw_class(w, n_per_class, seed, rotation, None)]
            _write_factors(root / FACTORS_NAME, rows)
            logger.info("wrote %s for the synthetic dataset at %s", FACTORS_NAME, root)
        logger.info("synthetic dataset at %s is up to date; not regenerating", root)
        return root

    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        rows = [f for w in wnids for f in _draw_class(w, n_per_class, seed, rotation, tmp)]
        _write_factors(tmp / FACTORS_NAME, rows)
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
        "generated synthetic dataset at %s: %d classes x %d images%s",
        root,
        len(wnids),
        n_per_class,
        ", rotated" if rotation else "",
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


def _draw_class(
    wnid: str, n_per_class: int, seed: int, rotation: bool, tmp: Path | None
) -> list[Factors]:
    """Draw a class's images; save them (and their XML) under ``tmp`` unless it is None.

    Returns the factors of each image, in image order: what ``factors.csv`` holds.
    """
    class_index = list(SYNTHETIC_CLASSES).index(wnid)
    image_dir = None if tmp is None else tmp / "train" / wnid
    xml_dir = None if tmp is None else tmp / "Annotation" / wnid
    for directory in (image_dir, xml_dir):
        if directory is not None:
            directory.mkdir(parents=True)
    scene = _SCENES[SYNTHETIC_CLASSES[wnid]]
    rows: list[Factors] = []
    for i in range(n_per_class):
        rng = np.random.default_rng([seed, class_index, i])
        image, box, factors = _draw_image(rng, scene, rotation)
        stem = f"{wnid}_{i}"
        rows.append({"image_id": stem, "class": wnid, **factors})
        if image_dir is None or xml_dir is None:
            continue
        image.save(image_dir / f"{stem}.JPEG", format="JPEG", quality=JPEG_QUALITY)
        annotation = Annotation(
            filename=stem,
            width=image.width,
            height=image.height,
            objects=(AnnotatedObject(name=wnid, box=box),),
        )
        write_voc_xml(xml_dir / f"{stem}.xml", annotation, folder=wnid)
    return rows


def _write_factors(path: Path, rows: Sequence[Factors]) -> None:
    """Write ``factors.csv`` atomically; floats as ``repr`` (exact and deterministic)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FACTOR_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
    atomic_write_text(path, buffer.getvalue())


def _box_factors(box: Box, width: int, height: int) -> Factors:
    """Return the box's factors, computed as target=scale, position and aspect do."""
    return {
        "scale_ratio": scale_ratio(box, width, height),
        "center_x": (box.xmin + box.xmax) / 2 / width,
        "center_y": (box.ymin + box.ymax) / 2 / height,
        "aspect": math.log(box.width / box.height),
    }


def _draw_image(rng: Rng, scene: _Scene, rotation: bool) -> tuple[Image.Image, Box, Factors]:
    low, high = IMAGE_SIZE_RANGE
    width, height = (int(v) for v in rng.integers(low, high + 1, size=2))
    # Drawn only when rotating: the default images keep their draws, byte for byte.
    angle = float(rng.uniform(*ROTATION_RANGE)) if rotation else 0.0
    ratio = rng.uniform(*RATIO_RANGE)
    # Box aspect: bw = r*W*s, bh = r*H/s keeps bw*bh = r^2*W*H; s in [r, 1/r] fits.
    s_low, s_high = max(ratio, 0.6), min(1.0 / ratio, 1.6)
    s = math.exp(rng.uniform(math.log(s_low), math.log(s_high)))
    if rotation:
        return _draw_rotated(
            rng, scene, width, height, ratio * width * s, ratio * height / s, angle
        )
    box_w = int(np.clip(round(ratio * width * s), 8, width))
    box_h = int(np.clip(round(ratio * height / s), 8, height))
    x0 = int(rng.integers(0, width - box_w + 1))
    y0 = int(rng.integers(0, height - box_h + 1))
    box = Box(x0, y0, x0 + box_w, y0 + box_h)
    image, brightness = scene.background(rng, width, height)
    scene.draw_object(ImageDraw.Draw(image), rng, box)
    factors = {"rotation_deg": 0.0, "brightness": brightness, "background_id": scene.background_id}
    return _add_noise(rng, image), box, {**_box_factors(box, width, height), **factors}


def _draw_rotated(
    rng: Rng, scene: _Scene, width: int, height: int, w: float, h: float, angle: float
) -> tuple[Image.Image, Box, Factors]:
    """Draw the object upright on its own layer, rotate it, paste it where it fits.

    The upright box is shrunk so that the rotated one fits the image (2 px to
    spare for rounding); the annotated box is the rotated object's tight box.
    """
    cos, sin = abs(math.cos(math.radians(angle))), abs(math.sin(math.radians(angle)))
    shrink = min(1.0, (width - 2) / (w * cos + h * sin), (height - 2) / (w * sin + h * cos))
    box_w, box_h = max(8, round(w * shrink)), max(8, round(h * shrink))
    image, brightness = scene.background(rng, width, height)
    layer = Image.new("RGBA", (box_w, box_h), (0, 0, 0, 0))
    scene.draw_object(ImageDraw.Draw(layer), rng, Box(0, 0, box_w, box_h))
    rotated = layer.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    tight = rotated.getchannel("A").getbbox()
    if tight is None:  # pragma: no cover - every object draws opaque pixels
        raise ScaleprobeError("synthetic object drew no pixels; this is a generator bug")
    rotated = rotated.crop(tight)
    rw, rh = min(rotated.width, width), min(rotated.height, height)
    x0 = int(rng.integers(0, width - rw + 1))
    y0 = int(rng.integers(0, height - rh + 1))
    image.paste(rotated, (x0, y0), rotated)
    box = Box(x0, y0, x0 + rw, y0 + rh)
    factors = {
        "rotation_deg": angle,
        "brightness": brightness,
        "background_id": scene.background_id,
    }
    return _add_noise(rng, image), box, {**_box_factors(box, width, height), **factors}


def _add_noise(rng: Rng, image: Image.Image) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float32)
    pixels += rng.normal(0.0, 6.0, size=pixels.shape).astype(np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _jitter(rng: Rng, color: Rgb, amount: int = 20) -> Rgb:
    shifted = np.asarray(color) + rng.integers(-amount, amount + 1, size=3)
    return tuple(int(v) for v in np.clip(shifted, 0, 255))  # type: ignore[return-value]


def _vertical_gradient(
    rng: Rng, width: int, height: int, top: Rgb, bottom: Rgb
) -> tuple[np.ndarray, float]:
    """Return the gradient's pixels and its brightness: the mean of its two drawn colours."""
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    a = np.asarray(_jitter(rng, top), dtype=np.float32)
    b = np.asarray(_jitter(rng, bottom), dtype=np.float32)
    brightness = float((a.mean(dtype=np.float64) + b.mean(dtype=np.float64)) / 2)
    return np.broadcast_to(a * (1 - t) + b * t, (height, width, 3)).copy(), brightness


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


def _sea_and_sky(rng: Rng, width: int, height: int) -> tuple[Image.Image, float]:
    pixels, brightness = _vertical_gradient(rng, width, height, (120, 170, 225), (40, 90, 150))
    horizon = int(rng.integers(height // 3, 2 * height // 3))
    pixels[horizon:] *= np.float32(0.75)  # darker sea below the horizon
    pixels += _texture(rng, width, height, 12.0)
    return _to_image(pixels), brightness


def _albatross(draw: ImageDraw.ImageDraw, rng: Rng, box: Box) -> None:
    _draw_bird(
        draw,
        rng,
        box,
        body=_jitter(rng, (240, 240, 235), 10),
        wing=_jitter(rng, (200, 200, 205), 20),
        tip=_jitter(rng, (60, 60, 65), 15),
        droop=rng.uniform(0.0, 0.2),
    )


def _pale_sky(rng: Rng, width: int, height: int) -> tuple[Image.Image, float]:
    pixels, brightness = _vertical_gradient(rng, width, height, (200, 215, 235), (230, 235, 240))
    pixels += _texture(rng, width, height, 10.0)
    image = _to_image(pixels)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(0, 4))):  # a few pale clouds
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        rx, ry = rng.uniform(15, 50), rng.uniform(6, 18)
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=_jitter(rng, (245, 245, 248), 5))
    return image, brightness


def _kite(draw: ImageDraw.ImageDraw, rng: Rng, box: Box) -> None:
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


def _road(rng: Rng, width: int, height: int) -> tuple[Image.Image, float]:
    pixels, brightness = _vertical_gradient(rng, width, height, (110, 110, 110), (80, 80, 85))
    pixels += _texture(rng, width, height, 8.0)
    image = _to_image(pixels)
    draw = ImageDraw.Draw(image)
    lane_y = float(rng.uniform(0, height))
    for x in range(int(rng.integers(0, 30)), width, 40):  # dashed lane marking
        draw.rectangle([x, lane_y, x + 20, lane_y + 3], fill=(230, 230, 220))
    return image, brightness


def _racing_car(draw: ImageDraw.ImageDraw, rng: Rng, box: Box) -> None:
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


@dataclass(frozen=True)
class _Scene:
    """How one class is drawn: its background (first in the draws), then its object.

    ``background_id`` names the background kind (0 sky over sea, 1 pale sky with
    clouds, 2 road): one per class, so within a class it carries nothing.
    """

    background: Callable[[Rng, int, int], tuple[Image.Image, float]]
    draw_object: Callable[[ImageDraw.ImageDraw, Rng, Box], None]
    background_id: int


_SCENES: dict[str, _Scene] = {
    "albatross": _Scene(_sea_and_sky, _albatross, 0),
    "kite": _Scene(_pale_sky, _kite, 1),
    "racing_car": _Scene(_road, _racing_car, 2),
}
