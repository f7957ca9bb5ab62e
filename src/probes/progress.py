"""Progress of long loops as log lines (no progress-bar dependency).

Permutation nulls and alpha paths can take tens of seconds per pair; a log
line every tenth of the work says how far along a job is without flooding
the log of short runs, which stay silent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["log_progress"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def log_progress(
    items: Iterable[T],
    total: int,
    what: str,
    *,
    steps: int = 10,
    min_seconds: float = 1.0,
    log: logging.Logger | None = None,
) -> Iterator[T]:
    """Yield ``items``, logging ``what: i/total (p%), elapsed`` every ``1/steps`` of them.

    Parameters
    ----------
    items : iterable
        The work items.
    total : int
        Number of items (for the percentage).
    what : str
        What is being done, e.g. ``"n02058221->n01608432 probes"``.
    steps : int, default=10
        Number of progress lines over the whole loop (every 10%).
    min_seconds : float, default=1.0
        Stay silent until this much time has passed, so quick loops log
        nothing.
    log : logging.Logger or None, default=None
        Where to log (INFO); this module's logger if ``None``.

    Yields
    ------
    object
        The items, unchanged.

    Examples
    --------
    >>> list(log_progress(range(3), 3, "demo"))
    [0, 1, 2]
    """
    log = log or logger
    start = time.perf_counter()
    next_mark = 1
    for done, item in enumerate(items, start=1):
        yield item
        if total <= 0 or done * steps < next_mark * total:
            continue
        next_mark = done * steps // total + 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            log.info("%s: %d/%d (%d%%), %.1f s", what, done, total, 100 * done // total, elapsed)
