"""Bounding boxes, the scale ratio and the multi-object policies.

This module has no file I/O so that both the annotation parsers and the
record loaders (:mod:`src.data.imagenet`, :mod:`src.data.voc`) can use it
without importing each other.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from src.errors import ScaleprobeError

__all__ = [
    "BOX_POLICIES",
    "BOX_TOLERANCE_PX",
    "Box",
    "check_policy",
    "clip_box",
    "scale_ratio",
    "select_box",
]

BOX_POLICIES: tuple[str, ...] = ("single", "largest", "union")
"""Names accepted by :func:`select_box`."""

BOX_TOLERANCE_PX: float = 1.0
"""How far (pixels) a box may stick out of its image before it counts as wrong.

Pascal VOC coordinates are 1-based (``xmax == width`` is legal, and some
annotations say ``width + 1``) while ILSVRC's are 0-based; one pixel of slack
accepts both conventions without accepting genuinely wrong boxes.
"""


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in Pascal VOC pixel coordinates.

    The box is plain data and is not validated on construction, so that a
    degenerate box read from a file can still be reported by
    :func:`scale_ratio` with a clear message.

    Parameters
    ----------
    xmin, ymin, xmax, ymax : float
        Corners in pixels; a valid box has ``xmin < xmax`` and ``ymin < ymax``.

    Examples
    --------
    >>> Box(10, 20, 50, 40).area
    800
    """

    xmin: float
    ymin: float
    xmax: float
    ymax: float

    @property
    def width(self) -> float:
        """Horizontal extent, ``xmax - xmin``."""
        return self.xmax - self.xmin

    @property
    def height(self) -> float:
        """Vertical extent, ``ymax - ymin``."""
        return self.ymax - self.ymin

    @property
    def area(self) -> float:
        """``width * height``; zero or negative for a degenerate box."""
        return self.width * self.height


def scale_ratio(box: Box, width: int, height: int) -> float:
    """Return the object's scale ratio ``r = sqrt(hb * wb / (hi * wi))``.

    This is the regression target of the whole project: the square root of the
    fraction of the image the box covers.  A box that sticks out of the image by
    at most :data:`BOX_TOLERANCE_PX` is clipped to the image first, so ``r`` is
    always in ``(0, 1]``.

    Parameters
    ----------
    box : Box
        The object's box in pixels.
    width, height : int
        The image size in pixels, as given by the annotation.

    Returns
    -------
    float
        The scale ratio in ``(0, 1]``.

    Raises
    ------
    ScaleprobeError
        If the image size is not positive, the box is not finite, has zero or
        negative area, or lies outside the image by more than the tolerance.

    Examples
    --------
    >>> scale_ratio(Box(0, 0, 50, 50), 100, 100)
    0.5
    """
    clipped = clip_box(box, width, height)
    return math.sqrt(clipped.area / (width * height))


def clip_box(box: Box, width: int, height: int) -> Box:
    """Check ``box`` against its image and return it clipped to the image.

    Every box-derived target measures this box, so all of them accept and
    reject the same boxes (:data:`BOX_TOLERANCE_PX` of slack, then clipped).

    Parameters
    ----------
    box : Box
        The object's box in pixels.
    width, height : int
        The image size in pixels.

    Returns
    -------
    Box
        The box inside ``0..width`` x ``0..height``, with positive area.

    Raises
    ------
    ScaleprobeError
        If the image size is not positive, the box is not finite, has zero or
        negative area, or lies outside the image by more than the tolerance.

    Examples
    --------
    >>> clip_box(Box(-0.5, 0, 50, 100.5), 100, 100)
    Box(xmin=0, ymin=0, xmax=50, ymax=100)
    """
    if not (_is_number(width) and _is_number(height)) or width <= 0 or height <= 0:
        raise ScaleprobeError(
            f"image size {width!r}x{height!r} is not allowed; width and height must be > 0"
        )
    coords = (box.xmin, box.ymin, box.xmax, box.ymax)
    if not all(_is_number(c) and math.isfinite(c) for c in coords):
        raise ScaleprobeError(f"box {_fmt(box)} has a non-finite coordinate")
    if box.width <= 0 or box.height <= 0:
        raise ScaleprobeError(
            f"box {_fmt(box)} has zero or negative area; need xmin < xmax and ymin < ymax"
        )
    tol = BOX_TOLERANCE_PX
    if box.xmin < -tol or box.ymin < -tol or box.xmax > width + tol or box.ymax > height + tol:
        raise ScaleprobeError(
            f"box {_fmt(box)} lies outside the {width}x{height} image "
            f"(allowed: 0..width, 0..height, with {tol:g} px tolerance)"
        )
    clipped = Box(max(box.xmin, 0), max(box.ymin, 0), min(box.xmax, width), min(box.ymax, height))
    if clipped.width <= 0 or clipped.height <= 0:
        raise ScaleprobeError(f"box {_fmt(box)} has no area inside the {width}x{height} image")
    return clipped


def select_box(boxes: list[Box], policy: str) -> Box | None:
    """Reduce an image's boxes of one class to the single box its record uses.

    Parameters
    ----------
    boxes : list of Box
        All boxes of the class in one image.
    policy : {"single", "largest", "union"}
        ``"single"`` keeps only images with exactly one box (the paper's clean
        setting: one object, one scale); ``"largest"`` takes the box of largest
        area; ``"union"`` takes the smallest box enclosing them all.

    Returns
    -------
    Box or None
        The chosen box, or ``None`` when there is no box, or when ``policy`` is
        ``"single"`` and there are several.

    Raises
    ------
    ScaleprobeError
        If ``policy`` is not one of :data:`BOX_POLICIES`.

    Examples
    --------
    >>> select_box([Box(0, 0, 2, 2), Box(5, 5, 6, 9)], "union")
    Box(xmin=0, ymin=0, xmax=6, ymax=9)
    >>> select_box([Box(0, 0, 2, 2), Box(5, 5, 6, 9)], "single") is None
    True
    """
    check_policy(policy)
    if not boxes:
        return None
    if policy == "single":
        return boxes[0] if len(boxes) == 1 else None
    if policy == "largest":
        return max(boxes, key=lambda b: b.area)
    return Box(
        xmin=min(b.xmin for b in boxes),
        ymin=min(b.ymin for b in boxes),
        xmax=max(b.xmax for b in boxes),
        ymax=max(b.ymax for b in boxes),
    )


def check_policy(policy: object) -> str:
    """Return ``policy`` if it names a multi-object policy, else raise.

    Parameters
    ----------
    policy : object
        The value to check; loaders call this before touching any file so a
        typo fails fast.

    Returns
    -------
    str
        The same policy.

    Raises
    ------
    ScaleprobeError
        If ``policy`` is not one of :data:`BOX_POLICIES`.
    """
    if not isinstance(policy, str) or policy not in BOX_POLICIES:
        raise ScaleprobeError(f"policy={policy!r} is not allowed; choose from {list(BOX_POLICIES)}")
    return policy


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _fmt(box: Box) -> str:
    return f"(xmin={box.xmin!r}, ymin={box.ymin!r}, xmax={box.xmax!r}, ymax={box.ymax!r})"
