"""Tests for src.data.records: ratio, box policies and the dataset loaders."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from PIL import Image

from src.data.annotations import AnnotatedObject, Annotation, write_voc_xml
from src.data.records import (
    Box,
    ImageRecord,
    RecordCounts,
    load_imagenet_records,
    load_voc_records,
    scale_ratio,
    select_box,
)
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


# ----------------------------------------------------------- ILSVRC layout


def _image(path: Path, size: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 120, 200)).save(path, format="JPEG")


def _xml(path: Path, size: tuple[int, int], objects: list[tuple[str, Box]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ann = Annotation(
        filename=path.stem,
        width=size[0],
        height=size[1],
        objects=tuple(AnnotatedObject(name, box) for name, box in objects),
    )
    write_voc_xml(path, ann)


def _ilsvrc(root: Path) -> tuple[Path, Path]:
    """Build a tiny ILSVRC train layout with every case the loader must handle."""
    images, xmls = root / "train", root / "Annotation"
    cases: dict[str, tuple[tuple[int, int], list[tuple[str, Box]] | None]] = {
        f"{BIRD}_10": ((40, 20), [(BIRD, Box(0, 0, 20, 10))]),
        f"{BIRD}_2": ((30, 30), [(BIRD, Box(0, 0, 30, 30))]),
        f"{BIRD}_3": ((40, 40), [(BIRD, Box(0, 0, 10, 10)), (BIRD, Box(20, 20, 40, 30))]),
        f"{BIRD}_4": ((40, 40), [(KITE, Box(0, 0, 10, 10)), (BIRD, Box(5, 5, 15, 25))]),
        f"{BIRD}_5": ((40, 40), None),  # image without annotation
        f"{BIRD}_6": ((40, 40), [(KITE, Box(0, 0, 10, 10))]),  # no object of the class
        f"{KITE}_1": ((50, 50), [(KITE, Box(10, 10, 35, 35))]),
    }
    for image_id, (size, objects) in cases.items():
        wnid = image_id.split("_")[0]
        _image(images / wnid / f"{image_id}.JPEG", size)
        if objects is not None:
            _xml(xmls / wnid / f"{image_id}.xml", size, objects)
    return images, xmls


def test_load_imagenet_single_policy(tmp_path: Path) -> None:
    images, xmls = _ilsvrc(tmp_path)
    records, counts = load_imagenet_records(images, [KITE, BIRD], annotations_dir=xmls)
    assert [r.image_id for r in records] == [f"{KITE}_1", f"{BIRD}_10", f"{BIRD}_2", f"{BIRD}_4"]
    assert [r.class_id for r in records] == [KITE, BIRD, BIRD, BIRD]
    assert counts[BIRD].as_dict() == {
        "kept": 3,
        "no_box": 2,
        "multi_object": 1,
        "filtered": 0,
        "bad": 0,
    }
    assert counts[KITE].kept == 1
    by_id = {r.image_id: r for r in records}
    assert _ratio(by_id[f"{BIRD}_10"]) == pytest.approx(math.sqrt(200 / 800))
    assert _ratio(by_id[f"{BIRD}_2"]) == 1.0
    # Only the object named by the class counts, not the kite in the same image.
    assert by_id[f"{BIRD}_4"].box == Box(5, 5, 15, 25)
    first = by_id[f"{BIRD}_10"]
    assert Path(first.path).is_absolute()
    assert Path(first.path) == (images / BIRD / f"{BIRD}_10.JPEG").absolute()
    assert (first.width, first.height) == (40, 20)


@pytest.mark.parametrize(
    ("policy", "box"),
    [("largest", Box(20, 20, 40, 30)), ("union", Box(0, 0, 40, 30))],
)
def test_load_imagenet_multi_object_policies(tmp_path: Path, policy: str, box: Box) -> None:
    images, xmls = _ilsvrc(tmp_path)
    records, counts = load_imagenet_records(images, [BIRD], annotations_dir=xmls, policy=policy)
    assert counts[BIRD].kept == 4
    assert counts[BIRD].multi_object == 0
    assert {r.image_id: r.box for r in records}[f"{BIRD}_3"] == box


def test_load_imagenet_ratio_from_handwritten_xml(tmp_path: Path) -> None:
    _image(tmp_path / "train" / BIRD / f"{BIRD}_1.JPEG", (500, 400))
    xml = tmp_path / "ann" / BIRD / f"{BIRD}_1.xml"
    xml.parent.mkdir(parents=True)
    # A hand-written ILSVRC file, its size agreeing with the image (tests/unit/
    # test_size_mismatch.py covers a <size> that differs from the image).
    xml.write_text(
        f"<annotation><folder>{BIRD}</folder><filename>{BIRD}_1</filename>"
        "<size><width>500</width><height>400</height><depth>3</depth></size>"
        f"<object><name>{BIRD}</name><bndbox><xmin>100</xmin><ymin>100</ymin>"
        "<xmax>300</xmax><ymax>200</ymax></bndbox></object></annotation>",
        encoding="utf-8",
    )
    (record,), _ = load_imagenet_records(
        tmp_path / "train", [BIRD], annotations_dir=tmp_path / "ann"
    )
    assert _ratio(record) == pytest.approx(math.sqrt(200 * 100 / (500 * 400)))


@pytest.mark.parametrize(
    ("box", "fragment"),
    [(Box(0, 0, 60, 10), "outside the 40x40 image"), (Box(5, 5, 5, 9), "zero or negative area")],
)
def test_load_imagenet_bad_box_names_file(tmp_path: Path, box: Box, fragment: str) -> None:
    _image(tmp_path / "train" / BIRD / f"{BIRD}_1.JPEG", (40, 40))
    xml = tmp_path / "ann" / BIRD / f"{BIRD}_1.xml"
    _xml(xml, (40, 40), [(BIRD, box)])
    with pytest.raises(ScaleprobeError) as info:
        load_imagenet_records(tmp_path / "train", [BIRD], annotations_dir=tmp_path / "ann")
    assert str(xml) in str(info.value)
    assert fragment in str(info.value)


def test_load_imagenet_malformed_xml_names_file(tmp_path: Path) -> None:
    _image(tmp_path / "train" / BIRD / f"{BIRD}_1.JPEG", (40, 40))
    xml = tmp_path / "ann" / BIRD / f"{BIRD}_1.xml"
    xml.parent.mkdir(parents=True)
    xml.write_text("<annotation><size>", encoding="utf-8")
    with pytest.raises(ScaleprobeError, match="malformed XML") as info:
        load_imagenet_records(tmp_path / "train", [BIRD], annotations_dir=tmp_path / "ann")
    assert str(xml) in str(info.value)


def test_load_imagenet_missing_dirs(tmp_path: Path) -> None:
    images, xmls = _ilsvrc(tmp_path)
    with pytest.raises(ScaleprobeError, match=r"images_dir .*nowhere"):
        load_imagenet_records(tmp_path / "nowhere", [BIRD], annotations_dir=xmls)
    with pytest.raises(ScaleprobeError, match=r"annotations_dir .*nowhere"):
        load_imagenet_records(images, [BIRD], annotations_dir=tmp_path / "nowhere")
    with pytest.raises(ScaleprobeError) as info:
        load_imagenet_records(images, [BIRD, "n04037443"], annotations_dir=xmls)
    assert "'n04037443'" in str(info.value)
    assert str(images / "n04037443") in str(info.value)


def test_load_imagenet_class_without_usable_image(tmp_path: Path) -> None:
    images, xmls = _ilsvrc(tmp_path)
    _image(images / "n04037443" / "n04037443_1.JPEG", (10, 10))
    with pytest.raises(ScaleprobeError, match="class 'n04037443': no usable image") as info:
        load_imagenet_records(images, ["n04037443"], annotations_dir=xmls)
    assert str(images / "n04037443") in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({}, "exactly one of annotations_dir"),
        ({"annotations_dir": "a", "annotations_csv": "b"}, "exactly one of annotations_dir"),
        ({"annotations_dir": "a", "policy": "all"}, "policy='all'"),
        ({"annotations_dir": "a", "image_ext": "JPEG"}, "image_ext='JPEG'"),
    ],
)
def test_load_imagenet_bad_arguments(tmp_path: Path, kwargs: dict, fragment: str) -> None:
    with pytest.raises(ScaleprobeError, match=fragment):
        load_imagenet_records(tmp_path, [BIRD], **kwargs)


@pytest.mark.parametrize(
    ("classes", "fragment"),
    [(BIRD, "expected a list"), ([], "at least one"), ([BIRD, BIRD], "repeat"), (["../x"], "x")],
)
def test_load_imagenet_bad_classes(tmp_path: Path, classes: object, fragment: str) -> None:
    with pytest.raises(ScaleprobeError, match=fragment):
        load_imagenet_records(tmp_path, classes, annotations_dir=tmp_path)  # type: ignore[arg-type]


def test_load_imagenet_from_csv(tmp_path: Path) -> None:
    images = tmp_path / "train"
    _image(images / BIRD / f"{BIRD}_1.JPEG", (80, 40))
    _image(images / BIRD / f"{BIRD}_2.JPEG", (50, 50))  # two birds: dropped by "single"
    _image(images / BIRD / f"{BIRD}_3.JPEG", (50, 50))  # not in the CSV
    _image(images / KITE / f"{KITE}_1.JPEG", (30, 60))
    (images / KITE / f"{KITE}_2.JPEG").write_bytes(b"")  # annotated but unreadable
    csv = tmp_path / "LOC_train_solution.csv"
    csv.write_text(
        "ImageId,PredictionString\n"
        f"{BIRD}_1,{BIRD} 0 0 40 20 {KITE} 1 1 5 5\n"
        f"{BIRD}_2,{BIRD} 0 0 10 10 {BIRD} 20 20 40 40\n"
        f"{KITE}_1,{KITE} 5 10 20 40\n"
        f"{KITE}_2,{KITE} 5 10 20 40\n",
        encoding="utf-8",
    )
    records, counts = load_imagenet_records(images, [BIRD, KITE], annotations_csv=csv)
    assert [(r.image_id, r.width, r.height) for r in records] == [
        (f"{BIRD}_1", 80, 40),
        (f"{KITE}_1", 30, 60),
    ]
    assert _ratio(records[0]) == pytest.approx(0.5)
    assert records[1].box == Box(5, 10, 20, 40)
    assert counts[BIRD].as_dict() == {
        "kept": 1,
        "no_box": 1,
        "multi_object": 1,
        "filtered": 0,
        "bad": 0,
    }
    assert (counts[KITE].kept, counts[KITE].bad) == (1, 1)


def test_load_imagenet_csv_box_outside_image_names_csv(tmp_path: Path) -> None:
    _image(tmp_path / "train" / BIRD / f"{BIRD}_1.JPEG", (20, 20))
    csv = tmp_path / "loc.csv"
    csv.write_text(f"ImageId,PredictionString\n{BIRD}_1,{BIRD} 0 0 40 20\n", encoding="utf-8")
    with pytest.raises(ScaleprobeError, match="outside the 20x20 image") as info:
        load_imagenet_records(tmp_path / "train", [BIRD], annotations_csv=csv)
    assert str(csv) in str(info.value)
    with pytest.raises(ScaleprobeError, match=r"annotations_csv .*missing\.csv"):
        load_imagenet_records(tmp_path / "train", [BIRD], annotations_csv=tmp_path / "missing.csv")


def test_paths_with_spaces_and_non_ascii(tmp_path: Path) -> None:
    root = tmp_path / "my data ünïcødé 数据"
    images, xmls = _ilsvrc(root)
    records, _ = load_imagenet_records(images, [KITE], annotations_dir=xmls)
    assert records[0].path == str((images / KITE / f"{KITE}_1.JPEG").absolute())
    assert Path(records[0].path).is_file()


def test_image_ext_case_insensitive_and_hidden_files(tmp_path: Path) -> None:
    images, xmls = _ilsvrc(tmp_path)
    _image(images / KITE / f"{KITE}_7.jpeg", (50, 50))
    _xml(xmls / KITE / f"{KITE}_7.xml", (50, 50), [(KITE, Box(0, 0, 5, 5))])
    (images / KITE / f"._{KITE}_1.JPEG").write_bytes(b"macOS resource fork")
    (images / KITE / "notes.txt").write_text("ignored")
    records, _ = load_imagenet_records(images, [KITE], annotations_dir=xmls)
    assert [r.image_id for r in records] == [f"{KITE}_1", f"{KITE}_7"]


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
