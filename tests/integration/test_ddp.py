"""Extraction across processes (issue 18.5): Lightning DDP on the CPU, 2 processes on gloo.

``extract.accelerator=cpu extract.devices=2`` spawns two ranks; each writes its
batches' rows into the shared memmaps by dataset index. The entry must be the
one-process entry byte for byte, its rows in the records' order. On the CPU the
last bits of a convolution depend on its intra-op thread count (measured: 1 vs
2 threads differ in ``layer2``), and Lightning gives each rank ``cores //
devices`` threads (unless ``OMP_NUM_THREADS`` is set), so the one process runs
with as many.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from src.data.boxes import Box
from src.data.records import ImageRecord
from src.errors import ScaleprobeError
from src.features.backbones import WeightsSource, build_backbone
from src.features.cache import FeatureCache
from src.features.extract import ExtractionSettings, Preprocessing, ensure_features

REPO = Path(__file__).resolve().parents[2]
SOURCE = WeightsSource("random", "random-init-seed-0")
NODES = ["layer1", "layer2"]


def _records(root, n: int, write: bool = True) -> list[ImageRecord]:
    """``n`` small JPEGs with distinct content and sizes (``write=False``: already there)."""
    from PIL import Image

    root.mkdir(parents=True, exist_ok=not write)
    rng = np.random.default_rng(0)
    records = []
    for i in range(n):
        path = root / f"img_{i}.JPEG"
        pixels = rng.integers(0, 255, (40 + i, 50, 3), dtype=np.uint8)
        if write:
            Image.fromarray(pixels).save(path)
        records.append(ImageRecord(f"img_{i}", str(path), "n0", 50, 40 + i, Box(5, 5, 30, 30)))
    return records


def _extract(cache_dir, records, devices: int, num_nodes: int = 1):
    settings = ExtractionSettings(
        batch_size=3,
        num_workers=0,
        accelerator="cpu",
        devices=devices,
        num_nodes=num_nodes,
        progress=False,
    )
    return ensure_features(
        FeatureCache(cache_dir),
        backbone="resnet50",
        weights=SOURCE.label,
        weights_sha256=SOURCE.sha256,
        build_model=lambda: build_backbone("resnet50", SOURCE),
        nodes=NODES,
        records=records,
        preprocessing=Preprocessing(size=64),
        settings=settings,
    )


# What a one-task SLURM job sets (sbatch --ntasks-per-node=1, the submitit launcher): the
# two ranks are spawned inside it, not SLURM tasks, and must not be taken for them.
SLURM_TASK = {
    "SLURM_NTASKS": "1",
    "SLURM_NTASKS_PER_NODE": "1",
    "SLURM_JOB_NAME": "scaleprobe",
    "SLURM_JOB_ID": "4242",
    "SLURM_NODELIST": "localhost",
    "SLURM_PROCID": "0",
    "SLURM_LOCALID": "0",
    "SLURM_NODEID": "0",
}


@pytest.mark.slow
def test_two_cpu_processes_give_the_one_process_entries_byte_for_byte(tmp_path, capfd, monkeypatch):
    records = _records(tmp_path / "images", 11)  # 4 batches of 3: uneven over 2 ranks
    threads = torch.get_num_threads()
    per_rank = os.environ.get("OMP_NUM_THREADS") or max(1, len(os.sched_getaffinity(0)) // 2)
    torch.set_num_threads(int(per_rank))
    try:
        one = _extract(tmp_path / "one", records, devices=1)
    finally:
        torch.set_num_threads(threads)
    capfd.readouterr()
    for name, value in SLURM_TASK.items():
        monkeypatch.setenv(name, value)
    two = _extract(tmp_path / "two", records, devices=2)
    err = capfd.readouterr().err  # Lightning's banner, from both spawned ranks
    assert "distributed_backend=gloo" in err, err
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in err, err
    for node in NODES:
        assert two[node].key == one[node].key  # the number of processes is not in the key
        assert list(two[node].image_ids) == [r.image_id for r in records]  # dataset order
        assert np.asarray(two[node].features).tobytes() == np.asarray(one[node].features).tobytes()


# One rank of a two-node extraction, as torchrun starts it on each node: the same code.
RANK = textwrap.dedent(
    """
    import logging, sys
    from pathlib import Path

    logging.basicConfig(level=logging.INFO)
    sys.path.insert(0, sys.argv[1])
    from test_ddp import _extract, _records
    from src.features.cache import PartialEntry

    written = set()  # the dataset rows this rank wrote
    write_rows = PartialEntry.write_rows

    def counted(self, rows, values):
        written.update(int(r) for r in rows)
        return write_rows(self, rows, values)

    PartialEntry.write_rows = counted
    tmp = Path(sys.argv[2])
    entries = _extract(tmp / "two_nodes", _records(tmp / "images", 11, write=False), 1, 2)
    print("entries", sorted((node, e.key) for node, e in entries.items()))
    print("rows", sorted(written))
    """
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _two_torchrun_nodes(cwd: Path, *command: str) -> list[str]:
    """Run ``command`` as torchrun runs it on each of two nodes (here); return both logs."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["PYTHONPATH"] = str(REPO)
    ranks = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes=2",
                "--nproc-per-node=1",
                f"--node-rank={node}",
                "--master-addr=127.0.0.1",
                f"--master-port={port}",
                *command,
            ],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        for node in (0, 1)
    ]
    try:
        logs = [rank.communicate(timeout=600)[0] for rank in ranks]
    finally:
        for rank in ranks:
            if rank.poll() is None:
                os.killpg(rank.pid, signal.SIGKILL)
                rank.wait()
    for rank, log in zip(ranks, logs, strict=True):
        assert rank.returncode == 0, log[-3000:]
    return logs


