"""Seeded train/test index splits for a (train class, test class) pair.

The paper draws ``n_splits`` random splits: each takes ``n_train`` images of
the training class and ``n_test`` images of the test class. When both classes
are the same, the test images must be disjoint from the training images, or
the "generalization" R² would be measured on images the probe has seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from src.errors import ScaleprobeError
from src.probes.validation import check_count, check_seed

__all__ = ["Split", "check_split_sizes", "make_splits"]


@dataclass(frozen=True)
class Split:
    """Row indices of one train/test split.

    Attributes
    ----------
    train : ndarray of shape (n_train,)
        Sorted int indices into the training class rows.
    test : ndarray of shape (n_test,)
        Sorted int indices into the test class rows.
    """

    train: np.ndarray
    test: np.ndarray


def check_split_sizes(
    n_train_pool: int,
    n_test_pool: int,
    *,
    n_train: int,
    n_test: int,
    n_splits: int,
    seed: int,
    same_class: bool,
    train_class: str = "train class",
    test_class: str = "test class",
) -> tuple[int, int, int, int, int, int]:
    """Check that the classes hold enough images for the splits, before any work.

    The same checks :func:`make_splits` makes, without drawing: an entry point
    calls it as soon as it knows the class sizes (before extracting features).

    Parameters
    ----------
    n_train_pool, n_test_pool, n_train, n_test, n_splits, seed, same_class, train_class, test_class
        As in :func:`make_splits`.

    Returns
    -------
    tuple of int
        ``(n_train_pool, n_test_pool, n_train, n_test, n_splits, seed)``, validated.

    Raises
    ------
    ScaleprobeError
        If a class has too few images for the requested split sizes, or a
        count or the seed is invalid.
    """
    n_train_pool = check_count(n_train_pool, "n_train_pool")
    n_test_pool = check_count(n_test_pool, "n_test_pool")
    n_train = check_count(n_train, "n_train")
    n_test = check_count(n_test, "n_test")
    n_splits = check_count(n_splits, "n_splits")
    seed = check_seed(seed)
    if same_class:
        if n_train_pool != n_test_pool:
            raise ScaleprobeError(
                f"same_class=True but n_train_pool={n_train_pool!r} != "
                f"n_test_pool={n_test_pool!r}; one class has one pool of images"
            )
        if n_train + n_test > n_train_pool:
            raise ScaleprobeError(
                f"n_train + n_test = {n_train + n_test} exceeds the {n_train_pool} images "
                f"of class {train_class!r}; lower n_train or n_test so that they sum to "
                f"at most {n_train_pool}"
            )
    else:
        for name, wanted, pool, cls in (
            ("n_train", n_train, n_train_pool, train_class),
            ("n_test", n_test, n_test_pool, test_class),
        ):
            if wanted > pool:
                raise ScaleprobeError(
                    f"{name}={wanted!r} exceeds the {pool} images of class {cls!r}; "
                    f"use {name} <= {pool}"
                )
    return n_train_pool, n_test_pool, n_train, n_test, n_splits, seed


def make_splits(
    n_train_pool: int,
    n_test_pool: int,
    *,
    n_train: int,
    n_test: int,
    n_splits: int,
    seed: int,
    same_class: bool,
    train_class: str = "train class",
    test_class: str = "test class",
) -> list[Split]:
    """Draw ``n_splits`` reproducible random splits without replacement.

    Splits are drawn one after another from ``np.random.default_rng(seed)``,
    so the same arguments give the same splits and the first ``k`` splits do
    not depend on ``n_splits``.

    Parameters
    ----------
    n_train_pool : int
        Number of images (rows) of the training class.
    n_test_pool : int
        Number of images (rows) of the test class; must equal
        ``n_train_pool`` when ``same_class`` is true.
    n_train : int
        Training images per split.
    n_test : int
        Test images per split.
    n_splits : int
        Number of splits.
    seed : int
        Non-negative seed.
    same_class : bool
        Whether both pools are the same class; then each split's test indices
        are disjoint from its training indices.
    train_class : str, default="train class"
        Name of the training class, used in error messages.
    test_class : str, default="test class"
        Name of the test class, used in error messages.

    Returns
    -------
    list of Split
        ``n_splits`` splits.

    Raises
    ------
    ScaleprobeError
        If a class has too few images for the requested split sizes, or a
        count or the seed is invalid.

    Examples
    --------
    >>> splits = make_splits(10, 10, n_train=6, n_test=4, n_splits=2, seed=0,
    ...                      same_class=True)
    >>> [len(s.train) for s in splits], set(splits[0].train) & set(splits[0].test)
    ([6, 6], set())
    """
    n_train_pool, n_test_pool, n_train, n_test, n_splits, seed = check_split_sizes(
        n_train_pool,
        n_test_pool,
        n_train=n_train,
        n_test=n_test,
        n_splits=n_splits,
        seed=seed,
        same_class=same_class,
        train_class=train_class,
        test_class=test_class,
    )
    rng = np.random.default_rng(seed)
    if same_class:
        splits = []
        for _ in range(n_splits):
            order = rng.permutation(n_train_pool)
            splits.append(
                Split(
                    train=np.sort(order[:n_train]),
                    test=np.sort(order[n_train : n_train + n_test]),
                )
            )
        return splits
    return [
        Split(
            train=np.sort(rng.choice(n_train_pool, size=n_train, replace=False)),
            test=np.sort(rng.choice(n_test_pool, size=n_test, replace=False)),
        )
        for _ in range(n_splits)
    ]
