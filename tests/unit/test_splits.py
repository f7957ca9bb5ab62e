import numpy as np
import pytest

from src.errors import ScaleprobeError
from src.probes.splits import Split, check_split_sizes, make_splits


def test_same_class_disjoint_and_sized():
    for split in make_splits(60, 60, n_train=30, n_test=30, n_splits=8, seed=0, same_class=True):
        assert isinstance(split, Split)
        assert split.train.shape == (30,)
        assert split.test.shape == (30,)
        assert len(set(split.train)) == 30
        assert len(set(split.test)) == 30
        assert not set(split.train) & set(split.test)
        assert split.train.min() >= 0
        assert max(split.train.max(), split.test.max()) < 60


def test_cross_class_indices_in_their_own_pools():
    splits = make_splits(40, 100, n_train=40, n_test=90, n_splits=3, seed=1, same_class=False)
    for split in splits:
        assert sorted(split.train.tolist()) == list(range(40))
        assert len(set(split.test)) == 90
        assert split.test.max() < 100


def test_reproducible_and_seed_dependent():
    a = make_splits(100, 100, n_train=20, n_test=20, n_splits=4, seed=7, same_class=True)
    b = make_splits(100, 100, n_train=20, n_test=20, n_splits=4, seed=7, same_class=True)
    c = make_splits(100, 100, n_train=20, n_test=20, n_splits=4, seed=8, same_class=True)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.train, y.train)
        np.testing.assert_array_equal(x.test, y.test)
    assert any(not np.array_equal(x.train, z.train) for x, z in zip(a, c, strict=True))
    # splits differ from one another within one call
    assert not np.array_equal(a[0].train, a[1].train)


def test_prefix_stable_in_n_splits():
    short = make_splits(50, 80, n_train=10, n_test=10, n_splits=2, seed=5, same_class=False)
    long = make_splits(50, 80, n_train=10, n_test=10, n_splits=6, seed=5, same_class=False)
    for x, y in zip(short, long[:2], strict=True):
        np.testing.assert_array_equal(x.train, y.train)
        np.testing.assert_array_equal(x.test, y.test)


def test_too_many_images_same_class_names_class():
    with pytest.raises(ScaleprobeError, match=r"n_train \+ n_test = 300 exceeds the 200 images"):
        make_splits(
            200,
            200,
            n_train=220,
            n_test=80,
            n_splits=1,
            seed=0,
            same_class=True,
            train_class="n02058221",
        )
    with pytest.raises(ScaleprobeError, match="'n02058221'"):
        make_splits(
            200,
            200,
            n_train=220,
            n_test=80,
            n_splits=1,
            seed=0,
            same_class=True,
            train_class="n02058221",
        )


def test_too_many_images_cross_class():
    with pytest.raises(ScaleprobeError, match=r"n_test=90 exceeds the 50 images of class 'cars'"):
        make_splits(
            100,
            50,
            n_train=10,
            n_test=90,
            n_splits=1,
            seed=0,
            same_class=False,
            test_class="cars",
        )


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"n_train": 0}, "n_train=0"),
        ({"n_splits": 2.5}, "n_splits=2.5"),
        ({"seed": -1}, "seed=-1"),
        ({"n_test": True}, "n_test=True"),
    ],
)
def test_invalid_counts(kw, match):
    args = dict(n_train=5, n_test=5, n_splits=2, seed=0, same_class=True)
    args.update(kw)
    with pytest.raises(ScaleprobeError, match=match):
        make_splits(20, 20, **args)


def test_same_class_pools_must_match():
    with pytest.raises(ScaleprobeError, match="n_test_pool"):
        make_splits(20, 30, n_train=5, n_test=5, n_splits=1, seed=0, same_class=True)


@pytest.mark.parametrize(
    ("pools", "args", "match"),
    [
        ((20, 20), dict(n_train=15, n_test=10, same_class=True), "n_train \\+ n_test = 25"),
        ((20, 30), dict(n_train=5, n_test=5, same_class=True), "same_class=True"),
        ((20, 30), dict(n_train=25, n_test=5, same_class=False), "n_train=25 exceeds the 20"),
        ((20, 30), dict(n_train=5, n_test=31, same_class=False), "n_test=31 exceeds the 30"),
        ((20, 30), dict(n_train=0, n_test=5, same_class=False), "n_train=0"),
    ],
)
def test_check_split_sizes_is_make_splits_without_drawing(pools, args, match):
    # #12.7: run.py validates the sizes before extraction with this, not by drawing splits
    kw = dict(n_splits=3, seed=0, train_class="a", test_class="b", **args)
    with pytest.raises(ScaleprobeError, match=match):
        check_split_sizes(*pools, **kw)
    with pytest.raises(ScaleprobeError, match=match):
        make_splits(*pools, **kw)
    assert check_split_sizes(20, 20, n_train=8, n_test=6, n_splits=3, seed=0, same_class=True) == (
        20,
        20,
        8,
        6,
        3,
        0,
    )