@pytest.mark.slow
def test_two_nodes_started_by_torchrun_give_the_one_process_entries(tmp_path):
    """extract.num_nodes=2: two externally started ranks (node ranks 0 and 1, one device each)."""
    records = _records(tmp_path / "images", 11)
    threads = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or len(os.sched_getaffinity(0))))
    try:  # a rank has a node's cores: one device per node
        one = _extract(tmp_path / "one", records, devices=1)
    finally:
        torch.set_num_threads(threads)
    script = tmp_path / "rank.py"
    script.write_text(RANK)
    logs = _two_torchrun_nodes(tmp_path, str(script), str(Path(__file__).parent), str(tmp_path))
    assert logs[0].count("extracting layer1, layer2") == 1, logs[0][-3000:]  # rank 0 says it
    assert "extracting" not in logs[1], logs[1][-3000:]
    expected = f"entries {sorted((node, one[node].key) for node in NODES)}"
    assert all(expected in log for log in logs), logs  # both ranks read the same entries back
    rows = [set(json.loads(log.split("rows ")[-1].splitlines()[0])) for log in logs]
    assert all(rows), rows  # each rank extracted its share of the batches
    assert rows[0] | rows[1] == set(range(len(records))), rows
    cache = FeatureCache(tmp_path / "two_nodes")
    for node in NODES:
        two = cache.load(one[node].key)
        assert list(two.image_ids) == [r.image_id for r in records]  # dataset order
        assert np.asarray(two.features).tobytes() == np.asarray(one[node].features).tobytes()
    assert not list((tmp_path / "two_nodes").glob(".partial*"))


@pytest.mark.slow
def test_src_prepare_on_two_torchrun_nodes_fills_the_one_process_cache(tmp_path):
    """The README's multi-node command, torchrun for srun and the CPU for GPUs: same bytes."""
    args = ["backbone.weights=random", "data.n_per_class=16", "extract.progress=false",
            "extract.batch_size=8", "extract.accelerator=cpu"]  # fmt: skip
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = subprocess.run(
        [sys.executable, "-m", "src.prepare", *args], cwd=tmp_path / "one",
        env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    logs = _two_torchrun_nodes(tmp_path / "two", "-m", "src.prepare", *args, "extract.num_nodes=2")
    assert sum(log.count("extracting ") for log in logs) == logs[0].count("extracting ") > 0
    made = {
        side: {p.name: (p / "features.npy").read_bytes()
               for p in (tmp_path / side / "cache" / "features").iterdir()
               if not p.name.startswith(".")}
        for side in ("one", "two")
    }  # fmt: skip
    assert len(made["one"]) == 3  # the backbone's entry and the controls' (conf/controls)
    assert made["two"] == made["one"]


def test_two_nodes_outside_srun_or_torchrun_is_one_line(tmp_path, monkeypatch):
    for name in [k for k in os.environ if k.startswith(("SLURM_", "TORCHELASTIC_"))]:
        monkeypatch.delenv(name)
    with pytest.raises(ScaleprobeError, match=r"extract\.num_nodes=2 needs .*srun") as info:
        _extract(tmp_path / "cache", _records(tmp_path / "images", 3), devices=1, num_nodes=2)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_a_world_of_other_size_is_one_line(tmp_path, monkeypatch):
    """torchrun started 3 processes, but devices x num_nodes is 2."""
    for name, value in {"TORCHELASTIC_RUN_ID": "t", "WORLD_SIZE": "3", "RANK": "0",
                        "LOCAL_RANK": "0", "GROUP_RANK": "0"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    with pytest.raises(ScaleprobeError, match=r"extract\.num_nodes=2: .*world size \(3\)"):
        _extract(tmp_path / "cache", _records(tmp_path / "images", 3), devices=1, num_nodes=2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"devices": 0}, r"extract\.devices=0 .*integer >= 1"),
        ({"num_nodes": 0}, r"extract\.num_nodes=0 .*integer >= 1"),
    ],
)
def test_bad_process_counts_are_one_line(kwargs, message):
    with pytest.raises(ScaleprobeError, match=message) as info:
        ExtractionSettings(**kwargs)
    assert "\n" not in str(info.value)
