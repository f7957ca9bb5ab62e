"""What a model library (torchvision, timm) offers a backbone spec: four functions.

``backbone.library`` names the library; :data:`src.features.backbones.LIBRARIES`
maps that name to a module with these functions. Adding a library is one
module that has them plus its line in that table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple, Protocol

from torch import nn

__all__ = ["ModelLibrary", "PretrainedFile"]


class PretrainedFile(NamedTuple):
    """Where a library keeps a model's pretrained weights, their name, how to get them."""

    path: Path | None
    """The file, when it is there; None when it is not."""
    label: str
    """The weights' name as runs log it (``IMAGENET1K_V1``, ``convnext_atto.d2_in1k``)."""
    advice: str
    """Which file to put where, and how to get it, for the one-line error."""


class ModelLibrary(Protocol):
    """The functions a library module has (:mod:`src.features.torchvision_models`)."""

    def check_model(self, key: str, name: Any) -> None:
        """Raise one line (close matches) unless ``name`` is a model of the library."""

    def preprocessing(self, builder: str, weights: str) -> tuple[int, tuple, tuple]:
        """Return input size, mean and std the weights were trained with."""

    def build_model(self, builder: str, kwargs: dict[str, Any]) -> nn.Module:
        """Build the model with random weights (the caller seeds them)."""

    def pretrained_file(self, builder: str, weights: str) -> PretrainedFile:
        """Find the file of pretrained ``weights`` offline."""
