"""Kernel ridge probes: every alpha and target from one eigendecomposition per split.

A non-linear probe asks whether a layer encodes scale at all, where the
linear probes ask whether it encodes it linearly. With the training kernel
``K = Q diag(lam) Q'`` of the standardized features, the dual coefficients of
scikit-learn's ``KernelRidge`` are ``Q diag(1 / (lam + alpha)) Q' y``: after
one ``eigh`` each alpha and each target (the real ratios and their
permutations) is a rescaling and a product. The targets are centered on
their training mean (the intercept), which ``KernelRidge`` leaves out; so the
linear kernel gives exactly :class:`~src.probes.ridge.RidgeProbe`. There is no
``coef_`` (an RBF probe has no weight vector): the protocol reports R² and its
null, no geometry.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.utils.validation import check_array, check_is_fitted

from src.errors import ScaleprobeError
from src.probes.base import PenaltyGridProbe, check_targets
from src.probes.fit import standardization

__all__ = ["KERNELS", "KernelRidgeProbe", "kernel_memory_bytes"]

KERNELS = ("rbf", "linear")
# n x n float64 arrays alive at once in fit: the kernel, its eigenvectors, and
# eigh's workspace (about one more).
_KERNEL_COPIES = 3
_FLOAT = 8


def kernel_memory_bytes(n_samples: int, n_features: int) -> int:
    """Estimate the peak bytes of one fit: ``n*n*8`` times the kernel's copies, plus the features.

    Examples
    --------
    >>> kernel_memory_bytes(1000, 10)  # 8 * (3 * 1000**2 + 2 * 1000 * 10)
    24160000
    """
    return _FLOAT * (_KERNEL_COPIES * n_samples * n_samples + 2 * n_samples * n_features)


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ScaleprobeError(f"{name}={value!r} is not a finite number; use a float > 0")
    if value <= 0:
        raise ScaleprobeError(f"{name}={value!r} is out of range; use a float > 0")
    return float(value)


class KernelRidgeProbe(PenaltyGridProbe):
    """Standardize-then-kernel-ridge probes over an alpha grid, many targets at once.

    Parameters
    ----------
    grid : sequence of float, default=(1.0,)
        Finite penalties ``>= 0`` on scikit-learn's ``KernelRidge`` scale
        (dual ``(K + alpha I)^-1 y``); 0 is the minimum-norm interpolant.
    kernel : {"rbf", "linear"}, default="rbf"
        ``exp(-gamma |x - x'|^2)`` or ``x . x'`` on the standardized features.
    gamma : float or None, default=None
        RBF width (> 0); ``None``: ``1 / n_features``, scikit-learn's default.
        Ignored by the linear kernel.
    max_memory_gib : float, default=4.0
        Memory a fit may take (:func:`kernel_memory_bytes`); a larger ``n``
        is refused before the kernel is allocated.

    Attributes
    ----------
    dual_coef_ : ndarray of shape (n_targets, n_grid, n_samples)
        Dual coefficients of every probe.
    intercept_ : ndarray of shape (n_targets,)
        Training means of the targets.
    X_fit_ : ndarray of shape (n_samples, n_features)
        Standardized training features.
    mean_, scale_ : ndarray of shape (n_features,)
        Training feature means and scales.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 5))
    >>> probe = KernelRidgeProbe(grid=[0.1, 1.0]).fit(X, np.c_[X[:, 0] ** 2, X[:, 1]])
    >>> probe.dual_coef_.shape, probe.predict(X).shape
    ((2, 2, 40), (2, 2, 40))
    """

    param_name = "kernel_alpha"

    def __init__(
        self,
        grid: Sequence[float] = (1.0,),
        *,
        kernel: Literal["rbf", "linear"] = "rbf",
        gamma: float | None = None,
        max_memory_gib: float = 4.0,
    ):
        super().__init__(grid)
        self.kernel = kernel
        self.gamma = gamma
        self.max_memory_gib = max_memory_gib

    def check_memory(self, n_samples: int, n_features: int) -> None:
        """Refuse a fit on ``n_samples`` images that would exceed ``max_memory_gib``.

        Raises
        ------
        ScaleprobeError
            Naming ``n``, the estimate and the limit.
        """
        limit = _positive("max_memory_gib", self.max_memory_gib)
        need = kernel_memory_bytes(n_samples, n_features) / 2**30
        if need > limit:
            raise ScaleprobeError(
                f"kernel_ridge on n={n_samples} training images x d={n_features} features "
                f"needs about {need:.1f} GiB ({_KERNEL_COPIES} copies of an n x n float64 "
                f"kernel) but max_memory_gib={self.max_memory_gib}; lower n_train or raise "
                "probe.max_memory_gib"
            )

    def _kernel(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        if self.kernel == "linear":
            return A @ B.T
        gamma = 1.0 / A.shape[1] if self.gamma is None else _positive("gamma", self.gamma)
        return rbf_kernel(A, B, gamma=gamma)

    def fit(self, X: ArrayLike, Y: ArrayLike) -> KernelRidgeProbe:
        """Fit the whole alpha grid for each column of ``Y`` from one ``eigh``; return ``self``."""
        X, Y = check_targets(X, Y)
        alphas = self.grid_values()
        if self.kernel not in KERNELS:
            raise ScaleprobeError(f"kernel={self.kernel!r} is not allowed; choose from {KERNELS}")
        self.check_memory(*X.shape)
        self.mean_, self.scale_ = standardization(X)
        self.X_fit_ = (X - self.mean_) / self.scale_
        self.intercept_ = Y.mean(axis=0)
        lam, Q = np.linalg.eigh(self._kernel(self.X_fit_, self.X_fit_))
        # Eigenvalues below the rank cut are 0: alpha 0 then gives the minimum-norm
        # interpolant rather than amplified rounding noise.
        lam = np.where(lam > lam.max() * lam.size * np.finfo(float).eps, lam, 0.0)
        denom = lam + alphas[:, None]  # (n_grid, n)
        inverse = np.divide(1.0, denom, out=np.zeros_like(denom), where=denom > 0)
        QtY = Q.T @ (Y - self.intercept_)  # (n, n_targets)
        # (n_grid, n_targets, n) @ (n, n): one matrix product per alpha
        dual = (inverse[:, None, :] * QtY.T[None]) @ Q.T
        self.dual_coef_ = np.ascontiguousarray(dual.transpose(1, 0, 2))
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predictions of every fitted probe, shape (n_targets, n_grid, n_samples)."""
        check_is_fitted(self, "dual_coef_")
        Xs = (check_array(X, dtype=np.float64) - self.mean_) / self.scale_
        K = self._kernel(Xs, self.X_fit_)  # (n_samples, n_train)
        return self.dual_coef_ @ K.T + self.intercept_[:, None, None]
