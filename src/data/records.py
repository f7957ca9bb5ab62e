"""Image records: one image, one class, one box (targets are computed from them).

The loaders here turn a dataset on disk (ILSVRC train layout with per-image XML
or the LOC CSV, or Pascal VOC) into a list of :class:`ImageRecord`, the same
for synthetic and real data; nothing downstream opens an annotation.  Each rule
that drops an image is counted per class in :class:`RecordCounts` so that a run
can log how many images each class lost and why.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from PIL import Image

from src.data.annotations import AnnotatedObject, Annotation, parse_voc_xml, read_loc_csv
from src.data.boxes import BOX_POLICIES, Box, check_policy, scale_ratio, select_box
from src.errors import ScaleprobeError

__all__ = [
    "BOX_POLICIES",
    "FAULT_COUNTS",
    "SIZE_MISMATCH_POLICIES",
    "VOC_CLASSES",
    "Box",
    "ImageRecord",
    "RecordCounts",
    "load_imagenet_records",
    "load_voc_records",
    "scale_ratio",
    "select_box",
]

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

SIZE_MISMATCH_POLICIES: tuple[str, ...] = ("use_image", "skip", "error")
"""What a loader does when an XML ``<size>`` differs from the image file's size.

``use_image`` (default) keeps the image with the size read from its header,
``skip`` drops it, ``error`` stops naming the XML and both sizes.
"""


@dataclass(frozen=True)
class ImageRecord:
    """One usable image: where it is, its class, its size and its object box.

    Identity and annotations only: what the probes regress on is a target's
    job (:mod:`src.targets`), so features and the cache never depend on it.

    Parameters
    ----------
    image_id : str
        File stem, e.g. ``"n02058221_123"`` or ``"2008_000123"``.
    path : str
        Absolute path of the image file.
    class_id : str
        WNID (ImageNet, synthetic) or VOC class name.
    width, height : int
        Image size read from the image file's header (the annotation's size
        only when the header cannot be read; extraction then reports the image).
    box : Box
        The object's box after the multi-object policy.
    """

    image_id: str
    path: str
    class_id: str
    width: int
    height: int
    box: Box


FAULT_COUNTS: tuple[str, ...] = (
    "size_mismatch",
    "size_mismatch_skipped",
    "symlink_loop",
    "missing_image",
)
"""Counters of data faults, listed by :meth:`RecordCounts.as_dict` only when non-zero."""


@dataclass
class RecordCounts:
    """Per-class tally of what the loading rules kept and dropped.

    Parameters
    ----------
    kept : int, default=0
        Images that became records.
    no_box : int, default=0
        Images without an annotation or without any object of the class.
    multi_object : int, default=0
        Images dropped by ``policy="single"`` because they hold several objects
        of the class.
    filtered : int, default=0
        VOC images whose objects of the class were all removed by the
        ``include_difficult`` / ``include_truncated`` options.
    bad : int, default=0
        Annotated images whose image file is missing or whose header cannot be
        read (the size is then unknown).
    size_mismatch : int, default=0
        Kept images whose annotation ``<size>`` differs from the image file's
        size (``on_size_mismatch="use_image"``: the image's size is used).
    size_mismatch_skipped : int, default=0
        Images dropped because their annotation size differs from the image
        (``on_size_mismatch="skip"``).
    symlink_loop : int, default=0
        Image or annotation paths that are symlink loops (they cannot be read).
    missing_image : int, default=0
        LOC CSV rows of the class (``ImageId`` ``<wnid>_<n>``) whose image file
        is not in the class directory.
    """

    kept: int = 0
    no_box: int = 0
    multi_object: int = 0
    filtered: int = 0
    bad: int = 0
    size_mismatch: int = 0
    size_mismatch_skipped: int = 0
    symlink_loop: int = 0
    missing_image: int = 0

    @property
    def total(self) -> int:
        """All images (or CSV rows without an image) seen for the class, kept or not."""
        return (
            self.kept
            + self.no_box
            + self.multi_object
            + self.filtered
            + self.bad
            + self.size_mismatch_skipped
            + self.symlink_loop
            + self.missing_image
        )

    def as_dict(self) -> dict[str, int]:
        """Return the counts as a plain dict, e.g. for logging.

        The five rule counts always appear; a fault counter (:data:`FAULT_COUNTS`)
        only when it is non-zero, so a clean class logs one short line and a
        fault is never hidden.
        """
        counts = asdict(self)
        return {k: v for k, v in counts.items() if v or k not in FAULT_COUNTS}

    def after_extraction(self, n_probed: int) -> RecordCounts:
        """Return the counts once extraction skipped unreadable images.

        Parameters
        ----------
        n_probed : int
            Records left after the extraction (``extract.on_bad_image=skip``
            drops the images it cannot decode): they are the images probed.

        Returns
        -------
        RecordCounts
            A copy with ``kept=n_probed`` and the images the extraction skipped
            added to ``bad``.
        """
        skipped = self.kept - n_probed
        return replace(self, kept=n_probed, bad=self.bad + skipped)


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
    _check_size_policy(on_size_mismatch)
    wnids = _check_classes(classes)
    if not isinstance(image_ext, str) or not image_ext.startswith(".") or len(image_ext) < 2:
        raise ScaleprobeError(f"image_ext={image_ext!r} is not allowed; expected e.g. '.JPEG'")
    if (annotations_dir is None) == (annotations_csv is None):
        raise ScaleprobeError(
            "give exactly one of annotations_dir (per-image XML) and annotations_csv "
            f"(LOC CSV); got annotations_dir={annotations_dir!r}, "
            f"annotations_csv={annotations_csv!r}"
        )
    images_root = _existing_dir(images_dir, "images_dir")
    csv_objects: dict[str, list[AnnotatedObject]] | None = None
    xml_root: Path | None = None
    csv_path = Path(annotations_csv) if annotations_csv is not None else None
    if csv_path is not None:
        if not csv_path.is_file():
            raise ScaleprobeError(f"annotations_csv {csv_path} does not exist or is not a file")
        csv_objects = read_loc_csv(csv_path)
    else:
        xml_root = _existing_dir(annotations_dir, "annotations_dir")

    records: list[ImageRecord] = []
    counts: dict[str, RecordCounts] = {}
    for wnid in wnids:
        class_dir = images_root / wnid
        if _is_symlink_loop(class_dir):
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
        _log_counts(wnid, tally)
    return records, counts


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
    _check_size_policy(on_size_mismatch)
    names = _check_classes(classes)
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
    voc_root = _existing_dir(root, "VOC root")
    image_dir = _existing_dir(voc_root / "JPEGImages", "VOC JPEGImages directory")
    xml_dir = _existing_dir(voc_root / "Annotations", "VOC Annotations directory")

    per_class: dict[str, list[ImageRecord]] = {name: [] for name in names}
    counts = {name: RecordCounts() for name in names}
    for xml_path in sorted(xml_dir.glob("*.xml")):
        annotation = parse_voc_xml(xml_path)
        image_path = (image_dir / f"{xml_path.stem}.jpg").absolute()
        image_exists = image_path.is_file()
        image_loop = not image_exists and _is_symlink_loop(image_path)
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
                _count_loop(image_path, tally)
                continue
            if not image_exists:
                tally.bad += 1
                logger.warning("%s: image %s is missing; skipped", xml_path, image_path)
                continue
            box = _apply_policy([obj.box for obj in usable], policy, tally)
            if box is None:
                continue
            if header_size is None:
                header_size = _header_size(image_path) or (annotation.width, annotation.height)
            size = _record_size(
                header_size, annotation, xml_path, image_path, on_size_mismatch, tally
            )
            if size is None:
                continue
            _validate_box(box, size, annotation, xml_path)
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
        _log_counts(name, counts[name])
    return records, counts


def _record_from_xml(
    image_path: Path,
    wnid: str,
    xml_path: Path,
    policy: str,
    on_size_mismatch: str,
    tally: RecordCounts,
) -> ImageRecord | None:
    if _is_symlink_loop(xml_path):
        _count_loop(xml_path, tally)
        return None
    if not xml_path.is_file():
        tally.no_box += 1
        return None
    annotation = parse_voc_xml(xml_path)
    box = _apply_policy([obj.box for obj in annotation.objects if obj.name == wnid], policy, tally)
    if box is None:
        return None
    header_size = _header_size(image_path) or (annotation.width, annotation.height)
    size = _record_size(header_size, annotation, xml_path, image_path, on_size_mismatch, tally)
    if size is None:
        return None
    _validate_box(box, size, annotation, xml_path)
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
    box = _apply_policy([obj.box for obj in objects or () if obj.name == wnid], policy, tally)
    if box is None:
        return None
    size = _header_size(image_path)
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


def _apply_policy(boxes: list[Box], policy: str, tally: RecordCounts) -> Box | None:
    if not boxes:
        tally.no_box += 1
        return None
    box = select_box(boxes, policy)
    if box is None:
        tally.multi_object += 1
    return box


def _validate_box(box: Box, size: tuple[int, int], annotation: Annotation, xml_path: Path) -> None:
    try:
        scale_ratio(box, *size)
    except ScaleprobeError as err:
        sizes = ""
        if size != (annotation.width, annotation.height):
            sizes = (
                f" (the annotation says {annotation.width}x{annotation.height}, the image is "
                f"{size[0]}x{size[1]}; boxes are read in the image's pixels)"
            )
        raise ScaleprobeError(f"{xml_path}: {err}{sizes}") from None


def _header_size(image_path: Path) -> tuple[int, int] | None:
    """Read width and height from the image header only (lazy open); ``None`` if unreadable."""
    try:
        with Image.open(image_path) as image:
            return image.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


def _record_size(
    header_size: tuple[int, int],
    annotation: Annotation,
    xml_path: Path,
    image_path: Path,
    on_size_mismatch: str,
    tally: RecordCounts,
) -> tuple[int, int] | None:
    """Return the size a record uses (the image's), or ``None`` to drop it (``skip``)."""
    if header_size == (annotation.width, annotation.height):
        return header_size
    sizes = (
        f"annotation size {annotation.width}x{annotation.height} differs from the image "
        f"{image_path} ({header_size[0]}x{header_size[1]})"
    )
    if on_size_mismatch == "error":
        raise ScaleprobeError(
            f"{xml_path}: {sizes}; data.on_size_mismatch=error "
            "(use_image trusts the image's size, skip drops such images)"
        )
    if on_size_mismatch == "skip":
        tally.size_mismatch_skipped += 1
        if tally.size_mismatch_skipped == 1:
            logger.warning("%s: %s; skipped (data.on_size_mismatch=skip)", xml_path, sizes)
        return None
    tally.size_mismatch += 1
    if tally.size_mismatch == 1:
        logger.warning(
            "%s: %s; the image's size is used (data.on_size_mismatch=use_image)", xml_path, sizes
        )
    return header_size


def _check_size_policy(value: object) -> str:
    if not isinstance(value, str) or value not in SIZE_MISMATCH_POLICIES:
        raise ScaleprobeError(
            f"on_size_mismatch={value!r} is not allowed; choose from {list(SIZE_MISMATCH_POLICIES)}"
        )
    return value


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
        elif _is_symlink_loop(path):
            _count_loop(path, tally)
            loops.append(path)
    return images, loops


def _is_symlink_loop(path: Path) -> bool:
    """Say whether resolving ``path`` fails with ELOOP (``is_file``/``is_dir`` say False)."""
    try:
        path.stat()
    except OSError as error:
        return error.errno == errno.ELOOP
    return False


def _count_loop(path: Path, tally: RecordCounts) -> None:
    tally.symlink_loop += 1
    if tally.symlink_loop == 1:
        logger.warning("%s is a symlink loop; skipped (counted as symlink_loop)", path)


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


def _existing_dir(path: str | os.PathLike[str] | None, what: str) -> Path:
    directory = Path(path)  # type: ignore[arg-type]
    if _is_symlink_loop(directory):
        raise ScaleprobeError(f"{what} {directory} is a symlink loop; point it at a directory")
    if not directory.is_dir():
        raise ScaleprobeError(f"{what} {directory} does not exist or is not a directory")
    return directory


def _check_classes(classes: Iterable[str]) -> list[str]:
    if isinstance(classes, str | bytes) or not isinstance(classes, Iterable):
        raise ScaleprobeError(
            f"classes={classes!r} is not allowed; expected a list of class ids, "
            "e.g. ['n02058221', 'n01608432']"
        )
    names = list(classes)
    if not names:
        raise ScaleprobeError("classes=[] is not allowed; give at least one class id")
    for name in names:
        if (
            not isinstance(name, str)
            or not name
            or name != name.strip()
            or "/" in name
            or "\\" in name
            or name in {".", ".."}
        ):
            raise ScaleprobeError(
                f"class id {name!r} is not allowed; expected a plain name such as 'n02058221'"
            )
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ScaleprobeError(f"classes repeat {duplicates}; list each class once")
    return names


def _log_counts(class_id: str, counts: RecordCounts) -> None:
    logger.info("class %s: %s", class_id, counts.as_dict())
    if counts.bad:
        logger.warning("class %s: %d annotated images had no readable image", class_id, counts.bad)
    if counts.symlink_loop:
        logger.warning(
            "class %s: %d paths were symlink loops and were skipped", class_id, counts.symlink_loop
        )
    if counts.size_mismatch or counts.size_mismatch_skipped:
        logger.warning(
            "class %s: %d images' annotation size differs from the image file "
            "(%d kept with the image's size, %d skipped)",
            class_id,
            counts.size_mismatch + counts.size_mismatch_skipped,
            counts.size_mismatch,
            counts.size_mismatch_skipped,
        )
