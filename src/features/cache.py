"""Feature cache: one directory per key, written whole or not at all, resumable.

An entry holds ``features.npy`` (N x d float32), ``index.csv`` (the records in
row order, exactly the rows the array holds) and ``meta.json`` (every field of
the key, versions, checksums, the images that were skipped and why).

Extraction writes into a *partial* directory ``<root>/.partial-<key>/``: the
preallocated memory-mapped array, a description of the work (``partial.json``)
and progress records (``progress-<rank>.npy``, ``bad-<rank>.json``) that are
replaced atomically only after the rows they announce were flushed. A run
killed with SIGKILL leaves the partial behind; the next run with the same key
reopens it and extracts only the unfinished batches. Committing checksums the
files and renames the partial to ``<root>/<key>``, so a reader sees a complete
entry or none. A lock file per key keeps two processes from sharing a partial
or extracting the same entry twice.

An entry that fails its check is moved aside to ``<key>.corrupt-<pid>-<ns>``
(never deleted unseen). When that key is rebuilt, older damaged copies of it
are removed with a warning naming each, so only the newest, for inspection,
is kept; ``python -m src.features.tidy`` lists every damaged copy and
unfinished partial and, with ``--prune``, removes the damaged copies that a
rebuilt entry supersedes (partials, being resumable work, are only listed).
"""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from src.atomic import atomic_open, atomic_write_text
from src.data.records import ImageRecord
from src.errors import ScaleprobeError
from src.features.checksums import sha256_file

__all__ = [
    "CacheEntry",
    "FeatureCache",
    "Leftover",
    "PartialEntry",
    "entry_key",
    "hash_images",
    "storage_error",
]

logger = logging.getLogger(__name__)

FEATURES_FILE = "features.npy"
INDEX_FILE = "index.csv"
META_FILE = "meta.json"
PARTIAL_FILE = "partial.json"
PARTIAL_PREFIX = ".partial-"
CORRUPT_MARK = ".corrupt-"
_INDEX_FIELDS = ("image_id", "path", "class_id")  # no target: features never depend on it
_COPY_ROWS = 4096  # rows per chunk when compacting away skipped images


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def storage_error(root: Path, error: OSError) -> ScaleprobeError:
    """Turn an OS write error under ``root`` into the one line the user sees.

    A full disk and a read-only directory are the usual causes; both name the
    cache directory and the remedy, so the user need not read a traceback.
    """
    reason = error.strerror or str(error)
    if error.errno == errno.ENOSPC:
        hint = "free space there or set paths.cache_dir=<dir> to a disk with room"
    elif error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "make it writable or set paths.cache_dir=<writable dir>"
    else:
        hint = "check the disk or set paths.cache_dir=<dir>"
    return ScaleprobeError(f"feature cache {root} cannot be written ({reason}); {hint}")


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
    """A complete entry read back from the cache.

    ``image_ids`` lists exactly the rows of ``features``; images skipped as
    unreadable at extraction are absent from both (``meta["skipped"]``).
    """

    key: str
    path: Path
    features: np.ndarray
    image_ids: list[str]
    meta: dict[str, Any]

    @property
    def skipped(self) -> list[dict[str, str]]:
        """``{"image_id", "path", "reason"}`` of each image left out of the entry."""
        return list(self.meta.get("skipped", []))


