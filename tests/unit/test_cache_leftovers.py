"""Damaged copies and unfinished partials do not pile up unseen (#19.11c)."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from src.data.boxes import Box
from src.data.records import ImageRecord
from src.features.cache import FeatureCache
from src.features.tidy import main as tidy

RECORDS = [ImageRecord(f"i{i}", f"/img/{i}.JPEG", "n0", 30, 30, Box(1, 1, 9, 9)) for i in range(3)]


def _build(cache: FeatureCache, key: str, value: float = 1.0) -> None:
    """Extract-and-commit entry ``key`` without a model (the rows are ``value``)."""
    partial = cache.open_partial(key, n_rows=3, dim=4, batch_size=3, fields={"k": key})
    partial.write_rows(np.arange(3), np.full((3, 4), value, dtype=np.float32))
    partial.flush()
    partial.record_progress(0, np.array([True]), {})
    cache.commit(partial, RECORDS, {"key": key})


def _damage_and_rebuild(cache: FeatureCache, key: str) -> None:
    features = cache.path_of(key) / "features.npy"
    features.write_bytes(features.read_bytes()[:-4] + b"\0\0\0\1")
    assert cache.load(key) is None  # moved aside
    time.sleep(0.05)  # the rebuild's meta.json is newer than the move, even on coarse clocks
    _build(cache, key)


def _corrupt(cache: FeatureCache) -> list[str]:
    return sorted(p.name for p in cache.root.glob("*.corrupt-*"))


def test_rebuilds_keep_only_the_newest_damaged_copy_and_log_removals(tmp_path, caplog):
    cache = FeatureCache(tmp_path / "cache")
    _build(cache, "k")
    _damage_and_rebuild(cache, "k")
    first = _corrupt(cache)
    assert len(first) == 1  # the evidence of the damage is kept after its rebuild
    with caplog.at_level(logging.WARNING, logger="src.features.cache"):
        _damage_and_rebuild(cache, "k")
        _damage_and_rebuild(cache, "k")
    left = _corrupt(cache)
    assert len(left) == 1  # not three: older copies went
    assert left != first
    removed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("removed ")]
    assert len(removed) == 2
    assert first[0] in removed[0]  # each removal names the directory
    assert "superseded by its rebuild" in removed[0]
    assert cache.load("k") is not None


def test_an_unrebuilt_damaged_copy_is_never_removed(tmp_path):
    """Without a complete entry of its key, no damaged copy is superseded: all stay."""
    cache = FeatureCache(tmp_path / "cache")
    _build(cache, "k")
    _damage_and_rebuild(cache, "k")
    features = cache.path_of("k") / "features.npy"
    features.write_bytes(features.read_bytes()[:-4] + b"\0\0\0\1")
    assert cache.load("k") is None  # the rebuilt rows now lie aside, damaged, not rebuilt
    _build(cache, "other")  # another key's commit prunes only its own copies
    assert len(_corrupt(cache)) == 2
    assert cache.prune_corrupt(keep_newest=False) == []
    copies = [x for x in cache.list_leftovers() if x.kind == "corrupt"]
    assert [x.superseded for x in copies] == [False, False]
    time.sleep(0.05)
    _build(cache, "k")
    assert len(_corrupt(cache)) == 1  # the rebuild removed the older copy, kept the newest
    assert len(cache.prune_corrupt(keep_newest=False)) == 1  # which it supersedes too
    assert _corrupt(cache) == []


def test_tidy_lists_partials_and_prunes_superseded_copies(tmp_path, capsys):
    cache = FeatureCache(tmp_path / "cache")
    _build(cache, "k")
    _damage_and_rebuild(cache, "k")
    partial = cache.open_partial("p", n_rows=3, dim=4, batch_size=3, fields={"k": "p"})
    assert tidy(["--cache-dir", str(cache.root)]) == 0
    listed = capsys.readouterr().out
    assert f"unfinished extraction {partial.path}" in listed
    assert "resumable" in listed
    assert "damaged copy" in listed
    assert "superseded by its rebuilt entry" in listed
    assert "2 leftover(s)" in listed
    assert tidy(["--cache-dir", str(cache.root), "--prune"]) == 0
    pruned = capsys.readouterr().out
    assert _corrupt(cache) == []
    assert "removed " in pruned
    assert "1 leftover(s)" in pruned
    assert partial.path.is_dir()  # resumable work is only listed


def test_tidy_names_a_missing_cache_dir(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        tidy(["--cache-dir", str(tmp_path / "nope")])
    assert info.value.code == 1
    assert f"error: --cache-dir {tmp_path / 'nope'} is not a directory" in capsys.readouterr().err
