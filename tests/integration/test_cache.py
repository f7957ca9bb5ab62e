"""Feature cache: miss, hit, and a failed write that leaves nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from src.data.sources import load_class_records
from src.features.backbones import WeightsSource, build_backbone
from src.features.cache import FeatureCache
from src.features.extract import ExtractionSettings, Preprocessing, ensure_features

ALBATROSS = "n02058221"
SOURCE = WeightsSource("random", "random-init-seed-0")
SETTINGS = ExtractionSettings(batch_size=4, progress=False)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "synthetic"
    data = {
        "name": "synthetic",
        "root": str(root),
        "images_dir": str(root / "train"),
        "annotations_dir": str(root / "Annotation"),
        "n_per_class": 6,
        "generator_seed": 0,
        "policy": "single",
    }
    return load_class_records(data, [ALBATROSS])[ALBATROSS]


def _ensure(cache, records, nodes=("Mixed_7a",), build=None):
    calls = []

    def build_model():
        calls.append(1)
        return (build or build_backbone)("inception_v3", SOURCE)

    entries = ensure_features(
        cache,
        backbone="inception_v3",
        weights=SOURCE.label,
        weights_sha256=SOURCE.sha256,
        build_model=build_model,
        nodes=list(nodes),
        records=records,
        preprocessing=Preprocessing(size=299),
        settings=SETTINGS,
    )
    return entries, len(calls)


def test_miss_then_hit_extracts_once(tmp_path, records):
    cache = FeatureCache(tmp_path / "cache")
    first, built = _ensure(cache, records)
    assert built == 1
    entry = first["Mixed_7a"]
    assert entry.features.shape == (len(records), 1280)
    assert entry.features.dtype == np.float32
    assert entry.image_ids == [r.image_id for r in records]
    meta = json.loads((entry.path / "meta.json").read_text())
    assert meta["node"] == "Mixed_7a"
    assert meta["weights"] == "random"
    assert meta["feature_dim"] == 1280
    second, built_again = _ensure(cache, records)
    assert built_again == 0
    np.testing.assert_array_equal(second["Mixed_7a"].features, entry.features)


def test_several_layers_in_one_pass(tmp_path, records):
    cache = FeatureCache(tmp_path / "cache")
    entries, built = _ensure(cache, records, nodes=("Mixed_6e", "Mixed_7a"))
    assert built == 1
    assert entries["Mixed_6e"].features.shape[1] == 768
    assert entries["Mixed_7a"].features.shape[1] == 1280
    assert entries["Mixed_6e"].key != entries["Mixed_7a"].key


def test_key_changes_when_an_image_changes(tmp_path, records):
    cache = FeatureCache(tmp_path / "cache")
    before = _ensure(cache, records)[0]["Mixed_7a"].key
    copy = tmp_path / "copy.JPEG"
    copy.write_bytes(Path(records[0].path).read_bytes() + b"\0")
    changed = [records[0].__class__(**{**records[0].__dict__, "path": str(copy)}), *records[1:]]
    after, built = _ensure(cache, changed)
    assert built == 1
    assert after["Mixed_7a"].key != before


def test_failed_write_leaves_no_entry(tmp_path, records):
    cache = FeatureCache(tmp_path / "cache")

    def exploding_model(name, source):
        model = build_backbone(name, source)
        model.Mixed_7a.register_forward_hook(lambda *_: (_ for _ in ()).throw(RuntimeError("boom")))
        return model

    with pytest.raises(RuntimeError, match="boom"):
        _ensure(cache, records, build=exploding_model)
    leftovers = [p.name for p in (tmp_path / "cache").iterdir() if p.name != ".locks"]
    assert leftovers == []
    _, built = _ensure(cache, records)
    assert built == 1


def test_damaged_entry_is_rebuilt_and_kept_aside(tmp_path, records):
    cache = FeatureCache(tmp_path / "cache")
    entry = _ensure(cache, records)[0]["Mixed_7a"]
    features = np.load(entry.path / "features.npy")
    features[0, 0] += 1.0
    np.save(entry.path / "features.npy", features)
    rebuilt, built = _ensure(cache, records)
    assert built == 1
    assert rebuilt["Mixed_7a"].features[0, 0] != features[0, 0]
    assert any(".corrupt-" in p.name for p in (tmp_path / "cache").iterdir())