@dataclass
class PartialEntry:
    """An entry being extracted: a preallocated array and what is already done.

    Rows are extracted in fixed batches of ``batch_size`` (kept from the first
    attempt, so a resumed batch is computed exactly as before); progress is
    recorded per batch and per process rank.
    """

    key: str
    path: Path
    n_rows: int
    dim: int
    batch_size: int
    resumed: bool = False
    _array: np.memmap | None = field(default=None, repr=False)

    @property
    def n_batches(self) -> int:
        """Number of fixed batches the rows are cut into."""
        return -(-self.n_rows // self.batch_size)

    def batch_rows(self, batch: int) -> range:
        """Dataset rows of batch ``batch``."""
        start = batch * self.batch_size
        return range(start, min(start + self.batch_size, self.n_rows))

    def done_batches(self) -> np.ndarray:
        """Boolean (n_batches,): batches whose rows are on disk, over all ranks' records."""
        done = np.zeros(self.n_batches, dtype=bool)
        for path in sorted(self.path.glob("progress-*.npy")):
            try:
                record = np.load(path, allow_pickle=False)
            except (OSError, ValueError):
                continue  # a record is replaced atomically; an unreadable one is ignored
            if record.shape == done.shape:
                done |= record.astype(bool)
        return done

    def bad_rows(self) -> dict[int, str]:
        """``{row: reason}`` of the images found unreadable so far, over all ranks."""
        bad: dict[int, str] = {}
        for path in sorted(self.path.glob("bad-*.json")):
            try:
                bad.update({int(k): v for k, v in json.loads(path.read_text()).items()})
            except (OSError, ValueError):
                continue
        return bad

    def write_rows(self, rows: np.ndarray, values: np.ndarray) -> None:
        """Write ``values`` (len(rows), dim) at ``rows`` of the memory-mapped array."""
        if self._array is None:
            self._array = np.load(self.path / FEATURES_FILE, mmap_mode="r+", allow_pickle=False)
        self._array[rows] = values

    def flush(self) -> None:
        """Flush written rows to the file and unmap it, so resident memory stays flat."""
        if self._array is not None:
            self._array.flush()
            self._array = None

    def record_progress(self, rank: int, done: np.ndarray, bad: Mapping[int, str]) -> None:
        """Atomically replace this rank's progress record; call only after :meth:`flush`."""
        with atomic_open(self.path / f"progress-{rank}.npy", "wb") as handle:
            np.save(handle, done.astype(np.uint8), allow_pickle=False)
        if bad:
            atomic_write_text(
                self.path / f"bad-{rank}.json", json.dumps({str(k): v for k, v in bad.items()})
            )


@dataclass(frozen=True)
class Leftover:
    """A directory beside the entries that no run reads as an entry.

    ``kind`` is ``"corrupt"`` (a damaged entry moved aside by
    :meth:`FeatureCache.load`) or ``"partial"`` (an unfinished extraction, which
    the next run with the same key resumes). ``made_ns`` is when it was moved
    aside (corrupt) or last written (partial); ``superseded`` says a complete
    entry of the same key was committed after it; ``in_use`` that a running
    extraction holds the key's lock.
    """

    kind: str
    key: str
    path: Path
    made_ns: int
    superseded: bool
    in_use: bool = False


class FeatureCache:
    """Directory of cache entries under ``root``, one sub-directory per key."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path_of(self, key: str) -> Path:
        """Directory of the entry ``key`` (it may not exist)."""
        return self.root / key

    def partial_path(self, key: str) -> Path:
        """Directory where entry ``key`` is extracted before it is committed."""
        return self.root / f"{PARTIAL_PREFIX}{key}"

    @contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Hold the lock of entry ``key`` (one process extracts it, others wait).

        The lock is an OS file lock, released by the kernel when its holder
        dies, so a killed extraction never blocks the next run. It is taken
        only to write: a complete entry is read without it (entries are
        immutable once committed and appear by one atomic rename, and
        :meth:`load` checks their checksums), so a read-only cache still
        serves what it holds. Where the lock is needed but cannot be made
        (a read-only or full cache directory, even one that already holds
        ``.locks/``), the one-line :func:`storage_error` is raised.
        """
        lock_dir = self.root / ".locks"
        lock = FileLock(lock_dir / f"{key}.lock")
        try:
            lock_dir.mkdir(parents=True, exist_ok=True)
            lock.acquire()
        except OSError as error:
            raise storage_error(self.root, error) from None
        try:
            yield
        finally:
            lock.release()

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
        aside = path.with_name(f"{path.name}{CORRUPT_MARK}{os.getpid()}-{time.time_ns()}")
        try:
            os.replace(path, aside)
        except OSError as error:
            raise ScaleprobeError(
                f"cache entry {path} failed its check ({problem}) and cannot be moved aside "
                f"({error.strerror}); delete it or make {self.root} writable"
            ) from None
        logger.warning(
            "cache entry %s failed its check: %s; moved to %s, rebuilding", path, problem, aside
        )
        return None

    def open_partial(
        self, key: str, *, n_rows: int, dim: int, batch_size: int, fields: Mapping[str, Any]
    ) -> PartialEntry:
        """Reopen the partial of ``key`` if it describes the same work, else start a fresh one.

        The caller must hold :meth:`lock` for ``key``. A fresh partial's array
        is preallocated on disk (``posix_fallocate``), so a full disk fails
        here with ENOSPC instead of killing the process with SIGBUS later,
        when a memory-mapped page cannot be written.
        """
        path = self.partial_path(key)
        # Through JSON, so tuples compare equal to the lists they are stored as.
        description = json.loads(
            json.dumps({"key": key, "n_rows": n_rows, "dim": dim, "fields": dict(fields)})
        )
        stored = _read_json(path / PARTIAL_FILE)
        if stored is not None and {k: stored.get(k) for k in description} == description:
            partial = PartialEntry(key, path, n_rows, dim, int(stored["batch_size"]), resumed=True)
            if (path / FEATURES_FILE).is_file():
                return partial
        if path.exists():
            logger.warning("discarding unusable partial extraction %s", path)
            shutil.rmtree(path, ignore_errors=True)
        try:
            path.mkdir(parents=True)
            array = np.lib.format.open_memmap(
                path / FEATURES_FILE, mode="w+", dtype=np.float32, shape=(n_rows, dim)
            )
            offset = array.offset
            del array
            with open(path / FEATURES_FILE, "r+b") as handle:
                os.posix_fallocate(handle.fileno(), 0, offset + n_rows * dim * 4)
            atomic_write_text(
                path / PARTIAL_FILE, json.dumps({**description, "batch_size": batch_size})
            )
        except OSError as error:
            shutil.rmtree(path, ignore_errors=True)
            raise storage_error(self.root, error) from None
        return PartialEntry(key, path, n_rows, dim, batch_size)

    def discard(self, partial: PartialEntry) -> None:
        """Remove a partial (after an error that makes it useless or a full disk)."""
        partial.flush()
        shutil.rmtree(partial.path, ignore_errors=True)

    def commit(
        self,
        partial: PartialEntry,
        records: Sequence[ImageRecord],
        meta: Mapping[str, Any],
    ) -> CacheEntry:
        """Turn a finished partial into entry ``partial.key`` and return it.

        Rows of images found unreadable are dropped from the array and the
        index alike (and listed in ``meta["skipped"]``), so the entry's rows
        and index always agree. Raises :class:`ScaleprobeError` on a write
        error, after removing the partial.
        """
        partial.flush()
        bad = partial.bad_rows()
        keep = np.array([row for row in range(partial.n_rows) if row not in bad], dtype=np.int64)
        try:
            if bad:
                _compact(partial.path / FEATURES_FILE, keep)
            kept = [records[row] for row in keep]
            _write_index(partial.path / INDEX_FILE, kept)
            full_meta = {
                **meta,
                "n_rows": len(kept),
                "skipped": [
                    {"image_id": records[r].image_id, "path": records[r].path, "reason": why}
                    for r, why in sorted(bad.items())
                ],
                "features_sha256": sha256_file(partial.path / FEATURES_FILE),
                "index_sha256": sha256_file(partial.path / INDEX_FILE),
            }
            _write_json(partial.path / META_FILE, full_meta)
            for name in (PARTIAL_FILE, *(p.name for p in partial.path.glob("progress-*.npy"))):
                (partial.path / name).unlink(missing_ok=True)
            for path in partial.path.glob("bad-*.json"):
                path.unlink()
            final = self.path_of(partial.key)
            if final.exists():  # a stale entry that failed its check was moved aside before
                shutil.rmtree(final)
            os.replace(partial.path, final)
        except OSError as error:
            self.discard(partial)
            raise storage_error(self.root, error) from None
        self.prune_corrupt(partial.key, keep_newest=True)
        entry = self.load(partial.key)
        if entry is None:  # pragma: no cover - only a concurrent writer without the lock
            raise ScaleprobeError(f"cache entry {self.path_of(partial.key)} vanished after commit")
        return entry

    def list_leftovers(self) -> list[Leftover]:
        """Every damaged copy and unfinished partial under the root, oldest first."""
        out = self._corrupt_copies()
        for path in sorted(self.root.glob(f"{PARTIAL_PREFIX}*")):
            key = path.name[len(PARTIAL_PREFIX) :]
            made = _mtime_ns(path)
            superseded = self._committed_ns(key) > made
            out.append(Leftover("partial", key, path, made, superseded, self._locked(key)))
        return sorted(out, key=lambda leftover: leftover.made_ns)

    def prune_corrupt(self, key: str | None = None, *, keep_newest: bool) -> list[Path]:
        """Remove damaged copies that a rebuilt entry supersedes; log each; return them.

        Only copies older than the complete entry of their key go (that entry
        holds the same key's numbers, rebuilt and checked). With
        ``keep_newest`` the newest damaged copy of each key stays, as the
        evidence of its latest damage. A copy that cannot be removed is
        logged and left.
        """
        by_key: dict[str, list[Leftover]] = {}
        for leftover in self._corrupt_copies():
            if key in (None, leftover.key):
                by_key.setdefault(leftover.key, []).append(leftover)
        removed = []
        for copies in by_key.values():
            newest = max(copies, key=lambda c: c.made_ns)
            for copy in copies:
                if not copy.superseded or (keep_newest and copy is newest):
                    continue
                try:
                    shutil.rmtree(copy.path)
                except OSError as error:
                    logger.warning("cannot remove damaged copy %s: %s", copy.path, error)
                    continue
                logger.warning(
                    "removed %s: damaged copy of cache entry %s, superseded by its rebuild",
                    copy.path,
                    self.path_of(copy.key),
                )
                removed.append(copy.path)
        return removed

    def _corrupt_copies(self) -> list[Leftover]:
        out = []
        for path in sorted(self.root.glob(f"*{CORRUPT_MARK}*")):
            key = path.name.split(CORRUPT_MARK, 1)[0]
            made = _moved_aside_ns(path)
            out.append(Leftover("corrupt", key, path, made, self._committed_ns(key) > made))
        return out

    def _committed_ns(self, key: str) -> int:
        """When entry ``key`` was committed (its meta.json's mtime), or -1 if it has none."""
        meta = self.path_of(key) / META_FILE
        return _mtime_ns(meta) if meta.is_file() else -1

    def _locked(self, key: str) -> bool:
        """Whether a running process holds the lock of ``key`` (False when it cannot tell)."""
        lock_path = self.root / ".locks" / f"{key}.lock"
        if not lock_path.is_file():
            return False
        lock = FileLock(lock_path, timeout=0)
        try:
            lock.acquire()
        except Timeout:
            return True
        except OSError:
            return False
        lock.release()
        return False


def _mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1


def _moved_aside_ns(path: Path) -> int:
    """Return the time in a ``<key>.corrupt-<pid>-<ns>`` name, else the directory's mtime."""
    stamp = path.name.rsplit("-", 1)[-1]
    return int(stamp) if stamp.isdigit() else _mtime_ns(path)


def _compact(path: Path, keep: np.ndarray) -> None:
    """Rewrite the .npy at ``path`` with only rows ``keep``, in chunks (memory stays flat).

    The copy is written with plain writes into a temporary file whose whole
    size is reserved first (``posix_fallocate``), never through a memory map:
    on a full disk a mapped page that cannot be written kills the process
    with SIGBUS, while here ENOSPC is an ``OSError`` the caller turns into one
    line, and :func:`~src.atomic.atomic_open` removes the temporary file.
    """
    source = np.load(path, mmap_mode="r", allow_pickle=False)
    header = {
        "descr": np.lib.format.dtype_to_descr(source.dtype),
        "fortran_order": False,
        "shape": (len(keep), source.shape[1]),
    }
    with atomic_open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        handle.flush()
        body = len(keep) * source.shape[1] * source.dtype.itemsize
        os.posix_fallocate(handle.fileno(), 0, handle.tell() + body)
        for start in range(0, len(keep), _COPY_ROWS):
            chunk = keep[start : start + _COPY_ROWS]
            handle.write(np.ascontiguousarray(source[chunk]).tobytes())
    del source


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def _write_json(path: Path, payload: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def _write_index(path: Path, records: Sequence[ImageRecord]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(_INDEX_FIELDS)
        for record in records:
            writer.writerow([record.image_id, record.path, record.class_id])


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
