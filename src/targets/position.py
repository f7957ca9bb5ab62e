"""The object's position: its box centre as a fraction of the image size."""

from __future__ import annotations

from src.data.boxes import clip_box
from src.data.records import ImageRecord
from src.errors import ScaleprobeError
from src.targets.base import Target

__all__ = ["AXES", "PositionTarget"]

AXES: tuple[str, ...] = ("x", "y")
"""Values of ``target.axis``: horizontal or vertical centre."""


class PositionTarget(Target):
    """Centre of the record's box along one axis, divided by the image's size there.

    The box is the one ``data.policy`` chose, checked and clipped to the image
    as for the scale ratio (:func:`src.data.boxes.clip_box`), so the value is in
    ``(0, 1)``: 0 the left (top) edge, 1 the right (bottom) edge.

    Parameters
    ----------
    name : str, default="position"
        The ``target`` MLflow param.
    axis : {"x", "y"}, default="x"
        ``x``: ``(xmin + xmax) / 2 / width``; ``y``: ``(ymin + ymax) / 2 / height``.

    Examples
    --------
    >>> from src.data.boxes import Box
    >>> record = ImageRecord("i", "/x/i.JPEG", "n02058221", 200, 100, Box(0, 0, 100, 50))
    >>> PositionTarget(axis="x").values([record]), PositionTarget(axis="y").values([record])
    (array([0.25]), array([0.25]))
    """

    def __init__(self, name: str = "position", axis: str = "x") -> None:
        super().__init__(name)
        if axis not in AXES:
            raise ScaleprobeError(f"target.axis={axis!r} is not allowed; choose from {list(AXES)}")
        self.axis = axis
        size = "width" if axis == "x" else "height"
        self.label = f"box centre {axis} / image {size}"

    def value(self, record: ImageRecord) -> float:
        """Return the clipped box's centre along :attr:`axis` over the image size."""
        box = clip_box(record.box, record.width, record.height)
        if self.axis == "x":
            return (box.xmin + box.xmax) / 2 / record.width
        return (box.ymin + box.ymax) / 2 / record.height
