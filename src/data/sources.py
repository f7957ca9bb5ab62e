"""Turn a data config (synthetic, imagenet, voc, coco) into image records per class."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from src.data.coco import load_coco_records
from src.data.imagenet import load_imagenet_records
from src.data.records import ImageRecord, RecordCounts
from src.data.synthetic import generate_synthetic_dataset
from src.data.voc import load_voc_records
from src.errors import ScaleprobeError

__all__ = ["load_class_records", "load_records_with_counts", "log_probed"]

logger = logging.getLogger(__name__)


def load_class_records(
    data: Mapping[str, Any], classes: Sequence[str]
) -> dict[str, list[ImageRecord]]:
    """Return ``{class: records}`` for ``classes`` (unique, in order) from data config ``data``.

    The synthetic set is generated on first use, then read back through the
    same ILSVRC loader as real ImageNet data; the loaders log what each rule
    kept and dropped per class.
    """
    return load_records_with_counts(data, classes)[0]


def log_probed(
    records: Mapping[str, Sequence[ImageRecord]], counts: Mapping[str, RecordCounts]
) -> None:
    """Log, per class, how many images are finally probed, once extraction skipped some.

    Parameters
    ----------
    records : mapping of str to sequence of ImageRecord
        The records whose features came back (the images the probes use).
    counts : mapping of str to RecordCounts
        The loaders' counts of the same classes; the images extraction skipped
        as unreadable are added to ``bad``.
    """
    for class_id, class_records in records.items():
        final = counts[class_id].after_extraction(len(class_records))
        logger.info("class %s: %d images probed %s", class_id, final.kept, final.as_dict())


def load_records_with_counts(
    data: Mapping[str, Any], classes: Sequence[str]
) -> tuple[dict[str, list[ImageRecord]], dict[str, RecordCounts]]:
    """Return ``{class: records}`` and ``{class: counts}`` (see :func:`load_class_records`).

    The counts say what each loading rule kept and dropped; pass them, with the
    records left after extraction, to :func:`log_probed`.
    """
    wanted = list(dict.fromkeys(classes))
    name = data["name"]
    if name == "synthetic":
        generate_synthetic_dataset(
            data["root"],
            n_per_class=int(data["n_per_class"]),
            seed=int(data["generator_seed"]),
            rotation=data.get("rotation", False),
        )
    if name in ("synthetic", "imagenet"):
        records, counts = load_imagenet_records(
            data["images_dir"],
            wanted,
            annotations_dir=None if data.get("annotations_csv") else data["annotations_dir"],
            annotations_csv=data.get("annotations_csv"),
            policy=data["policy"],
            on_size_mismatch=data.get("on_size_mismatch", "use_image"),
        )
    elif name == "voc":
        records, counts = load_voc_records(
            data["root"],
            wanted,
            policy=data["policy"],
            include_difficult=bool(data.get("include_difficult", False)),
            include_truncated=bool(data.get("include_truncated", True)),
            on_size_mismatch=data.get("on_size_mismatch", "use_image"),
        )
    elif name == "coco":
        records, counts = load_coco_records(
            data["root"],
            data["annotations"],
            wanted,
            policy=data["policy"],
            on_size_mismatch=data.get("on_size_mismatch", "use_image"),
        )
    else:
        raise ScaleprobeError(
            f"data.name={name!r} is not allowed; choose from synthetic, imagenet, voc, coco"
        )
    by_class: dict[str, list[ImageRecord]] = {c: [] for c in wanted}
    for record in records:
        by_class[record.class_id].append(record)
    return by_class, counts
