"""Stage 3: linear probes of scale on cached features (plain numpy/scikit-learn).

``splits`` draws the seeded train/test splits, ``fit`` standardizes and fits
least-squares or Lasso probes (one at a time or a whole alpha grid),
``metrics`` scores and summarizes, ``geometry`` compares coefficient vectors,
``nulls`` provides shuffled-ratio and random-direction baselines, and
``protocol`` runs the paper's evaluation of one class pair.
"""

from src.probes.fit import AlphaGridFit, ScaleProbe, fit_alpha_grid, lasso_path_coefs
from src.probes.geometry import angle_deg, cosine, cumulative_norm, maps_for_norm_fraction
from src.probes.metrics import r2, summarize
from src.probes.nulls import random_directions, shuffled
from src.probes.protocol import PairResult, evaluate_pair
from src.probes.splits import Split, make_splits

__all__ = [
    "AlphaGridFit",
    "PairResult",
    "ScaleProbe",
    "Split",
    "angle_deg",
    "cosine",
    "cumulative_norm",
    "evaluate_pair",
    "fit_alpha_grid",
    "lasso_path_coefs",
    "make_splits",
    "maps_for_norm_fraction",
    "r2",
    "random_directions",
    "shuffled",
    "summarize",
]
