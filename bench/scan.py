"""Benchmark: a layer scan's one extraction pass vs the deepest layer alone, and its memory vs N.

(a) speed: cold-cache wall time of ``ensure_features`` (the full path a run
    takes: hash, read, decode, forward, one memmap per layer written as rows
    arrive, commit) extracting the 11 layers of #17.4, InceptionV3's
    ``mixed0`` .. ``mixed10`` (what ``layer=all`` expands to for it), in one
    pass, against ``mixed10`` alone, on the same synthetic images, random
    weights, model built once outside the timing (``--backbone
    efficientnet_lite0``: its seven blocks ``blocks.0`` .. ``blocks.6``).
    Rounds alternate which side runs first, so drift in the other load of a
    shared machine hits both; ratio = median over rounds of
    scan seconds / deepest seconds (target <= 1.3).
(b) memory: peak RSS of a child process that runs the same scan
    on N and on 2N images (``ru_maxrss`` of the process and of its
    DataLoader workers): flat in N when every layer's rows go to disk.

The last line printed is one JSON object; ``ratio`` is the figure of #17.4.
Usage: ``uv run python bench/scan.py [--images 160 --rounds 2 --memory-images 60]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from extract import SOURCE, cpu_model, fill_cache, synthetic_records

from src.features.backbones import build_backbone, get_backbone_spec
from src.features.extract import ExtractionSettings
from src.features.layers import resolve_layer, scan_blocks

BACKBONES = ("inception_v3", "efficientnet_lite0")


def _scan(
    cache_dir: Path, backbone: str, model, layers: list[str], records, batch_size: int
) -> float:
    """Extract ``layers`` of ``records`` into an empty cache; return the wall seconds."""
    spec = get_backbone_spec(backbone)
    nodes = [resolve_layer(spec, name) for name in layers]
    pre = replace(spec.preprocessing(), size=spec.input_size)
    settings = ExtractionSettings(batch_size=batch_size, progress=False, accelerator="cpu")
    start = time.perf_counter()
    fill_cache(cache_dir, backbone, lambda: model, nodes, records, pre, settings)
    return time.perf_counter() - start


def speed(args: argparse.Namespace, work: Path) -> dict[str, object]:
    records = synthetic_records(work / "synthetic", args.images)
    model = build_backbone(get_backbone_spec(args.backbone), SOURCE)
    layers = scan_blocks(args.backbone)
    rounds = []
    for k in range(args.rounds):
        sides = {"scan": layers, "deepest": layers[-1:]}
        order = list(sides) if k % 2 == 0 else list(sides)[::-1]
        times = {
            s: _scan(work / f"{s}-{k}", args.backbone, model, sides[s], records, args.batch_size)
            for s in order
        }
        rounds.append({f"{s}_s": round(t, 2) for s, t in times.items()})
        print(f"round {k}: scan {times['scan']:.1f} s, deepest {times['deepest']:.1f} s")
    ratios = [r["scan_s"] / r["deepest_s"] for r in rounds]
    return {
        "backbone": args.backbone,
        "layers": layers,
        "n_images": len(records),
        "batch_size": args.batch_size,
        "torch_threads": torch.get_num_threads(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "rounds": rounds,
        "ratio": round(float(np.median(ratios)), 3),
    }


def memory_child(n: int, work: Path, backbone: str, batch_size: int) -> None:
    """Scan every block of n images; print peak RSS (MiB) of this process and workers."""
    records = synthetic_records(work / f"synthetic-{n}", n)
    model = build_backbone(get_backbone_spec(backbone), SOURCE)
    layers = scan_blocks(backbone)
    seconds = _scan(work / f"mem-cache-{n}", backbone, model, layers, records, batch_size)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"n": n, "peak_rss_mib": own, "worker_peak_rss_mib": workers, "s": seconds}))


def memory(args: argparse.Namespace, work: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    sizes = [args.memory_images, 2 * args.memory_images]
    for n in sizes:  # images made here, outside the measurement
        synthetic_records(work / f"synthetic-{n}", n)
    for n in sizes:
        command = [sys.executable, __file__, "--memory-child", str(n), "--work", str(work)]
        command += ["--batch-size", str(args.batch_size), "--backbone", args.backbone]
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"memory: {n} images, peak RSS {figures['peak_rss_mib']:.0f} MiB")
        out[str(n)] = {k: round(v, 1) for k, v in figures.items() if k != "n"}
    first, last = (out[str(n)] for n in sizes)
    out["peak_ratio"] = round(last["peak_rss_mib"] / first["peak_rss_mib"], 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", choices=BACKBONES, default=BACKBONES[0])
    parser.add_argument("--images", type=int, default=160)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--memory-images", type=int, default=60, help="N; also runs 2N")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-child", type=int, default=None)
    parser.add_argument("--work", default=None)
    args = parser.parse_args()
    if args.memory_child is not None:
        memory_child(args.memory_child, Path(args.work), args.backbone, args.batch_size)
        return
    with tempfile.TemporaryDirectory(prefix="bench-scan-") as tmp:
        work = Path(tmp)
        summary: dict[str, object] = {
            "machine": f"{cpu_model()}, {len(os.sched_getaffinity(0))} cores",
            "speed": speed(args, work),
        }
        if not args.skip_memory:
            summary["memory"] = memory(args, work)
        summary["ratio"] = summary["speed"]["ratio"]
    print(f"ratio (scan wall / deepest layer alone): {summary['ratio']} (target <= 1.3)")
    if "memory" in summary:
        print(f"memory flatness (peak RSS at 2N / at N): {summary['memory']['peak_ratio']}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
