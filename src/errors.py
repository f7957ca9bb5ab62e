"""The one exception type for user mistakes, and the stop a termination signal causes.

Entry points turn a :class:`ScaleprobeError` into a single line on stderr and a
non-zero exit; anything else is a bug and keeps its traceback. SIGTERM (SLURM's
time limit, ``scancel``) and SIGINT (Ctrl-C) raise :class:`RunInterrupted` from
the handler :func:`stop_on_signals` installs; the entry point cleans up (a
partial cache entry is kept for the next run to resume, a sweep's MLflow
parent is marked KILLED) and exits with ``128 + signum`` (143, 130), as a
process killed by the signal would.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["RunInterrupted", "ScaleprobeError", "exit_on_user_error", "stop_on_signals"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class ScaleprobeError(ValueError):
    """A user mistake: bad config value, missing file, malformed annotation.

    The message is one line that names the bad file, key or value and says
    what is allowed.
    """


class RunInterrupted(BaseException):
    """A termination signal arrived: stop now, keep what is resumable, exit ``128 + signum``.

    A ``BaseException``, like ``KeyboardInterrupt``, so that no ``except
    Exception`` on the way up swallows it; unlike ``KeyboardInterrupt`` it is
    re-raised by Lightning's trainer (which turns a ``KeyboardInterrupt`` into
    ``SystemExit(1)``), so the entry point sees which signal it was.
    """

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(f"interrupted by {signal.Signals(self.signum).name}")

    @property
    def exit_code(self) -> int:
        """``128 + signum``: what a shell reports for a process the signal killed."""
        return 128 + self.signum


@contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Turn a :class:`ScaleprobeError` into one ``error:`` line on stderr and exit code 1.

    The one place the entry points (``src.run``, ``src.prepare``, ``src.report``,
    ``src.check_params``, the sweep callback) share for this; other exceptions pass.
    """
    try:
        yield
    except ScaleprobeError as error:
        sys.stderr.write(f"error: {error}\n")
        raise SystemExit(1) from None


@contextmanager
def stop_on_signals(signums: tuple[int, ...] = STOP_SIGNALS) -> Iterator[None]:
    """Make SIGTERM / SIGINT raise :class:`RunInterrupted`; exit with one line and ``128 + signum``.

    Every such signal raises (a handler that fired once and then ignored the
    rest could leave a run going if the first exception landed where Python
    only prints it, such as a ``__del__``). In processes forked from this one
    (DataLoader workers) the handler does nothing: the interrupted main
    process shuts them down. The previous handlers come back on exit. Outside
    the main thread (where signals cannot be set) only the exit conversion
    applies.
    """
    owner = os.getpid()

    def handler(signum: int, frame: FrameType | None) -> None:
        if os.getpid() == owner:
            raise RunInterrupted(signum)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {signum: signal.signal(signum, handler) for signum in signums}
    try:
        yield
    except RunInterrupted as stop:
        sys.stderr.write(f"stopped: {stop}; an unfinished feature extraction resumes next run\n")
        raise SystemExit(stop.exit_code) from None
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
