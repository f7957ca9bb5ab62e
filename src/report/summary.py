"""The report's "What this sweep supports": one paragraph worded from the numbers.

Every claim follows a stated rule, so the paragraph says no more than the
logged metrics do:

- a control's gap (the job's R² minus the control's, paired over splits)
  *exceeds* the control only when its 95% CI lies above 0, *is below* it when
  the CI lies below 0, and *does not exceed* it when the CI holds 0;
- the permutation p-value is read against :data:`P_LEVEL`, and a p at the
  floor ``1 / (n_permutations + 1)`` is said to be the smallest the null can give;
- across classes the direction *transfers* when ``pearson_test`` is at least
  :data:`PEARSON_TRANSFERS`, and the offset does not when ``r2_test_centered``
  exceeds ``r2_test`` by more than :data:`OFFSET_LOSS`.
"""

from __future__ import annotations

from src.report.runs import JobRecord, ReportData, class_name

__all__ = ["OFFSET_LOSS", "PEARSON_TRANSFERS", "P_LEVEL", "gap_verdict", "sweep_summary"]

P_LEVEL = 0.05
PEARSON_TRANSFERS = 0.5
OFFSET_LOSS = 0.1

_CONTROLS = (("random_weights", "random-weights control"), ("pixels", "pixel control"))


def gap_verdict(mean: float, half_width: float) -> str:
    """Word a paired gap by where its 95% CI ``mean ± half_width`` lies against 0.

    Examples
    --------
    >>> gap_verdict(0.15, 0.05), gap_verdict(0.02, 0.05), gap_verdict(-0.2, 0.05)
    ('exceeds', 'does not exceed', 'is below')
    """
    if mean - half_width > 0:
        return "exceeds"
    if mean + half_width < 0:
        return "is below"
    return "does not exceed"


def _n_permutations(run: JobRecord) -> int | None:
    if "n_permutations" in run.params:
        return int(run.params["n_permutations"])
    return None if run.null is None else int(run.null["n_permutations"])


def _pvalue_clause(run: JobRecord) -> str | None:
    p = run.metrics.get("r2_test_pvalue")
    if p is None:
        return None
    n = _n_permutations(run)
    floor = None if n is None else 1.0 / (n + 1)
    if p < P_LEVEL:
        if floor is not None and p <= floor * (1 + 1e-9):
            return (
                f"p = {p:.3g} against the shuffled null, the smallest {n} permutations can give "
                f"(p < {P_LEVEL:g})"
            )
        return f"p = {p:.3g} < {P_LEVEL:g} against the shuffled null"
    if floor is not None and floor >= P_LEVEL:
        return (
            f"p = {p:.3g} against the shuffled null: {n} permutations cannot reach "
            f"p < {P_LEVEL:g} (floor 1/(n_permutations+1) = {floor:.3g}), raise n_permutations"
        )
    return f"p = {p:.3g} ≥ {P_LEVEL:g}: not distinguishable from the shuffled null"


def _controls_clause(run: JobRecord) -> str | None:
    parts = []
    for key, label in _CONTROLS:
        gap = f"r2_test_gap_{key}"
        if gap not in run.metrics:
            continue
        mean, half = run.metrics[gap], run.metrics[f"{gap}_ci95"]
        parts.append(
            f"{gap_verdict(mean, half)} the {label} (R² {run.metrics[f'r2_test_{key}']:.2f}; "
            f"gap {mean:.2f} [{mean - half:.2f}, {mean + half:.2f}])"
        )
    if not parts:
        return None
    return " and ".join(parts) + " (paired 95% CIs over splits)"


def _transfer_clause(run: JobRecord) -> str:
    r2 = run.metrics["r2_test"]
    pearson = run.metrics.get("pearson_test")
    centered = run.metrics.get("r2_test_centered")
    target = f"to {class_name(run.test_class)}"
    if pearson is None or centered is None:
        return f"{target} R² {r2:.2f} (no pearson_test / r2_test_centered logged)"
    numbers = f"R² {r2:.2f}, centred R² {centered:.2f}"
    if not pearson >= PEARSON_TRANSFERS:  # nan pearson (a constant prediction): no direction
        return f"{target} the direction does not transfer (pearson {pearson:.2f}; {numbers})"
    offset = "but the offset does not" if centered - r2 > OFFSET_LOSS else "and so does the offset"
    return f"{target} the direction transfers (pearson {pearson:.2f}) {offset} ({numbers})"


def _run(data: ReportData, pair: tuple[str, str]) -> JobRecord | None:
    return data.get(pair, data.lasso_alpha) or data.get(pair, data.nonreg_alpha)


def sweep_summary(data: ReportData) -> str:
    """Return the paragraph: within-class R² against the controls and the null, then transfer.

    Each pair's run is the Lasso at the report's alpha, or least squares
    where the sweep has no Lasso run of the pair.
    """
    sentences = []
    same = [p for p in data.pairs if p[0] == p[1]]
    if same and (run := _run(data, same[0])) is not None:
        head = (
            f"Within-class R² ({class_name(same[0][0])}, {data.param}={run.alpha:g}: "
            f"{run.metrics['r2_test']:.2f})"
        )
        controls = _controls_clause(run)
        if controls is None:
            head += ": no in-job controls were logged (controls=[] or an older sweep)"
        else:
            head += " " + controls
        pvalue = _pvalue_clause(run)
        sentences.append(head + ("" if pvalue is None else "; " + pvalue) + ".")
    else:
        sentences.append("This sweep has no within-class pair.")
    across = [r for p in data.pairs if p[0] != p[1] if (r := _run(data, p)) is not None]
    if across:
        sentences.append("Across classes, " + "; ".join(_transfer_clause(r) for r in across) + ".")
    else:
        sentences.append("This sweep has no cross-class pair.")
    sentences.append(
        f"(Rules: a gap exceeds a control only when its CI lies above 0; p against {P_LEVEL:g}; "
        f"the direction transfers when pearson ≥ {PEARSON_TRANSFERS:g}; the offset does not "
        f"when centred R² exceeds R² by more than {OFFSET_LOSS:g}.)"
    )
    return " ".join(sentences)
