"""Run a backbone over image records with a Lightning predict loop, resumably.

Images are cut into fixed batches; DataLoader workers read, decode and resize
whole batches ahead of the forward pass (on a GPU, JPEG decoding and resizing
run on the device instead). Each batch's spatially averaged layer outputs are
written straight into the cache's memory-mapped partial array by dataset row,
so memory stays flat, rows keep the records' order whatever the sampler or
the number of devices, and a killed run resumes from its finished batches.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import lightning
import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.plugins.environments import LightningEnvironment
from PIL import Image
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from src.data.images import load_rgb_image, resize_square
from src.data.records import ImageRecord
from src.errors import RunInterrupted, ScaleprobeError
from src.features.backbones import RANDOM_WEIGHTS, WeightsSource
from src.features.backbones import model_fields as spec_model_fields
from src.features.cache import (
    CacheEntry,
    FeatureCache,
    PartialEntry,
    entry_key,
    hash_images,
    storage_error,
)
from src.features.graph import feature_extractor
from src.features.launched import LaunchedWorld, launched_world
from src.features.layers import feature_dims
from src.features.reduce import Reduction, reduce_node, token_info

__all__ = [
    "BAD_IMAGE_POLICIES",
    "ExtractionSettings",
    "PooledFeatures",
    "Preprocessing",
    "RecordImages",
    "default_num_workers",
    "ensure_features",
    "entry_fields",
    "feature_fields",
    "key_params",
    "load_image_row",
    "resolve_settings",
]

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CACHE_FORMAT = 3  # 3: index.csv without the ratio column
BAD_IMAGE_POLICIES = ("skip", "error")
_ACCELERATORS = ("auto", "cpu", "gpu", "cuda")
_JPEG_MAGIC = b"\xff\xd8\xff"
# What the GPU path changes in the pixels (decoder and resize op): part of the key.
_DEVICE_DECODE = {"decode": "nvjpeg-or-pil", "resize": "torch-bilinear-antialias"}


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
    decode: str = "pil"


@dataclass(frozen=True)
class ExtractionSettings:
    """How the predict loop runs.

    Of these only the effective ``precision`` and the device decoding (see
    :func:`resolve_settings`) change the numbers, so only they enter the key.

    Parameters
    ----------
    batch_size : int, default=16
        Images per forward pass. A resumed extraction keeps the batch size it
        started with, so resumed batches are computed exactly as before.
    num_workers : int or "auto", default="auto"
        DataLoader worker processes that read, decode and resize ahead of the
        forward pass; ``auto`` leaves one core to the forward
        (:func:`default_num_workers`).
    accelerator : {"auto", "cpu", "gpu", "cuda"}, default="auto"
        ``gpu`` without a CUDA device falls back to the CPU with a warning.
    devices : int, default=1
        More than one device (GPUs, or with ``accelerator="cpu"`` CPU
        processes on gloo) runs Lightning's ``ddp_spawn`` strategy: each
        process writes its batches' rows by dataset index, so the entry is in
        dataset order and byte-identical to one process (on the CPU, one with
        a rank's ``cores // devices`` threads: the thread count moves the last
        bits; tests/integration/test_ddp.py). On a GPU-less machine asked for
        ``gpu``/``auto`` it falls back to one CPU process.
    num_nodes : int, default=1
        Machines of a DDP extraction. Above 1, srun or torchrun starts
        ``devices`` processes on each node, every one running the same
        ``python -m src.prepare``; rank 0 decides and commits, the others
        write their share of the rows (:mod:`src.features.launched`).
    precision : str, default="32-true"
        Lightning precision, e.g. ``bf16-mixed`` on a GPU; on the CPU any
        other value falls back to ``32-true`` with a warning.
    channels_last : bool, default=True
        NHWC memory layout (faster convolutions on CPU and tensor cores).
    progress : bool, default=True
        Show Lightning's progress bar.
    on_bad_image : {"skip", "error"}, default="skip"
        An unreadable, empty, truncated or oversized image is left out of the
        entry (counted, logged, listed in its meta.json) or stops the run
        naming the file.
    gpu_decode : bool, default=True
        On a GPU, decode JPEGs with ``torchvision.io.decode_jpeg(device="cuda")``
        and resize there; the key records the different decoder and resize.
    checkpoint_s : float, default=1.0
        At most this many seconds of work are lost when a run is killed: the
        rows are flushed and the progress record replaced this often.
    """

    batch_size: int = 16
    num_workers: int | str = "auto"
    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    precision: str = "32-true"
    channels_last: bool = True
    progress: bool = True
    on_bad_image: str = "skip"
    gpu_decode: bool = True
    checkpoint_s: float = 1.0

    def __post_init__(self) -> None:
        if self.on_bad_image not in BAD_IMAGE_POLICIES:
            raise ScaleprobeError(
                f"extract.on_bad_image={self.on_bad_image!r} is not allowed; "
                f"choose from {list(BAD_IMAGE_POLICIES)}"
            )
        if self.accelerator not in _ACCELERATORS:
            raise ScaleprobeError(
                f"extract.accelerator={self.accelerator!r} is not allowed; "
                f"choose from {list(_ACCELERATORS)}"
            )
        devices = self.devices
        if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
            raise ScaleprobeError(
                f"extract.devices={devices!r} is not allowed; expected an integer >= 1"
            )
        nodes = self.num_nodes
        if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 1:
            raise ScaleprobeError(
                f"extract.num_nodes={nodes!r} is not allowed; expected an integer >= 1"
            )
        workers = self.num_workers
        if workers != "auto" and (
            isinstance(workers, bool) or not isinstance(workers, int) or workers < 0
        ):
            raise ScaleprobeError(
                f"extract.num_workers={workers!r} is not allowed; expected 'auto' or an "
                "integer >= 0"
            )


def default_num_workers() -> int:
    """Workers for the machine: every usable core but one (kept for the forward), at most 4.

    On 2 cores that is one worker, which decodes and resizes well ahead of a
    CNN forward pass; more than 4 only costs memory for this workload.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(0, min(4, cores - 1))


