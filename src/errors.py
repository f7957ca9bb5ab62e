"""The one exception type for user mistakes.

Entry points turn a :class:`ScaleprobeError` into a single line on stderr and a
non-zero exit; anything else is a bug and keeps its traceback.
"""

import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["ScaleprobeError", "exit_on_user_error"]


class ScaleprobeError(ValueError):
    """A user mistake: bad config value, missing file, malformed annotation.

    The message is one line that names the bad file, key or value and says
    what is allowed.
    """


@contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Turn a :class:`ScaleprobeError` into one ``error:`` line on stderr and exit code 1.

    The one place the entry points (``src.run``, ``src.extract``, ``src.report``,
    ``src.check_params``, the sweep callback) share for this; other exceptions pass.
    """
    try:
        yield
    except ScaleprobeError as error:
        sys.stderr.write(f"error: {error}\n")
        raise SystemExit(1) from None
