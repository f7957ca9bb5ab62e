"""Run a backbone over image records with a Lightning predict loop.

Each batch's spatially averaged layer outputs are written straight into the
cache entry's memory-mapped array by dataset index, so memory stays flat and
rows keep the records' order whatever the sampler does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.models.feature_extraction import create_feature_extractor

from src.data.images import load_rgb_image, resize_square
from src.data.records import ImageRecord
from src.features.cache import CacheEntry, FeatureCache, entry_key, hash_images

__all__ = [
    "ExtractionSettings",
    "PooledFeatures",
    "Preprocessing",
    "RecordImages",
    "ensure_features",
    "extract_to_arrays",
]

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CACHE_FORMAT = 1


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes network input; every field is part of the cache key.

    The whole image is resized to a square, never cropped, so the scale ratio
    of its box stays valid.
    """

    size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    resize: str = "whole-image-bilinear-antialias"


@dataclass(frozen=True)
class ExtractionSettings:
    """How the predict loop runs; none of it changes the numbers but ``precision``."""

    batch_size: int = 16
    num_workers: int = 0
    accelerator: str = "auto"
    devices: int | str = 1
    precision: str = "32-true"
    channels_last: bool = True
    progress: bool = True


class RecordImages(Dataset):
    """Images of ``records`` as uint8 (3, size, size) tensors with their row index."""

    def __init__(self, records: Sequence[ImageRecord], size: int) -> None:
        self.records = list(records)
        self.size = size

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = resize_square(load_rgb_image(self.records[index].path), self.size)
        array = np.asarray(image, dtype=np.uint8)
        return torch.from_numpy(array.copy()).permute(2, 0, 1), index


