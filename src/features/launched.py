"""An extraction over several machines: processes that srun or torchrun started, one per device.

``extract.devices=<n>`` alone spawns its ranks inside the job (``ddp_spawn``),
so the job around the extraction runs once. Over several nodes
(``extract.num_nodes>1``) Lightning's DDP needs the ranks started outside, one
process per device on every node: each then runs the same command
(``python -m src.prepare``), so each would take the cache's entry locks and
decide for itself what to extract. Here rank 0 alone does what a single
process does (looks the entries up, takes their locks, opens the partials,
commits them); it sends the others what to extract (the open partials and
their pending batches, or nothing), every rank writes its share of the
batches' rows by dataset index, and the others read the committed entries
back. The messages go over a gloo group of their own, started here before
Lightning's Trainer, which then joins the same process group.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch.distributed as dist
from lightning.fabric.plugins.environments import (
    ClusterEnvironment,
    SLURMEnvironment,
    TorchElasticEnvironment,
)

from src.errors import ScaleprobeError

__all__ = ["LaunchedWorld", "launched_world"]

_FAILED = "rank 0 failed"  # what rank 0 sends instead of an order when it failed first


@dataclass
class LaunchedWorld:
    """A process's place among externally started ranks, and the messages between them.

    Each :func:`~src.features.extract.ensure_features` call on rank 0 sends
    exactly one order (:meth:`send`, or :meth:`send_nothing` when there is
    nothing to extract) and every other rank receives it (:meth:`receive`),
    so all ranks enter the same extractions in the same order.
    """

    env: ClusterEnvironment
    rank: int
    size: int
    _group: Any = field(default=None, repr=False)
    _sent: bool = field(default=False, repr=False)

    def connect(self, backend: str) -> None:
        """Join the process group (once): ``backend`` for Lightning, gloo for the orders.

        As Lightning would (``MASTER_ADDR``/``MASTER_PORT`` from the cluster
        environment, then ``env://``), so that under torchrun the ranks reuse
        its agent's store and Lightning's Trainer finds the group made.
        """
        if not dist.is_initialized():
            os.environ["MASTER_ADDR"] = self.env.main_address
            os.environ["MASTER_PORT"] = str(self.env.main_port)
            dist.init_process_group(backend, world_size=self.size, rank=self.rank)
        if self._group is None:
            self._group = dist.new_group(backend="gloo")

    def send(self, order: Any) -> None:
        """Rank 0: tell every rank what this call extracts."""
        self._broadcast(order)
        self._sent = True

    def send_nothing(self) -> None:
        """Rank 0, at the end of a call: if no order went out, say there is nothing to do."""
        if not self._sent:
            self._broadcast(None)
        self._sent = False

    def send_failure(self) -> None:
        """Rank 0, failing before its order: release the ranks waiting for it."""
        if not self._sent:
            self._broadcast(_FAILED)
        self._sent = False

    def receive(self) -> Any:
        """On the other ranks: return the order of rank 0 (None: nothing to extract)."""
        order = self._broadcast(None)
        if isinstance(order, str) and order == _FAILED:
            raise ScaleprobeError(
                f"rank 0 of the extraction failed (this is rank {self.rank}); its log says why"
            )
        return order

    def barrier(self) -> None:
        """Wait for every rank (their rows on disk; then rank 0's commits)."""
        dist.barrier(group=self._group)

    def _broadcast(self, order: Any) -> Any:
        # Pickled on the wire between the ranks of one command, never stored.
        box = [order]
        dist.broadcast_object_list(box, src=0, group=self._group)
        return box[0]


_WORLD: LaunchedWorld | None = None  # one per process: its ranks and group live as long


def launched_world(devices: int, num_nodes: int) -> LaunchedWorld | None:
    """Return this process's launched world for ``num_nodes > 1``, else None.

    Raises
    ------
    ScaleprobeError
        Neither srun nor torchrun started this process, or the ranks they
        started are not ``devices`` per node on ``num_nodes`` nodes.
    """
    global _WORLD
    if num_nodes == 1:
        return None
    if _WORLD is not None:
        return _WORLD
    with warnings.catch_warnings():  # on a login node: "srun is available but not used"
        warnings.simplefilter("ignore")
        slurm_tasks = SLURMEnvironment.detect()  # srun tasks, not a job named bash/interactive
    if TorchElasticEnvironment.detect():
        env: ClusterEnvironment = TorchElasticEnvironment()
    elif slurm_tasks:
        env = SLURMEnvironment()
    else:
        raise ScaleprobeError(
            f"extract.num_nodes={num_nodes} needs one process per device on every node, started "
            f"by srun (srun --nodes={num_nodes} --ntasks-per-node={devices} python -m "
            "src.prepare ...) or torchrun; this process was started by neither"
        )
    try:
        env.validate_settings(num_devices=devices, num_nodes=num_nodes)
        if env.world_size() != devices * num_nodes:
            raise ValueError(
                f"the launcher started {env.world_size()} processes, not "
                f"extract.devices={devices} x extract.num_nodes={num_nodes}"
            )
    except ValueError as error:
        raise ScaleprobeError(f"extract.num_nodes={num_nodes}: {error}") from None
    _WORLD = LaunchedWorld(env, env.global_rank(), env.world_size())
    return _WORLD
