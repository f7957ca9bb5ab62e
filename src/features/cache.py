"""Feature cache: one directory per key, written whole or not at all.

An entry holds ``features.npy`` (N x d float32), ``index.csv`` (the records in
row order) and ``meta.json`` (every field of the key, versions, checksums).
Entries are built in a temporary directory beside the final one and renamed
into place, so a reader sees a complete entry or none; a lock file per key
keeps parallel jobs from extracting the same entry twice.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from src.data.records import ImageRecord
from src.errors import ScaleprobeError
from src.features.checksums import sha256_file

__all__ = [
    "CacheEntry",
    "FeatureCache",
    "entry_key",
    "hash_images",
]

logger = logging.getLogger(__name__)

FEATURES_FILE = "features.npy"
INDEX_FILE = "index.csv"
META_FILE = "meta.json"
_INDEX_FIELDS = ("image_id", "path", "class_id", "ratio")


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_images(records: Sequence[ImageRecord]) -> str:
    """Hash the ordered image list by id and file content (any changed byte changes it)."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(record.image_id.encode())
        digest.update(b"\0")
        try:
            digest.update(Path(record.path).read_bytes())
        except OSError as error:
            raise ScaleprobeError(f"image {record.path} cannot be read: {error.strerror}") from None
        digest.update(b"\0")
    return digest.hexdigest()


def entry_key(fields: dict[str, Any]) -> str:
    """Return the cache key: sha256 of the canonical JSON of the fields that change the numbers."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return _sha256_bytes(canonical.encode())[:32]


@dataclass(frozen=True)
class CacheEntry:
    """A complete entry read back from the cache."""

    key: str
    path: Path
    features: np.ndarray
    image_ids: list[str]
    meta: dict[str, Any]


class FeatureCache:
    """Directory of cache entries under ``root``, one sub-directory per key."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path_of(self, key: str) -> Path:
        """Directory of the entry ``key`` (it may not exist)."""
        return self.root / key

    @contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Hold the lock of entry ``key`` (one process extracts it, others wait)."""
        lock_dir = self.root / ".locks"
        try:
            lock_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ScaleprobeError(
                f"feature cache {self.root} is not writable: {error.strerror}"
            ) from None
        with FileLock(lock_dir / f"{key}.lock"):
            yield

    def load(self, key: str) -> CacheEntry | None:
        """Return entry ``key`` if it is complete and its checksum holds, else None.

        A damaged entry is moved aside (never deleted) and reported, so it is
        rebuilt but not silently lost.
        """
        path = self.path_of(key)
        if not path.is_dir():
            return None
        try:
            meta = json.loads((path / META_FILE).read_text())
            features = np.load(path / FEATURES_FILE, mmap_mode="r", allow_pickle=False)
            image_ids = [row["image_id"] for row in _read_index(path / INDEX_FILE)]
            problem = _check_entry(path, meta, features, image_ids)
        except (OSError, ValueError, KeyError) as error:
            problem = f"unreadable ({error})"
        if problem is None:
            return CacheEntry(key, path, features, image_ids, meta)
        aside = path.with_name(f"{path.name}.corrupt-{os.getpid()}")
        os.replace(path, aside)
        logger.warning(
            "cache entry %s failed its check: %s; moved to %s, rebuilding", path, problem, aside
        )
        return None

    @contextmanager
    def writer(self, key: str, records: Sequence[ImageRecord], dim: int) -> Iterator[np.memmap]:
        """Yield a memory-mapped (N, dim) float32 array; on clean exit commit the entry.

        The array lives in a temporary directory beside the entry; nothing
        appears under the key unless the block finishes without error.
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{key}.tmp-", dir=self.root))
        except OSError as error:
            raise ScaleprobeError(
                f"feature cache {self.root} is not writable: {error.strerror}"
            ) from None
        try:
            array = np.lib.format.open_memmap(
                tmp / FEATURES_FILE, mode="w+", dtype=np.float32, shape=(len(records), dim)
            )
            yield array
            array.flush()
            del array
            _write_index(tmp / INDEX_FILE, records)
            self._commit(key, tmp)
        except OSError as error:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ScaleprobeError(
                f"cannot write feature cache entry under {self.root}: {error.strerror or error}"
            ) from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _commit(self, key: str, tmp: Path) -> None:
        meta = json.loads((tmp / META_FILE).read_text()) if (tmp / META_FILE).exists() else {}
        meta["features_sha256"] = sha256_file(tmp / FEATURES_FILE)
        meta["index_sha256"] = sha256_file(tmp / INDEX_FILE)
        _write_json(tmp / META_FILE, meta)
        final = self.path_of(key)
        if final.exists():  # written meanwhile by a process that did not take the lock
            shutil.rmtree(tmp)
            return
        os.replace(tmp, final)

    def write_meta(self, array: np.memmap, meta: dict[str, Any]) -> None:
        """Store ``meta`` beside an array yielded by :meth:`writer` (committed with it)."""
        _write_json(Path(array.filename).parent / META_FILE, meta)


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def _write_index(path: Path, records: Sequence[ImageRecord]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(_INDEX_FIELDS)
        for record in records:
            writer.writerow([record.image_id, record.path, record.class_id, repr(record.ratio)])


def _read_index(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _check_entry(
    path: Path, meta: dict[str, Any], features: np.ndarray, ids: list[str]
) -> str | None:
    """Say what is wrong with an entry, or None when it is whole."""
    if features.dtype != np.float32 or features.ndim != 2:
        return f"features are {features.dtype} with shape {features.shape}, not 2-d float32"
    if features.shape[0] != len(ids):
        return f"{features.shape[0]} feature rows for {len(ids)} index rows"
    if meta.get("features_sha256") != sha256_file(path / FEATURES_FILE):
        return "features.npy checksum differs from meta.json"
    if meta.get("index_sha256") != sha256_file(path / INDEX_FILE):
        return "index.csv checksum differs from meta.json"
    return None