def resolve_settings(settings: ExtractionSettings) -> ExtractionSettings:
    """Return the settings this machine actually runs: the CPU fallback applied, workers sized.

    The cache key is computed from the resolved settings, so a GPU-less
    machine asked for ``bf16-mixed`` writes (and finds) 32-bit features.
    """
    cuda = torch.cuda.is_available()
    accelerator, devices, precision = settings.accelerator, settings.devices, settings.precision
    if accelerator in ("gpu", "cuda") and not cuda:
        logger.warning("extract.accelerator=%s but no CUDA device: extracting on CPU", accelerator)
    on_gpu = cuda and accelerator != "cpu"
    if not on_gpu:
        if accelerator != "cpu" and devices != 1:  # GPUs asked for, none here: one process
            logger.warning("extract.devices=%s without a GPU: extracting in one process", devices)
            devices = 1
        accelerator = "cpu"
        if precision not in ("32-true", "32"):
            logger.warning("extract.precision=%s needs a GPU here: using 32-true on CPU", precision)
            precision = "32-true"
    else:
        accelerator = "gpu"
    workers = settings.num_workers
    if workers == "auto":
        workers = default_num_workers()
    return replace(
        settings,
        accelerator=accelerator,
        devices=devices,
        precision=str(precision),
        num_workers=int(workers),
        gpu_decode=settings.gpu_decode and on_gpu,
    )


def load_image_row(path: str, size: int) -> tuple[np.ndarray, str | None]:
    """Return an image as a uint8 (3, size, size) array, or zeros and why it is unusable."""
    try:
        image = resize_square(load_rgb_image(path), size)
    except ScaleprobeError as error:
        return np.zeros((3, size, size), dtype=np.uint8), str(error)
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1), None