class PooledFeatures(pl.LightningModule):
    """Normalize a uint8 batch, run it to the named nodes, average each map over H and W."""

    def __init__(
        self,
        model: nn.Module,
        nodes: Sequence[str],
        preprocessing: Preprocessing,
        *,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        self.nodes = list(nodes)
        self.extractor = create_feature_extractor(model, return_nodes={n: n for n in self.nodes})
        self.channels_last = channels_last
        self.register_buffer("mean", torch.tensor(preprocessing.mean).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(preprocessing.std).view(1, 3, 1, 1) * 255)
        if channels_last:
            self.extractor = self.extractor.to(memory_format=torch.channels_last)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return ``{node: (batch, channels)}`` spatial means (flattened when not 4-d)."""
        x = (images.float() - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        outputs = self.extractor(x)
        return {
            node: (out.mean(dim=(2, 3)) if out.ndim == 4 else out.flatten(1)).float()
            for node, out in outputs.items()
        }

    def predict_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> Any:
        """Pooled features of one batch plus the dataset rows they belong to."""
        images, rows = batch
        return self(images), rows


class _ArrayWriter(BasePredictionWriter):
    """Write each batch's pooled features into per-node arrays at their dataset rows."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        super().__init__(write_interval="batch")
        self.arrays = arrays

    def write_on_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        pooled, rows = prediction
        rows = rows.cpu().numpy()
        for node, array in self.arrays.items():
            array[rows] = pooled[node].cpu().numpy()


def extract_to_arrays(
    model: nn.Module,
    records: Sequence[ImageRecord],
    arrays: dict[str, np.ndarray],
    preprocessing: Preprocessing,
    settings: ExtractionSettings,
) -> None:
    """Fill ``arrays[node]`` (N, d) with the pooled outputs of ``node`` for ``records``."""
    module = PooledFeatures(
        model, list(arrays), preprocessing, channels_last=settings.channels_last
    )
    loader = DataLoader(
        RecordImages(records, preprocessing.size),
        batch_size=settings.batch_size,
        num_workers=settings.num_workers,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=False,
    )
    trainer = pl.Trainer(
        accelerator=settings.accelerator,
        devices=settings.devices,
        precision=settings.precision,
        logger=False,
        callbacks=[_ArrayWriter(arrays)],
        enable_progress_bar=settings.progress,
        enable_model_summary=False,
        enable_checkpointing=False,
        inference_mode=True,
    )
    trainer.predict(module, dataloaders=loader, return_predictions=False)


def _key_fields(
    backbone: str,
    weights: str,
    weights_sha256: str,
    node: str,
    preprocessing: Preprocessing,
    images_sha256: str,
    n_images: int,
    precision: str,
) -> dict[str, Any]:
    return {
        "format": CACHE_FORMAT,
        "backbone": backbone,
        "weights": weights,
        "weights_sha256": weights_sha256,
        "node": node,
        "pooling": "spatial-mean",
        "preprocessing": asdict(preprocessing),
        "images_sha256": images_sha256,
        "n_images": n_images,
        "precision": precision,
    }


def ensure_features(
    cache: FeatureCache,
    *,
    backbone: str,
    weights: str,
    weights_sha256: str,
    build_model: Any,
    nodes: Sequence[str],
    records: Sequence[ImageRecord],
    preprocessing: Preprocessing,
    settings: ExtractionSettings,
) -> dict[str, CacheEntry]:
    """Return one cache entry per node for ``records``, extracting only what is missing.

    All missing nodes are extracted in one pass. ``build_model`` is a
    zero-argument callable, called only when something must be extracted.
    Parallel callers wait on each entry's lock and then reuse what the first
    one wrote.
    """
    images_sha256 = hash_images(records)
    keys = {
        node: entry_key(
            _key_fields(
                backbone,
                weights,
                weights_sha256,
                node,
                preprocessing,
                images_sha256,
                len(records),
                settings.precision,
            )
        )
        for node in nodes
    }
    entries = {node: cache.load(key) for node, key in keys.items()}
    missing = [node for node, entry in entries.items() if entry is None]
    if not missing:
        return entries  # type: ignore[return-value]
    with ExitStack() as locks:
        for node in sorted(missing, key=keys.get):
            locks.enter_context(cache.lock(keys[node]))
        entries.update({node: cache.load(keys[node]) for node in missing})
        missing = [node for node in missing if entries[node] is None]
        if missing:
            _extract_entries(
                cache,
                keys,
                missing,
                build_model,
                records,
                preprocessing,
                settings,
                backbone=backbone,
                weights=weights,
                weights_sha256=weights_sha256,
                images_sha256=images_sha256,
            )
            entries.update({node: cache.load(keys[node]) for node in missing})
    return entries  # type: ignore[return-value]


def _extract_entries(
    cache: FeatureCache,
    keys: dict[str, str],
    missing: list[str],
    build_model: Any,
    records: Sequence[ImageRecord],
    preprocessing: Preprocessing,
    settings: ExtractionSettings,
    **identity: str,
) -> None:
    model = build_model()
    from src.features.layers import feature_dims

    dims = feature_dims(model, missing, preprocessing.size)
    class_ids = sorted({r.class_id for r in records})
    logger.info(
        "extracting %s of %s (%s) for %d images of %s",
        ", ".join(missing),
        identity["backbone"],
        identity["weights"],
        len(records),
        ", ".join(class_ids),
    )
    with ExitStack() as writers:
        arrays = {
            node: writers.enter_context(cache.writer(keys[node], records, dims[node]))
            for node in missing
        }
        for node, array in arrays.items():
            meta = _key_fields(
                identity["backbone"],
                identity["weights"],
                identity["weights_sha256"],
                node,
                preprocessing,
                identity["images_sha256"],
                len(records),
                settings.precision,
            )
            meta.update(
                key=keys[node],
                feature_dim=dims[node],
                class_ids=class_ids,
                torch=torch.__version__,
                lightning=pl.__version__ if hasattr(pl, "__version__") else "",
                device=settings.accelerator,
            )
            cache.write_meta(array, meta)
        extract_to_arrays(model, records, arrays, preprocessing, settings)
