"""The stable-map montage: its size, and each tile a resized image of the dataset."""

import numpy as np
from PIL import Image

from src.data.images import load_rgb_image, resize_square
from src.probes.stability import stable_maps
from src.report.montage import MONTAGE, driving_images, job_montage, montage

N, D = 20, 8


def _dataset(tmp_path):
    """20 small images of distinct random colours, and features that rank them."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(N):
        pixels = rng.integers(0, 256, size=(24 + i, 30, 3), dtype=np.uint8)
        paths.append(str(tmp_path / f"img{i}.png"))
        Image.fromarray(pixels).save(paths[-1])
    return paths, rng.normal(size=(N, D)), rng.uniform(0.1, 0.9, size=N)


def test_driving_images_are_the_argsort_ends_of_each_map():
    X = np.random.default_rng(1).normal(size=(N, D))
    rows = driving_images(X, [5, 2], 6)
    for r, m in enumerate([5, 2]):
        order = np.argsort(X[:, m])
        np.testing.assert_array_equal(rows[r, :6], order[::-1][:6])
        np.testing.assert_array_equal(rows[r, 6:], order[:6])


def test_montage_png_size_and_tiles_are_the_dataset_images(tmp_path):
    paths, X, y = _dataset(tmp_path)
    maps = [3, 0, 7, 1, 6, 4]  # six stable maps: only the top 5 are drawn
    out, layout, rows = montage(X, paths, y, maps, tmp_path / "m.png", coef=np.ones(D), tile=32)
    png = np.asarray(Image.open(out).convert("RGB"))
    assert layout.n_rows == 5
    assert png.shape[1::-1] == layout.size == (150 + 12 * 32 + 16 + 4, 20 + 5 * (14 + 32) + 4)
    np.testing.assert_array_equal(rows, driving_images(X, maps[:5], 6))
    for r in range(5):
        for c in range(12):
            left, top = layout.tile_box(r, c)
            tile = png[top : top + 32, left : left + 32]
            expected = np.asarray(resize_square(load_rgb_image(paths[rows[r, c]]), 32))
            np.testing.assert_array_equal(tile, expected)


def test_job_montage_draws_the_stable_maps_and_nothing_without_them(tmp_path):
    paths, X, y = _dataset(tmp_path)
    coef = np.zeros((4, D))
    coef[:, [2, 5]] = [0.3, -0.1]  # maps 2 and 5 selected in every split, 0 once
    coef[0, 0] = 0.2
    stable = stable_maps(coef, threshold=0.8)
    ((name, out),) = job_montage(stable, X, paths, y, tmp_path).items()
    assert name == MONTAGE == out.name
    ref, layout, _ = montage(X, paths, y, [2, 5], tmp_path / "ref.png", coef=stable.mean_coef)
    assert layout.n_rows == 2  # the two stable maps, most stable first
    np.testing.assert_array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(ref)))
    assert job_montage(None, X, paths, y, tmp_path / "none") == {}  # a probe without selection
    assert job_montage(stable_maps(coef[:1] * 0), X, paths, y, tmp_path / "none") == {}
