"""The one exception type for user mistakes.

Entry points turn a :class:`ScaleprobeError` into a single line on stderr and a
non-zero exit; anything else is a bug and keeps its traceback.
"""

__all__ = ["ScaleprobeError"]


class ScaleprobeError(ValueError):
    """A user mistake: bad config value, missing file, malformed annotation.

    The message is one line that names the bad file, key or value and says
    what is allowed.
    """
