"""The feature cache key holds every input of the numbers (#19.1): change one, the key changes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src.data.boxes import Box
from src.data.records import ImageRecord
from src.features import extract
from src.features.backbones import RANDOM_WEIGHTS, WeightsSource, model_fields
from src.features.cache import entry_key
from src.features.extract import (
    ExtractionSettings,
    Preprocessing,
    entry_fields,
    feature_fields,
    key_params,
    resolve_settings,
)
from src.features.reduce import Reduction

RANDOM = WeightsSource(RANDOM_WEIGHTS, "random-init-seed-0")
CPU = resolve_settings(ExtractionSettings(accelerator="cpu", num_workers=0))

MODEL = {
    "builder": "inception_v3",
    "builder_kwargs": {"init_weights": False, "transform_input": True},
    "reduce": "spatial_mean",
}


@pytest.fixture
def records(tmp_path: Path) -> list[ImageRecord]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(2):
        path = tmp_path / f"img_{i}.JPEG"
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(path)
        out.append(ImageRecord(f"img_{i}", str(path), "n0", 50, 40, Box(5.0, 5.0, 30.0, 30.0)))
    return out


def _key(records, **changes) -> str:
    args = {
        "backbone": "inception_v3",
        "weights": "file:w.pth",
        "weights_sha256": "ab" * 32,
        "nodes": ["Mixed_7a"],
        "records": records,
        "preprocessing": Preprocessing(size=299),
        "settings": CPU,
        "model_fields": MODEL,
    }
    args.update(changes)
    node = args["nodes"][0]
    return entry_key(entry_fields(**args)[node])


@pytest.mark.parametrize(
    "changes",
    [
        {"backbone": "inception_v3_variant"},
        {"weights": "IMAGENET1K_V1"},
        {"weights_sha256": "cd" * 32},
        {"nodes": ["Mixed_6e"]},
        {"preprocessing": Preprocessing(size=300)},
        {"preprocessing": Preprocessing(size=299, mean=(0.5, 0.5, 0.5))},
        {"preprocessing": Preprocessing(size=299, std=(0.5, 0.5, 0.5))},
        {"preprocessing": Preprocessing(size=299, resize="whole-image-nearest")},
        {"preprocessing": Preprocessing(size=299, decode="other")},
        {"settings": replace(CPU, precision="bf16-mixed", accelerator="gpu")},
        {"settings": replace(CPU, accelerator="gpu")},
        {"settings": replace(CPU, accelerator="gpu", gpu_decode=True)},
        {"model_fields": {**MODEL, "builder": "resnet50"}},
        {"model_fields": {**MODEL, "builder_kwargs": {"init_weights": False}}},
        {"model_fields": {**MODEL, "builder_kwargs": {**MODEL["builder_kwargs"], "x": 1}}},
        {
            "model_fields": {
                **MODEL,
                "builder_kwargs": {"init_weights": False, "transform_input": False},
            }
        },
        {"model_fields": {**MODEL, "reduce": "flatten"}},
    ],
    ids=lambda c: "-".join(c),
)
def test_each_input_of_the_numbers_changes_the_key(records, changes):
    assert _key(records) == _key(records)
    assert _key(records, **changes) != _key(records)


def test_cache_format_and_image_bytes_change_the_key(records, monkeypatch):
    base = _key(records)
    monkeypatch.setattr(extract, "CACHE_FORMAT", extract.CACHE_FORMAT + 1)
    assert _key(records) != base
    monkeypatch.undo()
    path = Path(records[0].path)
    path.write_bytes(path.read_bytes() + b"\0")
    assert _key(records) != base


def test_settings_that_only_round_differently_keep_the_key(records):
    base = _key(records)
    for changes in ({"batch_size": 3}, {"channels_last": False}, {"num_workers": 2}):
        assert _key(records, settings=replace(CPU, **changes)) == base


def test_transform_input_counts_only_for_loaded_inception_weights(tmp_path):
    checkpoint = WeightsSource("file:w.pth", "ab" * 32, tmp_path / "w.pth")
    on = model_fields("inception_v3", checkpoint, transform_input=True)
    off = model_fields("inception_v3", checkpoint, transform_input=False)
    assert on["builder_kwargs"]["transform_input"] is True
    assert (on["transform_input"], off["transform_input"]) == (True, False)
    assert on["reduce"] == "spatial_mean"
    random = model_fields("inception_v3", RANDOM, transform_input=True)
    assert random["transform_input"] is False  # the random control
    assert random["builder_kwargs"]["init_weights"] is False


def test_key_fields_flatten_to_params():
    fields = feature_fields(
        backbone="resnet50",
        weights=RANDOM.label,
        weights_sha256=RANDOM.sha256,
        preprocessing=Preprocessing(size=224),
        settings=CPU,
    )
    params = key_params(fields)
    assert params["features.precision"] == "32-true"
    assert params["features.accelerator"] == "cpu"
    assert params["features.preprocessing.decode"] == "pil"
    assert params["features.preprocessing.size"] == 224
    assert params["features.preprocessing.mean"] == "[0.485, 0.456, 0.406]"
    assert params["features.reduce"] == "spatial_mean"
    assert params["features.builder"] == "resnet50"
    assert params["features.weights_sha256"] == RANDOM.sha256
    assert params["features.format"] == extract.CACHE_FORMAT


def test_a_gpu_run_records_its_device_decoder(records):
    gpu = replace(CPU, accelerator="gpu", gpu_decode=True)
    fields = entry_fields(
        backbone="resnet50",
        weights=RANDOM.label,
        weights_sha256=RANDOM.sha256,
        nodes=["layer1"],
        records=records,
        preprocessing=Preprocessing(size=64),
        settings=gpu,
    )["layer1"]
    assert fields["preprocessing"]["decode"] == "nvjpeg-or-pil"
    assert fields["accelerator"] == "gpu"


@pytest.mark.parametrize(
    "reduction", [Reduction(layout="nhwc"), Reduction(layout="tokens"), Reduction(pooling="cls")]
)
def test_the_reduction_is_part_of_the_key(records, reduction):
    """#13.3: layout and pooling change the numbers, so they change the key."""
    assert _key(records, reduction=Reduction()) == _key(records)
    assert _key(records, reduction=reduction) != _key(records)
    fields = entry_fields(
        backbone="inception_v3",
        weights="random",
        weights_sha256="x",
        nodes=["Mixed_7a"],
        records=records,
        preprocessing=Preprocessing(size=299),
        settings=CPU,
        reduction=reduction,
    )["Mixed_7a"]
    assert (fields["layout"], fields["pooling"]) == (reduction.layout, reduction.pooling)
