"""Tests for src.data.records and src.data.boxes: the ratio, box policies, counts."""

from __future__ import annotations

import math

import pytest

from src.data.boxes import Box, scale_ratio, select_box
from src.data.records import ImageRecord, RecordCounts
from src.errors import ScaleprobeError
from src.targets.scale import ScaleTarget

BIRD = "n02058221"
KITE = "n01608432"

# ------------------------------------------------------------ scale_ratio


def test_scale_ratio_value() -> None:
    # box 50x20 in a 200x100 image: sqrt(1000 / 20000)
    assert scale_ratio(Box(10, 10, 60, 30), 200, 100) == pytest.approx(math.sqrt(0.05))
    assert scale_ratio(Box(0, 0, 200, 100), 200, 100) == 1.0


def test_scale_ratio_clips_within_tolerance() -> None:
    # VOC is 1-based: xmax == width + 1 is accepted and clipped, so r stays <= 1.
    assert scale_ratio(Box(1, 1, 201, 101), 200, 100) == pytest.approx(math.sqrt(199 * 99 / 20000))
    assert scale_ratio(Box(-1, -1, 201, 101), 200, 100) == 1.0


@pytest.mark.parametrize(
    ("box", "size", "fragment"),
    [
        (Box(5, 5, 5, 10), (100, 100), "zero or negative area"),
        (Box(5, 10, 9, 2), (100, 100), "zero or negative area"),
        (Box(0, 0, 102, 50), (100, 100), "outside the 100x100 image"),
        (Box(-2, 0, 50, 50), (100, 100), "outside"),
        (Box(0, 0, 10, 10), (0, 100), "must be > 0"),
        (Box(0, 0, 10, 10), (100, -1), "must be > 0"),
        (Box(0, 0, float("nan"), 10), (100, 100), "non-finite"),
    ],
)
def test_scale_ratio_rejects(box: Box, size: tuple[int, int], fragment: str) -> None:
    with pytest.raises(ScaleprobeError, match=fragment):
        scale_ratio(box, *size)


def _ratio(record: ImageRecord) -> float:
    """The scale target of one record (records carry no ratio: src/targets/)."""
    return float(ScaleTarget().values([record])[0])


def test_box_properties_and_record_ratio() -> None:
    box = Box(2, 3, 12, 8)
    assert (box.width, box.height, box.area) == (10, 5, 50)
    record = ImageRecord("i", "/x/i.JPEG", BIRD, 20, 10, box)
    assert _ratio(record) == pytest.approx(math.sqrt(50 / 200))
    assert not hasattr(record, "ratio")


# ------------------------------------------------------------- select_box

BOXES = [Box(0, 0, 10, 10), Box(20, 5, 50, 9), Box(2, 30, 4, 40)]


def test_select_box_policies() -> None:
    assert select_box(BOXES[:1], "single") == BOXES[0]
    assert select_box(BOXES, "single") is None
    assert select_box([], "largest") is None
    assert select_box(BOXES, "largest") == BOXES[1]  # area 120 > 100 > 20
    assert select_box(BOXES, "union") == Box(0, 0, 50, 40)
    assert select_box(BOXES[1:2], "union") == BOXES[1]


def test_select_box_unknown_policy_lists_choices() -> None:
    with pytest.raises(ScaleprobeError, match=r"policy='biggest'.*'single', 'largest', 'union'"):
        select_box(BOXES, "biggest")


def test_record_counts_as_dict() -> None:
    counts = RecordCounts(kept=3, no_box=1, multi_object=2)
    assert counts.as_dict() == {"kept": 3, "no_box": 1, "multi_object": 2, "filtered": 0, "bad": 0}
    assert counts.total == 6
