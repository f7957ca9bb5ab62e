"""Read and write box annotations: Pascal VOC XML and ILSVRC LOC CSV.

These are the only functions in the project that open annotation files; every
later stage works from :class:`~src.data.records.ImageRecord` objects.  Parsing
is strict: a malformed file is a user mistake and raises
:class:`~src.errors.ScaleprobeError` naming the file (and field or line), so a
broken download fails at load time rather than as a wrong ratio later.
"""

from __future__ import annotations

import csv
import math
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from src.data.boxes import Box
from src.errors import ScaleprobeError

__all__ = [
    "LOC_CSV_HEADER",
    "AnnotatedObject",
    "Annotation",
    "parse_voc_xml",
    "read_loc_csv",
    "write_voc_xml",
]

LOC_CSV_HEADER: tuple[str, str] = ("ImageId", "PredictionString")
"""Header of ``LOC_train_solution.csv`` / ``LOC_val_solution.csv``."""

_BOX_FIELDS = ("xmin", "ymin", "xmax", "ymax")
# DTDs are never needed for VOC/ILSVRC files and are how XML entity attacks start.
_FORBIDDEN_XML = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
# Characters XML 1.0 cannot carry, even escaped.
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class AnnotatedObject:
    """One object in an annotation.

    Parameters
    ----------
    name : str
        The object's class: a WNID in ILSVRC files, a VOC class name in VOC.
    box : Box
        Its bounding box in pixels.
    difficult : bool
        VOC's "hard to recognise" flag (always ``False`` in ILSVRC).
    truncated : bool
        The object continues beyond the image border.
    """

    name: str
    box: Box
    difficult: bool = False
    truncated: bool = False


@dataclass(frozen=True)
class Annotation:
    """The content of one VOC-style XML file.

    Parameters
    ----------
    filename : str
        The image file name recorded in the XML.
    width, height : int
        The image size recorded in the XML; the ratio is computed against this.
    objects : tuple of AnnotatedObject
        All objects, in file order.
    """

    filename: str
    width: int
    height: int
    objects: tuple[AnnotatedObject, ...] = ()


