"""Stage 3: probes of scale on cached features (plain numpy/scikit-learn).

``splits`` draws the seeded train/test splits, ``base`` declares the probe
seam (:class:`GridProbe`: a hyperparameter grid fitted for many targets at
once), ``lasso`` is the paper's probe over ``fit`` (least squares and the
Lasso path), ``ridge`` the closed-form ridge (with ``coef_``), ``kernel_ridge``
and ``mlp`` the non-linear probes (without: R² and its null only),
``metrics`` scores and summarizes, ``geometry`` compares coefficient vectors,
``nulls`` provides shuffled-ratio and random-direction baselines, and
``protocol`` runs the paper's evaluation of one class pair.
"""

from src.probes.base import GridProbe
from src.probes.fit import AlphaGridFit, fit_alpha_grid
from src.probes.geometry import angle_deg, cosine, cumulative_norm, maps_for_norm_fraction
from src.probes.kernel_ridge import KernelRidgeProbe
from src.probes.lasso import LassoPathProbe
from src.probes.metrics import r2, summarize
from src.probes.mlp import MLPProbe
from src.probes.nulls import random_directions, shuffled
from src.probes.protocol import PairResult, evaluate_pair
from src.probes.ridge import RidgeProbe
from src.probes.splits import Split, make_splits

__all__ = [
    "AlphaGridFit",
    "GridProbe",
    "KernelRidgeProbe",
    "LassoPathProbe",
    "MLPProbe",
    "PairResult",
    "RidgeProbe",
    "Split",
    "angle_deg",
    "cosine",
    "cumulative_norm",
    "evaluate_pair",
    "fit_alpha_grid",
    "make_splits",
    "maps_for_norm_fraction",
    "r2",
    "random_directions",
    "shuffled",
    "summarize",
]
