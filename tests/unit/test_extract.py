"""Extraction engine: settings and CPU fallback, keys, bad images, device decoding, integrity."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.data.boxes import Box
from src.data.records import ImageRecord
from src.errors import ScaleprobeError
from src.features.backbones import WeightsSource, build_backbone, resolve_weights
from src.features.cache import FeatureCache, entry_key
from src.features.extract import (
    ExtractionSettings,
    PooledFeatures,
    Preprocessing,
    RecordImages,
    default_num_workers,
    ensure_features,
    entry_fields,
    load_image_row,
    resolve_settings,
)

SOURCE = WeightsSource("random", "random-init-seed-0")
PRE = Preprocessing(size=64)
SETTINGS = ExtractionSettings(batch_size=3, progress=False, num_workers=0)


def make_records(root: Path, n: int, names: list[str] | None = None) -> list[ImageRecord]:
    """``n`` small JPEGs with distinct content (names may hold spaces and non-ASCII)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    records = []
    for i in range(n):
        name = names[i] if names else f"img_{i}"
        path = root / f"{name}.JPEG"
        pixels = rng.integers(0, 255, size=(40 + i, 50, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path, format="JPEG")
        records.append(
            ImageRecord(name, str(path), "n0", 50, 40 + i, Box(5.0, 5.0, 30.0, 30.0 + i))
        )
    return records


def ensure(cache, records, settings=SETTINGS, pre=PRE, nodes=("layer1",), calls=None):
    def build():
        if calls is not None:
            calls.append(1)
        return build_backbone("resnet50", SOURCE)

    return ensure_features(
        cache,
        backbone="resnet50",
        weights=SOURCE.label,
        weights_sha256=SOURCE.sha256,
        build_model=build,
        nodes=list(nodes),
        records=records,
        preprocessing=pre,
        settings=settings,
    )


def keys_for(records, *, weights_sha256=SOURCE.sha256, pre=PRE, settings=SETTINGS):
    fields = entry_fields(
        backbone="resnet50",
        weights=SOURCE.label,
        weights_sha256=weights_sha256,
        nodes=["layer1"],
        records=records,
        preprocessing=pre,
        settings=resolve_settings(settings),
    )
    return entry_key(fields["layer1"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"on_bad_image": "ignore"}, r"extract.on_bad_image='ignore' is not allowed; choose"),
        ({"accelerator": "tpu"}, r"extract.accelerator='tpu' is not allowed; choose"),
        ({"num_workers": -1}, r"extract.num_workers=-1 is not allowed; expected 'auto'"),
    ],
)
def test_bad_settings_name_key_and_choices(kwargs, message):
    with pytest.raises(ScaleprobeError, match=message):
        ExtractionSettings(**kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")
def test_gpu_request_falls_back_to_cpu_32bit(caplog):
    with caplog.at_level(logging.WARNING):
        resolved = resolve_settings(
            ExtractionSettings(accelerator="gpu", devices=4, precision="bf16-mixed")
        )
    assert resolved.accelerator == "cpu"
    assert resolved.devices == 1
    assert resolved.precision == "32-true"
    assert resolved.gpu_decode is False
    assert "no CUDA device" in caplog.text
    assert resolved.num_workers == default_num_workers()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")
def test_fallback_key_equals_a_plain_cpu_key(tmp_path):
    records = make_records(tmp_path / "img", 2)
    gpu = ExtractionSettings(accelerator="gpu", precision="bf16-mixed")
    assert keys_for(records, settings=gpu) == keys_for(records)


def test_default_workers_leave_a_core_to_the_forward():
    workers = default_num_workers()
    assert 0 <= workers <= 4
    assert workers == min(4, max(0, len(__import__("os").sched_getaffinity(0)) - 1))


def test_key_changes_with_weights_file_preprocessing_and_image_bytes(tmp_path):
    records = make_records(tmp_path / "img", 3)
    base = keys_for(records)
    assert keys_for(records) == base  # stable
    weights = tmp_path / "w.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, weights)
    first = resolve_weights("resnet50", weights_path=weights)
    torch.save({"fc.weight": torch.ones(2, 2)}, weights)
    second = resolve_weights("resnet50", weights_path=weights)
    assert first.sha256 != second.sha256
    assert keys_for(records, weights_sha256=first.sha256) != keys_for(
        records, weights_sha256=second.sha256
    )
    assert keys_for(records, pre=Preprocessing(size=72)) != base
    assert keys_for(records, pre=Preprocessing(size=64, mean=(0.5, 0.5, 0.5))) != base
    path = Path(records[1].path)
    path.write_bytes(path.read_bytes() + b"\0")
    assert keys_for(records) != base


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "empty (0 bytes)"), (b"not an image at all", "unreadable or truncated")],
)
def test_load_image_row_reports_bad_files(tmp_path, content, reason):
    path = tmp_path / "bad.JPEG"
    path.write_bytes(content)
    pixels, why = load_image_row(str(path), 32)
    assert pixels.shape == (3, 32, 32)
    assert not pixels.any()
    assert reason in why
    assert str(path) in why


def test_decompression_bomb_is_a_bad_row(tmp_path, monkeypatch):
    records = make_records(tmp_path / "img", 1)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    _, why = load_image_row(records[0].path, 32)
    assert "decompression-bomb" in why


def test_dataset_yields_fixed_batches_with_bad_rows(tmp_path):
    records = make_records(tmp_path / "img", 4)
    Path(records[2].path).write_bytes(b"")
    data = RecordImages(records, 32, [(0, [0, 1]), (1, [2, 3])])
    first, second = data[0], data[1]
    assert first["images"].shape == (2, 3, 32, 32)
    assert first["images"].dtype == torch.uint8
    assert first["bad"] == {}
    assert second["rows"].tolist() == [2, 3]
    assert list(second["bad"]) == [2]


