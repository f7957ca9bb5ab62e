"""Tests for src.data.voc: the Pascal VOC layout."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from PIL import Image

from src.data.annotations import AnnotatedObject, Annotation, write_voc_xml
from src.data.boxes import Box
from src.data.records import ImageRecord
from src.data.voc import load_voc_records
from src.errors import ScaleprobeError
from src.targets.scale import ScaleTarget


def _ratio(record: ImageRecord) -> float:
    """The scale target of one record (records carry no ratio: src/targets/)."""
    return float(ScaleTarget().values([record])[0])


def _image(path: Path, size: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 120, 200)).save(path, format="JPEG")


# -------------------------------------------------------------- VOC layout


def _voc(root: Path) -> Path:
    cases: dict[str, list[AnnotatedObject]] = {
        "2008_000001": [AnnotatedObject("bird", Box(1, 1, 50, 50))],
        "2008_000002": [
            AnnotatedObject("bird", Box(1, 1, 20, 20)),
            AnnotatedObject("bird", Box(30, 30, 90, 60), difficult=True),
            AnnotatedObject("car", Box(5, 5, 100, 80), truncated=True),
        ],
        "2008_000003": [AnnotatedObject("bird", Box(10, 10, 30, 30), difficult=True)],
        "2008_000004": [AnnotatedObject("car", Box(1, 1, 101, 81))],  # 1-based: xmax=w+1 ok
        "2008_000005": [AnnotatedObject("dog", Box(1, 1, 5, 5))],
    }
    for image_id, objects in cases.items():
        _image(root / "JPEGImages" / f"{image_id}.jpg", (100, 80))
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        write_voc_xml(
            root / "Annotations" / f"{image_id}.xml",
            Annotation(f"{image_id}.jpg", 100, 80, tuple(objects)),
        )
    return root


def test_load_voc_default_excludes_difficult(tmp_path: Path) -> None:
    root = _voc(tmp_path / "VOC2012")
    records, counts = load_voc_records(root, ["car", "bird"])
    assert [(r.class_id, r.image_id) for r in records] == [
        ("car", "2008_000002"),
        ("car", "2008_000004"),
        ("bird", "2008_000001"),
        ("bird", "2008_000002"),  # the difficult second bird is ignored
    ]
    assert counts["bird"].as_dict() == {
        "kept": 2,
        "no_box": 0,
        "multi_object": 0,
        "filtered": 1,
        "bad": 0,
    }
    car = records[1]
    assert _ratio(car) == pytest.approx(math.sqrt(99 * 79 / 8000))  # clipped to the image
    assert car.path == str((root / "JPEGImages" / "2008_000004.jpg").absolute())


def test_load_voc_include_difficult_exclude_truncated(tmp_path: Path) -> None:
    root = _voc(tmp_path / "VOC2012")
    records, counts = load_voc_records(
        root, ["bird", "car"], include_difficult=True, include_truncated=False
    )
    assert [(r.class_id, r.image_id) for r in records] == [
        ("bird", "2008_000001"),
        ("bird", "2008_000003"),
        ("car", "2008_000004"),
    ]
    assert counts["bird"].multi_object == 1
    assert counts["car"].filtered == 1


def test_load_voc_union_policy_and_missing_image(tmp_path: Path) -> None:
    root = _voc(tmp_path / "VOC2012")
    (root / "JPEGImages" / "2008_000001.jpg").unlink()
    records, counts = load_voc_records(root, ["bird"], policy="union", include_difficult=True)
    assert {r.image_id: r.box for r in records}["2008_000002"] == Box(1, 1, 90, 60)
    assert counts["bird"].bad == 1
    assert counts["bird"].kept == 2


def test_load_voc_errors(tmp_path: Path) -> None:
    root = _voc(tmp_path / "VOC2012")
    with pytest.raises(ScaleprobeError, match=r"\['albatross'\].*choose from"):
        load_voc_records(root, ["bird", "albatross"])
    with pytest.raises(ScaleprobeError, match="class 'cat': no usable image"):
        load_voc_records(root, ["cat"])
    with pytest.raises(ScaleprobeError, match="include_difficult='yes'"):
        load_voc_records(root, ["bird"], include_difficult="yes")  # type: ignore[arg-type]
    with pytest.raises(ScaleprobeError, match=r"VOC root .*VOC2007"):
        load_voc_records(tmp_path / "VOC2007", ["bird"])
    (root / "Annotations").rename(root / "annotations_old")
    with pytest.raises(ScaleprobeError, match=r"VOC Annotations directory .*Annotations"):
        load_voc_records(root, ["bird"])


def test_load_voc_box_outside_image_names_file(tmp_path: Path) -> None:
    root = _voc(tmp_path / "VOC2012")
    bad = root / "Annotations" / "2008_000009.xml"
    write_voc_xml(bad, Annotation("x.jpg", 100, 80, (AnnotatedObject("bird", Box(1, 1, 150, 9)),)))
    _image(root / "JPEGImages" / "2008_000009.jpg", (100, 80))
    with pytest.raises(ScaleprobeError, match="outside the 100x80 image") as info:
        load_voc_records(root, ["bird"])
    assert str(bad) in str(info.value)
