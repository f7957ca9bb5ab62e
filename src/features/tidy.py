"""Entry point ``python -m src.features.tidy``: list (and prune) what the feature cache set aside.

A damaged entry is moved aside as ``<key>.corrupt-<pid>-<ns>`` and a killed
extraction leaves ``.partial-<key>``; neither is read as an entry. This lists
both, one line each, and with ``--prune`` removes the damaged copies that a
rebuilt entry of the same key supersedes, naming each. Partials are resumable
work (the next run with the same key finishes them), so they are only listed.

Examples
--------
``python -m src.features.tidy --cache-dir cache/features --prune``
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from src.errors import ScaleprobeError, exit_on_user_error
from src.features.cache import FeatureCache, Leftover

__all__ = ["describe_leftover", "main"]

DEFAULT_CACHE_DIR = "cache/features"  # conf/paths/default.yaml's paths.cache_dir


def describe_leftover(leftover: Leftover, now_ns: int) -> str:
    """One line: what the directory is, its age, and what may be done with it."""
    age_h = (now_ns - leftover.made_ns) / 3.6e12
    if leftover.kind == "corrupt":
        state = "superseded by its rebuilt entry" if leftover.superseded else "not rebuilt yet"
        return f"damaged copy {leftover.path} ({age_h:.1f} h old): {state}"
    if leftover.in_use:
        state = "being extracted now"
    elif leftover.superseded:
        state = "its entry is complete: nothing resumes it, remove it by hand"
    else:
        state = "resumable: the next run with this key finishes it"
    return f"unfinished extraction {leftover.path} ({age_h:.1f} h old): {state}"


def main(argv: Sequence[str] | None = None) -> int:
    """List the cache's leftovers on stdout; ``--prune`` removes superseded damaged copies."""
    parser = argparse.ArgumentParser(prog="python -m src.features.tidy", description=__doc__)
    parser.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR, help="the feature cache root")
    parser.add_argument(
        "--prune",
        action="store_true",
        help="remove damaged copies whose key has a rebuilt entry (partials are kept)",
    )
    args = parser.parse_args(argv)
    cache = FeatureCache(args.cache_dir)
    with exit_on_user_error():
        if not cache.root.is_dir():
            raise ScaleprobeError(f"--cache-dir {cache.root} is not a directory")
        removed = set(cache.prune_corrupt(keep_newest=False)) if args.prune else set()
        now = time.time_ns()
        for path in sorted(removed):
            sys.stdout.write(f"removed {path}\n")
        leftovers = cache.list_leftovers()
        for leftover in leftovers:
            sys.stdout.write(describe_leftover(leftover, now) + "\n")
        sys.stdout.write(f"{len(leftovers)} leftover(s) in {cache.root}, {len(removed)} removed\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
