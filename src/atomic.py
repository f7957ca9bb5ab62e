"""Atomic file writes: a reader (or a crash) sees the old content or the new, never half.

Every file scaleprobe writes that another process may read while it is being
written (cache progress records, manifests, sweep summaries, memo entries)
goes through :func:`atomic_open`: the data goes to a temporary file beside the
target, is flushed and fsynced, then renamed over the target. On any error the
temporary file is removed and the target is left as it was.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_open", "atomic_write_text"]


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success fsync it and rename it to ``path``.

    Parameters
    ----------
    path : path-like
        The file to (re)place.
    mode : {"w", "wb"}, default="w"
        Text or binary; text defaults to UTF-8.
    **kwargs
        Passed to :func:`open` (``newline=""`` for CSV, say).

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_open(target) as handle:
    ...     _ = handle.write("whole")
    >>> target.read_text()
    'whole'
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode={mode!r} is not allowed; choose from ['w', 'wb']")
    if mode == "w":
        kwargs.setdefault("encoding", "utf-8")
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path) as handle:
        handle.write(text)
