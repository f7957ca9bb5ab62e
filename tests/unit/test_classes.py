"""class_features: a spec, layers, settings and a cache dir in, aligned features out (#12.4)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
from PIL import Image

from src.data.boxes import Box
from src.data.records import ImageRecord
from src.features.backbones import BackboneSpec
from src.features.classes import class_features
from src.features.extract import ExtractionSettings

REPO = Path(__file__).resolve().parents[2]


def test_the_prepare_stage_does_not_import_the_run_entry_point():
    tree = ast.parse((REPO / "src" / "prepare.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert "src.run" not in imported
    assert "src.features.classes" in imported


def test_class_features_takes_a_spec_layers_settings_and_a_cache_dir(tmp_path):
    rng = np.random.default_rng(0)
    records = []
    for i in range(4):
        path = tmp_path / f"img_{i}.JPEG"
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(path)
        records.append(ImageRecord(f"img_{i}", str(path), "n0", 50, 40, Box(5, 5, 30, 30)))
    Path(records[2].path).write_bytes(b"")  # unreadable: skipped and dropped from the records
    spec = BackboneSpec(name="small_resnet", builder="resnet18", input_size=64)
    by_class = {"n0": list(records)}
    result = class_features(
        by_class,
        backbone=spec,
        layers=["layer2", "layer1"],
        settings=ExtractionSettings(batch_size=2, progress=False, num_workers=0),
        cache_dir=tmp_path / "cache",
    )
    assert result.features["n0"].shape == (3, 128)  # layer2 of resnet18, the first layer
    assert [r.image_id for r in by_class["n0"]] == ["img_0", "img_1", "img_3"]
    assert result.weights.label == "random"
    assert result.fields["builder"] == "resnet18"
    assert result.fields["backbone"] == "small_resnet"
    assert result.fields["preprocessing"]["size"] == 64
    again = class_features(
        {"n0": list(records)},
        backbone=spec,
        layers=["layer2"],
        settings=ExtractionSettings(batch_size=2, progress=False, num_workers=0),
        cache_dir=tmp_path / "cache",
    )
    assert again.keys == result.keys
    np.testing.assert_array_equal(again.features["n0"], result.features["n0"])
