"""Turn a data config (synthetic, imagenet, voc) into image records per class."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from src.data.records import ImageRecord, load_imagenet_records, load_voc_records
from src.data.synthetic import generate_synthetic_dataset
from src.errors import ScaleprobeError

__all__ = ["load_class_records"]


def load_class_records(
    data: Mapping[str, Any], classes: Sequence[str]
) -> dict[str, list[ImageRecord]]:
    """Return ``{class: records}`` for ``classes`` (unique, in order) from data config ``data``.

    The synthetic set is generated on first use, then read back through the
    same ILSVRC loader as real ImageNet data; the loaders log what each rule
    kept and dropped per class.
    """
    wanted = list(dict.fromkeys(classes))
    name = data["name"]
    if name == "synthetic":
        generate_synthetic_dataset(
            data["root"], n_per_class=int(data["n_per_class"]), seed=int(data["generator_seed"])
        )
    if name in ("synthetic", "imagenet"):
        records, _ = load_imagenet_records(
            data["images_dir"],
            wanted,
            annotations_dir=None if data.get("annotations_csv") else data["annotations_dir"],
            annotations_csv=data.get("annotations_csv"),
            policy=data["policy"],
            on_size_mismatch=data.get("on_size_mismatch", "use_image"),
        )
    elif name == "voc":
        records, _ = load_voc_records(
            data["root"],
            wanted,
            policy=data["policy"],
            include_difficult=bool(data.get("include_difficult", False)),
            include_truncated=bool(data.get("include_truncated", True)),
            on_size_mismatch=data.get("on_size_mismatch", "use_image"),
        )
    else:
        raise ScaleprobeError(
            f"data.name={name!r} is not allowed; choose from synthetic, imagenet, voc"
        )
    by_class: dict[str, list[ImageRecord]] = {c: [] for c in wanted}
    for record in records:
        by_class[record.class_id].append(record)
    return by_class
