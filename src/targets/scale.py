"""The paper's target: the object's scale ratio ``r = sqrt(box area / image area)``.

``area="mask"`` measures the object's segmentation instead of its box,
``sqrt(mask area / image area)``, for records that carry a mask area (COCO).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from src.data.boxes import scale_ratio
from src.data.records import ImageRecord
from src.errors import ScaleprobeError
from src.targets.base import Target

__all__ = ["AREAS", "ScaleTarget"]

AREAS: tuple[str, ...] = ("box", "mask")
"""Values of ``target.area``: what the object's area is measured on."""


class ScaleTarget(Target):
    """Scale ratio of the record's box (or mask) in its image (:func:`src.data.boxes.scale_ratio`).

    Which object an image with several contributes is ``data.policy`` (single,
    largest, union), applied when the records are loaded; the target only
    measures it. With ``area="mask"`` the area is the record's ``mask_area``:
    the chosen object's mask, or with ``union`` the union of the objects' masks
    (:func:`src.data.coco.load_coco_records`).

    Parameters
    ----------
    name : str, default="scale"
        The ``target`` MLflow param.
    area : {"box", "mask"}, default="box"
        ``box``: ``sqrt(box area / image area)``, the paper's r; ``mask``:
        ``sqrt(mask area / image area)``.

    Examples
    --------
    >>> from src.data.boxes import Box
    >>> record = ImageRecord("i", "/x/i.JPEG", "n02058221", 100, 100, Box(0, 0, 50, 50), 900)
    >>> ScaleTarget().values([record]), ScaleTarget(area="mask").values([record])
    (array([0.5]), array([0.3]))
    """

    def __init__(self, name: str = "scale", area: str = "box") -> None:
        super().__init__(name)
        if area not in AREAS:
            raise ScaleprobeError(f"target.area={area!r} is not allowed; choose from {list(AREAS)}")
        self.area = area
        self.label = f"scale ratio r = sqrt({area} area / image area)"

    def rows(self, records: Sequence[ImageRecord]) -> tuple[np.ndarray, dict[str, int]]:
        """Return every record; with ``area="mask"`` check first that each has a mask.

        Called before extraction (:func:`src.targets.select.target_rows`), so a
        record without a mask stops the run before anything is cached.

        Raises
        ------
        ScaleprobeError
            Naming the first image without a mask area.
        """
        if self.area == "mask":
            for record in records:
                if record.mask_area is None:
                    raise ScaleprobeError(
                        f"target.area=mask needs the object's mask and image {record.path} has "
                        "none (only data=coco annotations with a readable segmentation carry "
                        "one); use target.area=box"
                    )
        return super().rows(records)

    def value(self, record: ImageRecord) -> float:
        """Return ``sqrt(box area / image area)`` (or the mask's) of ``record``."""
        if self.area == "box":
            return scale_ratio(record.box, record.width, record.height)
        if record.mask_area is None:
            raise ScaleprobeError(
                f"target.area=mask needs the object's mask and image {record.path} has none"
            )
        return math.sqrt(record.mask_area / (record.width * record.height))
