"""The MLflow runs of a report: a sweep's jobs as typed records, and which each table uses.

A sweep's jobs differ by pair, probe hyperparameter (the Lasso's alpha) and
maybe weights; runs are keyed by pair and hyperparameter value within one
probe (the ``probe`` param: one report shows one probe, ``lasso`` for runs
logged before probes were named). The report shows least squares
(``alpha = 0``) beside the Lasso at the reference alpha (or the sweep's alpha
nearest to it), pretrained weights beside random weights (the
random-weights null) when the sweep holds both, and refuses to mix runs that
cannot be compared (another backbone, layer or feature dimension).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from src.errors import ScaleprobeError

__all__ = [
    "CLASS_NAMES",
    "RANDOM_WEIGHTS",
    "JobRecord",
    "ReportData",
    "class_name",
    "job_record",
    "organize",
    "organize_sweep",
]

# The paper's classes (ImageNet WNIDs, also those of the synthetic set).
CLASS_NAMES = {"n02058221": "albatross", "n01608432": "kite", "n04037443": "racing car"}
RANDOM_WEIGHTS = "random"
# Runs logged before the probe seam: the Lasso path, keyed by alpha.
DEFAULT_PROBE, DEFAULT_PARAM = "lasso", "alpha"
_REQUIRED = ("train_class", "test_class", "alpha", "weights", "backbone", "layer", "feature_dim")
# Params that must agree across the runs of one report.
_SHARED = ("feature_dim", "backbone", "layer", "data", "n_splits", "target", "target_label")
# Runs logged before the target seam regressed the scale ratio.
_SHARED_DEFAULTS = {
    "target": "scale",
    "target_label": "scale ratio r = sqrt(box area / image area)",
}


def class_name(class_id: str) -> str:
    """Return a readable class name (the paper's classes by name, others by id).

    Examples
    --------
    >>> class_name("n01608432"), class_name("dog")
    ('kite', 'dog')
    """
    return CLASS_NAMES.get(class_id, class_id)


@dataclass(frozen=True)
class JobRecord:
    """One finished job of a sweep, with the artifacts the report loaded for it.

    Attributes
    ----------
    run_id : str
        MLflow run id.
    params : dict of str to str
        Logged params, as strings.
    metrics : dict of str to float
        Logged metrics (means over splits, ``_std``, ``_ci95``, ``_pvalue``).
    coef : ndarray of shape (n_splits, d) or None
        Training-class probes (``coef.npy``), if loaded.
    coef_test : ndarray of shape (n_splits, d) or None
        Probes fitted on the test images (``coef_test.npy``), if loaded.
    path : dict or None
        The alpha path (``path.json``), if loaded.
    null : dict or None
        The permutation null of the job's alpha (``null.json``), if loaded.
    stability : dict or None
        The Lasso's stable maps (``stability.json``), if logged and loaded.
    montage : bytes or None
        The PNG of what those maps respond to (``stable_maps.png``), if loaded.
    """

    run_id: str
    params: dict[str, str]
    metrics: dict[str, float]
    coef: np.ndarray | None = None
    coef_test: np.ndarray | None = None
    path: dict[str, Any] | None = None
    null: dict[str, Any] | None = None
    stability: dict[str, Any] | None = None
    montage: bytes | None = None

    @property
    def train_class(self) -> str:
        """The training class."""
        return self.params["train_class"]

    @property
    def test_class(self) -> str:
        """The test class."""
        return self.params["test_class"]

    @property
    def pair(self) -> tuple[str, str]:
        """``(train_class, test_class)``."""
        return self.train_class, self.test_class

    @property
    def probe(self) -> str:
        """The probe's name (the ``probe`` param)."""
        return self.params.get("probe", DEFAULT_PROBE)

    @property
    def param(self) -> str:
        """The name of the probe's hyperparameter (the ``probe_param`` param)."""
        return self.params.get("probe_param", DEFAULT_PARAM)

    @property
    def alpha(self) -> float:
        """The job's hyperparameter value (the Lasso's alpha; 0: least squares)."""
        return float(self.params[self.param])

    @property
    def weights(self) -> str:
        """The backbone weights label (``random`` for random weights)."""
        return self.params["weights"]

    @property
    def feature_dim(self) -> int:
        """Number of features (feature maps) of the layer."""
        return int(self.params["feature_dim"])


def job_record(run_id: str, params: Mapping[str, str], metrics: Mapping[str, float]) -> JobRecord:
    """Build a record from a run's params and metrics, checking what the report needs.

    Raises
    ------
    ScaleprobeError
        If a param the report needs is missing or malformed.
    """
    param = params.get("probe_param", DEFAULT_PARAM)
    missing = [name for name in (*_REQUIRED, param) if name not in params]
    missing = list(dict.fromkeys(missing))
    if missing:
        raise ScaleprobeError(
            f"run {run_id!r} lacks the params {missing}; it was not logged by src.run "
            "(pass the parent run of a src.run sweep)"
        )
    try:
        float(params[param])
        int(params["feature_dim"])
    except ValueError:
        raise ScaleprobeError(
            f"run {run_id!r} has {param}={params[param]!r}, feature_dim="
            f"{params['feature_dim']!r}; expected a float and an integer"
        ) from None
    return JobRecord(run_id=run_id, params=dict(params), metrics=dict(metrics))


@dataclass(frozen=True)
class ReportData:
    """The records one report shows, arranged for its tables and figures.

    Attributes
    ----------
    main : dict of (train_class, test_class, alpha) to JobRecord
        Runs of the main weights (pretrained if the sweep has them), by pair
        and value of the probe's hyperparameter (``alpha`` for the Lasso).
    random : dict of (train_class, test_class, alpha) to JobRecord
        Runs with random weights, when the main weights are pretrained (the
        random-weights null); empty otherwise.
    pairs : list of (str, str)
        The pairs, same-class ones first, in the order of first appearance.
    alphas : list of float
        The sweep's alphas, increasing.
    nonreg_alpha : float or None
        0 when the sweep has least-squares runs.
    lasso_alpha : float or None
        The positive alpha nearest (in log scale) to the reference alpha.
    reference_alpha : float
        The configured reference alpha.
    weights : str
        The main weights label.
    shared : dict of str to str
        Params common to all runs (backbone, layer, data, feature_dim, n_splits).
    probe : str, default="lasso"
        The probe of every run.
    param : str, default="alpha"
        The name of its hyperparameter, the last item of every key.
    probes : dict of str to ReportData
        When the sweep holds several probes: each probe's runs, arranged
        alike (the linear vs non-linear table); empty otherwise.
    scan : list of JobRecord
        When the sweep's runs differ in layer (a layer scan): every layer's
        runs, for the depth section (:mod:`src.report.depth`); empty otherwise.
    """

    main: dict[tuple[str, str, float], JobRecord]
    random: dict[tuple[str, str, float], JobRecord]
    pairs: list[tuple[str, str]]
    alphas: list[float]
    nonreg_alpha: float | None
    lasso_alpha: float | None
    reference_alpha: float
    weights: str
    shared: dict[str, str] = field(default_factory=dict)
    probe: str = DEFAULT_PROBE
    param: str = DEFAULT_PARAM
    probes: dict[str, ReportData] = field(default_factory=dict)
    scan: list[JobRecord] = field(default_factory=list)

    @property
    def feature_dim(self) -> int:
        """Number of features of the layer."""
        return int(self.shared["feature_dim"])

    @property
    def target(self) -> str:
        """The regressed target's name (``target`` param): titles and axes name it."""
        return self.shared.get("target", _SHARED_DEFAULTS["target"])

    @property
    def paper_target(self) -> bool:
        """Whether the target is the paper's scale ratio, the only one its numbers are of."""
        return self.target == _SHARED_DEFAULTS["target"]

    @property
    def target_values(self) -> str:
        """What a permutation shuffles, in words: "ratios" for scale, else "<target> values"."""
        return "ratios" if self.paper_target else f"{self.target} values"

    def get(
        self, pair: tuple[str, str], alpha: float | None, *, random: bool = False
    ) -> JobRecord | None:
        """Return the run of ``pair`` at ``alpha`` (``None`` if the sweep has none)."""
        if alpha is None:
            return None
        return (self.random if random else self.main).get((*pair, alpha))


def _nearest_positive(alphas: Sequence[float], reference: float) -> float | None:
    positive = [a for a in alphas if a > 0]
    if not positive:
        return None
    if reference <= 0:
        return min(positive)
    return min(positive, key=lambda a: abs(math.log(a) - math.log(reference)))


def organize(
    records: Sequence[JobRecord],
    reference_alpha: float,
    select: Mapping[str, Any] | None = None,
) -> ReportData:
    """Arrange a sweep's records for the report.

    Parameters
    ----------
    records : sequence of JobRecord
        The sweep's finished jobs.
    reference_alpha : float
        The Lasso alpha of Tables 1-2 and Fig. 3; the nearest positive alpha
        of the sweep is used if it has no run at exactly this alpha.
    select : mapping of str to object or None, default=None
        Keep only runs whose params equal these values (e.g.
        ``{"layer": "mixed8"}``).

    Returns
    -------
    ReportData
        The arranged runs.

    Raises
    ------
    ScaleprobeError
        If no run matches ``select``, or the runs differ in probe, backbone,
        layer, data, feature dimension or number of splits, or use several
        pretrained weights.
    """
    select = dict(select or {})
    kept = [r for r in records if all(r.params.get(k) == str(v) for k, v in select.items())]
    if not kept:
        raise ScaleprobeError(
            f"report.select={select!r} matches none of the sweep's {len(records)} runs"
        )
    probes = sorted({(r.probe, r.param) for r in kept})
    if len(probes) > 1:
        raise ScaleprobeError(
            f"the sweep's runs use several probes {[p for p, _ in probes]}; report one at a "
            "time with +report.select.probe=<name>"
        )
    shared = {}
    for name in _SHARED:
        values = sorted({r.params.get(name, _SHARED_DEFAULTS.get(name, "")) for r in kept})
        if len(values) > 1:
            what = "feature dimensions" if name == "feature_dim" else f"{name} values"
            raise ScaleprobeError(
                f"the sweep's runs have mismatched {what} {values}; report one at a time "
                f"with +report.select.{name}=<value>"
            )
        shared[name] = values[0]
    labels = sorted({r.weights for r in kept})
    pretrained = [w for w in labels if w != RANDOM_WEIGHTS]
    if len(pretrained) > 1:
        raise ScaleprobeError(
            f"the sweep mixes pretrained weights {pretrained}; report one at a time with "
            "+report.select.weights=<value>"
        )
    weights = pretrained[0] if pretrained else RANDOM_WEIGHTS
    main, random = {}, {}
    for r in kept:
        key = (r.train_class, r.test_class, r.alpha)
        table = main if r.weights == weights else random
        table.setdefault(key, r)  # a repeated job: the first one counts
    pairs = list(dict.fromkeys((t, s) for t, s, _ in main))
    pairs.sort(key=lambda p: p[0] != p[1])  # stable: same-class first
    alphas = sorted({a for *_, a in main})
    return ReportData(
        main=main,
        random=random,
        pairs=pairs,
        alphas=alphas,
        nonreg_alpha=0.0 if 0.0 in alphas else None,
        lasso_alpha=_nearest_positive(alphas, reference_alpha),
        reference_alpha=float(reference_alpha),
        weights=weights,
        shared=shared,
        probe=probes[0][0],
        param=probes[0][1],
    )


def organize_sweep(
    records: Sequence[JobRecord],
    reference_alpha: float,
    select: Mapping[str, Any] | None = None,
) -> ReportData:
    """Arrange a sweep that may hold several probes: one probe's tables, every probe's runs.

    Without ``select["probe"]``, Tables 1-2 and the figures show the Lasso
    (else the first probe by name); ``probes`` holds each probe's runs,
    :func:`organize`-d alike, which must share backbone, layer, data and the
    other shared params.

    Raises
    ------
    ScaleprobeError
        As :func:`organize`, or if the probes' runs differ in a shared param.
    """
    select = dict(select or {})
    names = sorted({r.probe for r in records if all(
        r.params.get(k) == str(v) for k, v in select.items())})  # fmt: skip
    if "probe" in select or len(names) < 2:
        return organize(records, reference_alpha, select)
    probes = {name: organize(records, reference_alpha, {**select, "probe": name}) for name in names}
    first = next(iter(probes.values()))
    for data in probes.values():
        if data.shared != first.shared:
            differ = sorted(k for k in data.shared if data.shared[k] != first.shared.get(k))
            raise ScaleprobeError(
                f"the sweep's probes {names} differ in {differ}; report one at a time with "
                "+report.select.probe=<name>"
            )
    main = probes.get(DEFAULT_PROBE, probes[names[0]])
    return replace(main, probes=probes)
