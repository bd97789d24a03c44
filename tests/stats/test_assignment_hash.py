"""The assignment hash: pinned to its documented formula, uniform, and independent across channels."""

from __future__ import annotations

import decimal
import hashlib

import numpy as np
import pytest
from scipy import stats as scipy_stats

from stats.assignment_hash import (
    assign_arms,
    assign_channels,
    assign_channels_by_rule,
    holdout_masks,
    sha256_assign_arms,
    sha256_threshold,
    sha256_unit_hashes,
    unit_hash_fractions,
    unit_hashes,
)

UNITS = [f"user-{i}" for i in range(100_000)]


def reference_hash(salt: str, channel: str, unit: str) -> int:
    """The documented formula, written out independently with hashlib."""
    message = f"{salt}\x1f{channel}\x1f{unit}".encode()
    return int.from_bytes(hashlib.blake2b(message, digest_size=8).digest(), "big")


# (salt, channel, unit, holdout_fraction) → (64-bit hash, arm). The hash literals were computed once from
# the formula above; if one changes, every stored assignment in every deployment would be contradicted.
VECTORS = [
    ("fixed-salt", "meta", "u1", 0.1, 0x3F02F0BC1267B94A, "treatment"),
    ("fixed-salt", "search", "u1", 0.05, 0xDFF6DD8884921AE2, "treatment"),
    ("s", "meta", "user-42", 0.5, 0x569C62C4AB99A90B, "holdout"),
    ("sälz", "tv", "ユーザー", 0.3, 0xA202FE12C9984A96, "treatment"),
    ("", "x", "a,b", 0.9, 0xD8506E2F79F6DB0B, "holdout"),
]


@pytest.mark.parametrize(("salt", "channel", "unit", "fraction", "expected_hash", "expected_arm"), VECTORS)
def test_the_hash_is_pinned_to_literal_vectors_of_the_documented_formula(
    salt: str, channel: str, unit: str, fraction: float, expected_hash: int, expected_arm: str
) -> None:
    assert reference_hash(salt, channel, unit) == expected_hash
    assert int(unit_hashes(salt, channel, [unit])[0]) == expected_hash
    position = (expected_hash >> 11) / 2**53
    assert unit_hash_fractions(salt, channel, [unit])[0] == position
    arm = "holdout" if position < fraction else "treatment"
    assert arm == expected_arm
    assert assign_arms(salt, channel, fraction, [unit])[0] == (1 if expected_arm == "holdout" else 0)


def test_fractions_lie_in_the_unit_interval() -> None:
    fractions = unit_hash_fractions("salt", "meta", UNITS)
    assert fractions.dtype == np.float64
    assert fractions.min() >= 0.0
    assert fractions.max() < 1.0


@pytest.mark.parametrize("holdout_fraction", [0.01, 0.1, 0.5])
def test_the_holdout_share_of_100k_units_is_within_binomial_bounds(holdout_fraction: float) -> None:
    held_out = int(assign_arms("salt-a", "meta", holdout_fraction, UNITS).sum())
    low, high = scipy_stats.binom.interval(0.999, len(UNITS), holdout_fraction)
    assert low <= held_out <= high


def test_fractions_are_uniform_by_kolmogorov_smirnov() -> None:
    fractions = unit_hash_fractions("salt-b", "search", UNITS)
    assert scipy_stats.kstest(fractions, "uniform").pvalue > 0.001


def test_channels_hash_independently() -> None:
    arms = assign_channels("salt-c", [("meta", 0.3), ("search", 0.4)], UNITS)
    table = np.array(
        [[np.sum((arms[0] == a) & (arms[1] == b)) for b in (0, 1)] for a in (0, 1)],
    )
    assert scipy_stats.chi2_contingency(table).pvalue > 0.001
    fractions = np.vstack([unit_hash_fractions("salt-c", c, UNITS) for c in ("meta", "search")])
    assert abs(np.asarray(np.corrcoef(fractions))[0, 1]) < 4 / np.sqrt(len(UNITS))


def test_different_salts_give_independent_splits() -> None:
    first = assign_arms("experiment-1", "meta", 0.5, UNITS)
    second = assign_arms("experiment-2", "meta", 0.5, UNITS)
    agreement = float(np.mean(first == second))
    assert abs(agreement - 0.5) < 4 * 0.5 / np.sqrt(len(UNITS))


def test_assignment_is_deterministic_and_independent_of_batching() -> None:
    whole = assign_arms("salt-d", "meta", 0.2, UNITS[:1000])
    pieces = np.concatenate(
        [assign_arms("salt-d", "meta", 0.2, UNITS[i : min(i + 7, 1000)]) for i in range(0, 1000, 7)]
    )
    assert np.array_equal(whole, pieces)
    assert np.array_equal(whole, assign_arms("salt-d", "meta", 0.2, list(reversed(UNITS[:1000])))[::-1])


