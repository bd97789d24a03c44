"""What to do with a channel after a holdout test: ``scale``, ``iterate``, ``stop`` or ``investigate``.

The rules, applied in this order (α is the test's significance level, "significant" means the
Holm-adjusted p-value is below α, intervals are the channel's own 1 − α intervals):

1. **investigate** — the data cannot be trusted: sample-ratio mismatch flagged (p < 0.001), a data
   problem reported by the analysis (e.g. pre-period covariate imbalance, no variation in the metric),
   or no p-value / interval could be computed.
2. **stop** — the channel conclusively does not pay back: the iROAS interval lies entirely below
   break-even (upper bound < 1), when spend and value are known.
3. **stop** — the lift is significantly negative.
4. significantly positive lift:
   a. **stop** if a minimum meaningful lift was given and the whole interval lies below it (the lift is
      real but too small to matter);
   b. **scale** if the iROAS is unknown, or its interval lies entirely above break-even (lower bound > 1);
   c. **iterate** otherwise (the lift is real but whether it pays back is not yet clear).
5. not significant:
   a. **stop** if a minimum meaningful lift was given and the interval's upper bound is below it (the
      test is conclusive that there is no lift worth having);
   b. **iterate** otherwise (underpowered): the reason states the lift the data could detect (MDE).

Break-even is an iROAS of 1 (a unit of value back per unit of spend).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from stats.arm_statistics import MetricKind

Action = Literal["scale", "iterate", "stop", "investigate"]
BREAK_EVEN_IROAS = 1.0


@dataclass(frozen=True)
class Decision:
    """The recommended action and the reason, in words for a marketer."""

    action: Action
    reason: str


def format_effect(kind: MetricKind, value: float) -> str:
    """An absolute lift in words: percentage points for a rate, units of the metric for a mean."""
    if kind == "proportion":
        return f"{value * 100:+.2f} percentage points"
    return f"{value:+.4g} per unit"


def _interval(kind: MetricKind, low: float, high: float) -> str:
    if kind == "proportion":
        return f"{low * 100:+.2f} to {high * 100:+.2f} percentage points"
    return f"{low:+.4g} to {high:+.4g} per unit"


def decide(
    *,
    kind: MetricKind,
    alpha: float,
    estimate: float,
    ci_low: float | None,
    ci_high: float | None,
    p_value: float | None,
    srm_flagged: bool = False,
    srm_p_value: float | None = None,
    data_problems: Sequence[str] = (),
    mde: float | None = None,
    mde_relative: float | None = None,
    minimum_effect: float | None = None,
    iroas_ci_low: float | None = None,
    iroas_ci_high: float | None = None,
) -> Decision:
    """Apply the module's rules. ``p_value`` should be the Holm-adjusted p-value across channels.

    ``minimum_effect`` is the smallest absolute lift the marketer cares about; ``mde`` (and optionally
    ``mde_relative``) the lift the data could detect, quoted when the answer is to iterate.
    """
    confidence = f"{(1 - alpha) * 100:g}%"
    broken = _broken_data(srm_flagged, srm_p_value, data_problems)
    if broken is not None:
        return broken
    if p_value is None or ci_low is None or ci_high is None:
        return Decision("investigate", "The lift could not be tested with these numbers; check the data sent.")

    effect = format_effect(kind, estimate)
    interval = _interval(kind, ci_low, ci_high)
    significant = p_value < alpha
    if iroas_ci_high is not None and iroas_ci_high < BREAK_EVEN_IROAS:
        return Decision(
            "stop",
            f"Even at best the channel returns {iroas_ci_high:.2f} per unit of spend ({confidence} interval), "
            "less than it costs. Stop or cut the spend.",
        )
    if significant and estimate < 0:
        return Decision(
            "stop",
            f"The channel lowers the metric: lift {effect} ({confidence} interval {interval}). Stop it.",
        )
    if minimum_effect is not None and ci_high < minimum_effect:
        real = "The lift is real but small" if significant else "The test is conclusive"
        return Decision(
            "stop",
            f"{real}: the lift is {effect} and at most {format_effect(kind, ci_high)} ({confidence} interval), "
            f"below the {format_effect(kind, minimum_effect)} you said matters. Stop or rethink the channel.",
        )
    evidence = f"lift {effect} ({confidence} interval {interval})"
    if significant:
        return _significant(evidence, effect, confidence, interval, iroas_ci_low)
    return _not_enough_evidence(kind, evidence, ci_low, ci_high, mde, mde_relative)


def _broken_data(srm_flagged: bool, srm_p_value: float | None, data_problems: Sequence[str]) -> Decision | None:
    """``investigate`` when the split of units is not the one planned or the data look wrong, else ``None``."""
    if srm_flagged:
        detail = "" if srm_p_value is None else f" (p = {srm_p_value:.2g})"
        return Decision(
            "investigate",
            "The split of units between treatment and holdout is not the one planned"
            f"{detail}, so assignment or tracking is likely broken and the lift cannot be trusted. "
            "Fix the split before acting on this test.",
        )
    if data_problems:
        return Decision("investigate", "The data look wrong: " + " ".join(data_problems))
    return None


def _significant(evidence: str, effect: str, confidence: str, interval: str, iroas_ci_low: float | None) -> Decision:
    """A real, positive lift worth more than the minimum: ``scale`` when it surely pays back, else ``iterate``.

    ``evidence`` is the lift with its interval as :func:`decide` quotes it.
    """
    if iroas_ci_low is None or iroas_ci_low > BREAK_EVEN_IROAS:
        pays = "" if iroas_ci_low is None else f" and returns at least {iroas_ci_low:.2f} per unit of spend"
        return Decision("scale", f"The channel works: {evidence}{pays}. Scale it up.")
    return Decision(
        "iterate",
        f"The lift is real ({effect}, {confidence} interval {interval}) but it is not yet clear that it "
        f"pays back: the return per unit of spend could be as low as {iroas_ci_low:.2f}. "
        "Keep testing or lower the cost.",
    )


def _not_enough_evidence(
    kind: MetricKind, evidence: str, ci_low: float, ci_high: float, mde: float | None, mde_relative: float | None
) -> Decision:
    """``iterate`` for a lift not significant: whether its interval includes none, and what the data could detect."""
    could_detect = ""
    if mde is not None:
        relative = "" if mde_relative is None else f" ({mde_relative * 100:.1f}% of the holdout)"
        could_detect = (
            f" With this much data the test could reliably detect a lift of about {format_effect(kind, mde)}"
            f"{relative}; smaller lifts need more units, a larger holdout or a longer test."
        )
    if ci_low <= 0.0 <= ci_high:
        summary = f"{evidence}, which includes no lift."
    else:
        summary = f"{evidence}, but after allowing for testing several channels at once it is not significant."
    return Decision("iterate", f"Not enough evidence yet: {summary}{could_detect}")
