"""Load image records from a COCO instances file (``instances_*.json``) and its images folder.

Boxes come from each annotation's ``bbox`` (``[x, y, width, height]``, pixels),
mask areas from its ``segmentation`` (polygons, or RLE compressed or not)
through pycocotools, never a hand-written decoder. The rules are the other
loaders' (:mod:`src.data.rules`): the multi-object policy, the image size read
from its header against the file's ``width``/``height``, box checks, the
per-class log; ``iscrowd`` objects are skipped and counted.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pycocotools import mask as coco_mask

from src.data.annotations import Annotation
from src.data.boxes import Box, check_policy
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

__all__ = ["COCO_KEYS", "load_coco_records", "mask_area", "read_coco"]

logger = logging.getLogger(__name__)

COCO_KEYS: dict[str, tuple[str, ...]] = {
    "": ("images", "annotations", "categories"),
    "images": ("id", "file_name", "width", "height"),
    "annotations": ("image_id", "category_id", "bbox"),
    "categories": ("id", "name"),
}
"""The keys a COCO instances file must have: top level, then of each item of a list."""


def read_coco(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a COCO instances file and check it has every key :data:`COCO_KEYS` names.

    Raises
    ------
    ScaleprobeError
        If the file is missing, not JSON, or lacks a key (the message names the
        key and the first item without it).
    """
    file = Path(path)
    if not file.is_file():
        raise ScaleprobeError(
            f"data.annotations={str(file)!r} does not exist or is not a file; "
            "point it at a COCO instances_*.json"
        )
    try:
        with open(file, encoding="utf-8") as handle:
            content = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        reason = " ".join(str(error).split())
        raise ScaleprobeError(f"{file} is not a COCO instances file: not JSON ({reason})") from None
    if not isinstance(content, dict):
        raise ScaleprobeError(
            f"{file} is not a COCO instances file: its top level is a "
            f"{type(content).__name__}, expected an object with keys {list(COCO_KEYS[''])}"
        )
    for key in COCO_KEYS[""]:
        if key not in content:
            raise ScaleprobeError(
                f"{file} is not a COCO instances file: missing key {key!r} "
                f"(expected {list(COCO_KEYS[''])})"
            )
        items = content[key]
        if not isinstance(items, list):
            raise ScaleprobeError(f"{file}: {key!r} is a {type(items).__name__}, expected a list")
        for i, item in enumerate(items):
            missing = [k for k in COCO_KEYS[key] if not isinstance(item, dict) or k not in item]
            if missing:
                raise ScaleprobeError(
                    f"{file} is not a COCO instances file: {key}[{i}] has no key {missing[0]!r} "
                    f"(each of {key} needs {list(COCO_KEYS[key])})"
                )
    return content


def _category_ids(
    categories: Sequence[Mapping[str, Any]], names: Sequence[str], file: Path
) -> dict[str, int]:
    """Map each requested class (a COCO category name, or its id as digits) to its category id."""
    by_name = {str(c["name"]): int(c["id"]) for c in categories}
    ids = set(by_name.values())
    out = {}
    for name in names:
        if name in by_name:
            out[name] = by_name[name]
        elif name.isdigit() and int(name) in ids:
            out[name] = int(name)
        else:
            close = difflib.get_close_matches(name, list(by_name), n=5)
            hint = f"close matches: {close}" if close else f"categories: {sorted(by_name)[:10]}..."
            raise ScaleprobeError(
                f"COCO category {name!r} is not in {file} (by name or id); {hint}"
            )
    return out


def mask_area(segmentation: Any, height: int, width: int) -> float:
    """Return the pixels of one object's segmentation in a ``height`` x ``width`` image.

    Polygons (a list of ``[x1, y1, x2, y2, ...]``) and uncompressed RLE (``counts``
    a list) go through :func:`pycocotools.mask.frPyObjects`, compressed RLE
    (``counts`` a string) is used as it is; :func:`pycocotools.mask.area` counts.
    """
    return float(coco_mask.area(_rle(segmentation, height, width)))


