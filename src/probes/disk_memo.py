"""On-disk memo of a pair's evaluation, shared by processes and nodes.

:class:`~src.probes.memo.ProbeMemo` lives in one process: enough for Hydra's
basic launcher, which runs a sweep's jobs one after another in one process.
Under the joblib launcher or on SLURM every job is its own process, and each
would refit the same path and null. This store keeps what costs, each split
of a pair's whole grid with its permutation null, on disk beside the feature
cache, under a content key derived from the in-process memo's, so a job in
another process reuses it exactly.

The unit is one split, not the pair: jobs that start together on the same
pair each take the splits no other process holds, so the first pair of a
sweep is computed by all its workers at once rather than by one while the
others wait.

Each entry is one ``.npz`` (no pickle: named arrays) written to a temporary
file and renamed, with its SHA-256 beside it; a lock per entry makes a
process that needs a split another one is computing wait for it instead of
repeating it. An entry whose checksum does not match is recomputed with a
warning, never used.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

from src.atomic import atomic_open, atomic_write_text
from src.errors import ScaleprobeError
from src.features.checksums import sha256_file

__all__ = ["ResultStore"]

logger = logging.getLogger(__name__)

_FORMAT = 2  # one split's named arrays (format 1 held a whole pair's results)
_FORMAT_NAME = "format"

Arrays = dict[str, np.ndarray]


class ResultStore:
    """Splits of pair evaluations on disk, keyed by :func:`~src.probes.memo.content_key`.

    Parameters
    ----------
    root : str or Path
        Directory of the entries (``paths.memo_dir``); created when missing.

    Attributes
    ----------
    hits, misses : int
        Entries (one split each) read from disk, and entries computed here.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    def check_writable(self) -> None:
        """Fail before any work when entries could not be written (read-only, say).

        Creates and removes a file in the root, or in its nearest existing
        parent while the root does not exist yet: the check leaves nothing.
        """
        folder = self.root.absolute()
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        probe = folder / f".scaleprobe-write-test-{os.getpid()}"
        try:
            if not folder.is_dir():
                raise NotADirectoryError(20, "Not a directory")
            fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            os.close(fd)
            probe.unlink()
        except OSError as error:
            raise ScaleprobeError(
                f"paths.memo_dir={str(self.root)!r} cannot be written ({error.strerror}); "
                "make it writable, or set paths.memo_dir=null to keep fits in memory only"
            ) from None

    def _paths(self, key: str) -> tuple[Path, Path, Path]:
        folder = self.root / key[:2]
        return folder / f"{key}.npz", folder / f"{key}.sha256", folder / f"{key}.lock"

    def _read(self, key: str) -> Arrays | None:
        entry, checksum, _ = self._paths(key)
        if not entry.exists():
            return None
        try:
            expected = checksum.read_text().strip()
            if sha256_file(entry) != expected:
                raise ValueError("checksum does not match")
            with np.load(entry, allow_pickle=False) as data:
                if int(data[_FORMAT_NAME]) != _FORMAT:
                    raise ValueError(f"format {int(data[_FORMAT_NAME])}, expected {_FORMAT}")
                return {name: data[name] for name in data.files if name != _FORMAT_NAME}
        except (OSError, ValueError, KeyError, TypeError) as error:
            logger.warning("probe memo entry %s is damaged (%s): recomputing it", entry, error)
            return None

    def _write(self, key: str, arrays: Arrays) -> None:
        entry, checksum, _ = self._paths(key)
        try:
            with atomic_open(entry, "wb") as handle:
                np.savez(handle, **{_FORMAT_NAME: np.asarray(_FORMAT)}, **arrays)
            atomic_write_text(checksum, sha256_file(entry) + "\n")
        except OSError as error:  # the result is still returned; only the reuse is lost
            logger.warning("probe memo entry %s not written (%s)", entry, error.strerror)

    def _read_or_compute(self, key: str, compute: Callable[[], Arrays]) -> Arrays:
        """Return the entry (its lock held by the caller), computing and writing it on a miss."""
        arrays = self._read(key)
        if arrays is not None:
            self.hits += 1
            return arrays
        self.misses += 1
        arrays = compute()
        self._write(key, arrays)
        return arrays

    def _lock(self, key: str) -> FileLock:
        _, _, lock = self._paths(key)
        lock.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(lock)

    def get_or_compute(self, key: str, compute: Callable[[], Arrays]) -> Arrays:
        """Return the entry under ``key``, computing and writing it on a miss.

        The entry's lock is held while computing, so processes that need the
        same entry wait for one computation rather than each making it.
        """
        with self._lock(key):
            return self._read_or_compute(key, compute)

    def get_or_compute_each(
        self, keys: Sequence[str], compute: Callable[[int], Arrays]
    ) -> list[Arrays]:
        """Return the entries under ``keys``; ``compute(i)`` makes entry ``i`` on a miss.

        First pass: every entry whose lock is free is read or computed here;
        an entry another process is computing is left for the second pass,
        which waits for it (and computes it, should that process have died).
        """
        entries: dict[int, Arrays] = {}
        held_elsewhere = []
        for index, key in enumerate(keys):
            lock = self._lock(key)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                held_elsewhere.append(index)
                continue
            try:
                entries[index] = self._read_or_compute(key, lambda i=index: compute(i))
            finally:
                lock.release()
        for index in held_elsewhere:
            entries[index] = self.get_or_compute(keys[index], lambda i=index: compute(i))
        return [entries[index] for index in range(len(keys))]
