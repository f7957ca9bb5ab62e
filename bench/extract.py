"""Benchmark: feature extraction, full path vs the bare forward, and peak memory vs N.

(a) speed, on the same images in one run, in alternating rounds (other load on
    the machine then hits all sides alike), on the GPU when there is one
    (``--device auto``; bf16 autocast there) and else on the CPU:
    - bare: the images already decoded and resized into one uint8 tensor on
      the device; only ``PooledFeatures`` forward passes (normalize,
      channels_last, network to the layer, spatial mean) under
      ``torch.inference_mode``;
    - full (from JPEG files): ``ensure_features`` into an empty cache with the
      default settings: hashing the image files, reading, decoding and
      resizing in DataLoader workers (on a GPU: nvjpeg decoding and resizing
      on the device), the Lightning predict loop, pooling, writing the
      memory-mapped partial, progress records, checksums and the commit;
    - tensor (from a uint8 tensor cache): the same Lightning predict loop fed
      from the decoded uint8 images in host memory (pinned on a GPU), so the
      loop's own cost shows apart from reading and decoding.
      The model object is built once outside all of them (weights loading is
      not per-image work); everything else the full path does is timed.
    ratio = full images/s / bare images/s (median over rounds), tensor_ratio
    likewise; on a shared machine the wall times swing with other load, so
    the CPU seconds each side used (this process plus its workers) give a
    second, steadier ratio.
(b) memory: peak RSS of a child process that extracts N small images (ResNet50
    ``layer1`` at a small input size, so 10k images take a few minutes), for
    N = 1k and 10k; ``ru_maxrss`` of the process plus its DataLoader workers.

The last line printed is one JSON object with the figures and ratios.
The speed side runs the main job's backbone and layer by default (EfficientNet-Lite0
``blocks.5`` at 224; ``--backbone inception_v3 --layer mixed8`` for the paper's).
Usage: ``uv run python bench/extract.py [--images 360 --rounds 2 --device auto --skip-memory]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from src.data.boxes import Box
from src.data.records import ImageRecord
from src.data.sources import load_class_records
from src.data.synthetic import SYNTHETIC_CLASSES
from src.features.backbones import WeightsSource, build_backbone, get_backbone_spec
from src.features.cache import FeatureCache
from src.features.extract import (
    ExtractionSettings,
    PooledFeatures,
    Preprocessing,
    _trainer,
    ensure_features,
    load_image_row,
    resolve_settings,
)
from src.features.layers import resolve_layer

SOURCE = WeightsSource("random", "random-init-seed-0")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def synthetic_records(root: Path, n_images: int) -> list[ImageRecord]:
    classes = list(SYNTHETIC_CLASSES)
    per_class = -(-n_images // len(classes))
    data = {
        "name": "synthetic",
        "root": str(root),
        "images_dir": str(root / "train"),
        "annotations_dir": str(root / "Annotation"),
        "n_per_class": per_class,
        "generator_seed": 0,
        "policy": "single",
    }
    by_class = load_class_records(data, classes)
    return [r for c in classes for r in by_class[c]][:n_images]


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the DataLoader workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_bare(
    module: PooledFeatures, images: torch.Tensor, batch_size: int, autocast: bool
) -> tuple[float, float]:
    """Forward passes only, over uint8 images already on the module's device."""
    device = images.device
    module.to(device)  # the predict loop's teardown may have moved it back to the host
    _sync(device)
    start, cpu = time.perf_counter(), cpu_seconds()
    with (
        torch.inference_mode(),
        torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast),
    ):
        for i in range(0, len(images), batch_size):
            module(images[i : i + batch_size])
    _sync(device)
    return time.perf_counter() - start, cpu_seconds() - cpu