def _rle(segmentation: Any, height: int, width: int) -> dict[str, Any]:
    """Return one object's segmentation as a single compressed RLE (as ``COCO.annToRLE``)."""
    if isinstance(segmentation, list):  # polygons, possibly several parts of one object
        return coco_mask.merge(coco_mask.frPyObjects(segmentation, height, width))
    if not isinstance(segmentation, dict) or "counts" not in segmentation:
        raise ValueError("expected a list of polygons or an RLE {'counts', 'size'}")
    size = [int(v) for v in segmentation.get("size", ())]
    if size != [height, width]:
        raise ValueError(f"RLE size {size} differs from the image's [{height}, {width}]")
    counts = segmentation["counts"]
    if isinstance(counts, list):  # uncompressed
        return coco_mask.frPyObjects(segmentation, height, width)
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    return {"size": size, "counts": counts}


def _union_area(segmentations: Sequence[Any], height: int, width: int) -> float:
    """Return the pixels covered by any of the objects (their masks' union, overlaps once)."""
    rles = [_rle(s, height, width) for s in segmentations]
    return float(coco_mask.area(coco_mask.merge(rles, intersect=0)))


def _chosen_mask_area(
    objects: Sequence[Mapping[str, Any]],
    box: Box,
    boxes: Sequence[Box],
    policy: str,
    image: Mapping[str, Any],
    file: Path,
    unreadable: list[str],
) -> float | None:
    """Return the mask area of what ``policy`` chose: one object's, or the union's; None: no mask.

    ``largest`` picks by box area (as the box does), so box and mask are of the
    same object; ``union`` is the union of every object's mask, as the box is
    the box enclosing them all. A segmentation pycocotools cannot read gives
    ``None`` and its reason is appended to ``unreadable``: a box target still
    runs, ``target.area=mask`` stops naming the image.
    """
    chosen = objects if policy == "union" else [objects[list(boxes).index(box)]]
    if any("segmentation" not in obj for obj in chosen):
        return None
    height, width = int(image["height"]), int(image["width"])
    try:
        if any(not obj["segmentation"] for obj in chosen):
            raise ValueError("the segmentation is empty")
        if policy == "union":
            return _union_area([obj["segmentation"] for obj in chosen], height, width)
        return mask_area(chosen[0]["segmentation"], height, width)
    except (ValueError, TypeError, KeyError, IndexError) as error:
        ids = [obj.get("id") for obj in chosen]
        reason = " ".join(str(error).split()) or type(error).__name__
        unreadable.append(
            f"annotation id {ids[0] if len(ids) == 1 else ids} (image {image['file_name']}): "
            f"{reason}"
        )
        return None


