"""A target that lives outside src/: the box centre's horizontal position.

Put this directory on ``PYTHONPATH`` and ``tests/plugins/conf`` on Hydra's search
path (``hydra.searchpath=[file://<abs path>]``), then ``target=center_x`` selects
it: one module plus one YAML file, nothing in src/ or conf/ (issue 12, item 2).
"""

from __future__ import annotations

from src.data.records import ImageRecord
from src.targets.base import Target

__all__ = ["CenterXTarget"]


class CenterXTarget(Target):
    """Horizontal centre of the object's box as a fraction of the image width.

    Examples
    --------
    >>> from src.data.boxes import Box
    >>> record = ImageRecord("i", "/x/i.JPEG", "n02058221", 200, 100, Box(0, 0, 100, 50))
    >>> CenterXTarget("center_x").values([record])
    array([0.25])
    """

    label = "box centre x / image width"

    def value(self, record: ImageRecord) -> float:
        """Return ``(xmin + xmax) / 2 / width``."""
        return (record.box.xmin + record.box.xmax) / 2 / record.width
