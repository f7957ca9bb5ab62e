"""The rules every dataset loader applies, so ImageNet and VOC behave the same.

Class lists and directories are checked before any file is read; the
multi-object policy, the image size (read from the header, against the
annotation's ``<size>``: ``on_size_mismatch``), box validation, symlink loops
and the per-class log are shared by :mod:`src.data.imagenet` and
:mod:`src.data.voc`.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from PIL import Image

from src.data.annotations import Annotation
from src.data.boxes import Box, scale_ratio, select_box
from src.data.records import RecordCounts
from src.errors import ScaleprobeError

__all__ = [
    "SIZE_MISMATCH_POLICIES",
    "apply_policy",
    "check_classes",
    "check_size_policy",
    "count_loop",
    "existing_dir",
    "is_symlink_loop",
    "log_counts",
    "read_header_size",
    "record_size",
    "validate_box",
]

logger = logging.getLogger(__name__)


SIZE_MISMATCH_POLICIES: tuple[str, ...] = ("use_image", "skip", "error")
"""What a loader does when an XML ``<size>`` differs from the image file's size.

``use_image`` (default) keeps the image with the size read from its header,
``skip`` drops it, ``error`` stops naming the XML and both sizes.
"""


def apply_policy(boxes: list[Box], policy: str, tally: RecordCounts) -> Box | None:
    """Return the box ``policy`` keeps of an image's boxes of one class, counting drops."""
    if not boxes:
        tally.no_box += 1
        return None
    box = select_box(boxes, policy)
    if box is None:
        tally.multi_object += 1
    return box


def validate_box(box: Box, size: tuple[int, int], annotation: Annotation, xml_path: Path) -> None:
    """Raise naming ``xml_path`` (and both sizes if they differ) when ``box`` misfits ``size``."""
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


def read_header_size(image_path: Path) -> tuple[int, int] | None:
    """Read width and height from the image header only (lazy open); ``None`` if unreadable."""
    try:
        with Image.open(image_path) as image:
            return image.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


def record_size(
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


def check_size_policy(value: object) -> str:
    """Return ``value`` if it is one of :data:`SIZE_MISMATCH_POLICIES`, else raise."""
    if not isinstance(value, str) or value not in SIZE_MISMATCH_POLICIES:
        raise ScaleprobeError(
            f"on_size_mismatch={value!r} is not allowed; choose from {list(SIZE_MISMATCH_POLICIES)}"
        )
    return value


def is_symlink_loop(path: Path) -> bool:
    """Say whether resolving ``path`` fails with ELOOP (``is_file``/``is_dir`` say False)."""
    try:
        path.stat()
    except OSError as error:
        return error.errno == errno.ELOOP
    return False


def count_loop(path: Path, tally: RecordCounts) -> None:
    """Count a symlink loop in ``tally``; the first of a class is logged with its path."""
    tally.symlink_loop += 1
    if tally.symlink_loop == 1:
        logger.warning("%s is a symlink loop; skipped (counted as symlink_loop)", path)


def existing_dir(path: str | os.PathLike[str] | None, what: str) -> Path:
    """Return ``path`` as a directory, or raise naming ``what`` (and a symlink loop)."""
    directory = Path(path)  # type: ignore[arg-type]
    if is_symlink_loop(directory):
        raise ScaleprobeError(f"{what} {directory} is a symlink loop; point it at a directory")
    if not directory.is_dir():
        raise ScaleprobeError(f"{what} {directory} does not exist or is not a directory")
    return directory


def check_classes(classes: Iterable[str]) -> list[str]:
    """Return the class ids as a list: non-empty, plain names, each once; else raise."""
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


def log_counts(class_id: str, counts: RecordCounts) -> None:
    """Log one class's counts, and a warning for each kind of fault it met."""
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