def _encoded_row(path: str) -> tuple[torch.Tensor, str | None]:
    """Raw JPEG bytes for device decoding, or a decoded full-size (3, H, W) uint8 tensor.

    Non-JPEG files (PNG saved as .JPEG, CMYK) are decoded here by PIL; the
    header is checked first so a decompression bomb never reaches the GPU.
    """
    try:
        data = Path(path).read_bytes()
        if data.startswith(_JPEG_MAGIC):
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(path) as header:
                    if header.mode == "RGB":
                        return torch.frombuffer(bytearray(data), dtype=torch.uint8), None
        array = np.asarray(load_rgb_image(path), dtype=np.uint8).transpose(2, 0, 1)
        return torch.from_numpy(array.copy()), None
    except (ScaleprobeError, OSError, Image.DecompressionBombError) as error:
        return torch.zeros(3, 1, 1, dtype=torch.uint8), f"{path}: {error}"
    except Image.DecompressionBombWarning as error:
        return torch.zeros(3, 1, 1, dtype=torch.uint8), f"{path}: {error}"


class RecordImages(Dataset):
    """Fixed batches of ``records``: one item is one batch, ready for the forward pass.

    An item is a dict with ``batch`` (its id), ``rows`` (dataset rows),
    ``images`` (uint8 (B, 3, size, size)) or, with ``encoded``, ``encoded`` (a
    list of raw JPEG bytes / decoded tensors for device decoding), and
    ``bad`` (``{row: reason}`` of unusable images, whose pixels are zeros).
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        size: int,
        batches: Sequence[tuple[int, Sequence[int]]],
        *,
        encoded: bool = False,
    ) -> None:
        self.paths = [r.path for r in records]
        self.size = size
        self.batches = [(b, list(rows)) for b, rows in batches]
        self.encoded = encoded

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> dict[str, Any]:
        batch, rows = self.batches[index]
        bad: dict[int, str] = {}
        if self.encoded:
            encoded = []
            for row in rows:
                tensor, reason = _encoded_row(self.paths[row])
                encoded.append(tensor)
                if reason is not None:
                    bad[row] = reason
            item: dict[str, Any] = {"encoded": encoded}
        else:
            images = np.empty((len(rows), 3, self.size, self.size), dtype=np.uint8)
            for i, row in enumerate(rows):
                images[i], reason = load_image_row(self.paths[row], self.size)
                if reason is not None:
                    bad[row] = reason
            item = {"images": torch.from_numpy(images)}
        item.update(batch=batch, rows=torch.tensor(rows, dtype=torch.long), bad=bad)
        return item


class PooledFeatures(pl.LightningModule):
    """Normalize a uint8 batch, run it to the named nodes, reduce each output to a vector.

    ``reduction`` says how (src/features/reduce.py; default: each NCHW map
    averaged over H and W, the paper's rule); ``family`` is the builder's name.
    """

    def __init__(
        self,
        model: nn.Module,
        nodes: Sequence[str],
        preprocessing: Preprocessing,
        *,
        channels_last: bool = True,
        reduction: Reduction | None = None,
        family: str = "",
    ) -> None:
        super().__init__()
        self.nodes = list(nodes)
        self.reduction = reduction or Reduction()
        self.family = family
        self.tokens = token_info(model, family)
        self.size = preprocessing.size
        self.extractor = feature_extractor(model, self.nodes)
        self.channels_last = channels_last
        self.register_buffer("mean", torch.tensor(preprocessing.mean).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(preprocessing.std).view(1, 3, 1, 1) * 255)
        if channels_last:
            self.extractor = self.extractor.to(memory_format=torch.channels_last)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return ``{node: (batch, dim)}`` reduced outputs (NCHW: mean over H, W)."""
        x = (images.float() - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        outputs = self.extractor(x)
        return {
            node: reduce_node(node, out, self.reduction, self.tokens).float()
            for node, out in outputs.items()
        }

    def feature_dims(self) -> dict[str, int]:
        """Length of each node's vector, from one blank image (a bad layout raises here)."""
        blank = torch.zeros(1, 3, self.size, self.size, dtype=torch.uint8)
        with torch.inference_mode():
            return {node: int(value.shape[1]) for node, value in self(blank).items()}

    def decode_on_device(self, encoded: Sequence[torch.Tensor]) -> torch.Tensor:
        """Decode raw JPEGs on this module's device and resize all images there.

        ``encoded`` holds 1-d byte tensors (JPEG files) and 3-d uint8 tensors
        (already decoded on the CPU); the result is a float (B, 3, size, size)
        batch of rounded 0..255 values, like the CPU path's uint8 pixels.
        """
        from torchvision.io import ImageReadMode, decode_jpeg

        device = self.mean.device
        jpeg_at = [i for i, t in enumerate(encoded) if t.ndim == 1]
        images: list[torch.Tensor | None] = [None] * len(encoded)
        if jpeg_at:
            try:
                decoded = decode_jpeg(
                    [encoded[i] for i in jpeg_at], mode=ImageReadMode.RGB, device=device
                )
            except RuntimeError:  # one bad file fails the batch: decode one by one
                decoded = [
                    _decode_one(encoded[i], device, decode_jpeg, ImageReadMode.RGB) for i in jpeg_at
                ]
            for i, image in zip(jpeg_at, decoded, strict=True):
                images[i] = image
        side = (self.size, self.size)
        out = []
        for i, tensor in enumerate(encoded):
            image = images[i] if images[i] is not None else tensor.to(device, non_blocking=True)
            resized = F.interpolate(image[None].float(), size=side, mode="bilinear", antialias=True)
            out.append(resized.round_().clamp_(0, 255))
        return torch.cat(out)

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int):
        """Move images (asynchronously, from pinned memory) but keep JPEG bytes on the host."""
        if "images" in batch:
            batch["images"] = batch["images"].to(device, non_blocking=True)
        return batch

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> Any:
        """Pooled features of one batch, with the batch's id, rows and unusable images."""
        if "encoded" in batch:
            images = self.decode_on_device(batch["encoded"])
        else:
            images = batch["images"]
        return self(images), batch


def _decode_one(data: torch.Tensor, device: torch.device, decode: Callable, mode: Any):
    try:
        return decode(data, mode=mode, device=device)
    except RuntimeError:
        return torch.zeros(3, 1, 1, dtype=torch.uint8, device=device)


class _PartialWriter(BasePredictionWriter):
    """Write each batch's pooled features into the partials; checkpoint progress.

    Holds the partials, whose arrays are mapped lazily in whichever process
    writes, so it survives ``ddp_spawn``; each rank keeps its own progress
    record, and the union over ranks is what is done.
    """

    def __init__(
        self,
        partials: Mapping[str, PartialEntry],
        *,
        on_bad_image: str,
        checkpoint_s: float,
    ) -> None:
        super().__init__(write_interval="batch")
        self.partials = dict(partials)
        self.on_bad_image = on_bad_image
        self.checkpoint_s = checkpoint_s
        first = next(iter(self.partials.values()))
        self.done = first.done_batches()
        self.bad: dict[int, str] = {}
        self.last_checkpoint = time.monotonic()

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
        pooled, item = prediction
        bad = item["bad"]
        if bad and self.on_bad_image == "error":
            _, reason = min(bad.items())
            raise ScaleprobeError(
                f"{reason} (extract.on_bad_image=error; set extract.on_bad_image=skip to "
                "leave unreadable images out)"
            )
        rows = item["rows"].cpu().numpy()
        for node, partial in self.partials.items():
            partial.write_rows(rows, pooled[node].cpu().numpy())
        self.done[int(item["batch"])] = True
        self.bad.update(bad)
        if time.monotonic() - self.last_checkpoint >= self.checkpoint_s:
            self.checkpoint(trainer.global_rank)

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Record the last batches once the loop is over."""
        self.checkpoint(trainer.global_rank)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        """On an interruption, record every finished batch, so the resumed run redoes none.

        A batch counts as done only after all its rows were written, so a
        signal that lands mid-batch leaves that batch to be redone.
        """
        if isinstance(exception, (RunInterrupted, KeyboardInterrupt, SystemExit)):
            self.checkpoint(trainer.global_rank)

    def checkpoint(self, rank: int) -> None:
        """Flush the rows written so far, then (atomically) say they are done."""
        for partial in self.partials.values():
            partial.flush()
        for partial in self.partials.values():
            partial.record_progress(rank, self.done, self.bad)
        self.last_checkpoint = time.monotonic()


def _worker_context() -> str | None:
    """``fork`` where the platform has it (cheap, nothing to pickle), else the default."""
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else None


def _trainer(
    settings: ExtractionSettings, callbacks: list[Any], launched: LaunchedWorld | None
) -> pl.Trainer:
    # Lightning's banner lines (GPU available, tips) drown the run's own log.
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric.utilities.seed").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    # Rows travel inside each batch, so Lightning's own batch indices are not needed.
    warnings.filterwarnings("ignore", message=".*infer the batch indices.*")
    # On a SLURM login node (srun on PATH) a plain run is not an error: no hint per extraction.
    warnings.filterwarnings("ignore", message=".*`srun` command is available.*")
    # More than one process: spawned here (gloo on the CPU, NCCL on GPUs), so the job
    # around the extraction runs once; rows go to the shared memmaps by dataset index.
    # Lightning's own environment, not SLURM's: inside a one-task SLURM job (the submitit
    # launcher's) Lightning would otherwise take SLURM_NTASKS_PER_NODE=1 for the devices.
    # Ranks that srun or torchrun started (several nodes) are joined, not spawned.
    multi = int(settings.devices) > 1
    if launched is not None:
        strategy, plugins = "ddp", [launched.env]
    else:
        strategy, plugins = ("ddp_spawn", [LightningEnvironment()]) if multi else ("auto", None)
    return pl.Trainer(
        accelerator=settings.accelerator,
        devices=settings.devices,
        num_nodes=settings.num_nodes,
        strategy=strategy,
        plugins=plugins,
        precision=settings.precision,
        logger=False,
        callbacks=callbacks,
        enable_progress_bar=settings.progress,
        enable_model_summary=False,
        enable_checkpointing=False,
        inference_mode=True,
        benchmark=settings.accelerator == "gpu",
    )


def _pending_batches(partials: Mapping[str, PartialEntry]) -> list[tuple[int, range]]:
    """Return the batches (number, dataset rows) not yet done in every one of ``partials``."""
    first = next(iter(partials.values()))
    done = np.ones(first.n_batches, dtype=bool)
    for partial in partials.values():
        done &= partial.done_batches()
    pending = [(b, first.batch_rows(b)) for b in range(first.n_batches) if not done[b]]
    if first.resumed:
        logger.info(
            "resuming extraction: %d of %d batches already done",
            first.n_batches - len(pending),
            first.n_batches,
        )
    return pending


def _extract_pending(
    module: PooledFeatures,
    records: Sequence[ImageRecord],
    partials: Mapping[str, PartialEntry],
    pending: Sequence[tuple[int, range]],
    preprocessing: Preprocessing,
    settings: ExtractionSettings,
    launched: LaunchedWorld | None = None,
) -> None:
    """Extract the ``pending`` batches of ``partials`` (all share one batch layout)."""
    if not pending:
        return
    dataset = RecordImages(records, preprocessing.size, pending, encoded=settings.gpu_decode)
    workers = min(int(settings.num_workers), len(pending))
    loader = DataLoader(
        dataset,
        batch_size=None,
        shuffle=False,
        num_workers=workers,
        pin_memory=settings.accelerator == "gpu",
        prefetch_factor=2 if workers else None,
        # Explicit: inside joblib's loky workers the default context is loky's own,
        # which cannot start DataLoader workers.
        multiprocessing_context=_worker_context() if workers else None,
    )
    writer = _PartialWriter(
        partials,
        on_bad_image=settings.on_bad_image,
        checkpoint_s=settings.checkpoint_s,
    )
    trainer = _trainer(settings, [writer], launched)
    trainer.predict(module, dataloaders=loader, return_predictions=False)


def feature_fields(
    *,
    backbone: str,
    weights: str,
    weights_sha256: str,
    preprocessing: Preprocessing,
    settings: ExtractionSettings,
    model_fields: Mapping[str, Any] | None = None,
    reduction: Reduction | None = None,
) -> dict[str, Any]:
    """Every input of the numbers except the images and the node: the key's shared part.

    The run logs these (:func:`key_params`), so a run says exactly how its
    features were made. ``settings`` must be resolved (:func:`resolve_settings`):
    the effective precision, device and, on a GPU, the device decoder and
    resize are what count. ``model_fields`` says how the network is built
    beyond its weights (builder, builder kwargs with the input transform, the
    reduction of a node's output), as :func:`src.features.backbones.model_fields`
    gives them; ``None`` means those of the ``conf/backbone`` spec named
    ``backbone``, for random weights. ``reduction`` (default: ``auto`` layout,
    ``mean`` pooling) adds the keys ``layout`` and ``pooling``.

    Settings left out on purpose change only float rounding (ULPs), not the
    features: batch size, workers, ``channels_last``, the number of devices.
    """
    if settings.gpu_decode:
        preprocessing = replace(preprocessing, **_DEVICE_DECODE)
    if model_fields is None:
        model_fields = spec_model_fields(backbone, WeightsSource(RANDOM_WEIGHTS, ""))
    return {
        "format": CACHE_FORMAT,
        "backbone": backbone,
        "weights": weights,
        "weights_sha256": weights_sha256,
        **model_fields,
        **(reduction or Reduction()).fields(),
        "preprocessing": asdict(preprocessing),
        "precision": settings.precision,
        # cuDNN convolutions use TF32 by default: a GPU's 32-true is not the CPU's.
        "accelerator": settings.accelerator,
    }


def key_params(fields: Mapping[str, Any], prefix: str = "features.") -> dict[str, Any]:
    """Flatten key fields to MLflow params (``features.preprocessing.size``, ...).

    Nested mappings become dotted names; lists and tuples become JSON text.
    """
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if isinstance(value, Mapping):
            out.update(key_params(value, f"{prefix}{name}."))
        elif isinstance(value, (list, tuple)):
            out[f"{prefix}{name}"] = json.dumps(list(value))
        else:
            out[f"{prefix}{name}"] = value
    return out


def entry_fields(
    *,
    backbone: str,
    weights: str,
    weights_sha256: str,
    nodes: Sequence[str],
    records: Sequence[ImageRecord],
    preprocessing: Preprocessing,
    settings: ExtractionSettings,
    model_fields: Mapping[str, Any] | None = None,
    reduction: Reduction | None = None,
) -> dict[str, dict[str, Any]]:
    """Everything that changes the numbers of each node's entry; its hash is the key.

    :func:`feature_fields` plus the images (ids and bytes) and the node.
    """
    shared = {
        **feature_fields(
            backbone=backbone,
            weights=weights,
            weights_sha256=weights_sha256,
            preprocessing=preprocessing,
            settings=settings,
            model_fields=model_fields,
            reduction=reduction,
        ),
        "images_sha256": hash_images(records),
        "n_images": len(records),
    }
    return {node: {**shared, "node": node} for node in nodes}


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
    model_fields: Mapping[str, Any] | None = None,
    reduction: Reduction | None = None,
) -> dict[str, CacheEntry]:
    """Return one cache entry per node for ``records``, extracting only what is missing.

    All missing nodes are extracted in one pass. ``build_model`` is called
    only when something must be extracted. Parallel callers (threads or
    processes) wait on each entry's lock and then reuse what the first one
    wrote. A partial extraction left by a killed run is resumed. Unreadable
    images are skipped or raise, per ``settings.on_bad_image``: an entry may
    therefore hold fewer rows than ``records`` (its ``image_ids`` say which).

    Raises
    ------
    ScaleprobeError
        When the cache cannot be written (one line; no partial entry is
        left), or an image is unreadable and ``on_bad_image="error"``.
    """
    settings = resolve_settings(settings)
    fields = entry_fields(
        backbone=backbone,
        weights=weights,
        weights_sha256=weights_sha256,
        nodes=nodes,
        records=records,
        preprocessing=preprocessing,
        settings=settings,
        model_fields=model_fields,
        reduction=reduction,
    )
    keys = {node: entry_key(fields[node]) for node in nodes}
    launched = launched_world(int(settings.devices), int(settings.num_nodes))
    if launched is None:
        return _ensure_here(cache, build_model, keys, fields, records, preprocessing, settings)
    launched.connect("nccl" if settings.accelerator == "gpu" else "gloo")
    if launched.rank > 0:
        return _follow_rank0(launched, cache, build_model, keys, fields, records, preprocessing,
                             settings)  # fmt: skip
    try:
        entries = _ensure_here(
            cache, build_model, keys, fields, records, preprocessing, settings, launched
        )
    except BaseException:
        launched.send_failure()
        raise
    launched.send_nothing()
    launched.barrier()  # every entry committed: the other ranks read them back
    return entries


def _ensure_here(
    cache: FeatureCache,
    build_model: Callable[[], nn.Module],
    keys: Mapping[str, str],
    fields: Mapping[str, dict[str, Any]],
    records: Sequence[ImageRecord],
    preprocessing: Preprocessing,
    settings: ExtractionSettings,
    launched: LaunchedWorld | None = None,
) -> dict[str, CacheEntry]:
    """Look the entries up, and extract the missing ones under their locks (rank 0's part)."""
    nodes = list(keys)
    entries = {node: cache.load(keys[node]) for node in nodes}
    missing = [node for node in nodes if entries[node] is None]
    if not missing:
        _check_bad_image_policy(entries.values(), settings.on_bad_image)  # type: ignore[arg-type]
        return entries  # type: ignore[return-value]
    with ExitStack() as locks:
        for node in sorted(missing, key=keys.__getitem__):
            locks.enter_context(cache.lock(keys[node]))
        entries.update({node: cache.load(keys[node]) for node in missing})
        _check_bad_image_policy(
            [entry for entry in entries.values() if entry is not None], settings.on_bad_image
        )
        missing = [node for node in missing if entries[node] is None]
        if missing:
            entries.update(
                _extract_entries(
                    cache,
                    build_model,
                    missing,
                    keys,
                    fields,
                    records,
                    preprocessing,
                    settings,
                    launched,
                )
            )
    return entries  # type: ignore[return-value]


def _follow_rank0(
    launched: LaunchedWorld,
    cache: FeatureCache,
    build_model: Callable[[], nn.Module],
    keys: Mapping[str, str],
    fields: Mapping[str, dict[str, Any]],
    records: Sequence[ImageRecord],
    preprocessing: Preprocessing,
    settings: ExtractionSettings,
) -> dict[str, CacheEntry]:
    """On a rank above 0: extract its share of what rank 0 orders, then read the entries back."""
    order = launched.receive()
    if order is not None:
        partials, pending = order
        if not all(p.path.is_dir() for p in partials.values()):
            raise _not_shared(cache, launched)
        module = _pooled_features(build_model(), list(partials), fields, preprocessing, settings)
        _extract_pending(module, records, partials, pending, preprocessing, settings, launched)
        launched.barrier()  # this rank's rows and progress are on disk: rank 0 commits
    launched.barrier()
    entries = {node: cache.load(key) for node, key in keys.items()}
    if any(entry is None for entry in entries.values()):
        raise _not_shared(cache, launched)
    return entries  # type: ignore[return-value]


def _not_shared(cache: FeatureCache, launched: LaunchedWorld) -> ScaleprobeError:
    return ScaleprobeError(
        f"rank {launched.rank} does not see rank 0's cache entries under "
        f"paths.cache_dir={str(cache.root)!r}: across nodes the cache must be on storage "
        "every node mounts at the same path"
    )


def _check_bad_image_policy(entries: Iterable[CacheEntry], on_bad_image: str) -> None:
    """Hold ``on_bad_image="error"`` on a warm cache too.

    The policy is not part of the key (an entry's rows do not depend on it
    when every image is readable), so an entry made under ``skip`` is found by
    an ``error`` run; its ``meta.json`` lists what it left out, and that stops
    the run naming the first skipped file.
    """
    if on_bad_image != "error":
        return
    for entry in entries:
        if entry.skipped:
            path, reason = entry.skipped[0]["path"], entry.skipped[0]["reason"]
            named = reason if path in reason else f"{path}: {reason}"
            raise ScaleprobeError(
                f"{named} (left out of cache entry {entry.path}, made with "
                f"extract.on_bad_image=skip, with {len(entry.skipped) - 1} more; "
                "extract.on_bad_image=error does not allow that: fix or remove the image(s), "
                "which changes the key, or set extract.on_bad_image=skip)"
            )


def _pooled_features(
    model: nn.Module,
    nodes: Sequence[str],
    fields: Mapping[str, dict[str, Any]],
    preprocessing: Preprocessing,
    settings: ExtractionSettings,
) -> PooledFeatures:
    """Build the predict module of ``nodes``, reducing their outputs as their key fields say."""
    first = fields[nodes[0]]
    return PooledFeatures(
        model,
        list(nodes),
        preprocessing,
        channels_last=settings.channels_last,
        reduction=Reduction(first.get("layout", "auto"), first.get("pooling", "mean")),
        family=str(first.get("builder", "")),
    )


def _extract_entries(
    cache: FeatureCache,
    build_model: Callable[[], nn.Module],
    nodes: Sequence[str],
    keys: Mapping[str, str],
    fields: Mapping[str, dict[str, Any]],
    records: Sequence[ImageRecord],
    preprocessing: Preprocessing,
    settings: ExtractionSettings,
    launched: LaunchedWorld | None = None,
) -> dict[str, CacheEntry]:
    """Extract ``nodes`` (their locks held) into partials and commit them.

    In a launched world (rank 0) the other ranks are sent the open partials
    and their pending batches, extract their share, and are waited for
    before the commit.
    """
    model = build_model()
    # One trace of the model serves the dims and the extraction (a trace costs as much
    # as a batch of a small network's forward passes).
    module = _pooled_features(model, nodes, fields, preprocessing, settings)
    dims = module.feature_dims()
    if set(dims) != set(nodes):  # two names of one graph node: trace them apart
        dims = feature_dims(model, list(nodes), preprocessing.size, module.reduction, module.family)
    logger.info(
        "extracting %s of %s (weights=%s) for %d images of %s",
        ", ".join(nodes),
        fields[nodes[0]]["backbone"],
        fields[nodes[0]]["weights"],
        len(records),
        ", ".join(sorted({r.class_id for r in records})),
    )
    partials: dict[str, PartialEntry] = {}

    def open_all() -> None:
        for node in nodes:
            partials[node] = cache.open_partial(
                keys[node],
                n_rows=len(records),
                dim=dims[node],
                batch_size=settings.batch_size,
                fields=fields[node],
            )

    try:
        open_all()
        if len({p.batch_size for p in partials.values()}) > 1:
            # Partials left by runs with other batch sizes cannot share one pass.
            for partial in partials.values():
                cache.discard(partial)
            open_all()
        pending = _pending_batches(partials)
        if launched is not None:
            launched.send((partials, pending))
        _extract_pending(module, records, partials, pending, preprocessing, settings, launched)
        if launched is not None:
            launched.barrier()  # every rank's rows and progress are on disk
        entries = {}
        for node, partial in partials.items():
            meta = {
                **fields[node],
                "key": keys[node],
                "feature_dim": dims[node],
                "torch": torch.__version__,
                "lightning": lightning.__version__,
            }
            entries[node] = cache.commit(partial, records, meta)
    except OSError as error:
        for partial in partials.values():
            cache.discard(partial)
        raise storage_error(cache.root, error) from None
    except (KeyboardInterrupt, SystemExit, RunInterrupted):
        # An interrupted run (Ctrl-C, SIGTERM) resumes from its finished batches,
        # like a killed one.
        raise
    except BaseException:
        for partial in partials.values():
            cache.discard(partial)
        raise
    skipped = next(iter(entries.values())).skipped
    if skipped:
        logger.warning(
            "skipped %d unreadable image(s) of %d (extract.on_bad_image=skip), e.g. %s",
            len(skipped),
            len(records),
            skipped[0]["reason"],
        )
    return entries
