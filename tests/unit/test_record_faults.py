"""Faults the loaders count instead of ignoring (issue 19, item 11).

Symlink loops and LOC CSV rows without an image file get their own counter and
a warning; the per-class count of images finally probed (after extraction
skipped unreadable ones, counted in ``bad``) is one log line per class.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from PIL import Image

from src.data.annotations import AnnotatedObject, Annotation, write_voc_xml
from src.data.boxes import Box
from src.data.imagenet import load_imagenet_records
from src.data.records import RecordCounts
from src.data.sources import log_probed
from src.data.voc import load_voc_records
from src.errors import ScaleprobeError

BIRD = "n02058221"


def _loop(path: Path) -> None:
    """Make ``path`` a symlink loop (a -> b -> a)."""
    other = path.with_name(f"{path.name}.other")
    os.symlink(other.name, path)
    os.symlink(path.name, other)


def _tree(root: Path, n: int = 3) -> tuple[Path, Path]:
    images, xmls = root / "train" / BIRD, root / "Annotation" / BIRD
    images.mkdir(parents=True)
    xmls.mkdir(parents=True)
    for i in range(1, n + 1):
        Image.new("RGB", (40, 40)).save(images / f"{BIRD}_{i}.JPEG", "JPEG")
        write_voc_xml(
            xmls / f"{BIRD}_{i}.xml",
            Annotation(f"{BIRD}_{i}", 40, 40, (AnnotatedObject(BIRD, Box(0, 0, 20, 20)),)),
        )
    return root / "train", root / "Annotation"


def test_image_that_is_a_symlink_loop_is_counted(tmp_path, caplog):
    images, xmls = _tree(tmp_path)
    _loop(images / BIRD / f"{BIRD}_9.JPEG")
    with caplog.at_level(logging.WARNING, logger="src.data"):
        records, counts = load_imagenet_records(images, [BIRD], annotations_dir=xmls)
    assert len(records) == 3
    assert counts[BIRD].symlink_loop == 1
    assert counts[BIRD].as_dict()["symlink_loop"] == 1
    assert f"{BIRD}_9.JPEG is a symlink loop" in caplog.text


def test_annotation_that_is_a_symlink_loop_is_counted_not_taken_for_no_box(tmp_path):
    images, xmls = _tree(tmp_path)
    (xmls / BIRD / f"{BIRD}_2.xml").unlink()
    _loop(xmls / BIRD / f"{BIRD}_2.xml")
    records, counts = load_imagenet_records(images, [BIRD], annotations_dir=xmls)
    assert [r.image_id for r in records] == [f"{BIRD}_1", f"{BIRD}_3"]
    assert (counts[BIRD].symlink_loop, counts[BIRD].no_box) == (1, 0)


def test_class_directory_that_is_a_symlink_loop_is_named(tmp_path):
    images, xmls = _tree(tmp_path)
    _loop(images / "n01608432")
    with pytest.raises(ScaleprobeError, match=r"image directory .*n01608432 is a symlink loop"):
        load_imagenet_records(images, [BIRD, "n01608432"], annotations_dir=xmls)


def test_csv_rows_without_an_image_file_are_counted(tmp_path, caplog):
    images, _ = _tree(tmp_path, n=2)
    _loop(images / BIRD / f"{BIRD}_5.JPEG")
    csv = tmp_path / "LOC.csv"
    rows = [f"{BIRD}_{i},{BIRD} 0 0 20 20" for i in (1, 2, 3, 4, 5)]
    rows.append("n01608432_1,n01608432 0 0 5 5")  # another class: not this class's row
    csv.write_text("ImageId,PredictionString\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="src.data"):
        records, counts = load_imagenet_records(images, [BIRD], annotations_csv=csv)
    assert len(records) == 2
    assert counts[BIRD].missing_image == 2  # _3 and _4; _5 is a loop, counted as such
    assert counts[BIRD].symlink_loop == 1
    assert f"2 rows of class {BIRD} have no image" in caplog.text
    assert f"{BIRD}_3" in caplog.text


def test_voc_image_that_is_a_symlink_loop_is_counted(tmp_path):
    root = tmp_path / "VOC2012"
    (root / "JPEGImages").mkdir(parents=True)
    (root / "Annotations").mkdir()
    for image_id in ("2008_000001", "2008_000002"):
        write_voc_xml(
            root / "Annotations" / f"{image_id}.xml",
            Annotation(f"{image_id}.jpg", 40, 40, (AnnotatedObject("bird", Box(1, 1, 9, 9)),)),
        )
    Image.new("RGB", (40, 40)).save(root / "JPEGImages" / "2008_000001.jpg", "JPEG")
    _loop(root / "JPEGImages" / "2008_000002.jpg")
    records, counts = load_voc_records(root, ["bird"])
    assert [r.image_id for r in records] == ["2008_000001"]
    assert (counts["bird"].symlink_loop, counts["bird"].bad) == (1, 0)


def test_counts_after_extraction_move_skipped_images_to_bad():
    counts = RecordCounts(kept=16, no_box=2, bad=1)
    final = counts.after_extraction(14)
    assert (final.kept, final.bad, final.no_box) == (14, 3, 2)
    assert final.total == counts.total
    assert counts.kept == 16  # a copy


def test_log_probed_is_one_line_per_class_with_the_final_numbers(tmp_path, caplog):
    images, xmls = _tree(tmp_path, n=3)
    records, counts = load_imagenet_records(images, [BIRD], annotations_dir=xmls)
    left = {BIRD: records[:2]}  # extraction skipped one unreadable image
    with caplog.at_level(logging.INFO, logger="src.data.sources"):
        log_probed(left, counts)
    lines = [r.getMessage() for r in caplog.records if r.name == "src.data.sources"]
    assert lines == [
        f"class {BIRD}: 2 images probed "
        "{'kept': 2, 'no_box': 0, 'multi_object': 0, 'filtered': 0, 'bad': 1}"
    ]
