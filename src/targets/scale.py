"""The paper's target: the object's scale ratio ``r = sqrt(box area / image area)``."""

from __future__ import annotations

from src.data.boxes import scale_ratio
from src.data.records import ImageRecord
from src.targets.base import Target

__all__ = ["ScaleTarget"]


class ScaleTarget(Target):
    """Scale ratio of the record's box in its image (:func:`src.data.boxes.scale_ratio`).

    Which box an image with several objects contributes is ``data.policy``
    (single, largest, union), applied when the records are loaded; the target
    only measures that box.

    Parameters
    ----------
    name : str, default="scale"
        The ``target`` MLflow param.

    Examples
    --------
    >>> from src.data.boxes import Box
    >>> record = ImageRecord("i", "/x/i.JPEG", "n02058221", 100, 100, Box(0, 0, 50, 50))
    >>> ScaleTarget().values([record])
    array([0.5])
    """

    label = "scale ratio r = sqrt(box area / image area)"

    def __init__(self, name: str = "scale") -> None:
        super().__init__(name)

    def value(self, record: ImageRecord) -> float:
        """Return ``sqrt(box area / image area)`` of ``record``."""
        return scale_ratio(record.box, record.width, record.height)
