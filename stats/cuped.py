"""CUPED variance reduction from aggregates (Deng, Xu, Kohavi & Walker 2013, WSDM).

"Improving the Sensitivity of Online Controlled Experiments by Utilizing Pre-Experiment Data": with
a pre-period covariate x per unit, the adjusted outcome is y − θ(x − x̄), which keeps the mean
difference unbiased (x is independent of assignment) and has variance

    Var(y) − 2θ·Cov(y, x) + θ²·Var(x),

minimised at θ = Cov(y, x) / Var(x). As the paper recommends, θ is estimated once from the POOLED
arms (so both arms use the same θ and the difference of adjusted means is Δ_y − θ·Δ_x)::

    N = n_T + n_H,   S_x = Σx over both arms, ... (all sums pooled)
    θ = (S_xy − S_x·S_y/N) / (S_xx − S_x²/N)
    adjusted mean_i      = ȳ_i − θ(x̄_i − x̄_pooled)
    adjusted variance_i  = s²_y,i − 2θ·s_xy,i + θ²·s²_x,i        (per-arm sample moments, n − 1)
    SE of adjusted mean_i = sqrt(adjusted variance_i / n_i)

Everything comes from the arms' sufficient statistics (n, Σy, Σy², Σx, Σx², Σx·y); no unit data.
θ is treated as known, as in the paper; its estimation error is O(1/N) and ignored. The adjusted
means share the term θ·x̄_pooled; treating the two arms as independent, as the per-arm standard
errors do, is exact for their difference and accurate to second order for their ratio.

Variance reduction reported = 1 − (adjusted variance of the difference) / (raw variance of the
difference), both with sample (n − 1) variances; per arm likewise. The paper's ρ² is the special case
of equal arms. A covariate balance check (z test on x̄_T − x̄_H) flags broken randomisation: the
covariate was measured before assignment, so a significant difference means the split is not random.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import special

from stats.arm_statistics import ArmSummary, FloatArray, sample_covariance_arrays, sample_variance_arrays
from stats.errors import InvalidProblem

# A pre-period covariate that differs between arms at this level means assignment is not random.
COVARIATE_IMBALANCE_THRESHOLD = 0.001


class CupedArrays(NamedTuple):
    """Elementwise CUPED results over many experiments."""

    theta: FloatArray
    pooled_covariate_mean: FloatArray
    treatment_mean: FloatArray
    treatment_variance: FloatArray
    treatment_raw_variance: FloatArray
    holdout_mean: FloatArray
    holdout_variance: FloatArray
    holdout_raw_variance: FloatArray


@dataclass(frozen=True)
class ArmAggregates:
    """Sufficient statistics of one arm with a covariate, as arrays (one entry per experiment)."""

    units: FloatArray
    sum_y: FloatArray
    sum_y_squares: FloatArray
    sum_x: FloatArray
    sum_x_squares: FloatArray
    cross_sum: FloatArray


def cuped_arrays(treatment: ArmAggregates, holdout: ArmAggregates) -> CupedArrays:
    """The module's formulas elementwise. θ is 0 where the pooled covariate has no variance."""
    n = treatment.units + holdout.units
    sx = treatment.sum_x + holdout.sum_x
    sy = treatment.sum_y + holdout.sum_y
    sxx = treatment.sum_x_squares + holdout.sum_x_squares
    sxy = treatment.cross_sum + holdout.cross_sum
    centred_xx = np.maximum(sxx - sx * sx / n, 0.0)
    centred_xy = sxy - sx * sy / n
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = np.where(centred_xx > 0.0, centred_xy / np.where(centred_xx > 0.0, centred_xx, 1.0), 0.0)
    pooled_x = sx / n

    def adjust(arm: ArmAggregates) -> tuple[FloatArray, FloatArray, FloatArray]:
        var_y = sample_variance_arrays(arm.units, arm.sum_y, arm.sum_y_squares)
        var_x = sample_variance_arrays(arm.units, arm.sum_x, arm.sum_x_squares)
        cov = sample_covariance_arrays(arm.units, arm.sum_x, arm.sum_y, arm.cross_sum)
        mean = arm.sum_y / arm.units - theta * (arm.sum_x / arm.units - pooled_x)
        variance = np.maximum(var_y - 2.0 * theta * cov + theta * theta * var_x, 0.0)
        return (np.asarray(mean, dtype=np.float64), np.asarray(variance, dtype=np.float64), var_y)

    with np.errstate(over="ignore", invalid="ignore"):  # θ²·s²_x past the double range: checked by callers
        t_mean, t_var, t_raw = adjust(treatment)
        h_mean, h_var, h_raw = adjust(holdout)
    return CupedArrays(
        np.asarray(theta, dtype=np.float64),
        np.asarray(pooled_x, dtype=np.float64),
        t_mean,
        t_var,
        t_raw,
        h_mean,
        h_var,
        h_raw,
    )


