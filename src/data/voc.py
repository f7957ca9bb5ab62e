"""Load image records from a Pascal VOC directory (``JPEGImages/`` + ``Annotations/``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from src.data.annotations import parse_voc_xml
from src.data.boxes import check_policy
from src.data.records import ImageRecord, RecordCounts
from src.data.rules import (
    apply_policy,
    check_classes,
    check_size_policy,
    count_loop,
    existing_dir,
    is_symlink_loop,
    log_counts,
    read_header_size,
    record_size,
    validate_box,
)
from src.errors import ScaleprobeError

__all__ = ["VOC_CLASSES", "load_voc_records"]

logger = logging.getLogger(__name__)

VOC_CLASSES: tuple[str, ...] = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
"""The 20 Pascal VOC object classes, the names ``load_voc_records`` accepts."""


def load_voc_records(
    root: str | os.PathLike[str],
    classes: Sequence[str],
    *,
    policy: str = "single",
    include_difficult: bool = False,
    include_truncated: bool = True,
    on_size_mismatch: str = "use_image",
) -> tuple[list[ImageRecord], dict[str, RecordCounts]]:
    """Load records from a Pascal VOC directory (e.g. ``VOC2012``).

    Images are ``root/JPEGImages/<id>.jpg``, boxes ``root/Annotations/<id>.xml``.
    An image with objects of several requested classes gives one record per
    class.  The difficult/truncated filters are applied before the policy, so
    an image with one usable bird and one difficult bird counts as single when
    difficult objects are excluded.

    Parameters
    ----------
    root : str or path-like
        The VOC year directory holding ``JPEGImages`` and ``Annotations``.
    classes : sequence of str
        VOC class names (see :data:`VOC_CLASSES`), in output order.
    policy : {"single", "largest", "union"}, default="single"
        Multi-object policy, see :func:`select_box`.
    include_difficult : bool, default=False
        Keep objects flagged ``difficult``.
    include_truncated : bool, default=True
        Keep objects flagged ``truncated``.
    on_size_mismatch : {"use_image", "skip", "error"}, default="use_image"
        What to do when an XML ``<size>`` differs from the image file's size,
        as in :func:`src.data.imagenet.load_imagenet_records` (the file's size
        is the truth; boxes are kept in its pixel coordinates).

    Returns
    -------
    records : list of ImageRecord
        Sorted by ``image_id`` within each class, classes in the given order;
        ``class_id`` is the VOC name.
    counts : dict of str to RecordCounts
        What each rule kept and dropped, per class.

    Raises
    ------
    ScaleprobeError
        If an argument is invalid, a directory is missing, a class has no usable
        image, or an annotation is malformed or has a box outside its image.
    """
    check_policy(policy)
    check_size_policy(on_size_mismatch)
    names = check_classes(classes)
    unknown = [name for name in names if name not in VOC_CLASSES]
    if unknown:
        raise ScaleprobeError(
            f"VOC classes {unknown} are not allowed; choose from {list(VOC_CLASSES)}"
        )
    for flag, value in (
        ("include_difficult", include_difficult),
        ("include_truncated", include_truncated),
    ):
        if not isinstance(value, bool):
            raise ScaleprobeError(f"{flag}={value!r} is not allowed; expected true or false")
    voc_root = existing_dir(root, "VOC root")
    image_dir = existing_dir(voc_root / "JPEGImages", "VOC JPEGImages directory")
    xml_dir = existing_dir(voc_root / "Annotations", "VOC Annotations directory")

    per_class: dict[str, list[ImageRecord]] = {name: [] for name in names}
    counts = {name: RecordCounts() for name in names}
    for xml_path in sorted(xml_dir.glob("*.xml")):
        annotation = parse_voc_xml(xml_path)
        image_path = (image_dir / f"{xml_path.stem}.jpg").absolute()
        image_exists = image_path.is_file()
        image_loop = not image_exists and is_symlink_loop(image_path)
        header_size: tuple[int, int] | None = None  # read once, when a class needs it
        for name in names:
            tally = counts[name]
            of_class = [obj for obj in annotation.objects if obj.name == name]
            if not of_class:
                continue  # images without the class are not part of that class at all
            usable = [
                obj
                for obj in of_class
                if (include_difficult or not obj.difficult)
                and (include_truncated or not obj.truncated)
            ]
            if not usable:
                tally.filtered += 1
                continue
            if image_loop:
                count_loop(image_path, tally)
                continue
            if not image_exists:
                tally.bad += 1
                logger.warning("%s: image %s is missing; skipped", xml_path, image_path)
                continue
            box = apply_policy([obj.box for obj in usable], policy, tally)
            if box is None:
                continue
            if header_size is None:
                header_size = read_header_size(image_path) or (annotation.width, annotation.height)
            size = record_size(
                header_size, annotation, xml_path, image_path, on_size_mismatch, tally
            )
            if size is None:
                continue
            validate_box(box, size, annotation, xml_path)
            per_class[name].append(
                ImageRecord(
                    image_id=xml_path.stem,
                    path=str(image_path),
                    class_id=name,
                    width=size[0],
                    height=size[1],
                    box=box,
                )
            )
            tally.kept += 1

    records: list[ImageRecord] = []
    for name in names:
        if not per_class[name]:
            raise ScaleprobeError(
                f"class {name!r}: no usable image in {xml_dir} / {image_dir} "
                f"(policy={policy!r}, include_difficult={include_difficult}, "
                f"include_truncated={include_truncated}; counts {counts[name].as_dict()})"
            )
        records.extend(sorted(per_class[name], key=lambda r: r.image_id))
        log_counts(name, counts[name])
    return records, counts