def parse_voc_xml(path: str | os.PathLike[str]) -> Annotation:
    """Parse one Pascal VOC / ILSVRC bounding-box XML file.

    Parameters
    ----------
    path : str or path-like
        The XML file.

    Returns
    -------
    Annotation
        Its size and objects.  Missing ``difficult``/``truncated`` tags read as
        ``False``; a missing ``filename`` reads as the XML file's stem + ``.JPEG``.

    Raises
    ------
    ScaleprobeError
        If the file cannot be read, is not well-formed XML, declares a DTD or
        entities, or has a missing, non-numeric or non-positive size, an object
        without a name or box field, a non-numeric, negative or swapped
        coordinate.  The message names the file and the field.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ScaleprobeError(f"{path}: cannot read annotation ({err.strerror or err})") from None
    if _FORBIDDEN_XML.search(data) or b"\x00" in data:
        raise ScaleprobeError(
            f"{path}: DOCTYPE/ENTITY declarations and UTF-16/32 encodings are not allowed "
            "in annotation XML; expected a plain UTF-8 Pascal VOC file"
        )
    try:
        # Safe: DTDs and entity declarations were rejected above, and expat
        # never fetches external resources, so only plain elements remain.
        root = ET.fromstring(data)  # noqa: S314
    except ET.ParseError as err:
        line, _column = err.position
        raise ScaleprobeError(f"{path}:{line}: malformed XML ({err})") from None
    if root.tag != "annotation":
        raise ScaleprobeError(f"{path}: root element is <{root.tag}>, expected <annotation>")
    filename = (root.findtext("filename") or "").strip() or f"{path.stem}.JPEG"
    width = _read_size(path, root, "width")
    height = _read_size(path, root, "height")
    objects = tuple(
        _read_object(path, element, index)
        for index, element in enumerate(root.findall("object"), start=1)
    )
    return Annotation(filename=filename, width=width, height=height, objects=objects)


def read_loc_csv(path: str | os.PathLike[str]) -> dict[str, list[AnnotatedObject]]:
    """Read an ILSVRC localisation CSV (``LOC_train_solution.csv`` format).

    The file has the header ``ImageId,PredictionString`` and one row per image;
    ``PredictionString`` is a space-separated list of ``wnid xmin ymin xmax
    ymax`` groups.  An empty ``PredictionString`` gives an image without objects.

    Parameters
    ----------
    path : str or path-like
        The CSV file.

    Returns
    -------
    dict of str to list of AnnotatedObject
        Image id (e.g. ``"n02058221_123"``) to its objects, in file order.

    Raises
    ------
    ScaleprobeError
        If the file cannot be read, the header is wrong, or a row has the wrong
        number of columns or tokens, a non-numeric, negative or swapped
        coordinate, or repeats an image id; the message names the file and line.
    """
    path = Path(path)
    result: dict[str, list[AnnotatedObject]] = {}
    first_line: dict[str, int] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None or tuple(h.strip() for h in header) != LOC_CSV_HEADER:
                raise ScaleprobeError(
                    f"{path}:1: header {header!r} is not allowed; expected "
                    f"{','.join(LOC_CSV_HEADER)!r}"
                )
            for row in reader:
                line = reader.line_num
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                image_id, objects = _parse_loc_row(path, line, row)
                if image_id in result:
                    raise ScaleprobeError(
                        f"{path}:{line}: image id {image_id!r} repeats line "
                        f"{first_line[image_id]}; each image must have one row"
                    )
                result[image_id] = objects
                first_line[image_id] = line
    except OSError as err:
        raise ScaleprobeError(f"{path}: cannot read CSV ({err.strerror or err})") from None
    except (UnicodeDecodeError, csv.Error) as err:
        raise ScaleprobeError(f"{path}: not a UTF-8 CSV file ({err})") from None
    return result


def write_voc_xml(
    path: str | os.PathLike[str], annotation: Annotation, *, folder: str = ""
) -> None:
    """Write an annotation as a standard Pascal VOC XML file.

    The layout matches VOC/ILSVRC files so that :func:`parse_voc_xml` (and any
    other VOC tool) reads it; it exists for the synthetic generator and tests.

    Parameters
    ----------
    path : str or path-like
        Destination file; its parent directory must exist.
    annotation : Annotation
        What to write.  Integral coordinates are written without a decimal
        point, others with full precision, so parsing gives back equal values.
    folder : str, default=""
        Content of the ``<folder>`` tag (ILSVRC puts the WNID there).

    Raises
    ------
    ScaleprobeError
        If a text field holds characters XML 1.0 cannot represent.
    """
    path = Path(path)
    root = ET.Element("annotation")
    _sub(root, "folder", _xml_text(path, "folder", folder))
    _sub(root, "filename", _xml_text(path, "filename", annotation.filename))
    size = ET.SubElement(root, "size")
    _sub(size, "width", _fmt_number(annotation.width))
    _sub(size, "height", _fmt_number(annotation.height))
    _sub(size, "depth", "3")
    _sub(root, "segmented", "0")
    for obj in annotation.objects:
        element = ET.SubElement(root, "object")
        _sub(element, "name", _xml_text(path, "object name", obj.name))
        _sub(element, "pose", "Unspecified")
        _sub(element, "truncated", str(int(obj.truncated)))
        _sub(element, "difficult", str(int(obj.difficult)))
        bndbox = ET.SubElement(element, "bndbox")
        for field in _BOX_FIELDS:
            _sub(bndbox, field, _fmt_number(getattr(obj.box, field)))
    ET.indent(root, space="\t")
    path.write_bytes(ET.tostring(root, encoding="utf-8", xml_declaration=False) + b"\n")


def _sub(parent: ET.Element, tag: str, text: str) -> None:
    ET.SubElement(parent, tag).text = text


def _xml_text(path: Path, field: str, value: str) -> str:
    if _XML_INVALID.search(value):
        raise ScaleprobeError(
            f"{path}: {field} {value!r} holds characters XML 1.0 cannot store; use printable text"
        )
    return value


def _fmt_number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _parse_number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _read_size(path: Path, root: ET.Element, field: str) -> int:
    text = root.findtext(f"size/{field}")
    if text is None:
        raise ScaleprobeError(f"{path}: missing <size><{field}>; the image size is required")
    value = _parse_number(text)
    if value is None or not value.is_integer() or value <= 0:
        raise ScaleprobeError(
            f"{path}: size/{field}={text.strip()!r} is not allowed; expected a positive integer"
        )
    return int(value)


def _read_flag(path: Path, element: ET.Element, field: str, where: str) -> bool:
    text = element.findtext(field)
    if text is None or not text.strip():
        return False
    value = _parse_number(text)
    if value is None:
        raise ScaleprobeError(
            f"{path}: {where} {field}={text.strip()!r} is not allowed; expected 0 or 1"
        )
    return value != 0


def _read_object(path: Path, element: ET.Element, index: int) -> AnnotatedObject:
    where = f"object {index}"
    name = (element.findtext("name") or "").strip()
    if not name:
        raise ScaleprobeError(f"{path}: {where} has no <name>; every object needs a class name")
    where = f"object {index} ({name})"
    bndbox = element.find("bndbox")
    if bndbox is None:
        raise ScaleprobeError(f"{path}: {where} has no <bndbox>")
    coords: dict[str, float] = {}
    for field in _BOX_FIELDS:
        text = bndbox.findtext(field)
        if text is None:
            raise ScaleprobeError(f"{path}: {where} is missing bndbox/{field}")
        value = _parse_number(text)
        if value is None:
            raise ScaleprobeError(
                f"{path}: {where} bndbox/{field}={text.strip()!r} is not a finite number"
            )
        if value < 0:
            raise ScaleprobeError(
                f"{path}: {where} bndbox/{field}={text.strip()!r} is negative; "
                "coordinates must be >= 0"
            )
        coords[field] = value
    box = Box(**coords)
    _check_order(box, f"{path}: {where}")
    return AnnotatedObject(
        name=name,
        box=box,
        difficult=_read_flag(path, element, "difficult", where),
        truncated=_read_flag(path, element, "truncated", where),
    )


def _check_order(box: Box, where: str) -> None:
    if box.xmin > box.xmax or box.ymin > box.ymax:
        raise ScaleprobeError(
            f"{where}: swapped box (xmin={box.xmin:g}, ymin={box.ymin:g}, "
            f"xmax={box.xmax:g}, ymax={box.ymax:g}); need xmin <= xmax and ymin <= ymax"
        )


def _parse_loc_row(path: Path, line: int, row: list[str]) -> tuple[str, list[AnnotatedObject]]:
    if len(row) != 2:
        raise ScaleprobeError(
            f"{path}:{line}: {len(row)} columns; expected 2 (ImageId,PredictionString)"
        )
    image_id = row[0].strip()
    if not image_id:
        raise ScaleprobeError(f"{path}:{line}: empty ImageId")
    tokens = row[1].split()
    if len(tokens) % 5:
        raise ScaleprobeError(
            f"{path}:{line}: PredictionString has {len(tokens)} tokens; expected groups "
            "of 5 (wnid xmin ymin xmax ymax)"
        )
    objects = []
    for start in range(0, len(tokens), 5):
        name, *numbers = tokens[start : start + 5]
        values = []
        for field, text in zip(_BOX_FIELDS, numbers, strict=True):
            value = _parse_number(text)
            if value is None or value < 0:
                raise ScaleprobeError(
                    f"{path}:{line}: {field}={text!r} of {name!r} is not allowed; "
                    "expected a finite number >= 0"
                )
            values.append(value)
        box = Box(*values)
        _check_order(box, f"{path}:{line}: {name}")
        objects.append(AnnotatedObject(name=name, box=box))
    return image_id, objects
