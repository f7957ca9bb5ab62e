"""Memory the permutation null needs, checked before anything is allocated.

The protocol fits the real ratios and ``n_permutations`` permutations of them
at once, for a whole grid of hyperparameters, on every split. Its arrays grow
with ``n_permutations``: a typo like ``n_permutations=100000000`` asks for tens
of GiB and would end in a ``MemoryError`` (or the OOM killer) after the
features were extracted. :func:`check_null_memory` refuses such a request with
one line instead, before the first array is made.
"""

from __future__ import annotations

import logging
import os

from src.errors import ScaleprobeError

__all__ = ["available_memory", "check_null_memory", "null_memory_bytes"]

logger = logging.getLogger(__name__)

_FLOAT = 8  # bytes of a float64


def null_memory_bytes(
    *, n_grid: int, n_splits: int, n_train: int, n_test: int, n_features: int, n_permutations: int
) -> int:
    """Estimate the peak bytes of one protocol evaluation (the dominant arrays only).

    Counted, in float64: the training- and test-image fits of one split
    (coefficients and intercepts of ``(1 + n_permutations)`` targets by
    ``n_grid`` hyperparameters by ``n_features``), their test predictions,
    the permuted target matrices, and the per-split nulls of R² and angle
    kept for every grid point (twice: the results are copied once). Smaller
    arrays (per-split metrics, the features themselves) are left out, so the
    true peak is a little higher.

    Parameters
    ----------
    n_grid : int
        Number of hyperparameter values fitted at once (e.g. alphas).
    n_splits, n_train, n_test : int
        The protocol's splits and their sizes.
    n_features : int
        Number of features (feature maps).
    n_permutations : int
        Permutations of the targets per split.

    Returns
    -------
    int
        Estimated bytes.

    Examples
    --------
    >>> null_memory_bytes(n_grid=1, n_splits=1, n_train=2, n_test=2, n_features=1,
    ...                   n_permutations=1)
    256
    """
    targets = 1 + n_permutations
    fits = 2 * targets * n_grid * (n_features + 1)  # coef and intercept, train and test images
    predictions = targets * n_grid * n_test
    permuted = 2 * targets * (n_train + n_test)  # the permutation lists and the stacked targets
    nulls = 2 * 2 * n_grid * n_splits * n_permutations  # R² and angle, and their copies
    return _FLOAT * (fits + predictions + permuted + nulls)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation, or ``None`` if unknown.

    ``psutil.virtual_memory().available`` (free plus reclaimable page cache)
    where psutil is installed, else the free pages from ``os.sysconf``
    (``SC_AVPHYS_PAGES``, which ignores the page cache: a lower bound).
    """
    try:
        import psutil  # optional: installed with MLflow, not a probes dependency
    except ImportError:
        pass
    else:
        return int(psutil.virtual_memory().available)
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def check_null_memory(
    *,
    n_grid: int,
    n_splits: int,
    n_train: int,
    n_test: int,
    n_features: int,
    n_permutations: int,
    limit: int | None = None,
) -> int:
    """Refuse an evaluation whose permutation null cannot fit in memory.

    Parameters
    ----------
    n_grid, n_splits, n_train, n_test, n_features, n_permutations : int
        As in :func:`null_memory_bytes`.
    limit : int or None, default=None
        Bytes allowed; ``None``: :func:`available_memory` now (no check when
        that is unknown).

    Returns
    -------
    int
        The estimate, in bytes.

    Raises
    ------
    ScaleprobeError
        If the estimate exceeds the limit; the message names
        ``n_permutations``, the estimate, the limit and the largest
        ``n_permutations`` that fits.
    """
    sizes = {
        "n_grid": n_grid,
        "n_splits": n_splits,
        "n_train": n_train,
        "n_test": n_test,
        "n_features": n_features,
    }
    need = null_memory_bytes(**sizes, n_permutations=n_permutations)
    if limit is None:
        limit = available_memory()
    if limit is None or need <= limit:
        return need
    per_permutation = null_memory_bytes(**sizes, n_permutations=1) - null_memory_bytes(
        **sizes, n_permutations=0
    )
    base = null_memory_bytes(**sizes, n_permutations=0)
    fits = max(0, (limit - base) // per_permutation)
    raise ScaleprobeError(
        f"n_permutations={n_permutations} needs about {_gib(need)} of memory for the null "
        f"({n_grid} grid points x {n_features} features x {n_splits} splits) but "
        f"{_gib(limit)} is available; use n_permutations <= {fits}"
    )
