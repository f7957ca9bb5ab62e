"""Tests for src.data.coco and target.area=mask: issue 14 items 4 and 7 (COCO)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from coco_tree import HEIGHT, TRIANGLE, WIDTH, raster, write_coco_tree
from omegaconf import open_dict
from pycocotools import mask as coco_mask
from tiny_run import TINY, assert_one_line_and_nothing_cached

from src.config import validate_config
from src.data.coco import load_coco_records, mask_area
from src.data.records import ImageRecord
from src.data.sources import load_records_with_counts
from src.errors import ScaleprobeError
from src.targets.scale import ScaleTarget

#: TINY without the synthetic set's own key (data.n_per_class).
COCO_TINY = [o for o in TINY if not o.startswith("data.")]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return write_coco_tree(tmp_path_factory.mktemp("coco"))


def _by_id(records: list[ImageRecord]) -> dict[str, ImageRecord]:
    return {r.image_id: r for r in records}


def _counts(counts) -> dict[str, int]:
    return counts.as_dict()


def test_single_keeps_one_object_images_and_counts_the_rest(tree) -> None:
    records, counts = load_coco_records(tree["images"], tree["annotations"], ["bird", "kite"])
    assert [(r.class_id, r.image_id) for r in records] == [
        ("bird", "a"),
        ("bird", "b"),
        ("bird", "c"),
        ("bird", "d"),
        ("bird", "f"),
        ("kite", "h"),
        ("kite", "j"),
    ]
    # e: two birds (multi_object); g: a crowd only (filtered); i: no image file (bad);
    # f and g: one crowd object each, skipped
    assert _counts(counts["bird"]) == {
        "kept": 5,
        "no_box": 0,
        "multi_object": 1,
        "filtered": 1,
        "bad": 1,
        "crowd": 2,
    }
    assert counts["bird"].total == 8  # the eight images with a bird; crowd counts objects
    assert _counts(counts["kite"]) == {
        "kept": 2,
        "no_box": 0,
        "multi_object": 0,
        "filtered": 0,
        "bad": 0,
    }
    a = _by_id(records)["a"]
    assert (a.width, a.height) == (WIDTH, HEIGHT)
    assert (a.box.xmin, a.box.ymin, a.box.xmax, a.box.ymax) == (10, 10, 50, 40)
    assert a.path == str((tree["images"] / "a.jpg").absolute())


def test_mask_areas_equal_an_independent_rasterization(tree) -> None:
    """Polygons (PIL, pixel centres), RLE both ways (numpy masks): within 1 pixel."""
    records, _ = load_coco_records(tree["images"], tree["annotations"], ["bird", "kite"])
    by_id = _by_id(records)
    expected = tree["expected"]
    for stem in ("a", "c", "d", "f", "h", "j"):
        assert abs(by_id[stem].mask_area - expected[stem]) <= 1, stem
    assert by_id["a"].mask_area == 40 * 30  # a rectangle's pixels: its area
    assert by_id["j"].mask_area == 10 * 20 + 20 * 10  # one object of two polygon parts


def test_a_slanted_polygon_differs_from_pil_only_on_its_outline(tree) -> None:
    """Rasterizers differ on pixels an edge crosses: every differing pixel is within 1 px."""
    records, _ = load_coco_records(tree["images"], tree["annotations"], ["bird"])
    decoded = coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects([TRIANGLE], HEIGHT, WIDTH)))
    assert _by_id(records)["b"].mask_area == decoded.sum()
    differ = np.argwhere(decoded != raster([TRIANGLE]))
    vertices = np.array(TRIANGLE).reshape(-1, 2)
    centres = differ[:, ::-1] + 0.5  # (x, y) of each differing pixel's centre
    distance = np.full(len(centres), np.inf)
    for p, q in zip(vertices, np.roll(vertices, -1, axis=0), strict=True):
        t = np.clip(((centres - p) @ (q - p)) / ((q - p) @ (q - p)), 0, 1)
        distance = np.minimum(
            distance, np.linalg.norm(centres - (p + t[:, None] * (q - p)), axis=1)
        )
    assert len(differ) < 0.05 * decoded.sum()
    assert distance.max() <= 1.0
    area = abs(np.cross(vertices[1] - vertices[0], vertices[2] - vertices[0])) / 2
    assert abs(decoded.sum() - area) <= 0.01 * area


@pytest.mark.parametrize(
    ("policy", "kept", "area"), [("largest", 6, "e_largest"), ("union", 6, "e_union")]
)
def test_largest_and_union_measure_the_chosen_masks(tree, policy, kept, area) -> None:
    records, counts = load_coco_records(
        tree["images"], tree["annotations"], ["bird"], policy=policy
    )
    assert counts["bird"].kept == kept
    assert counts["bird"].multi_object == 0
    e = _by_id(records)["e"]
    assert e.mask_area == tree["expected"][area]
    box = (e.box.xmin, e.box.ymin, e.box.xmax, e.box.ymax)
    assert box == ((20, 20, 60, 50) if policy == "largest" else (5, 5, 60, 50))


def test_union_counts_overlapping_pixels_once(tree) -> None:
    assert tree["expected"]["e_union"] == 900 + 1200 - 225


def test_the_mask_target_is_the_root_of_the_mask_fraction(tree) -> None:
    records, _ = load_coco_records(tree["images"], tree["annotations"], ["bird"])
    expected = tree["expected"]
    got = ScaleTarget(area="mask").values(records)
    # b, the triangle, differs from PIL on its outline (test above): its own area
    areas = [r.mask_area if r.image_id == "b" else expected[r.image_id] for r in records]
    want = [math.sqrt(area / (WIDTH * HEIGHT)) for area in areas]
    assert got == pytest.approx(want, abs=1 / (WIDTH * HEIGHT))
    boxes = ScaleTarget().values(records)
    assert boxes[0] == pytest.approx(math.sqrt(1200 / 4800))  # a: box and mask agree
    assert got[2] < boxes[2]  # c: a disk covers less than its box


def test_classes_by_category_id_give_the_same_images(tree) -> None:
    by_name, _ = load_coco_records(tree["images"], tree["annotations"], ["bird"])
    by_id, counts = load_coco_records(tree["images"], tree["annotations"], ["1"])
    assert [r.image_id for r in by_id] == [r.image_id for r in by_name]
    assert {r.class_id for r in by_id} == {"1"}
    assert counts["1"].kept == 5


def test_the_data_config_dispatches_to_the_reader(tree) -> None:
    data = {
        "name": "coco",
        "root": str(tree["images"]),
        "annotations": str(tree["annotations"]),
        "policy": "single",
        "on_size_mismatch": "use_image",
    }
    records, counts = load_records_with_counts(data, ["kite", "bird"])
    assert list(records) == ["kite", "bird"]
    assert [r.image_id for r in records["kite"]] == ["h", "j"]
    assert counts["bird"].crowd == 2


def test_mask_area_reads_every_segmentation_kind() -> None:
    square = np.zeros((HEIGHT, WIDTH), np.uint8)
    square[10:20, 30:45] = 1
    compressed = coco_mask.encode(np.asfortranarray(square))
    assert mask_area([[30, 10, 45, 10, 45, 20, 30, 20]], HEIGHT, WIDTH) == 150
    assert (
        mask_area({"counts": compressed["counts"].decode(), "size": [HEIGHT, WIDTH]}, HEIGHT, WIDTH)
        == 150
    )
    assert mask_area(compressed, HEIGHT, WIDTH) == 150  # bytes counts, as pycocotools gives


# ---------------------------------------------------------------- bad input: one line


def _write(path: Path, content) -> Path:
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"images": [], "categories": []}, r"not a COCO instances file: missing key 'annotations'"),
        ("[1, 2]", r"its top level is a list"),
        ("{not json", r"not a COCO instances file: not JSON"),
        (
            {
                "images": [{"id": 1, "file_name": "a.jpg", "width": 8}],
                "annotations": [],
                "categories": [],
            },
            r"images\[0\] has no key 'height'",
        ),
        (
            {
                "images": [],
                "annotations": [{"image_id": 1, "category_id": 1}],
                "categories": [{"id": 1, "name": "bird"}],
            },
            r"annotations\[0\] has no key 'bbox'",
        ),
    ],
)
def test_a_file_that_is_not_coco_names_the_missing_key(tmp_path, tree, content, message) -> None:
    path = _write(tmp_path / "instances.json", content)
    with pytest.raises(ScaleprobeError, match=message) as info:
        load_coco_records(tree["images"], path, ["bird"])
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_a_category_that_does_not_exist_lists_close_matches(tree) -> None:
    with pytest.raises(ScaleprobeError, match=r"'brid' is not in .*close matches: \['bird'\]"):
        load_coco_records(tree["images"], tree["annotations"], ["brid"])
    with pytest.raises(ScaleprobeError, match=r"COCO category '7' is not in"):
        load_coco_records(tree["images"], tree["annotations"], ["7"])


def test_a_missing_images_dir_is_one_line(tree, tmp_path) -> None:
    with pytest.raises(ScaleprobeError, match=r"COCO images directory .* does not exist"):
        load_coco_records(tmp_path / "nope", tree["annotations"], ["bird"])


@pytest.mark.parametrize(
    "segmentation",
    [{"counts": [3, 4], "size": [10, 10]}, [], [[1, 2, 3, 4]], [["x", 1, 2, 3, 4, 5]]],
)
def test_an_unreadable_segmentation_is_a_warning_and_stops_only_the_mask_target(
    tree, tmp_path, caplog, segmentation
) -> None:
    content = json.loads(tree["annotations"].read_text())
    content["annotations"][0]["segmentation"] = segmentation  # a.jpg's bird, id 100
    path = _write(tmp_path / "seg.json", content)
    records, counts = load_coco_records(tree["images"], path, ["bird"])
    assert counts["bird"].kept == 5
    assert _by_id(records)["a"].mask_area is None
    assert "1 segmentations cannot be read" in caplog.text
    assert "first: annotation id 100 (image a.jpg)" in caplog.text
    assert len(ScaleTarget().values(records)) == 5  # the box target still runs
    with pytest.raises(ScaleprobeError, match=r"image .*a.jpg has none"):
        ScaleTarget(area="mask").rows(records)


def test_a_malformed_bbox_names_the_annotation(tree, tmp_path) -> None:
    content = json.loads(tree["annotations"].read_text())
    content["annotations"][0]["bbox"] = [1, 2, 3]
    path = _write(tmp_path / "bbox.json", content)
    with pytest.raises(ScaleprobeError, match=r"annotation id 100 has bbox \[1, 2, 3\]"):
        load_coco_records(tree["images"], path, ["bird"])


def test_the_mask_target_refuses_records_without_a_mask() -> None:
    from src.data.boxes import Box

    record = ImageRecord("x", "/d/x.jpg", "bird", 10, 10, Box(0, 0, 5, 5))
    with pytest.raises(
        ScaleprobeError,
        match=r"target.area=mask needs the object's mask and "
        r"image /d/x.jpg has none",
    ):
        ScaleTarget(area="mask").rows([record])
    with pytest.raises(ScaleprobeError, match=r"target.area='poly' is not allowed"):
        ScaleTarget(area="poly")


def _coco_overrides(tree, *more: str) -> list[str]:
    return [
        *COCO_TINY,
        "data=coco",
        f"data.root={tree['images']}",
        f"data.annotations={tree['annotations']}",
        "pair=custom",
        "pair.train_class=bird",
        "pair.test_class=kite",
        *more,
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["data=voc", "data.root=ROOT", "target.area=mask"],
            r"target.area=mask needs object "
            r"masks and data=voc has none",
        ),
        (["target.area=mask"], r"target.area=mask needs object masks and data=synthetic has none"),
        (["data=imagenet", "data.root=ROOT", "target.area=mask"], r"data=imagenet has none"),
        (["target.area=poly"], r"target.area='poly' is not allowed; choose from \['box', 'mask'\]"),
    ],
)
def test_mask_on_data_without_masks_is_refused_up_front(
    compose_config, tmp_path, overrides, message
) -> None:
    cfg = compose_config([*COCO_TINY, *(o.replace("ROOT", str(tmp_path)) for o in overrides)])
    with pytest.raises(ScaleprobeError, match=message) as info:
        validate_config(cfg)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["pair.test_class=kit"], r"COCO category 'kit' is not in .*close matches: \['kite'\]"),
        (["data.annotations=MISSING"], r"data.annotations='.*missing.json' is not a file"),
        (
            ["data.root=MISSING"],
            r"data.root='.*missing.json' is not a directory; point it at "
            r"the COCO images folder",
        ),
        (["data.annotations=NOTCOCO"], r"not a COCO instances file: missing key 'categories'"),
        (
            ["pair.test_class=true"],
            r"pair.test_class=True is not allowed; expected a COCO "
            r"category name or id",
        ),
    ],
)
def test_bad_coco_input_is_one_line_and_nothing_is_cached_or_logged(
    compose_config, shared_dirs, tmp_path, tree, overrides, message
) -> None:
    not_coco = _write(tmp_path / "not_coco.json", {"images": [], "annotations": []})
    swap = {"MISSING": str(tmp_path / "missing.json"), "NOTCOCO": str(not_coco)}
    more = [o.split("=")[0] + "=" + swap.get(o.split("=")[1], o.split("=")[1]) for o in overrides]
    cfg = compose_config(_coco_overrides(tree, *more))
    assert_one_line_and_nothing_cached(cfg, shared_dirs, tmp_path, message)
    assert not (tmp_path / "mlruns" / "mlflow.db").exists() or not _logged_runs(tmp_path)


def _logged_runs(tmp_path: Path) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    return [
        run
        for experiment in client.search_experiments()
        for run in client.search_runs([experiment.experiment_id])
    ]


def test_a_category_id_on_the_command_line_is_accepted(compose_config, tree) -> None:
    cfg = compose_config(_coco_overrides(tree, "pair.train_class=1", "target.area=mask"))
    validate_config(cfg)
    with open_dict(cfg):
        assert cfg.pair.train_class == 1  # an int, as Hydra parses it


def test_a_stated_size_that_differs_from_the_image_follows_on_size_mismatch(tree, tmp_path) -> None:
    content = json.loads(tree["annotations"].read_text())
    content["images"][0]["width"] = WIDTH + 20  # a.jpg is WIDTH wide
    path = _write(tmp_path / "size.json", content)
    records, counts = load_coco_records(tree["images"], path, ["bird"])
    assert counts["bird"].size_mismatch == 1
    assert _by_id(records)["a"].width == WIDTH  # the image's own size
    _, counts = load_coco_records(tree["images"], path, ["bird"], on_size_mismatch="skip")
    assert (counts["bird"].kept, counts["bird"].size_mismatch_skipped) == (4, 1)
    with pytest.raises(ScaleprobeError, match=r"size.json: annotation size 100x60 differs"):
        load_coco_records(tree["images"], path, ["bird"], on_size_mismatch="error")
