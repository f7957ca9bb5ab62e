"""Load image records from the ILSVRC train layout (per-image XML or the LOC CSV).

The synthetic set is written in the same layout and read by the same loader.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from src.data.annotations import AnnotatedObject, parse_voc_xml, read_loc_csv
from src.data.boxes import check_policy, scale_ratio
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

__all__ = ["load_imagenet_records"]

logger = logging.getLogger(__name__)


def load_imagenet_records(
    images_dir: str | os.PathLike[str],
    classes: Sequence[str],
    *,
    annotations_dir: str | os.PathLike[str] | None = None,
    annotations_csv: str | os.PathLike[str] | None = None,
    policy: str = "single",
    image_ext: str = ".JPEG",
    on_size_mismatch: str = "use_image",
) -> tuple[list[ImageRecord], dict[str, RecordCounts]]:
    """Load records from the ILSVRC train layout (also used by the synthetic set).

    Images are ``images_dir/<wnid>/<wnid>_<n><image_ext>``.  Boxes come either
    from ``annotations_dir/<wnid>/<wnid>_<n>.xml`` (the ILSVRC bounding-box
    release, Pascal VOC XML) or from ``annotations_csv`` in
    ``LOC_train_solution.csv`` format.  Only objects named by the class WNID
    count.  The image size always comes from the image file's header (a lazy
    PIL open, no decoding): the CSV has none, and an XML ``<size>`` that differs
    from the file is handled by ``on_size_mismatch``.

    Parameters
    ----------
    images_dir : str or path-like
        Directory holding one sub-directory per WNID.
    classes : sequence of str
        WNIDs to load, in the order the records should come out.
    annotations_dir : str or path-like, optional
        Root of the per-image XML files.  Exactly one of ``annotations_dir`` and
        ``annotations_csv`` must be given.
    annotations_csv : str or path-like, optional
        The LOC CSV file.
    policy : {"single", "largest", "union"}, default="single"
        Multi-object policy, see :func:`select_box`.
    image_ext : str, default=".JPEG"
        Extension of the image files (matched case-insensitively).
    on_size_mismatch : {"use_image", "skip", "error"}, default="use_image"
        What to do when an XML ``<size>`` differs from the image file's size:
        ``"use_image"`` keeps the image with the file's size (counted as
        ``size_mismatch`` and logged), ``"skip"`` drops it (counted as
        ``size_mismatch_skipped``), ``"error"`` raises naming the XML and both
        sizes.  Boxes are kept as they are, in the pixel coordinates of the
        image file: they were drawn on its pixels (the LOC CSV gives the same
        boxes with no size at all), so rescaling them by the annotation's size
        would let the untrusted number change the ratio again.  A box that does
        not fit the real image is an error, as any box outside its image is.
        An image whose header cannot be read keeps the annotation's size; the
        extraction then skips or rejects it (``extract.on_bad_image``).

    Returns
    -------
    records : list of ImageRecord
        Sorted by ``image_id`` within each class, classes in the given order.
    counts : dict of str to RecordCounts
        What each rule kept and dropped, per class.

    Raises
    ------
    ScaleprobeError
        If an argument is invalid, ``images_dir``, a class directory or the
        annotations are missing, a class has no usable image, or an annotation
        is malformed or has a box outside its image (the message names the file).
    """
    check_policy(policy)
    check_size_policy(on_size_mismatch)
    wnids = check_classes(classes)
    if not isinstance(image_ext, str) or not image_ext.startswith(".") or len(image_ext) < 2:
        raise ScaleprobeError(f"image_ext={image_ext!r} is not allowed; expected e.g. '.JPEG'")
    if (annotations_dir is None) == (annotations_csv is None):
        raise ScaleprobeError(
            "give exactly one of annotations_dir (per-image XML) and annotations_csv "
            f"(LOC CSV); got annotations_dir={annotations_dir!r}, "
            f"annotations_csv={annotations_csv!r}"
        )
    images_root = existing_dir(images_dir, "images_dir")
    csv_objects: dict[str, list[AnnotatedObject]] | None = None
    xml_root: Path | None = None
    csv_path = Path(annotations_csv) if annotations_csv is not None else None
    if csv_path is not None:
        if not csv_path.is_file():
            raise ScaleprobeError(f"annotations_csv {csv_path} does not exist or is not a file")
        csv_objects = read_loc_csv(csv_path)
    else:
        xml_root = existing_dir(annotations_dir, "annotations_dir")

    records: list[ImageRecord] = []
    counts: dict[str, RecordCounts] = {}
    for wnid in wnids:
        class_dir = images_root / wnid
        if is_symlink_loop(class_dir):
            raise ScaleprobeError(
                f"class {wnid!r}: image directory {class_dir} is a symlink loop; "
                "point it at a real directory"
            )
        if not class_dir.is_dir():
            raise ScaleprobeError(
                f"class {wnid!r}: image directory {class_dir} does not exist; "
                f"expected images_dir/<wnid>/<wnid>_<n>{image_ext}"
            )
        tally = RecordCounts()
        image_paths, loops = _list_images(class_dir, image_ext, tally)
        class_records: list[ImageRecord] = []
        for image_path in image_paths:
            image_id = image_path.stem
            if csv_objects is not None:
                record = _record_from_csv(
                    image_path,
                    wnid,
                    csv_objects.get(image_id),
                    Path(annotations_csv),
                    policy,
                    tally,
                )
            else:
                xml_path = xml_root / wnid / f"{image_id}.xml"
                record = _record_from_xml(
                    image_path, wnid, xml_path, policy, on_size_mismatch, tally
                )
            if record is not None:
                class_records.append(record)
        if csv_objects is not None:
            # A looping file was counted already; its row is not missing as well.
            listed = {p.stem for p in (*image_paths, *loops)}
            _count_missing_images(csv_objects, wnid, listed, class_dir, csv_path, tally)
        if not class_records:
            source = csv_path if csv_path is not None else xml_root / wnid
            raise ScaleprobeError(
                f"class {wnid!r}: no usable image in {class_dir} ({len(image_paths)} "
                f"'{image_ext}' files, annotations from {source}; counts {tally.as_dict()})"
            )
        class_records.sort(key=lambda r: r.image_id)
        records.extend(class_records)
        counts[wnid] = tally
        log_counts(wnid, tally)
    return records, counts


def _record_from_xml(
    image_path: Path,
    wnid: str,
    xml_path: Path,
    policy: str,
    on_size_mismatch: str,
    tally: RecordCounts,
) -> ImageRecord | None:
    if is_symlink_loop(xml_path):
        count_loop(xml_path, tally)
        return None
    if not xml_path.is_file():
        tally.no_box += 1
        return None
    annotation = parse_voc_xml(xml_path)
    box = apply_policy([obj.box for obj in annotation.objects if obj.name == wnid], policy, tally)
    if box is None:
        return None
    header_size = read_header_size(image_path) or (annotation.width, annotation.height)
    size = record_size(header_size, annotation, xml_path, image_path, on_size_mismatch, tally)
    if size is None:
        return None
    validate_box(box, size, annotation, xml_path)
    tally.kept += 1
    return ImageRecord(
        image_id=image_path.stem,
        path=str(image_path.absolute()),
        class_id=wnid,
        width=size[0],
        height=size[1],
        box=box,
    )


def _record_from_csv(
    image_path: Path,
    wnid: str,
    objects: list[AnnotatedObject] | None,
    csv_path: Path,
    policy: str,
    tally: RecordCounts,
) -> ImageRecord | None:
    box = apply_policy([obj.box for obj in objects or () if obj.name == wnid], policy, tally)
    if box is None:
        return None
    size = read_header_size(image_path)
    if size is None:
        logger.warning("%s: cannot read the image header; skipped", image_path)
        tally.bad += 1
        return None
    width, height = size
    try:
        scale_ratio(box, width, height)
    except ScaleprobeError as err:
        raise ScaleprobeError(
            f"{csv_path}: image {image_path.stem} ({image_path}): {err}"
        ) from None
    tally.kept += 1
    return ImageRecord(
        image_id=image_path.stem,
        path=str(image_path.absolute()),
        class_id=wnid,
        width=width,
        height=height,
        box=box,
    )


def _list_images(
    class_dir: Path, image_ext: str, tally: RecordCounts
) -> tuple[list[Path], list[Path]]:
    """Image files of a class directory and the symlink loops among them (counted), sorted."""
    ext = image_ext.lower()
    candidates = sorted(
        p for p in class_dir.iterdir() if p.suffix.lower() == ext and not p.name.startswith(".")
    )
    images, loops = [], []
    for path in candidates:
        if path.is_file():
            images.append(path)
        elif is_symlink_loop(path):
            count_loop(path, tally)
            loops.append(path)
    return images, loops


def _count_missing_images(
    csv_objects: dict[str, list[AnnotatedObject]],
    wnid: str,
    listed: set[str],
    class_dir: Path,
    csv_path: Path,
    tally: RecordCounts,
) -> None:
    """Count the CSV rows of class ``wnid`` whose image id is not in ``listed``."""
    missing = sorted(
        image_id
        for image_id in csv_objects
        if image_id.startswith(f"{wnid}_") and image_id not in listed
    )
    tally.missing_image += len(missing)
    if missing:
        logger.warning(
            "%s: %d rows of class %s have no image in %s (counted as missing_image), e.g. %s",
            csv_path,
            len(missing),
            wnid,
            class_dir,
            missing[0],
        )
