"""Multi-cell geo tests: several cells (channels) in disjoint markets sharing one pool of controls.

Cells.  Cell ``c`` treats the markets ``M_c``; the cells are disjoint and the controls are the markets
treated by *no* cell (a market treated by another cell carries that cell's effect, so it cannot
stand for "no campaign").  Each cell is estimated on its own, exactly as a single-cell test whose
donor pool (synthetic controls) or control group (TBR) is the shared controls
(:func:`stats.geo.lift.estimate_geo_lift`, :func:`stats.geo.tbr.estimate_tbr`), as GeoLift's
``GeoLiftMultiCell`` does (it drops the other cells' markets before running ``GeoLift`` per cell).

Compared quantity.  ``q_c = incremental_c / s_c``: the iROAS when every cell has a spend ``s_c``,
otherwise the relative lift, ``s_c`` then being the cell's estimated counterfactual total (held at
its estimate, as a known scale; its own error is second order next to the incremental's).

Interval for ``q_a - q_b``: a joint conformal test.  Both cells' estimates are driven by the same
control series, so their errors are correlated (a shock in the controls during the test moves both
counterfactuals) and the difference's interval cannot be built from the two marginal intervals
(GeoLift's "winner" rule compares them for overlap, which ignores the correlation and is
conservative or not by accident).  The test behind each cell's own interval (Chernozhukov, Wüthrich &
Zhu 2021, :mod:`stats.geo.conformal`; TBR's in :mod:`stats.geo.tbr`) extends to the difference:

1. under a null ``(q_a, q_b)`` each cell's model is re-fitted on all ``T = T0 + T1`` periods with its
   test-period outcomes reduced by the null effect (``q_c s_c`` spread evenly over the test days), and
   its residuals ``u_ct`` are expressed in units of ``q`` (per-period incremental over ``s_c``), so that
   ``sum_{t test} u_ct`` estimates ``q_c(true) - q_c``;
2. ``w_t = u_at - u_bt``: the two cells' residuals *on the same dates*;
3. ``S_k = |sum_{t in W_k} w_t|`` over the ``T`` cyclic windows ``W_k`` of ``T1`` consecutive periods
   (``W_0`` the test), ``p = #{k : S_k >= S_0} / T``.

A cyclic shift moves both cells' residuals together, so the permutation distribution of ``S`` carries
their correlation through the shared controls (and the serial dependence within a block), which is
what a placebo-in-time construction would estimate from pre-period windows -- but with all ``T``
windows instead of the few disjoint pre-period windows a short history holds, and with the same
validity as the per-cell test: exact under exchangeability of the residual blocks, asymptotically
valid for stationary weakly dependent residuals (the paper's Theorem 2).

The null on the difference, ``q_a - q_b = delta``, leaves one nuisance dimension.  It is set by
moving both cells from their estimates by half the gap, ``q_a = q^_a + (delta - D^)/2`` and
``q_b = q^_b - (delta - D^)/2`` (``D^ = q^_a - q^_b``).  At the true ``delta`` both cells' nulls are
then off their true values by the *same* amount ``(e_a + e_b)/2`` (``e_c`` the estimation errors),
whose effect on ``w`` cancels up to the difference in how much of it the two re-fits absorb (a
``T1 / T`` share at most), so the test is nearly free of the nuisance.  The interval inverts this
test, ``{delta : p(delta) > alpha}`` (:func:`stats.geo.conformal.invert_test`), and ``p_value`` is
``p(0)``: the interval excludes 0 exactly when ``p_value <= alpha``.

The synthetic-control cells are re-fitted on the panel deflated by the controls' level
(:func:`stats.geo.conformal.donor_level`, the same for every cell since they share the controls), as each
cell's own test is (:mod:`stats.geo.conformal`, whose docstring says why): ``w_t`` is then the difference of
two deflated residual series, and the argument above holds for it unchanged.  On issue 23's growing
markets (+0.3% a day, noise sd 15% of the level, 365 pre-period days, 15 test days, no effect in either
cell) the difference test on the raw panel rejected 12.9% of the null differences at 5%, on the deflated
panel 5.4% (2,000 tests, SE 0.5; 5.6% and 4.8% with 90 pre-days, 4.5% and 4.8% without growth).  TBR
cells still use the residuals of one OLS fit on all periods, unscaled: TBR's own test predicts each
window from a fit on the days outside it (:mod:`stats.geo.tbr`), which gives per-window sums rather than one
residual series for ``w_t``; carrying it over is left to do.

Calibration (``tests/stats/test_multi_cell.py``, seeded panels of ``simulations/geo_simulation.py``:
lognormal market levels, a shared AR(0.9) trend with market loadings, a weekly pattern, AR(0.3)
market noise; two cells of 2 markets among 25; +8% and +3% multiplicative effects, so the
effects are not constant per day): the 90% interval of the iROAS difference covers the truth at
about 90% for synthetic control (0.893, 300 replications), TBR (0.893, 800 replications) and the
ridge-augmented synthetic control (0.925, 200 replications).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from stats.errors import InvalidProblem
from stats.geo.conformal import CiStatus, NullRefit, donor_level, invert_test, pre_period_effects

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
Compared = Literal["iroas", "relative_lift"]

__all__ = [
    "CellComparison",
    "Compared",
    "ComparedCell",
    "compare_cells",
    "compare_two_cells",
    "synthetic_control_cell",
    "tbr_cell",
]

# Relative tolerance for "S_k >= S_0", so that windows reproducing the observed sum count as ties.
_TIE_RTOL = 1e-10


@dataclass(frozen=True)
class ComparedCell:
    """One cell as the comparison sees it.

    ``estimate`` is ``q^`` (its iROAS or relative lift); ``residuals`` maps nulls ``q`` ``(k,)`` to the
    re-fitted residuals ``(k, T)`` in units of ``q`` (see the module docstring, step 1).
    """

    name: str
    estimate: float
    residuals: Callable[[FloatArray], FloatArray]


@dataclass(frozen=True)
class CellComparison:
    """``q_first - q_second`` with its interval and the p-value of no difference (same test)."""

    first: str
    second: str
    difference: float
    ci_low: float | None
    ci_high: float | None
    ci_status: CiStatus
    p_value: float


def _checked(treated: FloatArray, donors: FloatArray, post: BoolArray, scale: float) -> tuple[FloatArray, ...]:
    y = np.asarray(treated, dtype=np.float64)
    x = np.asarray(donors, dtype=np.float64)
    mask = np.asarray(post, dtype=bool)
    if y.ndim != 1 or mask.shape != y.shape or x.shape[0] != y.size:
        raise InvalidProblem("cells", "each cell needs one value per analysed period, as the controls have")
    if not mask.any() or mask.all():
        raise InvalidProblem("test_period", "needs both pre-period and test-period observations")
    if not (np.isfinite(scale) and scale != 0.0):
        raise InvalidProblem("cells", "a cell's spend (or counterfactual total) must be a finite non-zero number")
    return y, x, mask.astype(np.float64)


def synthetic_control_cell(
    name: str,
    treated_average: FloatArray,
    donors: FloatArray,
    post: BoolArray,
    n_markets: int,
    scale: float,
    *,
    ridge_lambda: float | None = None,
    fixed_effects: bool = True,
) -> ComparedCell:
    """A cell estimated by (ridge-augmented, with ``ridge_lambda``) synthetic control.

    ``treated_average`` ``(T,)`` is the average of the cell's ``n_markets`` markets, ``donors`` ``(T, J)``
    the shared controls, ``post`` ``(T,)`` marks the test periods, ``scale`` is ``s_c``.  With ``T1`` test
    periods the effect per market and period ``theta`` gives ``q = n T1 theta / s``; the residuals of
    the re-fit under ``theta`` (:class:`stats.geo.conformal.NullRefit` on the panel deflated by the controls'
    level, :func:`stats.geo.conformal.donor_level`, as the cell's own test) are scaled by ``n / s``.
    """
    y, x, mask = _checked(treated_average, donors, post, scale)
    t1 = float(mask.sum())
    effects, _ = pre_period_effects(y, x, mask.astype(bool), fixed_effects, ridge_lambda)
    model = NullRefit(
        y, x, mask.astype(bool), fixed_effects=fixed_effects, ridge_lambda=ridge_lambda, level=donor_level(x)
    )
    per_unit = n_markets * t1 / scale

    def residuals(q: FloatArray) -> FloatArray:
        return model.residuals(np.asarray(q, dtype=np.float64) / per_unit) * (n_markets / scale)

    return ComparedCell(name, float(n_markets * effects.sum() / scale), residuals)


def tbr_cell(
    name: str, treated_total: FloatArray, control_total: FloatArray, post: BoolArray, scale: float
) -> ComparedCell:
    """A cell estimated by TBR: ``treated_total`` (the cell's markets summed) regressed on ``control_total``.

    ``Delta = q s``; under the null the re-fit on all periods of ``y - (Delta / T1) 1{test}`` on
    ``[1, x]`` is OLS, so its residuals ``M (y - Delta p / T1)`` are affine in the null (``M`` the
    residual maker); they are divided by ``s``.  The estimate is TBR's, from the pre-period fit.
    """
    y, x, mask = _checked(treated_total, np.asarray(control_total, dtype=np.float64)[:, None], post, scale)
    x = x[:, 0]
    pre = mask == 0.0
    design = np.column_stack([np.ones_like(x), x])
    coef, *_ = np.linalg.lstsq(design[pre], y[pre], rcond=None)
    delta = float(np.sum((y - design @ coef)[~pre]))
    hat = design @ np.linalg.pinv(design)
    maker = np.eye(y.size) - hat
    base = maker @ y
    direction = maker @ (mask / mask.sum())

    def residuals(q: FloatArray) -> FloatArray:
        nulls = np.asarray(q, dtype=np.float64) * scale
        return np.asarray((base[None, :] - nulls[:, None] * direction[None, :]) / scale, dtype=np.float64)

    return ComparedCell(name, delta / scale, residuals)


def _difference_p_values(
    first: ComparedCell, second: ComparedCell, post: BoolArray
) -> Callable[[FloatArray], FloatArray]:
    mask = np.asarray(post, dtype=bool)
    t = mask.size
    window = np.flatnonzero(mask)
    shifts = (window[None, :] + np.arange(t)[:, None]) % t  # row 0 is the test window
    estimate = first.estimate - second.estimate

    def p_values(deltas: FloatArray) -> FloatArray:
        d = np.atleast_1d(np.asarray(deltas, dtype=np.float64))
        half = (d - estimate) / 2.0
        w = first.residuals(first.estimate + half) - second.residuals(second.estimate - half)
        sums = np.abs(w[:, shifts].sum(axis=2))
        threshold = sums[:, :1] - _TIE_RTOL * np.abs(w).sum(axis=1, keepdims=True) - 1e-300
        return np.asarray(np.mean(sums >= threshold, axis=1), dtype=np.float64)

    return p_values


def compare_two_cells(first: ComparedCell, second: ComparedCell, post: BoolArray, alpha: float) -> CellComparison:
    """``q_first - q_second``: estimate, the inverted joint conformal test's interval, ``p(0)``."""
    if not 0.0 < alpha < 1.0:
        raise InvalidProblem("confidence_level", "must be strictly between 0 and 1")
    p_fn = _difference_p_values(first, second, post)
    estimate = first.estimate - second.estimate
    mask = np.asarray(post, dtype=bool)
    at_estimate = first.residuals(np.array([first.estimate])) - second.residuals(np.array([second.estimate]))
    spread = float(np.sqrt(np.mean(at_estimate**2)) * np.sqrt(mask.sum()))
    inversion = invert_test(p_fn, alpha, estimate, spread)
    p0 = inversion.p_at(0.0)
    p_value = float(p0) if p0 is not None else float(p_fn(np.zeros(1))[0])
    return CellComparison(
        first=first.name,
        second=second.name,
        difference=estimate,
        ci_low=inversion.low,
        ci_high=inversion.high,
        ci_status=inversion.status,
        p_value=p_value,
    )


def compare_cells(cells: Sequence[ComparedCell], post: BoolArray, alpha: float) -> list[CellComparison]:
    """Every pair ``(a, b)``, ``a`` before ``b`` in ``cells``, compared by :func:`compare_two_cells`."""
    if len(cells) < 2:
        raise InvalidProblem("cells", "a comparison needs at least 2 cells")
    return [compare_two_cells(a, b, post, alpha) for a, b in combinations(cells, 2)]
