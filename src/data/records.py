"""Image records and the per-class counts of the loading rules.

An :class:`ImageRecord` is one usable image (identity, size, box), the same for
synthetic and real data; the dataset loaders (:mod:`src.data.imagenet`,
:mod:`src.data.voc`, :mod:`src.data.coco`) make them and nothing downstream opens an annotation.
Each rule that drops an image is counted per class in :class:`RecordCounts`,
so that a run can log how many images each class lost and why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from src.data.boxes import Box

__all__ = ["FAULT_COUNTS", "ImageRecord", "RecordCounts"]


@dataclass(frozen=True)
class ImageRecord:
    """One usable image: where it is, its class, its size and its object box.

    Identity and annotations only: what the probes regress on is a target's
    job (:mod:`src.targets`), so features and the cache never depend on it.

    Parameters
    ----------
    image_id : str
        File stem, e.g. ``"n02058221_123"`` or ``"2008_000123"``.
    path : str
        Absolute path of the image file.
    class_id : str
        WNID (ImageNet, synthetic) or VOC class name.
    width, height : int
        Image size read from the image file's header (the annotation's size
        only when the header cannot be read; extraction then reports the image).
    box : Box
        The object's box after the multi-object policy.
    mask_area : float or None, default=None
        Pixels of the object's segmentation mask, for the same object(s) the
        policy chose (COCO, :mod:`src.data.coco`); ``None`` where the data has
        no masks (ImageNet, VOC, synthetic), so ``target.area=mask`` can refuse.
    """

    image_id: str
    path: str
    class_id: str
    width: int
    height: int
    box: Box
    mask_area: float | None = None


FAULT_COUNTS: tuple[str, ...] = (
    "size_mismatch",
    "size_mismatch_skipped",
    "symlink_loop",
    "missing_image",
    "crowd",
)
"""Counters of data faults (and COCO's crowd objects), listed by :meth:`RecordCounts.as_dict`
only when non-zero."""


@dataclass
class RecordCounts:
    """Per-class tally of what the loading rules kept and dropped.

    Parameters
    ----------
    kept : int, default=0
        Images that became records.
    no_box : int, default=0
        Images without an annotation or without any object of the class.
    multi_object : int, default=0
        Images dropped by ``policy="single"`` because they hold several objects
        of the class.
    filtered : int, default=0
        VOC images whose objects of the class were all removed by the
        ``include_difficult`` / ``include_truncated`` options; COCO images whose
        objects of the class are all ``iscrowd``.
    bad : int, default=0
        Annotated images whose image file is missing or whose header cannot be
        read (the size is then unknown).
    size_mismatch : int, default=0
        Kept images whose annotation ``<size>`` differs from the image file's
        size (``on_size_mismatch="use_image"``: the image's size is used).
    size_mismatch_skipped : int, default=0
        Images dropped because their annotation size differs from the image
        (``on_size_mismatch="skip"``).
    symlink_loop : int, default=0
        Image or annotation paths that are symlink loops (they cannot be read).
    missing_image : int, default=0
        LOC CSV rows of the class (``ImageId`` ``<wnid>_<n>``) whose image file
        is not in the class directory.
    crowd : int, default=0
        COCO ``iscrowd`` objects of the class skipped (objects, not images: not
        in :attr:`total`); an image left without objects counts as ``filtered``.
    """

    kept: int = 0
    no_box: int = 0
    multi_object: int = 0
    filtered: int = 0
    bad: int = 0
    size_mismatch: int = 0
    size_mismatch_skipped: int = 0
    symlink_loop: int = 0
    missing_image: int = 0
    crowd: int = 0

    @property
    def total(self) -> int:
        """All images (or CSV rows without an image) seen for the class, kept or not."""
        return (
            self.kept
            + self.no_box
            + self.multi_object
            + self.filtered
            + self.bad
            + self.size_mismatch_skipped
            + self.symlink_loop
            + self.missing_image
        )

    def as_dict(self) -> dict[str, int]:
        """Return the counts as a plain dict, e.g. for logging.

        The five rule counts always appear; a fault counter (:data:`FAULT_COUNTS`)
        only when it is non-zero, so a clean class logs one short line and a
        fault is never hidden.
        """
        counts = asdict(self)
        return {k: v for k, v in counts.items() if v or k not in FAULT_COUNTS}

    def after_extraction(self, n_probed: int) -> RecordCounts:
        """Return the counts once extraction skipped unreadable images.

        Parameters
        ----------
        n_probed : int
            Records left after the extraction (``extract.on_bad_image=skip``
            drops the images it cannot decode): they are the images probed.

        Returns
        -------
        RecordCounts
            A copy with ``kept=n_probed`` and the images the extraction skipped
            added to ``bad``.
        """
        skipped = self.kept - n_probed
        return replace(self, kept=n_probed, bad=self.bad + skipped)
