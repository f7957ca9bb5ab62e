"""Tests for src.data.annotations: VOC XML and LOC CSV parsing and writing."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.data.annotations import (
    AnnotatedObject,
    Annotation,
    parse_voc_xml,
    read_loc_csv,
    write_voc_xml,
)
from src.data.boxes import Box
from src.errors import ScaleprobeError

ILSVRC_XML = """<annotation>
\t<folder>n02058221</folder>
\t<filename>n02058221_16</filename>
\t<source>
\t\t<database>ILSVRC_2012</database>
\t</source>
\t<size>
\t\t<width>500</width>
\t\t<height>375</height>
\t\t<depth>3</depth>
\t</size>
\t<segmented>0</segmented>
\t<object>
\t\t<name>n02058221</name>
\t\t<pose>Unspecified</pose>
\t\t<truncated>0</truncated>
\t\t<difficult>0</difficult>
\t\t<bndbox>
\t\t\t<xmin>100</xmin>
\t\t\t<ymin>50</ymin>
\t\t\t<xmax>350</xmax>
\t\t\t<ymax>300</ymax>
\t\t</bndbox>
\t</object>
</annotation>
"""


def _voc_xml(size: str = "", objects: str = "") -> str:
    size = size or "<width>200</width><height>100</height><depth>3</depth>"
    return f"<annotation><filename>x.jpg</filename><size>{size}</size>{objects}</annotation>"


def _object(name: str = "bird", box: str = "", extra: str = "") -> str:
    box = box or "<xmin>10</xmin><ymin>20</ymin><xmax>60</xmax><ymax>70</ymax>"
    return f"<object><name>{name}</name>{extra}<bndbox>{box}</bndbox></object>"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_parse_handwritten_ilsvrc_xml(tmp_path: Path) -> None:
    ann = parse_voc_xml(_write(tmp_path / "a.xml", ILSVRC_XML))
    assert ann.filename == "n02058221_16"
    assert (ann.width, ann.height) == (500, 375)
    assert ann.objects == (
        AnnotatedObject(name="n02058221", box=Box(100, 50, 350, 300), difficult=False),
    )


def test_parse_flags_and_float_coordinates(tmp_path: Path) -> None:
    objects = _object("car", extra="<truncated>1</truncated><difficult>1</difficult>") + _object(
        "bird", box="<xmin>1.5</xmin><ymin>2</ymin><xmax>3.25</xmax><ymax>4</ymax>"
    )
    ann = parse_voc_xml(_write(tmp_path / "a.xml", _voc_xml(objects=objects)))
    car, bird = ann.objects
    assert (car.truncated, car.difficult) == (True, True)
    assert (bird.truncated, bird.difficult) == (False, False)
    assert bird.box == Box(1.5, 2.0, 3.25, 4.0)


def test_parse_without_objects_or_filename(tmp_path: Path) -> None:
    text = "<annotation><size><width>5</width><height>6</height></size></annotation>"
    ann = parse_voc_xml(_write(tmp_path / "img_1.xml", text))
    assert ann == Annotation(filename="img_1.JPEG", width=5, height=6, objects=())


def test_write_then_parse_round_trip(tmp_path: Path) -> None:
    ann = Annotation(
        filename="n01608432_7.JPEG",
        width=320,
        height=161,
        objects=(
            AnnotatedObject("n01608432", Box(0, 3, 120.5, 160), difficult=True),
            AnnotatedObject("n02058221", Box(7, 8, 9, 10), truncated=True),
        ),
    )
    path = tmp_path / "out.xml"
    write_voc_xml(path, ann, folder="n01608432")
    text = path.read_text(encoding="utf-8")
    assert "<folder>n01608432</folder>" in text
    assert "<depth>3</depth>" in text
    assert "<xmax>120.5</xmax>" in text
    assert "<xmin>0</xmin>" in text  # integral values carry no decimal point
    assert parse_voc_xml(path) == ann


def test_write_rejects_characters_xml_cannot_store(tmp_path: Path) -> None:
    ann = Annotation(filename="bad\x01name", width=1, height=1)
    with pytest.raises(ScaleprobeError, match="filename"):
        write_voc_xml(tmp_path / "x.xml", ann)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("<annotation><size><width>3</width>", "malformed XML"),
        ("not xml at all", "malformed XML"),
        ("<root/>", "expected <annotation>"),
        (_voc_xml(size="<height>100</height>"), "size><width>"),
        (_voc_xml(size="<width>abc</width><height>100</height>"), "size/width='abc'"),
        (_voc_xml(size="<width>0</width><height>100</height>"), "size/width='0'"),
        (_voc_xml(size="<width>200</width><height>-5</height>"), "size/height='-5'"),
        (_voc_xml(size="<width>20.5</width><height>10</height>"), "positive integer"),
        (_voc_xml(objects="<object><name>bird</name></object>"), "has no <bndbox>"),
        (_voc_xml(objects=_object(name="")), "has no <name>"),
        (
            _voc_xml(objects=_object(box="<xmin>1</xmin><ymin>2</ymin><xmax>3</xmax>")),
            "missing bndbox/ymax",
        ),
        (
            _voc_xml(
                objects=_object(box="<xmin>a</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax>")
            ),
            "bndbox/xmin='a' is not a finite number",
        ),
        (
            _voc_xml(
                objects=_object(box="<xmin>1</xmin><ymin>nan</ymin><xmax>3</xmax><ymax>4</ymax>")
            ),
            "bndbox/ymin='nan'",
        ),
        (
            _voc_xml(
                objects=_object(box="<xmin>-3</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax>")
            ),
            "bndbox/xmin='-3' is negative",
        ),
        (
            _voc_xml(
                objects=_object(box="<xmin>9</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax>")
            ),
            "swapped box",
        ),
        (_voc_xml(objects=_object(extra="<difficult>maybe</difficult>")), "difficult='maybe'"),
        (
            '<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY a "aaaa">]><annotation>&a;</annotation>',
            "DOCTYPE/ENTITY",
        ),
    ],
)
def test_parse_rejects_bad_xml_naming_file(tmp_path: Path, text: str, fragment: str) -> None:
    path = _write(tmp_path / "bad file.xml", text)
    with pytest.raises(ScaleprobeError) as info:
        parse_voc_xml(path)
    message = str(info.value)
    assert str(path) in message
    assert fragment in message
    assert "\n" not in message


def test_parse_malformed_xml_reports_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.xml", "<annotation>\n<size>\n<width>3</width>\n</annotation>\n")
    with pytest.raises(ScaleprobeError, match=r"a\.xml:4: malformed XML"):
        parse_voc_xml(path)


def test_parse_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScaleprobeError, match="cannot read annotation"):
        parse_voc_xml(tmp_path / "nope.xml")


def test_parse_names_object_index(tmp_path: Path) -> None:
    bad = _object("dog", box="<xmin>5</xmin><ymin>2</ymin><xmax>1</xmax><ymax>4</ymax>")
    path = _write(tmp_path / "a.xml", _voc_xml(objects=_object() + bad))
    with pytest.raises(ScaleprobeError, match=r"object 2 \(dog\)"):
        parse_voc_xml(path)


# ---------------------------------------------------------------- LOC CSV


def test_read_loc_csv(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "LOC_train_solution.csv",
        "ImageId,PredictionString\n"
        "n02058221_1,n02058221 10 20 30 40 \n"
        "n02058221_2,n02058221 1 2 3 4 n01608432 5 6 7.5 8\n"
        "n01608432_9,\n"
        "\n",
    )
    objects = read_loc_csv(path)
    assert objects == {
        "n02058221_1": [AnnotatedObject("n02058221", Box(10, 20, 30, 40))],
        "n02058221_2": [
            AnnotatedObject("n02058221", Box(1, 2, 3, 4)),
            AnnotatedObject("n01608432", Box(5, 6, 7.5, 8)),
        ],
        "n01608432_9": [],
    }


def test_read_loc_csv_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"\xef\xbb\xbfImageId,PredictionString\r\nimg,c 1 2 3 4\r\n")
    assert read_loc_csv(path) == {"img": [AnnotatedObject("c", Box(1, 2, 3, 4))]}


@pytest.mark.parametrize(
    ("rows", "line", "fragment"),
    [
        ("a,c 1 2 3 4\nb,c 1 2 3\n", 3, "4 tokens"),
        ("a,c 1 2 3 4\nb,c 1 x 3 4\n", 3, "ymin='x'"),
        ("a,c 1 2 -3 4\n", 2, "xmax='-3'"),
        ("a,c 1 2 3 4\nb,c 9 2 3 4\n", 3, "swapped box"),
        ("a,c 1 2 3 4,extra\n", 2, "3 columns"),
        (",c 1 2 3 4\n", 2, "empty ImageId"),
        ("a,c 1 2 3 4\nb,\na,c 1 2 3 4\n", 4, "repeats line 2"),
    ],
)
def test_read_loc_csv_bad_rows_name_file_and_line(
    tmp_path: Path, rows: str, line: int, fragment: str
) -> None:
    path = _write(tmp_path / "loc.csv", "ImageId,PredictionString\n" + rows)
    with pytest.raises(ScaleprobeError) as info:
        read_loc_csv(path)
    assert f"{path}:{line}:" in str(info.value)
    assert fragment in str(info.value)


def test_read_loc_csv_bad_header(tmp_path: Path) -> None:
    path = _write(tmp_path / "loc.csv", "id,boxes\na,c 1 2 3 4\n")
    with pytest.raises(ScaleprobeError, match=r"loc\.csv:1: header"):
        read_loc_csv(path)


def test_read_loc_csv_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "loc.csv"
    path.write_bytes(b"ImageId,PredictionString\n\xff\xfe,c 1 2 3 4\n")
    with pytest.raises(ScaleprobeError, match="not a UTF-8 CSV"):
        read_loc_csv(path)
