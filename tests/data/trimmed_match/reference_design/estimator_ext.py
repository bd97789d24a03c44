"""Stand-in for trimmed_match's C++ extension (``trimmed_match/core/python/estimator_ext``), used only
to regenerate ``design_reference.json``: the package's pure-Python design code runs with Counterfact's
``stats.geo.trimmed_match`` (itself checked against the package's published examples) as its estimator,
because the package needs a Bazel C++ build to install. Copy it over the extension's path in a checkout
of google/trimmed_match; see ``run_design_reference.py``."""

from types import SimpleNamespace

from scipy import stats

from stats.geo.trimmed_match import trimmed_match

TrimAndError = SimpleNamespace


class TrimmedMatch:
    def __init__(self, delta_response, delta_spend, max_trim_rate):  # type: ignore[no-untyped-def]
        self.y, self.x, self.max_trim_rate = list(delta_response), list(delta_spend), max_trim_rate

    def Report(self, z, trim_rate):  # type: ignore[no-untyped-def]
        level = 2 * stats.norm.cdf(z) - 1
        if trim_rate < 0:
            fit = trimmed_match(self.y, self.x, level, max_trim_rate=min(self.max_trim_rate, 0.30))
        else:
            fit = trimmed_match(self.y, self.x, level, trim_rate=trim_rate)
        return SimpleNamespace(
            estimate=fit.estimate,
            std_error=fit.std_error,
            trim_rate=fit.trim_rate,
            conf_interval_low=fit.ci_low,
            conf_interval_up=fit.ci_high,
            candidate_results=[],
        )