def test_device_decoding_path_runs_on_cpu(tmp_path):
    """The GPU path's decode+resize logic, exercised with torchvision's CPU decoder."""
    records = make_records(tmp_path / "img", 2)
    png = tmp_path / "png-in-jpeg.JPEG"
    Image.new("RGB", (30, 20), (10, 200, 10)).save(png, format="PNG")
    records.append(ImageRecord("png", str(png), "n0", 30, 20, Box(1.0, 1.0, 9.0, 9.0)))
    data = RecordImages(records, 64, [(0, [0, 1, 2])], encoded=True)
    item = data[0]
    assert [t.ndim for t in item["encoded"]] == [1, 1, 3]  # JPEG bytes, PNG decoded
    module = PooledFeatures(build_backbone("resnet50", SOURCE), ["layer1"], PRE)
    images = module.decode_on_device(item["encoded"])
    assert images.shape == (3, 3, 64, 64)
    cpu = RecordImages(records, 64, [(0, [0, 1, 2])])[0]["images"].float()
    assert (images - cpu).abs().mean() < 3.0  # same picture, another resize filter
    assert torch.equal(images[2, :, 5, 5], torch.tensor([10.0, 200.0, 10.0]))


def test_skip_drops_bad_images_from_rows_and_index(tmp_path, caplog):
    records = make_records(tmp_path / "img", 7, names=[f"im {i} é" for i in range(7)])
    Path(records[1].path).write_bytes(b"")
    Path(records[4].path).write_bytes(b"garbage")
    cache = FeatureCache(tmp_path / "cache")
    with caplog.at_level(logging.WARNING):
        entry = ensure(cache, records)["layer1"]
    assert "skipped 2 unreadable image(s) of 7" in caplog.text
    kept = [r.image_id for i, r in enumerate(records) if i not in (1, 4)]
    assert entry.image_ids == kept
    assert entry.features.shape == (5, 256)
    assert [s["image_id"] for s in entry.skipped] == ["im 1 é", "im 4 é"]
    good = [r for i, r in enumerate(records) if i not in (1, 4)]
    clean = ensure(FeatureCache(tmp_path / "clean"), good)["layer1"]
    np.testing.assert_allclose(entry.features, clean.features, rtol=1e-5, atol=1e-6)
    calls = []
    again = ensure(cache, records, calls=calls)["layer1"]
    assert calls == []
    assert again.image_ids == kept


def test_error_policy_names_the_file_and_leaves_nothing(tmp_path):
    records = make_records(tmp_path / "img", 4)
    Path(records[2].path).write_bytes(b"")
    cache = FeatureCache(tmp_path / "cache")
    settings = ExtractionSettings(batch_size=2, progress=False, num_workers=0, on_bad_image="error")
    with pytest.raises(ScaleprobeError, match=r"img_2.JPEG: image is empty") as info:
        ensure(cache, records, settings=settings)
    assert "\n" not in str(info.value)
    assert [p.name for p in cache.root.iterdir() if p.name != ".locks"] == []


def test_meta_records_checksums_and_damaged_index_is_rebuilt(tmp_path, caplog):
    records = make_records(tmp_path / "img", 3)
    cache = FeatureCache(tmp_path / "cache")
    entry = ensure(cache, records)["layer1"]
    meta = json.loads((entry.path / "meta.json").read_text())
    assert len(meta["features_sha256"]) == 64
    assert len(meta["index_sha256"]) == 64
    assert meta["n_rows"] == 3
    assert not list(entry.path.glob("progress-*"))
    index = entry.path / "index.csv"
    index.write_text(index.read_text().replace("img_0", "img_X"))
    calls = []
    with caplog.at_level(logging.WARNING):
        rebuilt = ensure(cache, records, calls=calls)["layer1"]
    assert calls == [1]
    assert "index.csv checksum differs" in caplog.text
    assert rebuilt.image_ids == [r.image_id for r in records]
    assert any(".corrupt-" in p.name for p in cache.root.iterdir())


def test_workers_and_in_process_loading_give_equal_features(tmp_path):
    records = make_records(tmp_path / "img", 5)
    one = ensure(FeatureCache(tmp_path / "a"), records)["layer1"]
    workers = ExtractionSettings(batch_size=3, progress=False, num_workers=1)
    two = ensure(FeatureCache(tmp_path / "b"), records, settings=workers)["layer1"]
    assert one.key == two.key
    np.testing.assert_array_equal(one.features, two.features)


def test_error_policy_holds_on_an_entry_made_under_skip(tmp_path):
    """A warm entry that left an image out stops an ``on_bad_image=error`` run, naming it."""
    records = make_records(tmp_path / "img", 4)
    Path(records[2].path).write_bytes(b"")
    cache = FeatureCache(tmp_path / "cache")
    assert len(ensure(cache, records)["layer1"].skipped) == 1  # made under skip
    settings = ExtractionSettings(batch_size=3, progress=False, num_workers=0, on_bad_image="error")
    calls = []
    with pytest.raises(ScaleprobeError) as info:
        ensure(cache, records, settings=settings, calls=calls)
    message = str(info.value)
    assert "\n" not in message
    assert records[2].path in message
    assert "extract.on_bad_image=error" in message
    assert calls == []  # found warm, nothing extracted
    assert ensure(cache, records, calls=calls)["layer1"].skipped  # skip still reuses it
