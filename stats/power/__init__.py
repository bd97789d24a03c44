"""Power, sample size and minimum detectable effect (MDE) of a holdout test.

A holdout test splits ``N`` units at random into a treatment arm (share ``1 - h``) and a holdout
arm (share ``h = holdout_fraction``). Given all but one of total sample size, MDE and power, the
functions here solve for the missing one.

Methods (each lower-level function names its formula in its docstring):

* ``proportion`` metrics: the two-sample z-test for two independent proportions with the pooled
  proportion in the variance under H0 and the unpooled variance under H1, exactly as
  ``statsmodels.stats.proportion.power_proportions_2indep`` (statsmodels 0.15) with
  ``prop2 = baseline`` (the holdout rate), ``diff = ±mde_absolute``, ``nobs1 = n_treatment`` and
  ``ratio = n_holdout / n_treatment``; it is the classic formula without continuity correction of
  Fleiss, Levin & Paik (2003), *Statistical Methods for Rates and Proportions*, 3rd ed., ch. 4.
* ``mean`` metrics: the two-sample pooled-variance t-test with the noncentral t distribution,
  exactly as ``statsmodels.stats.power.TTestIndPower`` with effect size
  ``d = mde_absolute / (std_dev * sqrt(1 - r_squared))``, ``nobs1 = n_treatment`` and
  ``ratio = n_holdout / n_treatment`` (Cohen 1988, *Statistical Power Analysis for the Behavioral
  Sciences*, 2nd ed., ch. 2).

Conventions shared by every function:

* The MDE is a positive magnitude. ``"larger"`` and ``"two-sided"`` size the test for an increase
  (treatment rate ``p1 = p0 + mde``); ``"smaller"`` sizes it for a decrease (``p1 = p0 - mde``,
  statsmodels' ``diff = -mde`` with ``alternative="smaller"``). For means the t-test is symmetric,
  so the direction does not change the numbers. For a two-sided proportion test the reported MDE is
  the increase that reaches the power; a decrease of the same size has slightly more power when
  ``p0 < 0.5`` (its variance is smaller), so the figure is the conservative one for the usual
  low-rate metrics.
* Two-sided power counts both rejection tails, as statsmodels does. The MDE is the exact inverse
  of that power function; the proportion sample size is statsmodels' one-tail closed form (see
  :func:`sample_size_two_proportions`), and the t-test sample size the exact inverse.
* CUPED / regression adjustment with ``r_squared = R²`` multiplies the variance of every arm's
  mean by ``1 - R²``. For proportions it scales both the H0 and the H1 variance (so the required
  sample size is exactly ``(1 - R²)`` times the unadjusted one); for means it enters the effect
  size. Degrees of freedom are not reduced for the adjustment.
* Power, MDE and "achieved power" at a total ``N`` use the expected arm sizes ``N (1 - h)`` and
  ``N h`` (units are assigned at random with probability ``h`` to the holdout), so
  :func:`power_curve`, ``solve_for="power"`` and the achieved power of ``solve_for="sample_size"``
  agree at the same ``N``.

Invalid or impossible inputs raise :class:`stats.errors.InvalidProblem` whose ``field`` is the
HTTP name of the input at fault: ``metric``, ``metric.baseline``, ``metric.std_dev``, ``mde``,
``power``, ``alpha``, ``sample_size``, ``sample_sizes`` (curves), ``holdout_fraction``,
``alternative``, ``comparisons``, ``correction``, ``solve_for``,
``variance_reduction.r_squared`` and ``daily_units``. No function returns NaN or infinity.

Modules: :mod:`~stats.power.proportions` and :mod:`~stats.power.means` (the two tests, each with
vectorised kernels the scalar functions call), :mod:`~stats.power.design_problem` (the problem,
the answer and their validation), :mod:`~stats.power.holdout_design` (the solve) and
:mod:`~stats.power.curves` (power and MDE at many totals).
"""

from stats.power.curves import mde_curve, power_curve
from stats.power.design_problem import ArmSizes, HoldoutDesign, HoldoutDesignProblem, MeanMetric, ProportionMetric
from stats.power.holdout_design import METHOD_MEAN, METHOD_PROPORTION, solve_holdout_design
from stats.power.inputs import (
    MAX_TOTAL_UNITS,
    MIN_UNITS_PER_ARM_MEAN,
    MIN_UNITS_PER_ARM_PROPORTION,
    Alternative,
    Correction,
    SolveFor,
)
from stats.power.means import mde_two_means, power_two_means, sample_size_two_means
from stats.power.proportions import mde_two_proportions, power_two_proportions, sample_size_two_proportions

__all__ = [
    "MAX_TOTAL_UNITS",
    "METHOD_MEAN",
    "METHOD_PROPORTION",
    "MIN_UNITS_PER_ARM_MEAN",
    "MIN_UNITS_PER_ARM_PROPORTION",
    "Alternative",
    "ArmSizes",
    "Correction",
    "HoldoutDesign",
    "HoldoutDesignProblem",
    "MeanMetric",
    "ProportionMetric",
    "SolveFor",
    "mde_curve",
    "mde_two_means",
    "mde_two_proportions",
    "power_curve",
    "power_two_means",
    "power_two_proportions",
    "sample_size_two_means",
    "sample_size_two_proportions",
    "solve_holdout_design",
]
