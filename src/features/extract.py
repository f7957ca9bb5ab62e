"""Run a backbone over image records with a Lightning predict loop.

Each batch's spatially averaged layer outputs are written straight into the
cache entry's memory-mapped array by dataset index, so memory stays flat and
rows keep the records' order whatever the sampler does.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from typing import Any

import lightning
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
from src.features.layers import feature_dims

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
    # Lightning's banner lines (GPU available, tips) drown the run's own log.
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
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


def ensure_features(
    cache: FeatureCache,
    *,
    backbone: str,
    weights: str,
    weights_sha256: str,
    build_model: Callable[[], nn.Module],
    nodes: Sequence[str],
    records: Sequence[ImageRecord],
    preprocessing: Preprocessing,
    settings: ExtractionSettings,
) -> dict[str, CacheEntry]:
    """Return one cache entry per node for ``records``, extracting only what is missing.

    All missing nodes are extracted in one pass. ``build_model`` is called
    only when something must be extracted. Parallel callers wait on each
    entry's lock and then reuse what the first one wrote.
    """
    shared = {
        "format": CACHE_FORMAT,
        "backbone": backbone,
        "weights": weights,
        "weights_sha256": weights_sha256,
        "pooling": "spatial-mean",
        "preprocessing": asdict(preprocessing),
        "images_sha256": hash_images(records),
        "n_images": len(records),
        "precision": settings.precision,
    }
    fields = {node: {**shared, "node": node} for node in nodes}
    keys = {node: entry_key(fields[node]) for node in nodes}
    entries = {node: cache.load(keys[node]) for node in nodes}
    missing = [node for node in nodes if entries[node] is None]
    if missing:
        with ExitStack() as locks:
            for node in sorted(missing, key=keys.__getitem__):
                locks.enter_context(cache.lock(keys[node]))
            entries.update({node: cache.load(keys[node]) for node in missing})
            missing = [node for node in missing if entries[node] is None]
            if missing:
                model = build_model()
                dims = feature_dims(model, missing, preprocessing.size)
                logger.info(
                    "extracting %s of %s (weights=%s) for %d images of %s",
                    ", ".join(missing),
                    backbone,
                    weights,
                    len(records),
                    ", ".join(sorted({r.class_id for r in records})),
                )
                with ExitStack() as writers:
                    arrays = {}
                    for node in missing:
                        array = writers.enter_context(cache.writer(keys[node], records, dims[node]))
                        cache.write_meta(
                            array,
                            {
                                **fields[node],
                                "key": keys[node],
                                "feature_dim": dims[node],
                                "torch": torch.__version__,
                                "lightning": lightning.__version__,
                            },
                        )
                        arrays[node] = array
                    extract_to_arrays(model, records, arrays, preprocessing, settings)
                entries.update({node: cache.load(keys[node]) for node in missing})
    return {node: entry for node, entry in entries.items() if entry is not None}
