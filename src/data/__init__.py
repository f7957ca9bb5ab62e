"""Stage 1: annotations and images become image records (identity, size, box)."""

from src.data.annotations import (
    AnnotatedObject,
    Annotation,
    parse_voc_xml,
    read_loc_csv,
    write_voc_xml,
)
from src.data.boxes import BOX_POLICIES, Box, scale_ratio, select_box
from src.data.coco import load_coco_records
from src.data.imagenet import load_imagenet_records
from src.data.images import load_rgb_image, resize_square
from src.data.records import ImageRecord, RecordCounts
from src.data.synthetic import SYNTHETIC_CLASSES, generate_synthetic_dataset
from src.data.voc import VOC_CLASSES, load_voc_records

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
    "load_coco_records",
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
