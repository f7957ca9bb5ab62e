"""On-disk memo of a pair's evaluation, shared by processes and nodes.

:class:`~src.probes.memo.ProbeMemo` lives in one process: enough for Hydra's
basic launcher, which runs a sweep's jobs one after another in one process.
Under the joblib launcher or on SLURM every job is its own process, and each
would refit the same path and null. This store keeps the one result that
costs (a pair's whole grid with its permutation null, ``list[PairResult]``)
on disk beside the feature cache, under the same content key the in-process
memo uses, so a job in another process reuses it exactly.

Each entry is one ``.npz`` (no pickle: arrays plus a JSON header) written to
a temporary file and renamed, with its SHA-256 beside it; a lock per entry
makes a second process wait for the first's computation instead of
repeating it. An entry whose checksum does not match is recomputed with a
warning, never used.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import numpy as np
from filelock import FileLock

from src.atomic import atomic_open, atomic_write_text
from src.errors import ScaleprobeError
from src.features.checksums import sha256_file
from src.probes.protocol import PairResult

__all__ = ["ResultStore"]

logger = logging.getLogger(__name__)

_FORMAT = 1


def _to_arrays(results: list[PairResult]) -> dict[str, np.ndarray]:
    """Flatten results into named arrays and a JSON header of the scalar fields."""
    arrays: dict[str, np.ndarray] = {}
    header: list[dict[str, object]] = []
    for index, result in enumerate(results):
        scalars: dict[str, object] = {}
        for field in fields(PairResult):
            value = getattr(result, field.name)
            if isinstance(value, np.ndarray):
                arrays[f"{index}.{field.name}"] = value
            else:
                scalars[field.name] = value  # floats, ints, str, None (no geometry)
        header.append(scalars)
    arrays["header"] = np.array(json.dumps({"format": _FORMAT, "results": header}))
    return arrays


def _from_arrays(data: np.lib.npyio.NpzFile) -> list[PairResult]:
    header = json.loads(str(data["header"]))
    if header.get("format") != _FORMAT:
        raise ValueError(f"format {header.get('format')!r}, expected {_FORMAT}")
    results = []
    for index, scalars in enumerate(header["results"]):
        values = dict(scalars)
        for field in fields(PairResult):
            name = f"{index}.{field.name}"
            if name in data.files:
                values[field.name] = data[name]
        results.append(PairResult(**values))
    return results


class ResultStore:
    """Pair evaluations on disk, keyed by :func:`~src.probes.memo.content_key`.

    Parameters
    ----------
    root : str or Path
        Directory of the entries (``paths.memo_dir``); created when missing.

    Attributes
    ----------
    hits, misses : int
        Lookups answered from disk, and lookups that computed.
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

    def _read(self, key: str) -> list[PairResult] | None:
        entry, checksum, _ = self._paths(key)
        if not entry.exists():
            return None
        try:
            expected = checksum.read_text().strip()
            if sha256_file(entry) != expected:
                raise ValueError("checksum does not match")
            with np.load(entry, allow_pickle=False) as data:
                return _from_arrays(data)
        except (OSError, ValueError, KeyError, TypeError) as error:
            logger.warning("probe memo entry %s is damaged (%s): recomputing it", entry, error)
            return None

    def _write(self, key: str, results: list[PairResult]) -> None:
        entry, checksum, _ = self._paths(key)
        try:
            with atomic_open(entry, "wb") as handle:
                np.savez(handle, **_to_arrays(results))
            atomic_write_text(checksum, sha256_file(entry) + "\n")
        except OSError as error:  # the result is still returned; only the reuse is lost
            logger.warning("probe memo entry %s not written (%s)", entry, error.strerror)

    def get_or_compute(self, key: str, compute: Callable[[], list[PairResult]]) -> list[PairResult]:
        """Return the entry under ``key``, computing and writing it on a miss.

        The entry's lock is held while computing, so processes that need the
        same entry wait for one computation rather than each making it.
        """
        _, _, lock = self._paths(key)
        lock.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(lock):
            results = self._read(key)
            if results is not None:
                self.hits += 1
                return results
            self.misses += 1
            results = compute()
            self._write(key, results)
            return results
