"""Kill and resume: a killed extraction resumes from its finished batches, bit for bit.

Also: a run killed while probing leaves no MLflow run marked FINISHED.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src.data.boxes import Box
from src.data.records import ImageRecord
from src.features.backbones import WeightsSource, build_backbone
from src.features.cache import FeatureCache
from src.features.extract import ExtractionSettings, Preprocessing, ensure_features

REPO = Path(__file__).resolve().parents[2]
SOURCE = WeightsSource("random", "random-init-seed-0")
N_IMAGES, BATCH = 14, 2  # 7 batches

# The child extracts slowly (a sleeping hook) so the parent can kill it mid-way.
CHILD = textwrap.dedent(
    """
    import json, sys, time
    from src.data.boxes import Box
    from src.data.records import ImageRecord
    from src.features.backbones import WeightsSource, build_backbone
    from src.features.cache import FeatureCache
    from src.features.extract import ExtractionSettings, Preprocessing, ensure_features

    rows = json.loads(open(sys.argv[1]).read())
    records = [ImageRecord(r["id"], r["path"], "n0", r["w"], r["h"], Box(1, 1, 20, 20))
               for r in rows]

    def build():
        model = build_backbone("resnet50", WeightsSource("random", "random-init-seed-0"))
        model.conv1.register_forward_hook(lambda *_: time.sleep(0.5))
        return model

    ensure_features(
        FeatureCache(sys.argv[2]), backbone="resnet50", weights="random",
        weights_sha256="random-init-seed-0", build_model=build, nodes=["layer1"],
        records=records, preprocessing=Preprocessing(size=64),
        settings=ExtractionSettings(batch_size=2, num_workers=0, progress=False,
                                    checkpoint_s=0.0),
    )
    """
)


@pytest.fixture
def records(tmp_path):
    rng = np.random.default_rng(1)
    rows, out = [], []
    for i in range(N_IMAGES):
        path = tmp_path / "img" / f"r {i}.JPEG"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(path, "JPEG")
        rows.append({"id": f"r{i}", "path": str(path), "w": 40, "h": 48})
        out.append(ImageRecord(f"r{i}", str(path), "n0", 40, 48, Box(1, 1, 20, 20)))
    (tmp_path / "records.json").write_text(json.dumps(rows))
    return out


def _ensure(cache_dir, records, forwards, on_forward=None, **settings):
    """Extract ``layer1``, counting forward passes in ``forwards``; ``on_forward`` may stop it."""

    def count(*_) -> None:  # a forward hook returning None leaves the output alone
        forwards.append(1)
        if on_forward is not None:
            on_forward()

    def build():
        model = build_backbone("resnet50", SOURCE)
        model.conv1.register_forward_hook(count)
        return model

    return ensure_features(
        FeatureCache(cache_dir),
        backbone="resnet50",
        weights=SOURCE.label,
        weights_sha256=SOURCE.sha256,
        build_model=build,
        nodes=["layer1"],
        records=records,
        preprocessing=Preprocessing(size=64),
        settings=ExtractionSettings(batch_size=BATCH, num_workers=0, progress=False, **settings),
    )["layer1"]


def _done_batches(cache_dir: Path) -> int:
    total = 0
    for path in cache_dir.glob(".partial-*/progress-*.npy"):
        try:
            total = max(total, int(np.load(path).sum()))
        except (OSError, ValueError):
            pass
    return total


@pytest.mark.slow
def test_sigkilled_extraction_resumes_and_equals_an_uninterrupted_run(tmp_path, records):
    cache_dir = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    child = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "records.json"), str(cache_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 300
    while _done_batches(cache_dir) < 2:
        assert child.poll() is None, child.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the child never finished two batches"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    done = _done_batches(cache_dir)
    assert 2 <= done < N_IMAGES // BATCH
    assert not [p for p in cache_dir.iterdir() if not p.name.startswith(".")]  # no entry

    forwards: list[int] = []
    resumed = _ensure(cache_dir, records, forwards)
    assert not list(cache_dir.glob(".partial-*"))
    whole_forwards: list[int] = []
    whole = _ensure(tmp_path / "fresh", records, whole_forwards)
    assert len(forwards) == len(whole_forwards) - done  # only the unfinished batches
    assert resumed.key == whole.key
    assert resumed.image_ids == whole.image_ids
    np.testing.assert_array_equal(resumed.features, whole.features)


def test_interrupted_extraction_keeps_its_partial_and_resumes(tmp_path, records):
    """An exit mid-extraction (Ctrl-C ends in SystemExit under Lightning) is resumable."""
    cache_dir = tmp_path / "cache"
    calls: list[int] = []

    def stop_on_fourth():
        if len(calls) == 4:  # the dummy forward, then batches 0-1 pass
            raise SystemExit(1)

    with pytest.raises(SystemExit):
        _ensure(cache_dir, records, calls, stop_on_fourth, checkpoint_s=0.0)
    assert _done_batches(cache_dir) == 2
    forwards: list[int] = []
    resumed = _ensure(cache_dir, records, forwards)
    whole_forwards: list[int] = []
    whole = _ensure(tmp_path / "fresh", records, whole_forwards)
    assert len(forwards) == len(whole_forwards) - 2
    np.testing.assert_array_equal(resumed.features, whole.features)


def test_partial_of_other_work_is_discarded(tmp_path, records):
    cache = FeatureCache(tmp_path / "cache")
    partial = cache.open_partial("k", n_rows=4, dim=8, batch_size=2, fields={"a": 1})
    partial.write_rows(np.array([0, 1]), np.ones((2, 8), dtype=np.float32))
    partial.flush()
    partial.record_progress(0, np.array([True, False]), {})
    same = cache.open_partial("k", n_rows=4, dim=8, batch_size=3, fields={"a": 1})
    assert same.resumed
    assert same.batch_size == 2  # the layout it started with
    assert same.done_batches().tolist() == [True, False]
    other = cache.open_partial("k", n_rows=4, dim=8, batch_size=2, fields={"a": 2})
    assert not other.resumed
    assert other.done_batches().tolist() == [False, False]
