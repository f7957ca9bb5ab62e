"""Build a torchvision backbone with pretrained, local or random weights.

Weights decide what the features mean, so their identity (a file's sha256 or
the random-init seed) becomes part of every cache key and every MLflow run.
"""

from __future__ import annotations

import logging
import pickle
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision.models import get_model, get_model_weights

from src.errors import ScaleprobeError
from src.features.checksums import sha256_file

__all__ = [
    "BACKBONES",
    "RANDOM_WEIGHTS",
    "WeightsSource",
    "build_backbone",
    "builder_kwargs",
    "hub_checkpoint_path",
    "model_fields",
    "resolve_weights",
]

logger = logging.getLogger(__name__)

RANDOM_WEIGHTS = "random"
_RANDOM_INIT_SEED = 0

# Builder keyword arguments per backbone; InceptionV3 without the aux head and
# without scipy's slow truncated-normal init (see NOTES: ~6 s saved).
BACKBONES: dict[str, dict[str, object]] = {
    "inception_v3": {"aux_logits": False, "init_weights": False},
    "resnet50": {},
}


@dataclass(frozen=True)
class WeightsSource:
    """Which weights a backbone gets, known without building the model."""

    label: str
    """``random``, a torchvision weights name (``IMAGENET1K_V1``) or ``file:<name>``."""
    sha256: str
    """sha256 of the checkpoint file, or ``random-init-seed-0`` for random weights."""
    path: Path | None = None


def _check_name(name: str) -> None:
    if name not in BACKBONES:
        raise ScaleprobeError(
            f"backbone={name!r} is not supported; choose from {sorted(BACKBONES)}"
        )


def hub_checkpoint_path(name: str, weights: str) -> Path:
    """Where torch's hub cache keeps the file of torchvision weights ``weights``."""
    _check_name(name)
    enum = get_model_weights(name)
    try:
        member = enum[weights]
    except KeyError:
        choices = [RANDOM_WEIGHTS, *enum.__members__]
        raise ScaleprobeError(
            f"backbone.weights={weights!r} is not a weights name of {name}; choose from {choices}"
        ) from None
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(member.url).name


def resolve_weights(
    name: str,
    weights: str = RANDOM_WEIGHTS,
    *,
    weights_path: str | Path | None = None,
    require_weights: bool = False,
) -> WeightsSource:
    """Find the weights file of backbone ``name`` and hash it; nothing is downloaded.

    Parameters
    ----------
    name : str
        A key of :data:`BACKBONES`.
    weights : str, default="random"
        ``random`` (seeded, reproducible) or a torchvision weights name looked
        up in torch's hub cache (``$TORCH_HOME/hub/checkpoints``).
    weights_path : path, optional
        A local state_dict checkpoint; wins over ``weights``.
    require_weights : bool, default=False
        When the pretrained file is missing: raise if True, else fall back to
        random weights and say so in one log line.
    """
    _check_name(name)
    if weights_path is not None:
        path = Path(weights_path)
        if not path.is_file():
            raise ScaleprobeError(f"backbone.weights_path={str(path)!r} does not exist")
        return WeightsSource(f"file:{path.name}", sha256_file(path), path)
    if weights != RANDOM_WEIGHTS:
        path = hub_checkpoint_path(name, weights)
        if path.is_file():
            return WeightsSource(weights, sha256_file(path), path)
        advice = (
            f"pretrained {name} weights {weights} not found: put {path.name} in "
            f"{path.parent} (download it from {get_model_weights(name)[weights].url} on a "
            f"machine with internet) or set backbone.weights_path=<file>"
        )
        if require_weights:
            raise ScaleprobeError(advice)
        logger.warning("%s; using random weights (weights=random)", advice)
    return WeightsSource(RANDOM_WEIGHTS, f"random-init-seed-{_RANDOM_INIT_SEED}")


def builder_kwargs(name: str, source: WeightsSource, *, transform_input: bool = False) -> dict:
    """Keyword arguments ``get_model`` gets for ``name`` (the aux head aside).

    ``transform_input`` (InceptionV3) applies only to loaded weights: the
    random-init control keeps plain ImageNet-normalized input. The aux head
    follows the checkpoint (whose sha256 is in the key) and lies outside every
    feature node, so it is left out here.
    """
    _check_name(name)
    kwargs = dict(BACKBONES[name])
    if name == "inception_v3":
        kwargs["transform_input"] = bool(transform_input) and source.path is not None
    return kwargs


def model_fields(
    name: str, source: WeightsSource, *, transform_input: bool = False
) -> dict[str, object]:
    """How the network is built beyond its weights: key fields of every entry.

    ``builder`` and the effective ``builder_kwargs`` (the input transform
    included) and ``reduce``, how a node's output becomes one vector.
    """
    return {
        "builder": name,
        "builder_kwargs": builder_kwargs(name, source, transform_input=transform_input),
        "reduce": "spatial_mean",
    }


def _build(name: str, *, aux_logits: bool, kwargs: dict) -> nn.Module:
    if name == "inception_v3":
        kwargs = {**kwargs, "aux_logits": aux_logits}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_RANDOM_INIT_SEED)
        return get_model(name, weights=None, **kwargs)


_EXPECTED_CHECKPOINT = "expected a state_dict saved by torch.save(model.state_dict(), path)"


def _unreadable_reason(path: Path, error: BaseException) -> str:
    """Why torch could not load ``path``, in a few words (torch's own text is a page long)."""
    if isinstance(error, EOFError) or path.stat().st_size == 0:
        return "the file is empty or cut short"
    if isinstance(error, pickle.UnpicklingError) and str(error).startswith("Weights only"):
        if zipfile.is_zipfile(path):
            return "it holds Python objects besides tensors (a whole pickled model?)"
        return "it is not a PyTorch checkpoint file"
    if "PytorchStreamReader" in str(error) or zipfile.is_zipfile(path):
        return "the PyTorch archive is damaged (truncated or corrupted)"
    return "it is not a PyTorch checkpoint file"


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's legacy-format notes, not ours to show
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a bad file
        raise ScaleprobeError(
            f"checkpoint {path} cannot be read as a state_dict: "
            f"{_unreadable_reason(path, error)}; {_EXPECTED_CHECKPOINT}"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ScaleprobeError(
            f"checkpoint {path} holds a {type(state).__name__}, not a state_dict; "
            f"{_EXPECTED_CHECKPOINT}"
        )
    return state


def build_backbone(name: str, source: WeightsSource, *, transform_input: bool = False) -> nn.Module:
    """Build backbone ``name`` in eval mode with the weights ``source`` names.

    ``transform_input`` (InceptionV3 with pretrained weights only) maps
    ImageNet-normalized input to the [-1, 1] range the Google weights expect.
    A checkpoint must match the architecture key for key.
    """
    kwargs = builder_kwargs(name, source, transform_input=transform_input)
    if source.path is None:
        return _build(name, aux_logits=False, kwargs=kwargs).eval()
    state = _load_state_dict(source.path)
    aux = any(key.startswith("AuxLogits.") for key in state)
    model = _build(name, aux_logits=aux, kwargs=kwargs)
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ScaleprobeError(
            f"checkpoint {source.path} does not fit {name}: missing keys "
            f"{result.missing_keys[:3]}, unexpected keys {result.unexpected_keys[:3]} "
            f"({len(result.missing_keys)} missing, {len(result.unexpected_keys)} unexpected)"
        )
    return model.eval()
