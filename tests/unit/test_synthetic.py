"""Tests for src.data.synthetic: layout, determinism, ratio spread, reuse."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src.data import synthetic
from src.data.annotations import parse_voc_xml
from src.data.imagenet import load_imagenet_records
from src.data.images import load_rgb_image
from src.data.synthetic import SYNTHETIC_CLASSES, generate_synthetic_dataset
from src.errors import ScaleprobeError
from src.targets.aspect import AspectTarget
from src.targets.position import PositionTarget
from src.targets.scale import ScaleTarget

N = 30
WNIDS = list(SYNTHETIC_CLASSES)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synthetic_dataset(tmp_path_factory.mktemp("synth") / "data", n_per_class=N)


def _all_files(root: Path) -> dict[str, bytes]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def test_layout(dataset: Path) -> None:
    assert sorted(p.name for p in (dataset / "train").iterdir()) == sorted(WNIDS)
    for wnid in WNIDS:
        images = sorted((dataset / "train" / wnid).iterdir())
        xmls = sorted((dataset / "Annotation" / wnid).iterdir())
        assert [p.name for p in images] == sorted(f"{wnid}_{i}.JPEG" for i in range(N))
        assert [p.stem for p in xmls] == [p.stem for p in images]
    manifest = json.loads((dataset / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["n_per_class"] == N
    assert manifest["seed"] == 0
    assert manifest["classes"] == sorted(WNIDS)
    assert manifest["version"] == synthetic.SYNTHETIC_VERSION
    # Nothing is left beside root by the temp-dir-and-rename dance.
    assert [p.name for p in dataset.parent.iterdir()] == ["data"]


def test_annotations_match_images(dataset: Path) -> None:
    sizes = set()
    for wnid in WNIDS:
        for xml in sorted((dataset / "Annotation" / wnid).iterdir())[:10]:
            ann = parse_voc_xml(xml)
            image_path = dataset / "train" / wnid / f"{xml.stem}.JPEG"
            with Image.open(image_path) as image:
                assert image.format == "JPEG"
                assert image.size == (ann.width, ann.height)
            assert [obj.name for obj in ann.objects] == [wnid]
            box = ann.objects[0].box
            assert 0 <= box.xmin < box.xmax <= ann.width
            assert 0 <= box.ymin < box.ymax <= ann.height
            sizes.add((ann.width, ann.height))
    assert len(sizes) > 10  # sizes and aspect ratios vary
    assert len({round(w / h, 2) for w, h in sizes}) > 10


def test_records_and_ratio_spread(dataset: Path) -> None:
    records, counts = load_imagenet_records(
        dataset / "train", WNIDS, annotations_dir=dataset / "Annotation"
    )
    assert len(records) == 3 * N
    assert all(c.kept == N for c in counts.values())
    for wnid in WNIDS:
        ratios = ScaleTarget().values([r for r in records if r.class_id == wnid])
        assert ratios.min() < 0.25
        assert ratios.max() > 0.8
        # Roughly uniform: every third of the 0.1..0.95 range is populated.
        counts_per_bin, _ = np.histogram(ratios, bins=3, range=(0.1, 0.95))
        assert counts_per_bin.min() >= N // 6


def test_object_is_drawn_inside_its_box(dataset: Path) -> None:
    # The object differs from the background: pixels inside the box are further from
    # the image's border colour than pixels outside, for a large-enough object.
    records, _ = load_imagenet_records(
        dataset / "train", WNIDS, annotations_dir=dataset / "Annotation"
    )
    checked = 0
    for record in records:
        if not 0.3 < ScaleTarget().value(record) < 0.7:
            continue
        pixels = np.asarray(load_rgb_image(record.path), dtype=np.float64)
        mask = np.zeros(pixels.shape[:2], dtype=bool)
        b = record.box
        mask[int(b.ymin) : int(b.ymax), int(b.xmin) : int(b.xmax)] = True
        background = np.median(pixels[~mask], axis=0)
        inside = np.abs(pixels[mask] - background).sum(axis=1).mean()
        outside = np.abs(pixels[~mask] - background).sum(axis=1).mean()
        assert inside > outside + 10, record.image_id
        checked += 1
    assert checked >= 10


def test_classes_look_different(dataset: Path) -> None:
    means = {}
    for wnid in WNIDS:
        paths = sorted((dataset / "train" / wnid).iterdir())[:10]
        means[wnid] = np.mean([np.asarray(load_rgb_image(p)).mean(axis=(0, 1)) for p in paths], 0)
    albatross, kite, car = (means[w] for w in WNIDS)
    assert albatross[2] > albatross[0] + 40  # blue sea and sky
    assert abs(car[0] - car[2]) < 40  # grey road dominates
    assert kite.mean() > car.mean() + 40  # pale sky against dark road


def test_deterministic_byte_identical(tmp_path: Path) -> None:
    first = generate_synthetic_dataset(tmp_path / "a", n_per_class=4, seed=3)
    second = generate_synthetic_dataset(tmp_path / "b b", n_per_class=4, seed=3)
    files_a, files_b = _all_files(first), _all_files(second)
    assert len(files_a) == 3 * 4 * 2 + 2  # images, XML, manifest.json, factors.csv
    assert files_a == files_b
    other_seed = _all_files(generate_synthetic_dataset(tmp_path / "c", n_per_class=4, seed=4))
    assert other_seed.keys() == files_a.keys()
    assert other_seed != files_a


def test_class_images_independent_of_other_classes(tmp_path: Path) -> None:
    kite = WNIDS[1]
    alone = generate_synthetic_dataset(tmp_path / "alone", n_per_class=3, classes=[kite])
    full = generate_synthetic_dataset(tmp_path / "full", n_per_class=3)
    assert sorted(p.name for p in (alone / "train").iterdir()) == [kite]
    for name in (f"train/{kite}/{kite}_2.JPEG", f"Annotation/{kite}/{kite}_2.xml"):
        assert (alone / name).read_bytes() == (full / name).read_bytes()


def test_second_call_reuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = generate_synthetic_dataset(tmp_path / "d", n_per_class=2)
    before = _all_files(root)

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("regenerated although the manifest matched")

    monkeypatch.setattr(synthetic, "_draw_class", fail)
    assert generate_synthetic_dataset(str(tmp_path / "d"), n_per_class=2) == tmp_path / "d"
    # Class order does not matter for reuse: the same images are produced.
    generate_synthetic_dataset(tmp_path / "d", n_per_class=2, classes=WNIDS[::-1])
    assert _all_files(root) == before


def test_empty_directory_is_filled(tmp_path: Path) -> None:
    (tmp_path / "e").mkdir()
    root = generate_synthetic_dataset(tmp_path / "e", n_per_class=1)
    assert (root / "manifest.json").is_file()


@pytest.mark.parametrize(
    "kwargs",
    [{"n_per_class": 3}, {"n_per_class": 2, "seed": 1}, {"n_per_class": 2, "classes": WNIDS[:1]}],
)
def test_mismatched_args_raise(tmp_path: Path, kwargs: dict) -> None:
    root = generate_synthetic_dataset(tmp_path / "f", n_per_class=2)
    with pytest.raises(ScaleprobeError, match=r"delete it or choose another data\.root") as info:
        generate_synthetic_dataset(root, **kwargs)
    assert str(root) in str(info.value)


def test_foreign_directory_raises(tmp_path: Path) -> None:
    root = tmp_path / "g"
    root.mkdir()
    (root / "something.txt").write_text("mine")
    with pytest.raises(ScaleprobeError, match=r"without a synthetic manifest\.json") as info:
        generate_synthetic_dataset(root, n_per_class=1)
    assert str(root) in str(info.value)
    assert (root / "something.txt").read_text() == "mine"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ScaleprobeError, match="not a directory"):
        generate_synthetic_dataset(tmp_path / "file", n_per_class=1)


def test_failure_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(synthetic, "_draw_class", boom)
    with pytest.raises(OSError, match="disk full"):
        generate_synthetic_dataset(tmp_path / "h", n_per_class=1)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"n_per_class": 0}, "n_per_class=0"),
        ({"n_per_class": 2.5}, "n_per_class=2.5"),
        ({"seed": -1}, "seed=-1"),
        ({"classes": ["n99999999"]}, r"\['n99999999'\].*choose from"),
        ({"classes": []}, "classes=\\[\\]"),
        ({"classes": "n02058221"}, "non-empty list"),
        ({"classes": [WNIDS[0], WNIDS[0]]}, "repeats"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict, fragment: str) -> None:
    with pytest.raises(ScaleprobeError, match=fragment):
        generate_synthetic_dataset(tmp_path / "i", **kwargs)
    assert not (tmp_path / "i").exists()


def _factors(root: Path) -> dict[str, dict[str, str]]:
    with (root / "factors.csv").open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == synthetic.FACTOR_COLUMNS
        return {row["image_id"]: row for row in reader}


def _check_factors_match_the_annotations(root: Path, n: int) -> dict[str, dict[str, str]]:
    """factors.csv has one row per record, joined on its id, equal to the box targets."""
    records, _ = load_imagenet_records(root / "train", WNIDS, annotations_dir=root / "Annotation")
    factors = _factors(root)
    assert sorted(factors) == sorted(r.image_id for r in records)
    assert len(factors) == 3 * n
    targets = {
        "scale_ratio": ScaleTarget(),
        "center_x": PositionTarget(axis="x"),
        "center_y": PositionTarget(axis="y"),
        "aspect": AspectTarget(),
    }
    for record in records:
        row = factors[record.image_id]
        assert row["class"] == record.class_id
        for column, target in targets.items():
            assert float(row[column]) == pytest.approx(target.value(record), abs=1e-12), column
    return factors


def test_factors_csv_holds_every_drawn_factor_per_image(dataset: Path) -> None:
    factors = _check_factors_match_the_annotations(dataset, N)
    assert {float(r["rotation_deg"]) for r in factors.values()} == {0.0}
    backgrounds = {r["class"]: r["background_id"] for r in factors.values()}
    assert backgrounds == {WNIDS[0]: "0", WNIDS[1]: "1", WNIDS[2]: "2"}
    brightness = np.array([float(r["brightness"]) for r in factors.values()])
    assert np.all((brightness > 0) & (brightness < 255))
    assert len(set(brightness)) > N


def test_default_images_are_those_drawn_before_factors_and_rotation(tmp_path: Path) -> None:
    # sha256 of image 4 of each class (n_per_class=5, seed 0) drawn by the generator of
    # commit 4f09b75, before factors.csv and data.rotation: the default data, its cache
    # key and every number measured on it stay as they were.
    root = generate_synthetic_dataset(tmp_path / "d", n_per_class=5)
    before = {
        "n01608432": "63d89effa01c008c240bec1d02aa235c06a494d75acff02a9557f77a259936c4",
        "n02058221": "b754fa6c36ef761e02910296e13fd454fb021f1ae31b6b9d64e3c25c45be8ce0",
        "n04037443": "40d8a96e0981f832ba2ddcd4bf0e8185063e1a311295eac7928579ce174a3ba6",
    }
    for wnid, digest in before.items():
        data = (root / "train" / wnid / f"{wnid}_4.JPEG").read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, wnid
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    assert "rotation" not in manifest  # a default dataset made before the option is reused


def test_a_dataset_without_factors_gets_them_on_reuse(tmp_path: Path) -> None:
    root = generate_synthetic_dataset(tmp_path / "d", n_per_class=3)
    written = (root / "factors.csv").read_bytes()
    images = {k: v for k, v in _all_files(root).items() if k != "factors.csv"}
    (root / "factors.csv").unlink()  # as a dataset generated before factors.csv existed
    generate_synthetic_dataset(root, n_per_class=3)
    assert (root / "factors.csv").read_bytes() == written
    assert {k: v for k, v in _all_files(root).items() if k != "factors.csv"} == images


def test_rotation_draws_rotated_objects_with_their_angle(tmp_path: Path) -> None:
    n = 12
    root = generate_synthetic_dataset(tmp_path / "rot", n_per_class=n, rotation=True)
    factors = _check_factors_match_the_annotations(root, n)
    angles = np.array([float(r["rotation_deg"]) for r in factors.values()])
    low, high = synthetic.ROTATION_RANGE
    assert np.all((angles >= low) & (angles <= high))
    assert angles.min() < low + (high - low) / 4  # the range is used
    assert angles.max() > high - (high - low) / 4
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["rotation"] is True
    again = generate_synthetic_dataset(tmp_path / "rot2", n_per_class=n, rotation=True)
    assert _all_files(again) == _all_files(root)
    upright = generate_synthetic_dataset(tmp_path / "up", n_per_class=n)
    name = f"train/{WNIDS[0]}/{WNIDS[0]}_0.JPEG"
    assert (root / name).read_bytes() != (upright / name).read_bytes()


def _body_axis_deg(root: Path, wnid: str, stem: str) -> float:
    """The albatross body's long axis, degrees counter-clockwise from the image's x axis.

    The body (two near-white ellipses on the bird's axis) is the only near-white part
    of a blue sea-and-sky image; its principal axis is vertical (90) when upright.
    """
    pixels = np.asarray(load_rgb_image(root / "train" / wnid / f"{stem}.JPEG")).astype(float)
    rows, cols = np.nonzero(pixels.min(axis=2) > 228)
    points = np.stack([cols - cols.mean(), -(rows - rows.mean())])  # y up: counter-clockwise
    _, vectors = np.linalg.eigh(np.cov(points))
    x, y = vectors[:, -1]
    return float(np.degrees(np.arctan2(y, x)) % 180)


def test_a_rotated_object_is_rotated_by_its_angle(tmp_path: Path) -> None:
    root = generate_synthetic_dataset(
        tmp_path / "rot", n_per_class=20, classes=WNIDS[:1], rotation=True
    )
    upright = generate_synthetic_dataset(tmp_path / "up", n_per_class=20, classes=WNIDS[:1])
    checked = 0
    for stem, row in _factors(root).items():
        if float(row["scale_ratio"]) < 0.35:  # too few body pixels for a clear axis
            continue
        angle = float(row["rotation_deg"])
        turned = (_body_axis_deg(root, WNIDS[0], stem) - (90 + angle) + 90) % 180 - 90
        assert abs(turned) < 8, (stem, angle)
        assert abs(_body_axis_deg(upright, WNIDS[0], stem) - 90) < 8, stem
        checked += 1
    assert checked >= 5


def test_rotation_on_the_default_root_names_the_fix(tmp_path: Path) -> None:
    root = generate_synthetic_dataset(tmp_path / "d", n_per_class=2)
    with pytest.raises(ScaleprobeError, match=r"'rotation': True.*choose another data\.root"):
        generate_synthetic_dataset(root, n_per_class=2, rotation=True)
    with pytest.raises(ScaleprobeError, match=r"data\.rotation='yes' is not allowed"):
        generate_synthetic_dataset(tmp_path / "x", n_per_class=2, rotation="yes")  # type: ignore[arg-type]