def test_raising_a_holdout_fraction_only_moves_units_into_the_holdout() -> None:
    small = assign_arms("salt-e", "meta", 0.1, UNITS)
    large = assign_arms("salt-e", "meta", 0.2, UNITS)
    assert np.all(large[small == 1] == 1)


def test_masks_pack_one_bit_per_channel() -> None:
    arms = np.array([[1, 0, 1, 0], [0, 0, 1, 1]], dtype=np.int8)
    assert holdout_masks(arms).tolist() == [1, 0, 3, 2]


def test_empty_input_gives_empty_output() -> None:
    assert unit_hash_fractions("s", "meta", []).shape == (0,)


# --- The sha256 rule ---------------------------------------------------------------------------------------


def reference_sha256_hash(salt: str, channel: str, unit: str) -> int:
    """The documented sha256 rule written out with hashlib: the first 13 hex digits of the digest."""
    return int(hashlib.sha256(f"{salt}\x1f{channel}\x1f{unit}".encode()).hexdigest()[:13], 16)


# (salt, channel, unit, holdout_fraction) → (52-bit hash, threshold, arm): the README's test vectors. The
# literals were computed once from the formula; if one changes, every stored sha256 assignment is contradicted.
SHA256_VECTORS = [
    ("fixed-salt", "meta", "u1", 0.1, 0x54BACE3BCE5ED, 450359962737050, "treatment"),
    ("fixed-salt", "meta", "u3", 0.1, 0x12916722EA751, 450359962737050, "holdout"),
    ("fixed-salt", "search", "u1", 0.05, 0x3A944A5592684, 225179981368525, "treatment"),
    ("s", "meta", "user-1", 0.5, 0x53924BE915A55, 2251799813685248, "holdout"),
    ("sälz", "tv", "ユーザー", 0.3, 0xDE50F11603891, 1351079888211149, "treatment"),
    ("", "x", "a,b", 0.9, 0x4B49B7807B58B, 4053239664633447, "holdout"),
    ("it's \\ a salt", "meta", "u1", 0.25, 0x4667387E29843, 1125899906842624, "treatment"),
]


@pytest.mark.parametrize(
    ("salt", "channel", "unit", "fraction", "expected_hash", "threshold", "expected_arm"), SHA256_VECTORS
)
def test_the_sha256_rule_is_pinned_to_the_readme_vectors(
    salt: str, channel: str, unit: str, fraction: float, expected_hash: int, threshold: int, expected_arm: str
) -> None:
    assert reference_sha256_hash(salt, channel, unit) == expected_hash
    assert int(sha256_unit_hashes(salt, channel, [unit])[0]) == expected_hash
    assert sha256_threshold(fraction) == threshold
    assert ("holdout" if expected_hash < threshold else "treatment") == expected_arm
    assert sha256_assign_arms(salt, channel, fraction, [unit])[0] == (1 if expected_arm == "holdout" else 0)


@pytest.mark.parametrize("fraction", [0.1, 0.05, 0.3, 1 / 3, 0.999999, 2**-60, 0.5 + 2**-53])
def test_the_sha256_threshold_is_fraction_times_2_to_the_52_rounded_half_up_exactly(fraction: float) -> None:
    """Checked in decimal arithmetic (a float64 is a finite binary fraction, so 60 digits hold it exactly)."""
    with decimal.localcontext() as context:
        context.prec = 60
        scaled = decimal.Decimal(fraction) * (2**52)
        expected = int((scaled + decimal.Decimal("0.5")).to_integral_value(rounding=decimal.ROUND_FLOOR))
    assert sha256_threshold(fraction) == expected


def test_the_sha256_hash_is_uniform_on_52_bits() -> None:
    """Kolmogorov-Smirnov against U(0, 1) on 100,000 units; each channel's hashes below 2^52."""
    hashes = sha256_unit_hashes("salt", "meta", UNITS)
    assert int(hashes.max()) < 2**52
    assert scipy_stats.kstest(hashes.astype(np.float64) / 2**52, "uniform").pvalue > 0.001


def test_the_sha256_rule_hashes_channels_independently() -> None:
    arms = assign_channels_by_rule("sha256", "salt-c", [("meta", 0.3), ("search", 0.4)], UNITS)
    table = np.histogram2d(arms[0], arms[1], bins=2)[0]
    assert scipy_stats.chi2_contingency(table).pvalue > 0.001
    assert arms[0].mean() == pytest.approx(0.3, abs=0.005) and arms[1].mean() == pytest.approx(0.4, abs=0.005)


def test_each_rule_name_picks_its_own_hash() -> None:
    channels = [("meta", 0.3)]
    units = UNITS[:1000]
    blake2b = assign_channels_by_rule("blake2b", "s", channels, units)[0].tolist()
    sha256 = assign_channels_by_rule("sha256", "s", channels, units)[0].tolist()
    assert blake2b == assign_arms("s", "meta", 0.3, units).tolist()
    assert sha256 == sha256_assign_arms("s", "meta", 0.3, units).tolist()
    assert blake2b != sha256
