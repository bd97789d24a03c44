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

1. under a null ``(q_a, q_b)`` each cell gives its own test's statistic of each of the ``T = T0 + T1``
   cyclic windows ``W_k`` of ``T1`` consecutive periods (``W_0`` the test), in units of ``q``
   (per-period incremental over ``s_c``), ``V_ck``.  Synthetic control: its model re-fitted on all
   periods with its test-period outcomes reduced by the null effect (``q_c s_c`` spread evenly over the
   test days), ``V_ck = sum_{t in W_k} u_ct`` of the re-fit's residuals ``u_ct``.  TBR: each window's
   prediction errors from the fit on the periods outside it, over the window's control level and
   studentized (:func:`stats.geo.tbr_conformal.held_out_window_sums`), so ``V_c0 = q^_c - q_c``;
2. ``w_k = V_ak - V_bk``: the two cells' statistics *on the same dates*;
3. ``S_k = |w_k|``, ``p = #{k : S_k >= S_0} / T``.

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
``T1 / T`` share at most), so the test is nearly free of the nuisance; for two TBR cells it cancels
exactly (the null enters ``V_ck`` as ``-q_c b_k / b_0``, and ``b`` depends on the shared control alone),
and the test is TBR's own test of the series ``y_a / s_a - y_b / s_b`` on the control.  The interval
inverts this test, ``{delta : p(delta) > alpha}`` (:func:`stats.geo.conformal.invert_test`), and
``p_value`` is ``p(0)``: the interval excludes 0 exactly when ``p_value <= alpha``.

The synthetic-control cells are re-fitted on the panel deflated by the controls' level
(:func:`stats.geo.conformal.donor_level`, the same for every cell since they share the controls), as each
cell's own test is (:mod:`stats.geo.conformal`, whose docstring says why): ``w_k`` is then the difference of
two deflated residual sums, and the argument above holds for it unchanged.  On issue 23's growing
markets (+0.3% a day, noise sd 15% of the level, 365 pre-period days, 15 test days, no effect in either
cell) the difference test on the raw panel rejected 12.9% of the null differences at 5%, on the deflated
panel 5.4% (2,000 tests, SE 0.5; 5.6% and 4.8% with 90 pre-days, 4.5% and 4.8% without growth).  The TBR
cells run TBR's own test since 2026-12-08: 4.6% of the same null differences at 365 pre-days (5.3% without
growth; 3.8% and 4.4% with 90 pre-days), where the residuals of one OLS fit on all periods, unscaled,
rejected 15.4% (5.0%; 5.3% and 4.4%).

Calibration (``tests/stats/test_multi_cell.py``, seeded panels of ``simulations/geo_simulation.py``:
lognormal market levels, a shared AR(0.9) trend with market loadings, a weekly pattern, AR(0.3)
market noise; two cells of 2 markets among 25; +8% and +3% multiplicative effects, so the
effects are not constant per day): the 90% interval of the iROAS difference covers the truth at
about 90% for synthetic control (0.893, 300 replications), TBR (0.889, 800 replications; 0.919 with 1,000
on another layout; 0.893 with the all-periods residuals) and the ridge-augmented synthetic control (0.925,
200 replications).
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
from stats.geo.tbr_conformal import held_out_window_sums

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

    ``estimate`` is ``q^`` (its iROAS or relative lift); ``window_sums`` maps nulls ``q`` ``(k,)`` to the
    cell's statistics ``(k, T)`` of the ``T`` cyclic windows, in units of ``q``: column ``j`` is the window
    starting ``j`` periods after the test's first (column 0 the test window; see the module docstring,
    steps 1 and 3).
    """

    name: str
    estimate: float
    window_sums: Callable[[FloatArray], FloatArray]


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
    shifts = _cyclic_windows(mask.astype(bool))

    def window_sums(q: FloatArray) -> FloatArray:
        residuals = model.residuals(np.asarray(q, dtype=np.float64) / per_unit) * (n_markets / scale)
        return np.asarray(residuals[:, shifts].sum(axis=2), dtype=np.float64)

    return ComparedCell(name, float(n_markets * effects.sum() / scale), window_sums)


def tbr_cell(
    name: str, treated_total: FloatArray, control_total: FloatArray, post: BoolArray, scale: float
) -> ComparedCell:
    """A cell estimated by TBR: ``treated_total`` (the cell's markets summed) regressed on ``control_total``.

    The window statistics are TBR's own test's (:func:`stats.geo.tbr_conformal.held_out_window_sums`):
    ``(a_k - Delta b_k)`` with ``Delta = q s``, each window's prediction errors from the fit on the periods
    outside it over its control level and studentized, expressed in units of ``q`` by dividing by
    ``s b_0``, so that the test window's is ``q^ - q``.  The estimate is TBR's, from the pre-period fit.
    The test periods must follow the whole pre-period.
    """
    y, x, mask = _checked(treated_total, np.asarray(control_total, dtype=np.float64)[:, None], post, scale)
    d = int(mask.sum())
    if mask[: y.size - d].any():
        raise InvalidProblem("test_period", "a TBR cell needs its test periods after the whole pre-period")
    sums_a, sums_b = held_out_window_sums(y[None, :], x[:, 0][None, :], d)
    a, b = sums_a[0], sums_b[0]
    unit = scale * b[0]

    def window_sums(q: FloatArray) -> FloatArray:
        nulls = np.asarray(q, dtype=np.float64) * scale
        return np.asarray((a[None, :] - nulls[:, None] * b[None, :]) / unit, dtype=np.float64)

    return ComparedCell(name, float(a[0] / unit), window_sums)


def _cyclic_windows(mask: BoolArray) -> NDArray[np.intp]:
    """``(T, T1)`` positions: row ``j`` the test periods shifted cyclically by ``j`` (row 0 the test)."""
    t = mask.size
    return np.asarray((np.flatnonzero(mask)[None, :] + np.arange(t)[:, None]) % t, dtype=np.intp)


def _difference_p_values(first: ComparedCell, second: ComparedCell) -> Callable[[FloatArray], FloatArray]:
    estimate = first.estimate - second.estimate

    def p_values(deltas: FloatArray) -> FloatArray:
        d = np.atleast_1d(np.asarray(deltas, dtype=np.float64))
        half = (d - estimate) / 2.0
        w = first.window_sums(first.estimate + half) - second.window_sums(second.estimate - half)
        sums = np.abs(w)
        threshold = sums[:, :1] - _TIE_RTOL * sums.sum(axis=1, keepdims=True) - 1e-300
        return np.asarray(np.mean(sums >= threshold, axis=1), dtype=np.float64)

    return p_values


def compare_two_cells(first: ComparedCell, second: ComparedCell, post: BoolArray, alpha: float) -> CellComparison:
    """``q_first - q_second``: estimate, the inverted joint conformal test's interval, ``p(0)``."""
    if not 0.0 < alpha < 1.0:
        raise InvalidProblem("confidence_level", "must be strictly between 0 and 1")
    p_fn = _difference_p_values(first, second)
    estimate = first.estimate - second.estimate
    at_estimate = first.window_sums(np.array([first.estimate])) - second.window_sums(np.array([second.estimate]))
    if at_estimate.shape[1] != np.asarray(post).size:
        raise InvalidProblem("cells", "the cells must be analysed over the same periods as the comparison")
    spread = float(np.sqrt(np.mean(at_estimate**2)))
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
