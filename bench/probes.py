"""Benchmark: the paper's probe protocol, naive scikit-learn loop vs the fast path.

Workload (the issue's): 3 pairs x 10 splits x 21 alphas x (1 + 100 permutations)
target vectors, n_train = n_test = 220 images, d = 1280 features, on synthetic
planted features (440 images per class, seeded): 63,630 fits.

(a) fast: ``src.probes.fit.fit_alpha_grid`` once per (pair, split): one
    standardization, one batched minimum-norm least-squares solve for all
    targets at alpha = 0, and one exact LARS-Lasso path per target (or
    ``lasso_path`` warm starts with ``--solver cd``), KKT-checked, scored in
    one batch. Always run on the whole workload.
(b) naive: for each pair, split, alpha and target vector a fresh
    ``StandardScaler`` + ``LinearRegression`` (alpha = 0) or ``Lasso`` fit,
    scored with ``r2_score`` on the split's test images. On the whole
    workload this takes days on 2 cores, so by default it runs on
    ``--naive-targets`` (pair, split, target) cells drawn at random (seeded)
    from the workload, all 21 alphas each; its time for the whole workload is
    the measured seconds per cell times the number of cells, and the R²
    comparison covers every fit it made. ``--naive-targets all`` runs it whole.

The naive Lasso runs at a tight tolerance (``--naive-tol``): at scikit-learn's
default 1e-4 its own R² is off by up to ~1e-2 on shuffled ratios, so no
comparison at 1e-6 would be meaningful. Both sides run with one BLAS thread
so that the comparison measures the algorithms, not thread contention.

(c) ridge and kernel ridge (issue 15, item 4): ``RidgeProbe`` (one SVD per
    split, 21 penalties) and ``KernelRidgeProbe`` (RBF, gamma = 1/d, one
    ``eigh`` per split, 21 penalties) on the same workload, against a loop of
    ``StandardScaler`` + ``Ridge`` / ``KernelRidge`` (targets centered) fits
    per alpha and target on the same ``--naive-targets`` cells, timed and
    compared the same way. ``--probes ridge,kernel_ridge`` leaves the Lasso
    out, ``--pairs 1`` is the issue's 10 splits.

The last line printed is one JSON object: {"fast_s", "naive_s" (measured, on
the cells it ran), "naive_s_per_cell", "naive_s_whole_workload" (measured when
whole, else estimated), "speedup", "max_abs_r2_diff", "workload"} for the
Lasso, plus "ridge" and "kernel_ridge" objects with the same timing fields and
their ratios as "ridge_speedup" and "kernel_ridge_speedup".

Usage: ``uv run python bench/probes.py [--pairs 3 --splits 10 --permutations 100
--naive-targets 6|all --probes lasso,ridge,kernel_ridge]``
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import Lasso, LinearRegression, Ridge
from sklearn.metrics import r2_score
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from src.probes.fit import fit_alpha_grid
from src.probes.kernel_ridge import KernelRidgeProbe
from src.probes.metrics import r2_rows
from src.probes.ridge import RidgeProbe
from src.probes.splits import make_splits

N_PER_CLASS, D, N_TRAIN, N_TEST = 440, 1280, 220, 220
ALPHAS = np.r_[0.0, np.logspace(-4, -2, 20)]
# Penalties on scikit-learn's Ridge / KernelRidge scales (RSS not divided by n).
RIDGE_ALPHAS = np.logspace(-1, 4, 21)
KERNEL_ALPHAS = np.logspace(-3, 2, 21)
PROBES = ("lasso", "ridge", "kernel_ridge")


def make_classes(seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Three classes with correlated features and a shared sparse scale direction."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(50, D))  # shared low-rank structure, like CNN maps
    w = np.zeros(D)
    w[rng.choice(D, 40, replace=False)] = rng.normal(size=40)
    classes = {}
    for name in ("A", "B", "C"):
        X = rng.normal(size=(N_PER_CLASS, 50)) @ mixing + rng.normal(size=(N_PER_CLASS, D))
        X += rng.normal(scale=0.3, size=D)  # class-specific offset
        s = (X - X.mean(0)) @ w
        y = np.clip(0.5 + 0.15 * s / s.std() + 0.03 * rng.normal(size=N_PER_CLASS), 0.01, 1.0)
        classes[name] = (X, y)
    return classes


def build_workload(args: argparse.Namespace) -> list[tuple]:
    """(X_train, Y_targets, X_test, y_test) per (pair, split)."""
    classes = make_classes(args.seed)
    pairs = [("A", "A"), ("A", "B"), ("A", "C")][: args.pairs]
    jobs = []
    for p, (a, b) in enumerate(pairs):
        (XA, yA), (XB, yB) = classes[a], classes[b]
        splits = make_splits(
            N_PER_CLASS,
            N_PER_CLASS,
            n_train=N_TRAIN,
            n_test=N_TEST,
            n_splits=args.splits,
            seed=args.seed + p,
            same_class=a == b,
        )
        for i, split in enumerate(splits):
            ya = yA[split.train]
            rng = np.random.default_rng([args.seed, p, i])
            Y = np.column_stack([ya] + [rng.permutation(ya) for _ in range(args.permutations)])
            jobs.append((XA[split.train], Y, XB[split.test], yB[split.test]))
    return jobs


def run_naive(jobs: list[tuple], cells: list[tuple[int, int]], tol: float, max_iter: int):
    """R² of a fresh scaler + estimator per alpha, for each (job, target) cell."""
    r2 = np.empty((len(cells), ALPHAS.size))
    for c, (j, k) in enumerate(cells):
        X_train, Y, X_test, y_test = jobs[j]
        for i, alpha in enumerate(ALPHAS):
            scaler = StandardScaler().fit(X_train)
            if alpha == 0:
                model = LinearRegression()
            else:
                model = Lasso(alpha=alpha, tol=tol, max_iter=max_iter)
            model.fit(scaler.transform(X_train), Y[:, k])
            r2[c, i] = r2_score(y_test, model.predict(scaler.transform(X_test)))
    return r2


def naive_cells(jobs: list[tuple], how_many: str, seed: int) -> list[tuple[int, int]]:
    """All (job, target) cells, or ``how_many`` of them drawn at random."""
    cells = [(j, k) for j, job in enumerate(jobs) for k in range(job[1].shape[1])]
    if how_many == "all" or int(how_many) >= len(cells):
        return cells
    picks = np.random.default_rng(seed).choice(len(cells), int(how_many), replace=False)
    return [cells[i] for i in sorted(picks)]


def run_fast(jobs: list[tuple], solver: str, tol: float, max_iter: int) -> tuple[np.ndarray, int]:
    """R² of the grid fits per (job, target, alpha), and the number of CD refits."""
    out, refits = [], 0
    for X_train, Y, X_test, y_test in jobs:
        fit = fit_alpha_grid(X_train, Y, ALPHAS, solver=solver, tol=tol, max_iter=max_iter)
        refits += fit.n_refit
        out.append(r2_rows(y_test, fit.predict(X_test)))
    return np.stack(out), refits


def _naive_ridge(X_train, y, X_test, y_test, alphas: np.ndarray) -> np.ndarray:
    """R² of a fresh scaler + scikit-learn ``Ridge`` per alpha."""
    scaler = StandardScaler().fit(X_train)
    Xa, Xb = scaler.transform(X_train), scaler.transform(X_test)
    return np.array([r2_score(y_test, Ridge(alpha=a).fit(Xa, y).predict(Xb)) for a in alphas])


def _naive_kernel_ridge(X_train, y, X_test, y_test, alphas: np.ndarray) -> np.ndarray:
    """R² of a fresh scaler + scikit-learn ``KernelRidge`` (RBF, centered targets) per alpha."""
    scaler = StandardScaler().fit(X_train)
    Xa, Xb = scaler.transform(X_train), scaler.transform(X_test)
    out = []
    for a in alphas:
        model = KernelRidge(alpha=a, kernel="rbf", gamma=1.0 / D).fit(Xa, y - y.mean())
        out.append(r2_score(y_test, model.predict(Xb) + y.mean()))
    return np.array(out)


#: probe -> (grid probe on the bench's penalties, the naive loop of one cell)
GRID_PROBES = {
    "ridge": (lambda: RidgeProbe(grid=RIDGE_ALPHAS), _naive_ridge, RIDGE_ALPHAS),
    "kernel_ridge": (
        lambda: KernelRidgeProbe(grid=KERNEL_ALPHAS, kernel="rbf", gamma=1.0 / D),
        _naive_kernel_ridge,
        KERNEL_ALPHAS,
    ),
}


def compare_grid_probe(name: str, jobs: list[tuple], cells: list[tuple[int, int]]) -> dict:
    """Time a grid probe on every job and the naive loop on ``cells``; return the ratio fields."""
    make, naive, alphas = GRID_PROBES[name]
    t0 = time.perf_counter()
    r2_fast = np.stack(
        [r2_rows(y_test, make().fit(Xa, Y).predict(Xb)) for Xa, Y, Xb, y_test in jobs]
    )  # (job, target, alpha)
    fast_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    r2_naive = np.stack(
        [naive(jobs[j][0], jobs[j][1][:, k], *jobs[j][2:], alphas) for j, k in cells]
    )
    naive_s = time.perf_counter() - t0
    n_cells = sum(job[1].shape[1] for job in jobs)
    whole = len(cells) == n_cells
    naive_whole_s = naive_s if whole else naive_s / len(cells) * n_cells
    diff = np.abs(np.stack([r2_fast[j, k] for j, k in cells]) - r2_naive)
    print(
        f"{name}: fast {fast_s:.2f} s; naive {naive_s:.2f} s for {len(cells)} of {n_cells} "
        f"cells; max |dR2| = {diff.max():.2e} over {diff.size} fits"
    )
    return {
        "fast_s": round(fast_s, 3),
        "naive_s": round(naive_s, 3),
        "naive_cells": len(cells),
        "naive_s_per_cell": round(naive_s / len(cells), 4),
        "naive_s_whole_workload": round(naive_whole_s, 1),
        "naive_whole_is": "measured" if whole else "estimated from the cells run",
        "speedup": round(naive_whole_s / fast_s, 1),
        "max_abs_r2_diff": float(diff.max()),
        "alphas": [float(alphas[0]), float(alphas[-1]), int(alphas.size)],
    }


def _probe_list(value: str) -> list[str]:
    names = [v.strip() for v in value.split(",")]
    bad = [n for n in names if n not in PROBES]
    if bad:
        raise argparse.ArgumentTypeError(f"{bad[0]!r} is not one of {list(PROBES)}")
    return names


def _count_or_all(value: str) -> str:
    if value == "all" or (value.isdigit() and int(value) > 0):
        return value
    raise argparse.ArgumentTypeError(f"{value!r} is not a positive integer or 'all'")


def run_lasso(args: argparse.Namespace, jobs: list[tuple], cells: list[tuple[int, int]]) -> dict:
    """Time the Lasso path (fast) and the naive loop on ``cells``; return the Lasso's fields."""
    n_cells = len(jobs) * (1 + args.permutations)
    t0 = time.perf_counter()
    r2_fast, refits = run_fast(jobs, args.solver, args.naive_tol, args.max_iter)
    fast_s = time.perf_counter() - t0
    print(f"fast ({args.solver}): {fast_s:.2f} s, {refits} CD refits")
    t0 = time.perf_counter()
    r2_naive = run_naive(jobs, cells, args.naive_tol, args.max_iter)
    naive_s = time.perf_counter() - t0
    print(f"naive: {naive_s:.2f} s for {len(cells)} of {n_cells} cells")
    per_cell = naive_s / len(cells)
    whole = len(cells) == n_cells
    naive_whole_s = naive_s if whole else per_cell * n_cells
    diff = np.abs(np.stack([r2_fast[j, k] for j, k in cells]) - r2_naive)
    worst = np.unravel_index(np.argmax(diff), diff.shape)
    print(
        f"max |dR2| = {diff.max():.2e} over {diff.size} fits, at (job, target, alpha) = "
        f"({cells[worst[0]][0]}, {cells[worst[0]][1]}, {ALPHAS[worst[1]]:.2e}); "
        f"mean R2 real (fast): {r2_fast[:, 0].mean(0)[[0, 5, 10, 20]].round(3).tolist()} "
        f"(alpha 0, {ALPHAS[5]:.1e}, {ALPHAS[10]:.1e}, {ALPHAS[20]:.1e})"
    )
    return {
        "fast_s": round(fast_s, 3),
        "naive_s": round(naive_s, 3),
        "naive_cells": len(cells),
        "naive_s_per_cell": round(per_cell, 3),
        "naive_s_whole_workload": round(naive_whole_s, 1),
        "naive_whole_is": "measured" if whole else "estimated from the cells run",
        "speedup": round(naive_whole_s / fast_s, 1),
        "max_abs_r2_diff": float(diff.max()),
        "fits_compared": int(diff.size),
        "cd_refits": refits,
    }