class TensorBatches(Dataset):
    """Batches of a decoded uint8 image tensor, shaped like the extraction's items."""

    def __init__(self, images: torch.Tensor, batch_size: int) -> None:
        self.images, self.batch_size = images, batch_size

    def __len__(self) -> int:
        return -(-len(self.images) // self.batch_size)

    def __getitem__(self, index: int) -> dict[str, object]:
        start = index * self.batch_size
        stop = min(start + self.batch_size, len(self.images))
        rows = torch.arange(start, stop)
        return {"images": self.images[start:stop], "rows": rows, "batch": index, "bad": {}}


class RowCollector(BasePredictionWriter):
    """Copy each batch's pooled features into one array by row."""

    def __init__(self, out: np.ndarray, node: str) -> None:
        super().__init__(write_interval="batch")
        self.out, self.node = out, node

    def write_on_batch_end(self, trainer, pl_module, prediction, indices, batch, idx, dl_idx):
        pooled, item = prediction
        self.out[item["rows"].cpu().numpy()] = pooled[self.node].cpu().numpy()


def run_tensor(
    module: PooledFeatures,
    images: torch.Tensor,
    node: str,
    dim: int,
    settings: ExtractionSettings,
) -> tuple[float, float]:
    """The Lightning predict loop fed from decoded uint8 images in host memory."""
    out = np.empty((len(images), dim))
    start, cpu = time.perf_counter(), cpu_seconds()
    loader = DataLoader(
        TensorBatches(images, settings.batch_size),
        batch_size=None,
        pin_memory=settings.accelerator == "gpu",
    )
    trainer = _trainer(settings, [RowCollector(out, node)])
    trainer.predict(module, dataloaders=loader, return_predictions=False)
    return time.perf_counter() - start, cpu_seconds() - cpu


def fill_cache(
    cache_dir: Path, backbone: str, build_model, nodes: list[str], records, pre, settings
) -> None:
    """Extract ``nodes`` of ``records`` into the feature cache at ``cache_dir`` (random weights).

    The full path a run takes (``ensure_features``: hash, read, decode, forward,
    memmap write, commit); the callers time it or measure its memory.
    """
    ensure_features(
        FeatureCache(cache_dir),
        backbone=backbone,  # a conf/backbone option: its builder and reduction are key fields
        weights=SOURCE.label,
        weights_sha256=SOURCE.sha256,
        build_model=build_model,
        nodes=nodes,
        records=records,
        preprocessing=pre,
        settings=settings,
    )


def run_full(
    backbone: str, model, node, records, pre, settings, cache_dir: Path
) -> tuple[float, float]:
    start, cpu = time.perf_counter(), cpu_seconds()
    build = lambda: model.cpu()  # noqa: E731  built once, on the host
    fill_cache(cache_dir, backbone, build, [node], records, pre, settings)
    return time.perf_counter() - start, cpu_seconds() - cpu


def speed(args: argparse.Namespace, work: Path) -> dict[str, object]:
    records = synthetic_records(work / "synthetic", args.images)
    spec = get_backbone_spec(args.backbone)
    node = resolve_layer(spec, args.layer)
    size = args.size or spec.input_size
    pre = replace(spec.preprocessing(), size=size)
    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if cuda else "cpu")
    settings = ExtractionSettings(
        batch_size=args.batch_size,
        progress=False,
        accelerator="gpu" if cuda else "cpu",
        precision="bf16-mixed" if cuda else "32-true",
    )
    resolved = resolve_settings(settings)
    model = build_backbone(spec, SOURCE)
    host_images = torch.from_numpy(np.stack([load_image_row(r.path, size)[0] for r in records]))
    images = host_images.to(device)
    module = PooledFeatures(
        model, [node], pre, channels_last=settings.channels_last, family=spec.builder
    ).eval()
    module.to(device)
    with torch.inference_mode():
        dim = int(module(images[:1])[node].shape[1])
    run_bare(module, images[: args.batch_size], args.batch_size, cuda)  # warm-up (kernel plans)
    rounds = []
    for k in range(args.rounds):
        bare, bare_cpu = run_bare(module, images, args.batch_size, cuda)
        full, full_cpu = run_full(
            args.backbone, model, node, records, pre, settings, work / f"cache-{k}"
        )
        tensor, tensor_cpu = run_tensor(module, host_images, node, dim, resolved)
        rounds.append(
            {
                "bare_s": round(bare, 2),
                "full_s": round(full, 2),
                "tensor_s": round(tensor, 2),
                "bare_cpu_s": round(bare_cpu, 2),
                "full_cpu_s": round(full_cpu, 2),
                "tensor_cpu_s": round(tensor_cpu, 2),
            }
        )
        print(
            f"round {k}: bare {bare:.1f} s, full {full:.1f} s (ratio {bare / full:.3f}), "
            f"tensor {tensor:.1f} s (ratio {bare / tensor:.3f})"
        )

    def median(key: str) -> float:
        return float(np.median([r[key] for r in rounds]))

    def ratio(side: str, unit: str = "s") -> float:
        return round(float(np.median([r[f"bare_{unit}"] / r[f"{side}_{unit}"] for r in rounds])), 3)

    return {
        "device": str(torch.cuda.get_device_name(device)) if cuda else "cpu",
        "precision": resolved.precision,
        "gpu_decode": resolved.gpu_decode,
        "backbone": args.backbone,
        "layer": args.layer,
        "input_size": size,
        "n_images": len(records),
        "batch_size": args.batch_size,
        "num_workers": resolved.num_workers,
        "torch_threads": torch.get_num_threads(),
        "bare_img_s": round(len(records) / median("bare_s"), 2),
        "full_img_s": round(len(records) / median("full_s"), 2),
        "tensor_img_s": round(len(records) / median("tensor_s"), 2),
        "ratio": ratio("full"),
        "tensor_ratio": ratio("tensor"),
        "cpu_time_ratio": ratio("full", "cpu_s"),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "rounds": rounds,
    }


