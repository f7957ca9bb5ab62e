"""What is stored about the data holds no target (issue 12, item 2).

The feature cache's index and the DVC data manifest describe images and boxes
only, so a change of target leaves both (and the cache keys) as they are.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from src.data.boxes import Box
from src.data.records import ImageRecord
from src.features.cache import FeatureCache
from src.prepare import MANIFEST_FIELDS, write_manifest


def _records(root: Path) -> list[ImageRecord]:
    records = []
    for i in range(2):
        path = root / f"img_{i}.JPEG"
        Image.new("RGB", (20, 10), (i, 0, 0)).save(path, "JPEG")
        records.append(ImageRecord(f"img_{i}", str(path), "n02058221", 20, 10, Box(0, 0, 10, 5)))
    return records


def test_cache_index_lists_images_without_a_ratio(tmp_path):
    records = _records(tmp_path)
    cache = FeatureCache(tmp_path / "cache")
    partial = cache.open_partial("k", n_rows=2, dim=3, batch_size=2, fields={})
    partial.write_rows(np.array([0, 1]), np.ones((2, 3), dtype=np.float32))
    entry = cache.commit(partial, records, {"node": "x"})
    with open(entry.path / "index.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["image_id", "path", "class_id"]
    assert rows[1] == ["img_0", records[0].path, "n02058221"]
    assert cache.load("k").image_ids == ["img_0", "img_1"]


def test_manifest_is_the_data_fingerprint_without_a_ratio(tmp_path):
    records = _records(tmp_path)
    out = tmp_path / "manifest.csv"
    assert write_manifest(out, {"n02058221": records}, str(tmp_path)) == 2
    header, first, _ = out.read_text().splitlines()
    assert header.split(",") == list(MANIFEST_FIELDS)
    assert "ratio" not in MANIFEST_FIELDS
    assert first.startswith("n02058221,img_0,img_0.JPEG,20,10,0,0,10,5,")
