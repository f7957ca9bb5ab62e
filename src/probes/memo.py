"""In-process memo of probe computations, keyed by the content of their inputs.

A sweep repeats the same fits: every alpha job of a pair evaluates the same
alpha path on the same splits, and pairs that share a training class (e.g.
albatross -> kite and albatross -> racing car) fit the same training-class
probes. Hydra's basic launcher runs the jobs in one process, so a memo that
lives as long as the process lets each fit run once. Keys are hashes of the
inputs' bytes (not object identities or cache keys), so a hit returns exactly
what the computation would return on the same inputs, and a changed input can
never hit a stale entry.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from typing import Any, TypeVar

import numpy as np

from src.probes.validation import check_count

__all__ = ["ProbeMemo", "content_key"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def content_key(*parts: Any) -> str:
    """Hash the content of ``parts`` into a key.

    Parameters
    ----------
    *parts : Any
        Arrays (hashed by dtype, shape and bytes) and scalars or strings
        (hashed by ``repr``), in order.

    Returns
    -------
    str
        A SHA-256 hex digest; equal for equal content.

    Examples
    --------
    >>> content_key(np.zeros(3), 0.5) == content_key(np.zeros(3), 0.5)
    True
    >>> content_key(np.zeros(3)) == content_key(np.zeros(3, dtype=np.float32))
    False
    """
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            arr = np.ascontiguousarray(part)
            digest.update(f"array:{arr.dtype.str}:{arr.shape}:".encode())
            digest.update(arr.tobytes())
        else:
            digest.update(f"value:{part!r}:".encode())
    return digest.hexdigest()


def _nbytes(value: Any) -> int:
    """Bytes held by the arrays of a value (arrays, dataclasses, sequences, objects)."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if is_dataclass(value) and not isinstance(value, type):
        return sum(_nbytes(getattr(value, f.name)) for f in fields(value))
    if isinstance(value, list | tuple):
        return sum(_nbytes(v) for v in value)
    if hasattr(value, "__dict__"):  # a fitted probe: its arrays are attributes
        return sum(_nbytes(v) for v in vars(value).values())
    return 0


class ProbeMemo:
    """A bounded, least-recently-used memo of probe results.

    Parameters
    ----------
    max_bytes : int, default=2**30
        Upper bound on the bytes of arrays kept; the least recently used
        entries are dropped beyond it (a fit of 101 targets x 21 alphas x
        1280 features holds ~22 MB).

    Attributes
    ----------
    hits : int
        Number of lookups answered from the memo.
    misses : int
        Number of lookups that ran the computation.

    Notes
    -----
    Cached values are shared, not copied: callers must not modify them.

    Examples
    --------
    >>> memo = ProbeMemo()
    >>> memo.get_or_compute(content_key(1), lambda: np.ones(2)).tolist()
    [1.0, 1.0]
    >>> memo.get_or_compute(content_key(1), lambda: np.zeros(2)).tolist()
    [1.0, 1.0]
    >>> memo.hits, memo.misses
    (1, 1)
    """

    def __init__(self, max_bytes: int = 2**30):
        self.max_bytes = check_count(max_bytes, "max_bytes", minimum=0)
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._bytes = 0

    def get_or_compute(self, key: str, compute: Callable[[], T]) -> T:
        """Return the value stored under ``key``, computing and storing it on a miss.

        Parameters
        ----------
        key : str
            A :func:`content_key` of everything the computation depends on.
        compute : callable
            Computes the value; only called on a miss.

        Returns
        -------
        object
            The stored or freshly computed value.
        """
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[0]
        self.misses += 1
        value = compute()
        size = _nbytes(value)
        if size <= self.max_bytes:
            self._entries[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped
        return value

    def clear(self) -> None:
        """Forget every entry (the hit and miss counts are kept)."""
        self._entries.clear()
        self._bytes = 0
