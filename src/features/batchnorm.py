"""Re-estimate a network's BatchNorm statistics on the probed images (``controls.random_bn``).

A randomly initialised network keeps BatchNorm's initial running statistics
(mean 0, variance 1), so its deeper activations are scaled arbitrarily. With
``controls.random_bn=true`` the random-weights control is instead the random
network whose every BatchNorm layer holds the mean and variance of its inputs
over the job's images: random filters, but normalised as a trained network's
are. That makes a stronger control (and a different one: see README).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from src.data.records import ImageRecord
from src.errors import ScaleprobeError
from src.features.extract import Preprocessing, load_image_row

__all__ = ["recalibrate_batchnorm"]

_SEED = 0  # stochastic layers (dropout, drop path) run in train mode during the passes


def recalibrate_batchnorm(
    model: nn.Module,
    records: Sequence[ImageRecord],
    preprocessing: Preprocessing,
    *,
    batch_size: int = 32,
) -> nn.Module:
    """Set every BatchNorm's running mean and variance to their average over ``records``.

    Train-mode forward passes without gradients, each BatchNorm in cumulative
    averaging mode (``momentum=None``: the mean of the batches' statistics, a
    short last batch counting as much as the others), so the result does not
    depend on the batches' order; returns the model in eval mode.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return model.eval()
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    mean = torch.tensor(preprocessing.mean).view(1, 3, 1, 1) * 255
    std = torch.tensor(preprocessing.std).view(1, 3, 1, 1) * 255
    model.train()
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(_SEED)
        for start in range(0, len(records), batch_size):
            rows = [
                load_image_row(r.path, preprocessing.size)
                for r in records[start : start + batch_size]
            ]
            bad = [reason for _, reason in rows if reason is not None]
            if bad:
                raise ScaleprobeError(f"controls.random_bn: {bad[0]}")
            images = torch.from_numpy(np.stack([image for image, _ in rows]))
            model((images.float() - mean) / std)
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    return model.eval()
