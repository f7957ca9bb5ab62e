"""The annotation's <size> against the image file's size (issue 19, item 3).

An XML ``<size>`` is not trusted: the image header gives the size the ratio uses,
so multiplying every XML size by 3 changes nothing, and the XML path agrees with
the LOC CSV path (which has no size) on the same images.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
from PIL import Image

from src.config import validate_config
from src.data.annotations import AnnotatedObject, Annotation, write_voc_xml
from src.data.boxes import Box, scale_ratio
from src.data.imagenet import load_imagenet_records
from src.data.voc import load_voc_records
from src.errors import ScaleprobeError

BIRD = "n02058221"
# image id: (image size, box); boxes are in the image's pixels.
CASES = {
    f"{BIRD}_1": ((80, 40), Box(0, 0, 40, 20)),
    f"{BIRD}_2": ((50, 60), Box(5, 10, 30, 50)),
    f"{BIRD}_3": ((64, 64), Box(8, 8, 56, 40)),
}


def _ratio(record) -> float:
    return scale_ratio(record.box, record.width, record.height)


def _tree(root: Path, scale: int = 1, only: set[str] | None = None) -> tuple[Path, Path]:
    """ILSVRC layout; the XML sizes of ``only`` (default all) are multiplied by ``scale``."""
    images, xmls = root / "train", root / "Annotation"
    for image_id, ((w, h), box) in CASES.items():
        (images / BIRD).mkdir(parents=True, exist_ok=True)
        (xmls / BIRD).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (w, h), (90, 120, 200)).save(images / BIRD / f"{image_id}.JPEG", "JPEG")
        k = scale if only is None or image_id in only else 1
        write_voc_xml(
            xmls / BIRD / f"{image_id}.xml",
            Annotation(image_id, w * k, h * k, (AnnotatedObject(BIRD, box),)),
        )
    return images, xmls


def _csv(path: Path) -> Path:
    rows = [f"{i},{BIRD} {b.xmin} {b.ymin} {b.xmax} {b.ymax}" for i, (_, b) in CASES.items()]
    path.write_text("ImageId,PredictionString\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_xml_sizes_times_three_change_no_ratio_and_match_the_csv_path(tmp_path, caplog):
    images, xmls = _tree(tmp_path / "right")
    right, right_counts = load_imagenet_records(images, [BIRD], annotations_dir=xmls)
    images3, xmls3 = _tree(tmp_path / "x3", scale=3)
    with caplog.at_level(logging.WARNING, logger="src.data"):
        wrong, counts = load_imagenet_records(images3, [BIRD], annotations_dir=xmls3)
    from_csv, _ = load_imagenet_records(images, [BIRD], annotations_csv=_csv(tmp_path / "l.csv"))

    expected = [scale_ratio(box, *size) for size, box in CASES.values()]
    assert [_ratio(r) for r in right] == pytest.approx(expected, rel=1e-12)
    assert [_ratio(r) for r in wrong] == pytest.approx(expected, rel=1e-12)
    assert [_ratio(r) for r in from_csv] == pytest.approx(expected, rel=1e-12)
    assert [(r.width, r.height) for r in wrong] == [size for size, _ in CASES.values()]
    assert [r.box for r in wrong] == [box for _, box in CASES.values()]  # kept as is
    assert right_counts[BIRD].size_mismatch == 0
    assert counts[BIRD].size_mismatch == 3
    assert counts[BIRD].kept == 3
    assert "3 images' annotation size differs from the image file" in caplog.text
    assert "240x120" in caplog.text  # the first mismatch is named with both sizes
    assert "80x40" in caplog.text


def test_skip_drops_only_the_mismatched_images(tmp_path):
    images, xmls = _tree(tmp_path, scale=3, only={f"{BIRD}_2"})
    records, counts = load_imagenet_records(
        images, [BIRD], annotations_dir=xmls, on_size_mismatch="skip"
    )
    assert [r.image_id for r in records] == [f"{BIRD}_1", f"{BIRD}_3"]
    assert (counts[BIRD].kept, counts[BIRD].size_mismatch_skipped) == (2, 1)
    assert counts[BIRD].size_mismatch == 0
    assert counts[BIRD].total == 3


def test_error_names_the_xml_and_both_sizes(tmp_path):
    images, xmls = _tree(tmp_path, scale=3, only={f"{BIRD}_2"})
    with pytest.raises(ScaleprobeError) as info:
        load_imagenet_records(images, [BIRD], annotations_dir=xmls, on_size_mismatch="error")
    message = str(info.value)
    assert str(xmls / BIRD / f"{BIRD}_2.xml") in message
    assert "150x180" in message
    assert "50x60" in message
    assert "on_size_mismatch=error" in message
    assert "\n" not in message


def test_box_outside_the_real_image_is_an_error_naming_both_sizes(tmp_path):
    images, xmls = tmp_path / "train", tmp_path / "Annotation"
    (images / BIRD).mkdir(parents=True)
    (xmls / BIRD).mkdir(parents=True)
    Image.new("RGB", (40, 40)).save(images / BIRD / f"{BIRD}_1.JPEG", "JPEG")
    xml = xmls / BIRD / f"{BIRD}_1.xml"
    # The box fits the annotation's 120x120 but not the 40x40 image.
    write_voc_xml(xml, Annotation("x", 120, 120, (AnnotatedObject(BIRD, Box(0, 0, 100, 100)),)))
    with pytest.raises(ScaleprobeError) as info:
        load_imagenet_records(images, [BIRD], annotations_dir=xmls)
    message = str(info.value)
    assert str(xml) in message
    assert "outside the 40x40 image" in message
    assert "annotation says 120x120" in message


def test_unreadable_header_keeps_the_annotation_size_for_the_extraction_to_judge(tmp_path):
    images, xmls = _tree(tmp_path)
    (images / BIRD / f"{BIRD}_2.JPEG").write_bytes(b"")  # extract.on_bad_image decides
    records, counts = load_imagenet_records(
        images, [BIRD], annotations_dir=xmls, on_size_mismatch="error"
    )
    assert [(r.image_id, r.width, r.height) for r in records][1] == (f"{BIRD}_2", 50, 60)
    assert counts[BIRD].size_mismatch == 0


def _voc(root: Path, scale: int) -> Path:
    (root / "JPEGImages").mkdir(parents=True)
    (root / "Annotations").mkdir()
    Image.new("RGB", (100, 80)).save(root / "JPEGImages" / "2008_000001.jpg", "JPEG")
    objects = (
        AnnotatedObject("bird", Box(1, 1, 50, 40)),
        AnnotatedObject("car", Box(60, 1, 99, 79)),
    )
    write_voc_xml(
        root / "Annotations" / "2008_000001.xml",
        Annotation("2008_000001.jpg", 100 * scale, 80 * scale, objects),
    )
    return root


@pytest.mark.parametrize("policy", ["use_image", "skip", "error"])
def test_voc_policies(tmp_path, policy):
    root = _voc(tmp_path / "VOC2012", scale=3)
    if policy == "error":
        with pytest.raises(ScaleprobeError, match=r"300x240 differs .*\(100x80\)"):
            load_voc_records(root, ["bird", "car"], on_size_mismatch=policy)
        return
    if policy == "skip":
        with pytest.raises(ScaleprobeError, match="no usable image"):
            load_voc_records(root, ["bird"], on_size_mismatch=policy)
        return
    records, counts = load_voc_records(root, ["bird", "car"], on_size_mismatch=policy)
    bird, car = records
    assert (bird.width, bird.height) == (100, 80)
    assert _ratio(bird) == pytest.approx(math.sqrt(49 * 39 / 8000))
    assert _ratio(car) == pytest.approx(math.sqrt(39 * 78 / 8000))
    assert counts["bird"].size_mismatch == counts["car"].size_mismatch == 1


def test_unknown_policy_is_one_line(tmp_path):
    with pytest.raises(ScaleprobeError, match=r"on_size_mismatch='scale' is not allowed; choose"):
        load_imagenet_records(tmp_path, [BIRD], annotations_dir=tmp_path, on_size_mismatch="scale")


def test_config_key_is_validated(compose_config):
    cfg = compose_config(["data.on_size_mismatch=trust_xml"])
    assert compose_config([]).data.on_size_mismatch == "use_image"
    with pytest.raises(ScaleprobeError, match=r"data.on_size_mismatch='trust_xml' is not allowed"):
        validate_config(cfg)


def test_counts_list_a_fault_counter_only_when_it_is_non_zero(tmp_path):
    images, xmls = _tree(tmp_path, scale=2, only={f"{BIRD}_1"})
    _, counts = load_imagenet_records(images, [BIRD], annotations_dir=xmls)
    assert counts[BIRD].as_dict() == {
        "kept": 3,
        "no_box": 0,
        "multi_object": 0,
        "filtered": 0,
        "bad": 0,
        "size_mismatch": 1,
    }
