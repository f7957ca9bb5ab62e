"""The target interface: records in, one float64 per record out."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from src.data.records import ImageRecord
from src.errors import ScaleprobeError

__all__ = ["Target"]


class Target(ABC):
    """A per-image regression target.

    Subclasses implement :meth:`value` (one record) and set :attr:`label`;
    :meth:`values` is what callers use. A target reads only the record
    (identity, size, box): it must not open the image, so that features and
    targets stay independent.

    Parameters
    ----------
    name : str
        Short name, the ``target`` MLflow param (e.g. ``"scale"``); the YAML of
        ``conf/target/`` sets it.

    Attributes
    ----------
    label : str
        Human-readable description for the report's captions and axes.
    """

    label: str = ""

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ScaleprobeError(f"target.name={name!r} is not allowed; expected a short name")
        self.name = name

    @abstractmethod
    def value(self, record: ImageRecord) -> float:
        """Return the target of one record."""

    def rows(self, records: Sequence[ImageRecord]) -> tuple[np.ndarray, dict[str, int]]:
        """Return the indices of ``records`` that have a value, and why the others have none.

        A box target has a value for every record; a per-image table may lack
        some (:class:`~src.targets.table.CsvTarget`, ``on_missing="skip"``).
        Features are extracted for all records (the cache stays target-free) and
        the probes take these rows of them.

        Returns
        -------
        rows : numpy.ndarray of int
            Ascending indices into ``records``.
        dropped : dict of str to int
            Records without a value, per reason (empty when none).
        """
        return np.arange(len(records)), {}

    def values(self, records: Sequence[ImageRecord]) -> np.ndarray:
        """Return the targets of ``records``, shape ``(len(records),)``, float64.

        Raises
        ------
        ScaleprobeError
            If a value is not a finite number; the message names the target
            and the image.
        """
        out = np.empty(len(records), dtype=np.float64)
        for row, record in enumerate(records):
            value = self.value(record)
            number = not isinstance(value, bool) and isinstance(value, int | float | np.number)
            if not number or not math.isfinite(value):
                raise ScaleprobeError(
                    f"target {self.name!r} gave {value!r} for image {record.path}; "
                    "expected a finite number"
                )
            out[row] = value
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
