"""A model's torch.fx graph: its node names and an extractor that returns chosen nodes.

torchvision's feature extraction with timm's leaf modules and wrapped functions:
timm's padding-"same" convolutions and the like are kept whole instead of traced
through (torchvision's tracer alone fails on them), and a torchvision model,
which holds none of them, traces exactly as with torchvision's own functions.
A model that cannot be traced stops with one line naming it.
"""

from __future__ import annotations

from collections.abc import Sequence

from timm.models import create_feature_extractor as _create_feature_extractor
from timm.models import get_graph_node_names as _get_graph_node_names
from torch import nn
from torch.fx.proxy import TraceError

from src.errors import ScaleprobeError

__all__ = ["feature_extractor", "graph_node_names"]

# What torch.fx raises for code it cannot trace: control flow on a traced value
# (TraceError), a traced value used as a Python int or bool (TypeError).
_TRACE_ERRORS = (TraceError, TypeError)


def _not_traceable(model: nn.Module, error: Exception) -> ScaleprobeError:
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return ScaleprobeError(
        f"model {type(model).__name__} cannot be traced by torch.fx ({reason[:160]}), so its "
        "layers cannot be read as graph nodes; choose another model"
    )


def graph_node_names(model: nn.Module) -> list[str]:
    """Return the eval-mode graph nodes of ``model``, in execution order."""
    try:
        _, nodes = _get_graph_node_names(model)
    except _TRACE_ERRORS as error:
        raise _not_traceable(model, error) from None
    return nodes


def feature_extractor(model: nn.Module, nodes: Sequence[str]) -> nn.Module:
    """Return a module that maps an image batch to ``{node: output}`` for ``nodes``."""
    try:
        return _create_feature_extractor(model, return_nodes={n: n for n in nodes})
    except _TRACE_ERRORS as error:
        raise _not_traceable(model, error) from None
