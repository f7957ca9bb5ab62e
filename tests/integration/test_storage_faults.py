"""Storage faults: a full or read-only cache gives one clear line and leaves no partial entry.

Write errors are injected (root ignores chmod, and a tmpfs needs privileges):
ENOSPC at preallocation, while recording progress and at the commit rename;
EACCES / EROFS when the cache directory cannot be created.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src.data.boxes import Box
from src.data.records import ImageRecord
from src.errors import ScaleprobeError
from src.features import cache as cache_module
from src.features.backbones import WeightsSource, build_backbone
from src.features.cache import FeatureCache
from src.features.extract import ExtractionSettings, Preprocessing, ensure_features

SOURCE = WeightsSource("random", "random-init-seed-0")


@pytest.fixture
def records(tmp_path):
    out = []
    for i in range(4):
        path = tmp_path / "img" / f"{i}.JPEG"
        path.parent.mkdir(exist_ok=True)
        Image.new("RGB", (30 + i, 30), (i * 40, 10, 10)).save(path, "JPEG")
        out.append(ImageRecord(f"i{i}", str(path), "n0", 30 + i, 30, Box(1, 1, 9, 9)))
    return out


def _ensure(cache_dir, records):
    return ensure_features(
        FeatureCache(cache_dir),
        backbone="resnet50",
        weights=SOURCE.label,
        weights_sha256=SOURCE.sha256,
        build_model=lambda: build_backbone("resnet50", SOURCE),
        nodes=["layer1"],
        records=records,
        preprocessing=Preprocessing(size=32),
        settings=ExtractionSettings(batch_size=2, num_workers=0, progress=False),
    )["layer1"]


def _raise(code):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    return fail


def _leftovers(cache_dir: Path) -> list[str]:
    if not cache_dir.exists():
        return []
    return sorted(p.name for p in cache_dir.iterdir() if p.name != ".locks")


@pytest.mark.parametrize(
    ("target", "name"),
    [
        (os, "posix_fallocate"),  # preallocating the array
        (cache_module, "atomic_open"),  # recording progress during extraction
        (cache_module, "_write_index"),  # writing the index at commit
    ],
)
def test_full_disk_gives_one_line_and_no_partial(tmp_path, records, monkeypatch, target, name):
    cache_dir = tmp_path / "cache"
    monkeypatch.setattr(target, name, _raise(errno.ENOSPC))
    with pytest.raises(ScaleprobeError) as info:
        _ensure(cache_dir, records)
    message = str(info.value)
    assert "\n" not in message
    assert f"feature cache {cache_dir} cannot be written (No space left on device)" in message
    assert "free space" in message
    assert _leftovers(cache_dir) == []
    monkeypatch.undo()
    entry = _ensure(cache_dir, records)  # the next run, with room, works
    assert entry.features.shape == (4, 256)


def test_full_disk_at_commit_rename(tmp_path, records, monkeypatch):
    cache_dir = tmp_path / "cache"
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst).parent == cache_dir and not Path(dst).name.startswith("."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst)

    monkeypatch.setattr(cache_module.os, "replace", replace)
    with pytest.raises(ScaleprobeError, match="No space left on device"):
        _ensure(cache_dir, records)
    assert _leftovers(cache_dir) == []


def test_full_disk_while_compacting_skipped_rows(tmp_path, records, monkeypatch):
    """#19.6: dropping an unreadable image's row rewrites the array; no room there is one line.

    The copy's space is reserved before any row is written (a memory-mapped
    copy died with SIGBUS on a full disk and left ``features.npy.compact``).
    """
    Path(records[1].path).write_bytes(b"")  # skipped, so the array is compacted at commit
    cache_dir = tmp_path / "cache"
    real_fallocate = os.posix_fallocate
    reserved: list[str] = []

    def fallocate(fd, offset, length):
        name = Path(os.readlink(f"/proc/self/fd/{fd}")).name
        reserved.append(name)
        if name != "features.npy":  # the partial's own array still gets its room
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fallocate(fd, offset, length)

    monkeypatch.setattr(os, "posix_fallocate", fallocate)
    with pytest.raises(ScaleprobeError) as info:
        _ensure(cache_dir, records)
    message = str(info.value)
    assert "\n" not in message
    assert f"feature cache {cache_dir} cannot be written (No space left on device)" in message
    assert reserved[0] == "features.npy"
    assert len(reserved) == 2  # the compacted copy asked for its room
    assert _leftovers(cache_dir) == []
    assert [p for p in cache_dir.rglob("*") if ".locks" not in p.parts] == []  # no .compact
    monkeypatch.undo()
    entry = _ensure(cache_dir, records)
    assert entry.features.shape == (3, 256)
    assert [s["image_id"] for s in entry.skipped] == ["i1"]


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS])
def test_read_only_cache_gives_one_line(tmp_path, records, monkeypatch, code):
    cache_dir = tmp_path / "cache"
    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self == cache_dir or cache_dir in self.parents:
            raise OSError(code, os.strerror(code))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    with pytest.raises(ScaleprobeError) as info:
        _ensure(cache_dir, records)
    assert "\n" not in str(info.value)
    assert f"feature cache {cache_dir} cannot be written" in str(info.value)
    assert "make it writable or set paths.cache_dir" in str(info.value)
    assert not cache_dir.exists()


def test_read_only_cache_still_serves_complete_entries(tmp_path, records, monkeypatch):
    cache_dir = tmp_path / "cache"
    first = _ensure(cache_dir, records)
    monkeypatch.setattr(Path, "mkdir", _raise(errno.EROFS))
    again = _ensure(cache_dir, records)  # a hit needs no write, not even the lock
    np.testing.assert_array_equal(first.features, again.features)


def _read_only_locks(monkeypatch, cache_dir: Path, code: int) -> None:
    """Make opening a lock file under ``cache_dir/.locks`` for writing fail (read-only root)."""
    real_open = os.open
    writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT

    def open_(path, flags, *args, **kwargs):
        if Path(os.fsdecode(path)).parent == cache_dir / ".locks" and flags & writing:
            raise OSError(code, os.strerror(code), os.fsdecode(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
@pytest.mark.parametrize("lock_file_exists", [False, True])
def test_read_only_cache_holding_locks_gives_one_line(
    tmp_path, records, monkeypatch, code, lock_file_exists
):
    """#19.7a: ``.locks/`` exists but the lock file cannot be opened: one line, no traceback."""
    cache_dir = tmp_path / "cache"
    if lock_file_exists:  # this key's lock was left by an earlier writable run, its entry gone
        shutil.rmtree(_ensure(cache_dir, records).path)
    else:  # an earlier run made .locks/ for other images only
        _ensure(cache_dir, records[:2])
    assert len(list((cache_dir / ".locks").glob("*.lock"))) == 1
    _read_only_locks(monkeypatch, cache_dir, code)
    with pytest.raises(ScaleprobeError) as info:
        _ensure(cache_dir, records)  # a miss: it must lock to extract
    message = str(info.value)
    assert "\n" not in message
    assert f"feature cache {cache_dir} cannot be written ({os.strerror(code)})" in message
    assert "make it writable or set paths.cache_dir" in message
    assert not list(cache_dir.glob(".partial-*"))


def test_read_only_cache_holding_locks_serves_its_entries(tmp_path, records, monkeypatch):
    """#19.7a: a complete entry is read without the lock, so a read-only cache still serves it."""
    cache_dir = tmp_path / "cache"
    first = _ensure(cache_dir, records)
    _read_only_locks(monkeypatch, cache_dir, errno.EROFS)
    again = _ensure(cache_dir, records)
    np.testing.assert_array_equal(first.features, again.features)
