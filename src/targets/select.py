"""The probes' rows: the records a target has a value for, and their features."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from src.data.records import ImageRecord
from src.targets.base import Target

__all__ = ["probe_rows", "target_rows"]

logger = logging.getLogger(__name__)


def target_rows(
    target: Target, records: Mapping[str, Sequence[ImageRecord]], *, log: bool = False
) -> dict[str, np.ndarray]:
    """Return ``{class: indices of its records that have a target value}``.

    Called before extraction (so bad target input stops the run before anything
    is cached, and split sizes are checked on what will be probed) and after it
    (extraction may skip unreadable images). With ``log``, each class that lost
    images logs one line of counts per reason.
    """
    out: dict[str, np.ndarray] = {}
    for class_id, class_records in records.items():
        rows, dropped = target.rows(class_records)
        if log and dropped:
            logger.info(
                "class %s: target %s has a value for %d of %d images; left out %s",
                class_id,
                target.name,
                len(rows),
                len(class_records),
                dropped,
            )
        out[class_id] = rows
    return out


def probe_rows(
    target: Target,
    features: Mapping[str, np.ndarray],
    records: Mapping[str, Sequence[ImageRecord]],
    *,
    log: bool = True,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Return ``{class: (X, y)}``: the feature rows of the records with a value, and the values.

    Features are per class and target-free (extracted for every record, one row
    each, in record order), so a target that leaves images out selects rows by
    index: nothing is extracted again.
    """
    out = {}
    for class_id, rows in target_rows(target, records, log=log).items():
        kept = [records[class_id][i] for i in rows]
        out[class_id] = (features[class_id][rows], target.values(kept))
    return out
