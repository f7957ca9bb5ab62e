"""A target read from a per-image CSV column, joined on an id column.

A researcher's own number per image (a rotation, a blur level, a clinical
measure) lives in a table; this target looks each record's image id up there.
Rows it cannot use are counted per reason; ``on_missing`` says whether such an
image is skipped (its features are still extracted and cached, the probes
leave its row out) or stops the run naming the image and the CSV row.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from src.data.records import ImageRecord
from src.errors import ScaleprobeError
from src.targets.base import Target

__all__ = ["ON_MISSING", "CsvTarget"]

ON_MISSING: tuple[str, ...] = ("skip", "error")
"""Values of ``target.on_missing``."""

_REASONS = ("missing_row", "duplicate_id", "not_a_number")


class CsvTarget(Target):
    """The number in ``column`` of the CSV row whose ``id_column`` is the record's image id.

    Parameters
    ----------
    path : str
        The CSV file: absolute, relative to the working directory, or relative to ``root``.
    column : str
        The column holding the target.
    name : str, default="csv"
        The ``target`` MLflow param.
    id_column : str, default="image_id"
        The column holding the image ids (file stems, :attr:`ImageRecord.image_id`).
    on_missing : {"skip", "error"}, default="skip"
        What an image without a usable row (no row, several rows, a value that
        is not a finite number) does: leave the probes, or stop the run.
    root : str or None, default=None
        The data root, where a relative ``path`` is looked up when it is not
        found from the working directory.

    Raises
    ------
    ScaleprobeError
        If the file does not exist, cannot be read as CSV, or lacks ``column``
        or ``id_column`` (the message lists the columns).
    """

    def __init__(
        self,
        path: str,
        column: str,
        name: str = "csv",
        id_column: str = "image_id",
        on_missing: str = "skip",
        root: str | None = None,
    ) -> None:
        super().__init__(name)
        if on_missing not in ON_MISSING:
            raise ScaleprobeError(
                f"target.on_missing={on_missing!r} is not allowed; choose from {list(ON_MISSING)}"
            )
        self.path = _resolve(path, root)
        self.column, self.id_column, self.on_missing = column, id_column, on_missing
        self.label = f"{column} (from {self.path.name})"
        self._rows = _read(self.path, column, id_column)

    def rows(self, records: Sequence[ImageRecord]) -> tuple[np.ndarray, dict[str, int]]:
        """Return the records with exactly one finite value, and the others counted per reason.

        Raises
        ------
        ScaleprobeError
            If no record's image id is in the id column, or, with
            ``on_missing="error"``, at the first record without a usable value
            (naming the image and the CSV row).
        """
        if records and not any(r.image_id in self._rows for r in records):
            raise ScaleprobeError(
                f"target.id_column={self.id_column!r} of {self.path} matches no image of class "
                f"{records[0].class_id} (e.g. image id {records[0].image_id!r})"
            )
        kept: list[int] = []
        dropped = dict.fromkeys(_REASONS, 0)
        for index, record in enumerate(records):
            reason, where = self._problem(record.image_id)
            if reason is None:
                kept.append(index)
                continue
            if self.on_missing == "error":
                raise ScaleprobeError(
                    f"target.column={self.column!r} of {self.path}: image {record.image_id} "
                    f"({record.path}) has {reason.replace('_', ' ')} {where}; "
                    "target.on_missing=skip leaves such images out"
                )
            dropped[reason] += 1
        return np.asarray(kept, dtype=np.intp), {k: v for k, v in dropped.items() if v}

    def value(self, record: ImageRecord) -> float:
        """Return the record's number; :meth:`rows` says which records have one."""
        reason, where = self._problem(record.image_id)
        if reason is not None:
            raise ScaleprobeError(
                f"target.column={self.column!r} of {self.path}: image {record.image_id} has "
                f"{reason.replace('_', ' ')} {where}"
            )
        return float(self._rows[record.image_id][0][1])

    def _problem(self, image_id: str) -> tuple[str | None, str]:
        """Say why ``image_id`` has no usable value (a reason and where), or ``(None, "")``."""
        found = self._rows.get(image_id)
        if not found:
            return "missing_row", f"(no row with {self.id_column}={image_id!r})"
        if len(found) > 1:
            return "duplicate_id", f"(rows {', '.join(str(line) for line, _ in found)})"
        line, text = found[0]
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            return "not_a_number", f"(row {line}: {text!r})"
        return None, ""


def _resolve(path: str, root: str | None) -> Path:
    """Find ``path`` as given, else under ``root``; raise naming both when neither exists."""
    given = Path(str(path)).expanduser()
    candidates = [given] if given.is_absolute() or root is None else [given, Path(root) / given]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    tried = " or ".join(str(c) for c in candidates)
    raise ScaleprobeError(f"target.path={str(path)!r}: no such file ({tried})")


def _read(path: Path, column: str, id_column: str) -> dict[str, list[tuple[int, str]]]:
    """Return ``{image id: [(CSV line, raw value), ...]}`` of the file's rows."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = list(reader.fieldnames or [])
            for key, wanted in (("id_column", id_column), ("column", column)):
                if wanted not in columns:
                    raise ScaleprobeError(
                        f"target.{key}={wanted!r} is not a column of {path}; its columns: {columns}"
                    )
            rows: dict[str, list[tuple[int, str]]] = {}
            for row in reader:
                value = row.get(column)
                rows.setdefault(str(row.get(id_column)), []).append(
                    (reader.line_num, "" if value is None else value)
                )
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ScaleprobeError(f"target.path={str(path)!r} cannot be read as CSV: {error}") from None
    return rows