@dataclass(frozen=True)
class CupedArm:
    """One arm after CUPED: adjusted mean, adjusted sample variance and the SE of the adjusted mean."""

    units: int
    mean: float
    variance: float
    std_error: float
    raw_mean: float
    raw_variance: float
    variance_reduction: float | None


@dataclass(frozen=True)
class CupedAdjustment:
    """CUPED applied to a treatment/holdout pair.

    ``variance_reduction`` is 1 − Var(adjusted difference)/Var(raw difference) (None when the raw
    variance is 0); ``covariate_balance_p_value`` tests x̄_T = x̄_H and ``covariate_imbalanced`` is
    True when it is below :data:`COVARIATE_IMBALANCE_THRESHOLD`.
    """

    theta: float
    pooled_covariate_mean: float
    treatment: CupedArm
    holdout: CupedArm
    variance_reduction: float | None
    covariate_balance_p_value: float | None
    covariate_imbalanced: bool
    warnings: tuple[str, ...] = ()


def _aggregates(arm: ArmSummary, path: str, x_exponent: int = 0, y_exponent: int = 0) -> ArmAggregates:
    """The arm's sums with x in units of ``2^x_exponent`` and y in units of ``2^y_exponent`` (exact)."""
    if arm.covariate_sum is None or arm.covariate_sum_squares is None or arm.cross_sum is None:
        raise InvalidProblem(f"{path}.covariate_sum", "is missing: CUPED needs the covariate aggregates")

    def a(value: float, exponent: int) -> FloatArray:
        return np.asarray(math.ldexp(value, -exponent), dtype=np.float64)

    return ArmAggregates(
        np.asarray(float(arm.units), dtype=np.float64),
        a(arm.total, y_exponent),
        a(arm.sum_squares, 2 * y_exponent),
        a(arm.covariate_sum, x_exponent),
        a(arm.covariate_sum_squares, 2 * x_exponent),
        a(arm.cross_sum, x_exponent + y_exponent),
    )


def _scale_exponent(*pairs: tuple[float, float]) -> int:
    """``e`` with every ``|Σ|`` and ``√Σ²`` of ``pairs`` below ``2^e``: in those units every sum, square
    and (by Cauchy–Schwarz) cross sum is at most 1, so no product in :func:`cuped_arrays` overflows."""
    return math.frexp(max(max(abs(total), math.sqrt(squares)) for total, squares in pairs))[1]


def _reduction(adjusted: float, raw: float) -> float | None:
    return 1.0 - adjusted / raw if raw > 0.0 else None


def cuped_adjust(treatment: ArmSummary, holdout: ArmSummary) -> CupedAdjustment:
    """CUPED with θ from the pooled arms; both arms must carry covariate aggregates."""
    _check_cuped_arms(treatment, holdout)
    result, ex = _scaled_cuped_arrays(treatment, holdout)
    warnings: list[str] = []
    theta = float(result.theta)
    if not _pooled_covariate_varies(treatment, holdout, ex):
        warnings.append("The pre-period covariate is the same for every unit, so CUPED cannot adjust anything.")
    t = _cuped_arm(treatment, result.treatment_mean, result.treatment_variance, result.treatment_raw_variance)
    h = _cuped_arm(holdout, result.holdout_mean, result.holdout_variance, result.holdout_raw_variance)
    adjusted = t.variance / t.units + h.variance / h.units
    raw = t.raw_variance / t.units + h.raw_variance / h.units
    reduction = _reduction(adjusted, raw)
    if reduction is not None and reduction < 0.0:
        warnings.append(
            "CUPED increased the variance here: the covariate relates differently to the metric in the two arms."
        )
    balance_p = _covariate_balance_p_value(treatment, holdout)
    imbalanced = balance_p is not None and balance_p < COVARIATE_IMBALANCE_THRESHOLD
    if imbalanced:
        warnings.append(
            f"The pre-period covariate differs between treatment and holdout (p = {balance_p:.2g}); "
            "since it was measured before assignment, the split does not look random."
        )
    return CupedAdjustment(
        theta=theta,
        pooled_covariate_mean=treatment.covariate_shift + float(result.pooled_covariate_mean),
        treatment=t,
        holdout=h,
        variance_reduction=reduction,
        covariate_balance_p_value=balance_p,
        covariate_imbalanced=imbalanced,
        warnings=tuple(warnings),
    )


