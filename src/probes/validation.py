"""Argument checks of the probe modules, public for the entry points that check the same values.

Every check raises :class:`~src.errors.ScaleprobeError` with one line that
names the parameter, shows ``repr`` of the bad value and says what is allowed,
so that a wrong config value is reported where it was given, not deep inside
scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np

from src.errors import ScaleprobeError

__all__ = ["check_alpha", "check_alphas", "check_count", "check_seed"]


def check_alpha(value: object, name: str = "alpha") -> float:
    """Return ``value`` as a float if it is a finite real number ``>= 0``.

    Parameters
    ----------
    value : object
        The regularization strength to check.
    name : str, default="alpha"
        Parameter name used in the error message.

    Returns
    -------
    float
        The validated value.

    Raises
    ------
    ScaleprobeError
        If ``value`` is not a real number (booleans and strings included), is
        negative, or is not finite.
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ScaleprobeError(
            f"{name}={value!r} is not a real number; use a finite float >= 0 "
            "(0 means ordinary least squares)"
        )
    alpha = float(value)
    if not math.isfinite(alpha) or alpha < 0:
        raise ScaleprobeError(
            f"{name}={value!r} is out of range; use a finite float >= 0 "
            "(0 means ordinary least squares)"
        )
    return alpha


def check_alphas(values: Sequence[float] | np.ndarray, name: str = "alphas") -> np.ndarray:
    """Return a non-empty 1-D float array of valid regularization strengths.

    Parameters
    ----------
    values : sequence of float
        The alpha grid.
    name : str, default="alphas"
        Parameter name used in the error message.

    Returns
    -------
    ndarray of shape (n_alphas,)
        The grid, in the given order.

    Raises
    ------
    ScaleprobeError
        If the grid is empty, not one-dimensional, or holds an invalid alpha.
    """
    if isinstance(values, str | bytes) or np.ndim(values) != 1 or len(values) == 0:
        raise ScaleprobeError(
            f"{name}={values!r} is not a non-empty 1-D sequence of finite floats >= 0"
        )
    return np.array([check_alpha(v, f"{name}[{i}]") for i, v in enumerate(values)])


def check_count(value: object, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int if it is an integer ``>= minimum``.

    Parameters
    ----------
    value : object
        The count to check (a number of images, splits, ...).
    name : str
        Parameter name used in the error message.
    minimum : int, default=1
        Smallest allowed value.

    Returns
    -------
    int
        The validated count.

    Raises
    ------
    ScaleprobeError
        If ``value`` is not an integer or is below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ScaleprobeError(f"{name}={value!r} is invalid; use an integer >= {minimum}")
    return int(value)


def check_seed(value: object, name: str = "seed") -> int:
    """Return ``value`` as an int if it is a non-negative integer seed.

    Parameters
    ----------
    value : object
        The seed to check; numpy's seed sequences reject negative seeds.
    name : str, default="seed"
        Parameter name used in the error message.

    Returns
    -------
    int
        The validated seed.

    Raises
    ------
    ScaleprobeError
        If ``value`` is not an integer ``>= 0``.
    """
    return check_count(value, name, minimum=0)