def load_coco_records(
    root: str | os.PathLike[str],
    annotations: str | os.PathLike[str],
    classes: Sequence[str],
    *,
    policy: str = "single",
    on_size_mismatch: str = "use_image",
) -> tuple[list[ImageRecord], dict[str, RecordCounts]]:
    """Load records from a COCO images folder and its instances file.

    An image with objects of several requested classes gives one record per
    class. ``iscrowd`` objects are skipped (counted as ``crowd``) before the
    policy, so an image with one person and one crowd of people is single;
    an image with crowd objects only counts as ``filtered``. Each record
    carries the mask area (pixels) of the object the policy chose: ``single``
    the one object's, ``largest`` that of the object with the largest box,
    ``union`` the union of the objects' masks (overlaps counted once).

    Parameters
    ----------
    root : str or path-like
        The images folder (``train2017/``); ``file_name`` is relative to it.
    annotations : str or path-like
        The instances file (``instances_train2017.json``).
    classes : sequence of str
        COCO category names (``"bird"``) or ids as digits (``"16"``), in output
        order; ``class_id`` of the records is the name or id as given.
    policy : {"single", "largest", "union"}, default="single"
        Multi-object policy, see :func:`src.data.boxes.select_box`.
    on_size_mismatch : {"use_image", "skip", "error"}, default="use_image"
        The file's ``width``/``height`` differs from the image's, as for the
        other loaders (:func:`src.data.rules.record_size`).

    Returns
    -------
    records : list of ImageRecord
        Sorted by ``image_id`` (the file stem) within each class, classes in the given order.
    counts : dict of str to RecordCounts
        What each rule kept and dropped, per class.

    Raises
    ------
    ScaleprobeError
        If an argument is invalid, the folder or file is missing, the file is not
        COCO, a class is not a category, a class has no usable image, or a box is
        malformed (an unreadable segmentation is a warning: no mask area).
    """
    check_policy(policy)
    check_size_policy(on_size_mismatch)
    names = check_classes(classes)
    image_dir = existing_dir(root, "COCO images directory (data.root)")
    file = Path(annotations)
    content = read_coco(file)
    wanted = _category_ids(content["categories"], names, file)

    wanted_ids = set(wanted.values())
    by_image: dict[Any, list[Mapping[str, Any]]] = {}
    for obj in content["annotations"]:
        if obj["category_id"] in wanted_ids:
            by_image.setdefault(obj["image_id"], []).append(obj)
    per_class: dict[str, list[ImageRecord]] = {name: [] for name in names}
    counts = {name: RecordCounts() for name in names}
    unreadable: dict[str, list[str]] = {name: [] for name in names}  # segmentations, per class
    for image in content["images"]:
        objects = by_image.get(image["id"])
        if not objects:
            continue  # images without a requested class are not part of that class at all
        image_path = (image_dir / str(image["file_name"])).absolute()
        image_exists = image_path.is_file()
        image_loop = not image_exists and is_symlink_loop(image_path)
        header_size: tuple[int, int] | None = None  # read once, when a class needs it
        stated = Annotation(str(image["file_name"]), int(image["width"]), int(image["height"]), ())
        for name in names:
            tally = counts[name]
            of_class = [obj for obj in objects if obj["category_id"] == wanted[name]]
            if not of_class:
                continue
            usable = [obj for obj in of_class if not obj.get("iscrowd", 0)]
            tally.crowd += len(of_class) - len(usable)
            if not usable:
                tally.filtered += 1
                continue
            if image_loop:
                count_loop(image_path, tally)
                continue
            if not image_exists:
                tally.bad += 1
                logger.warning("%s: image %s is missing; skipped", file, image_path)
                continue
            boxes = [_box(obj, file) for obj in usable]
            box = apply_policy(boxes, policy, tally)
            if box is None:
                continue
            if header_size is None:
                header_size = read_header_size(image_path) or (stated.width, stated.height)
            size = record_size(header_size, stated, file, image_path, on_size_mismatch, tally)
            if size is None:
                continue
            validate_box(box, size, stated, file)
            per_class[name].append(
                ImageRecord(
                    image_id=image_path.stem,
                    path=str(image_path),
                    class_id=name,
                    width=size[0],
                    height=size[1],
                    box=box,
                    mask_area=_chosen_mask_area(
                        usable, box, boxes, policy, image, file, unreadable[name]
                    ),
                )
            )
            tally.kept += 1

    records: list[ImageRecord] = []
    for name in names:
        if not per_class[name]:
            raise ScaleprobeError(
                f"class {name!r}: no usable image in {file} / {image_dir} "
                f"(policy={policy!r}; counts {counts[name].as_dict()})"
            )
        records.extend(sorted(per_class[name], key=lambda r: r.image_id))
        log_counts(name, counts[name])
        if unreadable[name]:
            logger.warning(
                "class %s: %d segmentations cannot be read, those images have no mask area "
                "(target.area=mask will stop on them); first: %s",
                name,
                len(unreadable[name]),
                unreadable[name][0],
            )
        if counts[name].crowd:
            logger.info(
                "class %s: %d iscrowd objects skipped (%d images had only those)",
                name,
                counts[name].crowd,
                counts[name].filtered,
            )
    return records, counts


def _box(obj: Mapping[str, Any], file: Path) -> Box:
    """Return an annotation's ``bbox`` ``[x, y, width, height]`` as corners, or raise naming it."""
    bbox = obj["bbox"]
    values = bbox if isinstance(bbox, list) else None
    if (
        values is None
        or len(values) != 4
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    ):
        raise ScaleprobeError(
            f"{file}: annotation id {obj.get('id')!r} has bbox {bbox!r}; "
            "expected [x, y, width, height] in pixels"
        )
    x, y, w, h = (float(v) for v in values)
    return Box(x, y, x + w, y + h)
