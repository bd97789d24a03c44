"""Always-valid inference for the lift by the normal-mixture SPRT (mSPRT).

Johari, Koomen, Pekelis & Walsh (2017, KDD), "Peeking at A/B Tests", and Johari, Pekelis & Walsh
(2015/2022), "Always Valid Inference: Continuous Monitoring of A/B Tests" (Operations Research 70(3)).

At a look where the lift estimate is θ̂ with variance V (V = SE_T² + SE_H², the same unpooled
variance as the fixed-horizon test), mixing the alternative θ ~ N(θ₀, τ²) gives the likelihood ratio

    Λ(θ₀) = sqrt(V / (V + τ²)) · exp( τ²·(θ̂ − θ₀)² / (2V(V + τ²)) )

(for two balanced streams V = 2σ²/n, which is the paper's formula). Λ is a nonnegative martingale
under θ₀, so by Ville's inequality P(sup_n Λ_n ≥ 1/α) ≤ α. Hence

* the always-valid p-value at a look is p = min(1, 1/Λ(0)); over looks the caller keeps the running
  minimum (:func:`running_min`), which is still always valid;
* the confidence sequence is {θ₀ : Λ(θ₀) < 1/α}, i.e.

      θ̂ ± sqrt( 2V(V + τ²)/τ² · [ log(1/α) + ½·log((V + τ²)/V) ] ),

  and the caller may keep the running intersection (:func:`running_intersection`).

p < α exactly when the interval at that look excludes 0 (and after the running minimum /
intersection, exactly when some look's interval excluded 0). V is estimated from the data at each look,
as in the paper's implementation; the guarantee is then asymptotic (large arms), and the allocation
between arms must stay fixed during the test.

Choice of the mixing variance τ²: it must be fixed before the test and kept across looks (a τ² that
changes with the data breaks the guarantee). Any τ² is valid; it only moves where the test is most
sensitive. Optimizely fixes τ² from the distribution of effects in past experiments; without such a
prior, :func:`mixing_variance_for_horizon` returns the τ² that makes the interval narrowest at a planned
final look with effect variance V_N: writing r = τ²/V_N, the squared half-width is proportional to
(1 + 1/r)(log(1/α) + ½log(1 + r)), minimised where r = 2·log(1/α) + log(1 + r) (r ≈ 8.2 at α = 0.05).
This is the tuning Howard, Ramdas, McAuliffe & Sekhon (2021, Ann. Statist.) use for normal-mixture
boundaries. V_N can be computed from the planned sample sizes and the expected per-unit variances.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
from scipy import special

from stats.arm_statistics import FloatArray
from stats.errors import InvalidProblem
from stats.lift import validate_probability


class MixtureSprtArrays(NamedTuple):
    """Elementwise always-valid p-value and confidence-sequence half-width (NaN where V = 0)."""

    p_value: FloatArray
    half_width: FloatArray


def mixture_sprt_arrays(
    estimate: FloatArray, variance: FloatArray, mixing_variance: float, alpha: float, null: float = 0.0
) -> MixtureSprtArrays:
    """The module's formulas elementwise over many looks or experiments.

    Written in the scale-free ratio ``r = τ²/V`` and in log space so that no intermediate overflows
    or underflows at the extremes of float64 (V = 5e-324 with τ² = 1e308, say)::

        log Λ = −½·log(1 + r) + ½·((θ̂ − θ₀)²/V)·r/(1 + r)
        log half-width = ½·[log 2 + log(log(1/α) + ½·log(1 + r)) + log V + log(1 + 1/r)]

    with ``log(1 + r) = logaddexp(0, log τ² − log V)`` and ``log(r/(1 + r)) = log_expit(log τ² − log V)``.
    A half-width beyond the range of a double comes out as ``inf``; a p-value is never NaN.
    """
    tau2 = mixing_variance
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        defined = variance > 0.0
        log_v = np.log(np.where(defined, variance, 1.0))
        log_r = math.log(tau2) - log_v
        log1p_r = np.logaddexp(0.0, log_r)
        # log((θ̂ − θ₀)²/V · r/(1 + r)); −inf when θ̂ = θ₀
        log_signal = 2.0 * np.log(np.abs(estimate - null)) - log_v + special.log_expit(log_r)
        log_lr = -0.5 * log1p_r + 0.5 * np.exp(log_signal)
        p_value = np.where(defined, np.exp(-np.maximum(log_lr, 0.0)), np.nan)
        log_half = 0.5 * (
            math.log(2.0) + np.log(math.log(1.0 / alpha) + 0.5 * log1p_r) + log_v + np.logaddexp(0.0, -log_r)
        )
        half_width = np.where(defined, np.exp(log_half), np.nan)
    return MixtureSprtArrays(np.asarray(p_value, dtype=np.float64), np.asarray(half_width, dtype=np.float64))


def _validate_mixing_variance(mixing_variance: float) -> float:
    if (
        isinstance(mixing_variance, bool)
        or not isinstance(mixing_variance, (int, float))
        or not math.isfinite(mixing_variance)
        or not mixing_variance > 0.0
    ):
        raise InvalidProblem("mixing_variance", "must be a finite number greater than 0")
    return float(mixing_variance)


@dataclass(frozen=True)
class SequentialLift:
    """Always-valid test of the lift at one look.

    ``ci_low``/``ci_high`` are the confidence-sequence bounds at this look and ``p_value`` the
    always-valid p-value at this look (before any running minimum); None when V = 0.
    """

    estimate: float
    std_error: float
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    mixing_variance: float
    warnings: tuple[str, ...] = ()
    looks: int = 1  # how many looks the bounds and p-value combine (see :func:`combine_looks`)


def always_valid_difference(
    estimate: float,
    variance: float,
    *,
    mixing_variance: float,
    alpha: float = 0.05,
) -> SequentialLift:
    """mSPRT p-value and confidence-sequence bounds for a difference with (estimated) variance V."""
    alpha = validate_probability(alpha, "alpha")
    tau2 = _validate_mixing_variance(mixing_variance)
    if not math.isfinite(estimate):
        raise InvalidProblem("estimate", "must be a finite number")
    if not math.isfinite(variance) or variance < 0.0:
        raise InvalidProblem("variance", "must be a finite number ≥ 0")
    result = mixture_sprt_arrays(np.asarray(estimate), np.asarray(variance), tau2, alpha)
    std_error = math.sqrt(variance)
    if not variance > 0.0:
        return SequentialLift(
            estimate,
            std_error,
            None,
            None,
            None,
            tau2,
            warnings=("Neither arm shows any variation in the metric, so no test is possible yet.",),
        )
    half = float(result.half_width)
    low, high = estimate - half, estimate + half
    if not (math.isfinite(low) and math.isfinite(high)):
        raise InvalidProblem(
            "mixing_variance",
            "is so small next to the variance of the estimate that the confidence sequence exceeds the double range",
        )
    return SequentialLift(estimate, std_error, low, high, float(result.p_value), tau2)


def mixing_variance_for_horizon(final_variance: float, *, alpha: float = 0.05) -> float:
    """τ² = r·V_N with r = 2·log(1/α) + log(1 + r): the narrowest interval at the planned final look.

    ``final_variance`` is V_N, the variance of the lift estimate expected at the last planned look,
    e.g. σ_T²/N_T + σ_H²/N_H.
    """
    alpha = validate_probability(alpha, "alpha")
    if not math.isfinite(final_variance) or not final_variance > 0.0:
        raise InvalidProblem("final_variance", "must be a finite number greater than 0")
    two_l = 2.0 * math.log(1.0 / alpha)
    r = two_l + 1.0
    for _ in range(100):  # contraction with factor 1/(1 + r) < 1
        updated = two_l + math.log1p(r)
        if abs(updated - r) < 1e-12 * r:
            r = updated
            break
        r = updated
    tau2 = r * final_variance
    if not math.isfinite(tau2):
        raise InvalidProblem("final_variance", f"times {r:.3g} (the optimal ratio) exceeds the range of a double")
    return tau2


def sequential_detectable_effect(std_error: float, half_width: float, *, power: float = 0.8) -> float:
    """Effect the confidence sequence would exclude 0 for with this power at this look: half-width + z_power·SE."""
    validate_probability(power, "power")
    for path, value in (("std_error", std_error), ("half_width", half_width)):
        if not math.isfinite(value) or value < 0.0:
            raise InvalidProblem(path, "must be a finite number ≥ 0")
    effect = half_width + float(special.ndtri(power)) * std_error
    if not math.isfinite(effect):
        raise InvalidProblem("std_error", "makes the detectable effect exceed the range of a double")
    return effect


def running_min(p_values: Sequence[float | None]) -> list[float | None]:
    """Running minimum over looks of always-valid p-values (None looks carry the previous value)."""
    result: list[float | None] = []
    current: float | None = None
    for p in p_values:
        if p is not None:
            current = p if current is None else min(current, p)
        result.append(current)
    return result


def running_intersection(
    intervals: Sequence[tuple[float, float] | None],
) -> list[tuple[float, float] | None]:
    """Running intersection over looks of confidence-sequence intervals.

    A look with no interval (None) leaves the running interval unchanged. If the intersection becomes
    empty — possible only when the truth already fell outside some interval, probability ≤ α — the
    last non-empty interval is kept rather than returning an empty set.
    """
    result: list[tuple[float, float] | None] = []
    current: tuple[float, float] | None = None
    for interval in intervals:
        if interval is not None:
            if current is None:
                current = interval
            else:
                low, high = max(current[0], interval[0]), min(current[1], interval[1])
                if low <= high:
                    current = (low, high)
        result.append(current)
    return result


@dataclass(frozen=True)
class EarlierLook:
    """What one earlier look reported on its own (same α and τ²): its bounds and p-value."""

    ci_low: float | None
    ci_high: float | None
    p_value: float | None


def combine_looks(current: SequentialLift, earlier: Sequence[EarlierLook]) -> SequentialLift:
    """The current look combined with the earlier ones: running intersection of the confidence sequence
    and running minimum of the p-value.

    Both stay valid at every look: the confidence sequence covers the truth at all looks at once with
    probability ≥ 1 − α, so its intersection over looks does too (Howard, Ramdas, McAuliffe & Sekhon
    2021), and Johari, Pekelis & Walsh (2017) define the always-valid p-value as exactly this running
    minimum. A marketer who saw a significant result yesterday therefore still sees it today.
    """
    if not earlier:
        return current
    intervals: list[tuple[float, float] | None] = [
        None if look.ci_low is None or look.ci_high is None else (look.ci_low, look.ci_high) for look in earlier
    ]
    now = None if current.ci_low is None or current.ci_high is None else (current.ci_low, current.ci_high)
    bounds = running_intersection([*intervals, now])[-1]
    p_value = running_min([*(look.p_value for look in earlier), current.p_value])[-1]
    return replace(
        current,
        ci_low=None if bounds is None else bounds[0],
        ci_high=None if bounds is None else bounds[1],
        p_value=p_value,
        looks=len(earlier) + 1,
    )
