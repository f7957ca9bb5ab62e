"""Tests for src.data.imagenet: the ILSVRC train layout (per-image XML, LOC CSV)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from PIL import Image

from src.data.annotations import AnnotatedObject, Annotation, write_voc_xml
from src.data.boxes import Box
from src.data.imagenet import load_imagenet_records
from src.data.records import ImageRecord
from src.errors import ScaleprobeError
from src.targets.scale import ScaleTarget

BIRD = "n02058221"
KITE = "n01608432"


def _ratio(record: ImageRecord) -> float:
    """The scale target of one record (records carry no ratio: src/targets/)."""
    return float(ScaleTarget().values([record])[0])


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