def main() -> None:
    """Parse flags, time both sides on the same workload, print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=3, choices=[1, 2, 3])
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--permutations", type=int, default=100)
    parser.add_argument(
        "--naive-targets",
        default="6",
        type=_count_or_all,
        help="(pair, split, target) cells the naive loop runs: a positive integer or all",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--solver", choices=["lars", "cd"], default="lars")
    parser.add_argument("--naive-tol", type=float, default=1e-10)
    parser.add_argument("--max-iter", type=int, default=1_000_000)
    parser.add_argument(
        "--probes",
        default=",".join(PROBES),
        type=_probe_list,
        help=f"comma-separated probes to time, of {list(PROBES)}",
    )
    args = parser.parse_args()

    jobs = build_workload(args)
    n_cells = len(jobs) * (1 + args.permutations)
    n_fits = n_cells * ALPHAS.size
    print(
        f"workload: {len(jobs)} (pair, split) x {1 + args.permutations} targets "
        f"x {ALPHAS.size} alphas = {n_fits} fits, n={N_TRAIN}, d={D}"
    )
    cells = naive_cells(jobs, args.naive_targets, args.seed)
    result: dict = {}
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if "lasso" in args.probes:
            lasso = run_lasso(args, jobs, cells)
            refits = lasso.pop("cd_refits")
            result.update(lasso)
        for name in GRID_PROBES:
            if name in args.probes:
                result[name] = compare_grid_probe(name, jobs, cells)
                result[f"{name}_speedup"] = result[name]["speedup"]
    result["workload"] = {
        "pairs": args.pairs,
        "splits": args.splits,
        "alphas": int(ALPHAS.size),
        "permutations": args.permutations,
        "n_train": N_TRAIN,
        "n_test": N_TEST,
        "d": D,
        "fits": n_fits,
        "solver": args.solver,
        "naive_tol": args.naive_tol,
        "blas_threads": 1,
        **({"cd_refits": refits} if "lasso" in args.probes else {}),
        "probes": args.probes,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