def _check_cuped_arms(treatment: ArmSummary, holdout: ArmSummary) -> None:
    """Refuse arms CUPED cannot pool: different metric kinds or shifts, or a missing covariate aggregate."""
    if treatment.kind != holdout.kind:
        raise InvalidProblem(f"{holdout.field_path}.kind", "must match the treatment arm's metric kind")
    if (treatment.shift, treatment.covariate_shift) != (holdout.shift, holdout.covariate_shift):
        # θ comes from sums pooled over both arms, which must be taken about the same constants.
        raise InvalidProblem(f"{holdout.field_path}.shift", "must equal the treatment arm's shifts for CUPED")
    for summary in (treatment, holdout):
        if summary.covariate_sum is None or summary.covariate_sum_squares is None or summary.cross_sum is None:
            raise InvalidProblem(
                f"{summary.field_path}.covariate_sum", "is missing: CUPED needs the covariate aggregates"
            )


def _scaled_cuped_arrays(treatment: ArmSummary, holdout: ArmSummary) -> tuple[CupedArrays, int]:
    """The CUPED figures of two checked arms, and the power of two the covariate was scaled by.

    CUPED is equivariant under rescaling x and y, so the sums enter in units of powers of two (exact:
    the figures are bit for bit those of the plain formulas) chosen so that no square or product of
    sums overflows, and the results are scaled back; a result beyond the range of a double is refused.
    """
    assert treatment.covariate_sum is not None and treatment.covariate_sum_squares is not None
    assert holdout.covariate_sum is not None and holdout.covariate_sum_squares is not None
    ex = _scale_exponent(
        (treatment.covariate_sum, treatment.covariate_sum_squares),
        (holdout.covariate_sum, holdout.covariate_sum_squares),
    )
    ey = _scale_exponent((treatment.total, treatment.sum_squares), (holdout.total, holdout.sum_squares))
    scaled = cuped_arrays(
        _aggregates(treatment, treatment.field_path, ex, ey), _aggregates(holdout, holdout.field_path, ex, ey)
    )
    try:
        result = CupedArrays(
            *(
                np.asarray(math.ldexp(float(value), exponent), dtype=np.float64)
                for value, exponent in zip(scaled, (ey - ex, ex, ey, 2 * ey, 2 * ey, ey, 2 * ey, 2 * ey), strict=True)
            )
        )
    except OverflowError:
        raise InvalidProblem(
            f"{treatment.field_path}.cross_sum", "leads to a CUPED adjustment beyond the range of a double"
        ) from None
    if not all(np.isfinite(value) for value in result):
        raise InvalidProblem(
            f"{treatment.field_path}.covariate_sum_squares",
            "leaves the covariate so little variance that the CUPED adjustment exceeds the range of a double",
        )
    return result, ex


def _cuped_arm(summary: ArmSummary, mean: FloatArray, var: FloatArray, raw: FloatArray) -> CupedArm:
    """One arm's adjusted figures, its mean shifted back (400 naming ``shift`` beyond a double's range)."""
    variance, raw_variance = float(var), float(raw)
    shifted = summary.shift + float(mean)
    if not math.isfinite(shifted):
        raise InvalidProblem(f"{summary.field_path}.shift", "plus the adjusted mean exceeds the range of a double")
    return CupedArm(
        units=summary.units,
        mean=shifted,
        variance=variance,
        std_error=math.sqrt(variance / summary.units),
        raw_mean=summary.mean,
        raw_variance=raw_variance,
        variance_reduction=_reduction(variance, raw_variance),
    )


def _pooled_covariate_varies(treatment: ArmSummary, holdout: ArmSummary, exponent: int) -> bool:
    """Whether Σx² − (Σx)²/N > 0 over both arms, with x in units of ``2^exponent``."""
    assert treatment.covariate_sum is not None and holdout.covariate_sum is not None
    assert treatment.covariate_sum_squares is not None and holdout.covariate_sum_squares is not None
    n = treatment.units + holdout.units
    sx = math.ldexp(treatment.covariate_sum, -exponent) + math.ldexp(holdout.covariate_sum, -exponent)
    sxx = math.ldexp(treatment.covariate_sum_squares, -2 * exponent) + math.ldexp(
        holdout.covariate_sum_squares, -2 * exponent
    )
    return sxx - sx * sx / n > 0.0


def _covariate_balance_p_value(treatment: ArmSummary, holdout: ArmSummary) -> float | None:
    """Two-sided unpooled z test of x̄_T = x̄_H; None when the covariate has no variance."""
    mt, mh = treatment.covariate_mean, holdout.covariate_mean
    vt, vh = treatment.covariate_variance, holdout.covariate_variance
    assert mt is not None and mh is not None and vt is not None and vh is not None
    se = math.sqrt(vt / treatment.units + vh / holdout.units)
    if not se > 0.0:
        return None
    return float(min(1.0, 2.0 * special.ndtr(-abs(mt - mh) / se)))