def tiny_records(root: Path, n: int) -> list[ImageRecord]:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, size=(64, 64, 3), dtype=np.uint8)
    records = []
    for i in range(n):
        path = root / f"{i}.JPEG"
        if not path.exists():
            Image.fromarray(np.roll(base, i, axis=1)).save(path, "JPEG", quality=85)
        records.append(ImageRecord(f"i{i}", str(path), "n0", 64, 64, Box(8, 8, 40, 40)))
    return records


def memory_child(n: int, work: Path) -> None:
    """Extract n tiny images; print peak RSS (MiB) of this process and of its workers."""
    records = tiny_records(work / "tiny", n)
    start = time.perf_counter()
    fill_cache(
        work / f"mem-cache-{n}",
        "resnet50",
        lambda: build_backbone("resnet50", SOURCE),
        ["layer1"],
        records,
        Preprocessing(size=64),
        ExtractionSettings(batch_size=64, progress=False),
    )
    seconds = time.perf_counter() - start
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"n": n, "peak_rss_mib": own, "worker_peak_rss_mib": workers, "s": seconds}))


def memory(work: Path, sizes: list[int]) -> dict[str, object]:
    tiny_records(work / "tiny", max(sizes))  # images made once, outside the measurement
    out: dict[str, object] = {"backbone": "resnet50", "layer": "layer1", "input_size": 64}
    for n in sizes:
        result = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(n), "--work", str(work)],
            capture_output=True,
            text=True,
            check=True,
        )
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"memory: {n} images, peak RSS {figures['peak_rss_mib']:.0f} MiB")
        out[str(n)] = {k: round(v, 1) for k, v in figures.items() if k != "n"}
    first, last = str(sizes[0]), str(sizes[-1])
    out["peak_ratio"] = round(out[last]["peak_rss_mib"] / out[first]["peak_rss_mib"], 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="efficientnet_lite0", help="conf/backbone option")
    parser.add_argument("--layer", default="blocks.5", help="default: the main job's layer")
    parser.add_argument("--size", type=int, default=None, help="default: the backbone's")
    parser.add_argument("--images", type=int, default=360)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--memory-sizes", default="1000,10000")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--memory-child", type=int, default=None)
    parser.add_argument("--work", default=None)
    args = parser.parse_args()
    if args.memory_child is not None:
        memory_child(args.memory_child, Path(args.work))
        return
    with tempfile.TemporaryDirectory(prefix="bench-extract-") as tmp:
        work = Path(tmp)
        summary: dict[str, object] = {
            "machine": f"{cpu_model()}, {len(os.sched_getaffinity(0))} cores",
            "cuda": torch.cuda.is_available(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        }
        if not args.skip_speed:
            summary["speed"] = speed(args, work)
        if not args.skip_memory:
            sizes = [int(s) for s in args.memory_sizes.split(",")]
            summary["memory"] = memory(work, sizes)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
