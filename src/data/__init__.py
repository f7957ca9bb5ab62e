"""Stage 1: annotations and images become image records with a scale ratio."""

from src.data.annotations import (
    AnnotatedObject,
    Annotation,
    parse_voc_xml,
    read_loc_csv,
    write_voc_xml,
)
from src.data.images import load_rgb_image, resize_square
from src.data.records import (
    BOX_POLICIES,
    VOC_CLASSES,
    Box,
    ImageRecord,
    RecordCounts,
    load_imagenet_records,
    load_voc_records,
    scale_ratio,
    select_box,
)
from src.data.synthetic import SYNTHETIC_CLASSES, generate_synthetic_dataset

__all__ = [
    "BOX_POLICIES",
    "SYNTHETIC_CLASSES",
    "VOC_CLASSES",
    "AnnotatedObject",
    "Annotation",
    "Box",
    "ImageRecord",
    "RecordCounts",
    "generate_synthetic_dataset",
    "load_imagenet_records",
    "load_rgb_image",
    "load_voc_records",
    "parse_voc_xml",
    "read_loc_csv",
    "resize_square",
    "scale_ratio",
    "select_box",
    "write_voc_xml",
]
