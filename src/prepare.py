"""Entry point ``python -m src.prepare``: the pipeline's data and features stages.

It composes the same ``conf/`` as ``python -m src.run`` and fills the same
feature cache through :func:`src.features.classes.class_features`, so every entry it writes
is one a probe run finds and reuses. Two optional keys, added with Hydra's
``+`` because only this entry reads them:

``+pairs=[albatross_albatross,albatross_kite]``
    Options of the ``pair`` group whose classes are loaded (default: the
    composed ``pair``). Each class is extracted once, however many pairs name it.
``+manifest=data/manifest.csv``
    Write the data manifest (one row per image: class, file, size, box and the
    SHA-256 of the image bytes) and extract nothing. The synthetic set is
    generated first if missing. The manifest is what DVC versions for the data:
    it changes exactly when an image, a box or the class list changes.

Examples
--------
``python -m src.prepare +pairs=[albatross_kite,albatross_racing_car] layer=mixed7``
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import hydra
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from src.config import validate_config
from src.data.records import ImageRecord
from src.data.sources import load_records_with_counts, log_probed
from src.errors import ScaleprobeError, exit_on_user_error, stop_on_signals

__all__ = ["MANIFEST_FIELDS", "main", "pair_classes", "prepare", "write_manifest"]

logger = logging.getLogger(__name__)

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
MANIFEST_FIELDS = (
    "class_id",
    "image_id",
    "file",
    "width",
    "height",
    "xmin",
    "ymin",
    "xmax",
    "ymax",
    "sha256",
)


def pair_classes(names: Sequence[str], conf_dir: Path = CONF_DIR) -> list[str]:
    """Return the classes of the ``pair`` options ``names``, each once, in order.

    Parameters
    ----------
    names : sequence of str
        Option names of the ``pair`` group, e.g. ``["albatross_kite"]``.
    conf_dir : path, default=the repository's ``conf/``
        Where the ``pair/`` group lives.

    Returns
    -------
    list of str
        ``train_class`` then ``test_class`` of each pair, duplicates dropped.

    Raises
    ------
    ScaleprobeError
        If a name is not an option of ``pair/`` or its file has no classes.

    Examples
    --------
    >>> pair_classes(["albatross_albatross", "albatross_kite"])
    ['n02058221', 'n01608432']
    """
    options = sorted(p.stem for p in (conf_dir / "pair").glob("*.yaml"))
    classes: list[str] = []
    for name in names:
        path = conf_dir / "pair" / f"{name}.yaml"
        if name not in options:
            raise ScaleprobeError(f"pairs: {name!r} is not a pair; choose from {options}")
        try:
            pair = OmegaConf.load(path)
            found = [str(pair.train_class), str(pair.test_class)]
        except OmegaConfBaseException:
            raise ScaleprobeError(
                f"pairs: {name!r} ({path}) does not name its classes; "
                "pairs take options with fixed train_class and test_class"
            ) from None
        classes.extend(found)
    return list(dict.fromkeys(classes))


def _file_of(record: ImageRecord, root: Path) -> str:
    """Return the image path relative to the data root, so clones write the same manifest."""
    path = Path(record.path)
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def write_manifest(
    path: str | os.PathLike[str], records: Mapping[str, list[ImageRecord]], root: str
) -> int:
    """Write one CSV row per image (classes in order, images in record order).

    Parameters
    ----------
    path : path-like
        The CSV to write; written to a temporary file and renamed, so a reader
        never sees half of it.
    records : mapping of str to list of ImageRecord
        Records per class, as :func:`src.data.sources.load_class_records` returns.
    root : str
        The data root; image paths are stored relative to it.

    Returns
    -------
    int
        The number of rows written.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    rows = 0
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(MANIFEST_FIELDS)
            for class_id, class_records in records.items():
                for record in class_records:
                    digest = hashlib.sha256(Path(record.path).read_bytes()).hexdigest()
                    box = record.box
                    writer.writerow(
                        [
                            class_id,
                            record.image_id,
                            _file_of(record, Path(root)),
                            record.width,
                            record.height,
                            box.xmin,
                            box.ymin,
                            box.xmax,
                            box.ymax,
                            digest,
                        ]
                    )
                    rows += 1
        os.replace(tmp, out)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise ScaleprobeError(f"cannot write manifest {out}: {error.strerror or error}") from None
    return rows


def _requested_pairs(cfg: DictConfig) -> list[str]:
    pairs = cfg.get("pairs")
    if pairs is None:
        return [str(cfg.pair.name)]
    if isinstance(pairs, str):
        pairs = [pairs]
    if not isinstance(pairs, (list, ListConfig)) or not pairs:
        raise ScaleprobeError(
            f"pairs={pairs!r} is not allowed; expected a non-empty list of pair options, "
            "e.g. +pairs=[albatross_albatross,albatross_kite]"
        )
    return [str(p) for p in pairs]


def prepare(cfg: DictConfig) -> dict[str, str]:
    """Load the records of the requested pairs' classes; write the manifest or extract.

    Returns
    -------
    dict of str to str
        Class id to cache key (empty when only the manifest was written).
    """
    validate_config(cfg)
    classes = pair_classes(_requested_pairs(cfg))
    data = OmegaConf.to_container(cfg.data, resolve=True)
    records, counts = load_records_with_counts(data, classes)
    empty = [c for c in classes if not records[c]]
    if empty:
        raise ScaleprobeError(
            f"classes {empty} have no usable images under data.root={data['root']!r}"
        )
    manifest = cfg.get("manifest")
    if manifest is not None:
        rows = write_manifest(str(manifest), records, str(data["root"]))
        logger.info("wrote %s: %d images of %d classes", manifest, rows, len(classes))
        return {}
    from src.features.classes import class_features_from_config  # torch loads only to extract
    from src.features.controls import control_features

    _, keys, source, _ = class_features_from_config(cfg, records)
    # The controls' entries too (conf/controls), so the probes stage's jobs find every
    # feature they read in this stage's output and write nothing into it.
    control_features(cfg, records)
    log_probed(records, counts)
    for class_id, key in keys.items():
        logger.info("features of %s: %s/%s", class_id, cfg.paths.cache_dir, key)
    logger.info("%d classes ready in %s (weights=%s)", len(keys), cfg.paths.cache_dir, source.label)
    return keys


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    """Hydra entry: a user mistake becomes one ``error:`` line and exit code 1.

    SIGTERM / SIGINT stop it with exit 143 / 130, the partial entry kept.
    """
    with exit_on_user_error(), stop_on_signals():
        prepare(cfg)


if __name__ == "__main__":
    main()
