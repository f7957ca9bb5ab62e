"""The object's aspect: the log of its box's width over its height."""

from __future__ import annotations

import math

from src.data.boxes import clip_box
from src.data.records import ImageRecord
from src.targets.base import Target

__all__ = ["AspectTarget"]


class AspectTarget(Target):
    """``log(box width / box height)`` of the record's box, clipped to the image.

    The log makes the target symmetric: a box twice as wide as tall gives
    ``log 2``, one twice as tall as wide ``-log 2``, a square 0; the raw ratio
    would squeeze every tall box into ``(0, 1)``.

    Parameters
    ----------
    name : str, default="aspect"
        The ``target`` MLflow param.

    Examples
    --------
    >>> from src.data.boxes import Box
    >>> record = ImageRecord("i", "/x/i.JPEG", "n02058221", 200, 100, Box(0, 0, 100, 50))
    >>> AspectTarget().values([record]).round(4)
    array([0.6931])
    """

    label = "box aspect log(box width / box height)"

    def __init__(self, name: str = "aspect") -> None:
        super().__init__(name)

    def value(self, record: ImageRecord) -> float:
        """Return ``log(width / height)`` of the clipped box."""
        box = clip_box(record.box, record.width, record.height)
        return math.log(box.width / box.height)
