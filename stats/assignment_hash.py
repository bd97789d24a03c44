"""Deterministic holdout assignment: a unit's arm in a channel is a pure function of (salt, channel, unit).

Two rules, chosen per experiment (its ``assignment_rule``) and never changed after: ``sha256``, which any
SQL warehouse can compute, and ``blake2b``, the first one. Both hash the same message and are stable:
changing one would reassign every stored unit, so each is pinned by test vectors.

``sha256`` (the default for new experiments) is integer arithmetic only::

    message   = UTF-8(salt) || 0x1F || UTF-8(channel) || 0x1F || UTF-8(unit)
    h         = the first 13 hex digits of SHA-256(message) as an integer     # FIPS 180-4; top 52 bits
    threshold = floor(holdout_fraction * 2**52 + 1/2)                         # exact; the API states it
    arm       = holdout   if h < threshold
                treatment otherwise

52 bits because 13 hex digits are an integer every SQL dialect reads (below 2**63) and a float64 holds
exactly (JavaScript). Comparing against an integer threshold leaves no floating point in the rule.

``blake2b`` (experiments created before ``sha256`` existed keep it)::

    message  = UTF-8(salt + "\\x1f" + channel + "\\x1f" + unit)          # 0x1F = ASCII unit separator
    h        = BLAKE2b(message, digest_size=8)                             # RFC 7693, 64-bit output
    u        = big-endian unsigned 64-bit integer of the 8 digest bytes
    fraction = (u >> 11) / 2**53                                           # top 53 bits: exact, in [0, 1)
    arm      = holdout   if fraction < holdout_fraction
               treatment otherwise

In Python: ``int.from_bytes(hashlib.blake2b(message, digest_size=8).digest(), "big") >> 11) / 2**53``.
Keeping the top 53 bits makes the fraction exactly representable as a float64 (no rounding up to
1.0), so any language with 64-bit integers reproduces it bit for bit.

Each channel's name enters the message, so channels hash independently: a unit's arm in ``meta``
says nothing about its arm in ``search``. The salt (fixed per experiment) makes two experiments'
splits independent of each other too. Because the arm is a threshold on one uniform number, raising a
channel's ``holdout_fraction`` only moves treatment units into the holdout, never the reverse.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from fractions import Fraction

import numpy as np
import numpy.typing as npt

SEPARATOR = "\x1f"
DIGEST_BYTES = 8
TREATMENT = 0
HOLDOUT = 1
ARM_NAMES = ("treatment", "holdout")
_SCALE = 2.0**-53
SHA256_BITS = 52
_SHA256_SHIFT = np.uint64(64 - SHA256_BITS)


def unit_hashes(salt: str, channel: str, units: Sequence[str]) -> npt.NDArray[np.uint64]:
    """The 64-bit BLAKE2b value of ``salt␟channel␟unit`` for each unit, as ``uint64``."""
    prefix = (salt + SEPARATOR + channel + SEPARATOR).encode("utf-8")
    blake2b = hashlib.blake2b
    digests = b"".join([blake2b(prefix + unit.encode("utf-8"), digest_size=DIGEST_BYTES).digest() for unit in units])
    return np.frombuffer(digests, dtype=">u8").astype(np.uint64)


def unit_hash_fractions(salt: str, channel: str, units: Sequence[str]) -> npt.NDArray[np.float64]:
    """Each unit's position in [0, 1) for this channel: the top 53 bits of its hash over 2**53."""
    return (unit_hashes(salt, channel, units) >> np.uint64(11)).astype(np.float64) * _SCALE


def assign_arms(salt: str, channel: str, holdout_fraction: float, units: Sequence[str]) -> npt.NDArray[np.int8]:
    """Each unit's arm in one channel: 1 (holdout) when its fraction is below ``holdout_fraction``, else 0."""
    if not 0.0 <= holdout_fraction <= 1.0:
        raise ValueError("holdout_fraction must be between 0 and 1")
    return (unit_hash_fractions(salt, channel, units) < holdout_fraction).astype(np.int8)


def assign_channels(salt: str, channels: Sequence[tuple[str, float]], units: Sequence[str]) -> npt.NDArray[np.int8]:
    """Arms of every unit in every channel: an array of shape ``(len(channels), len(units))``."""
    return _assign_channels(assign_arms, salt, channels, units)


def message_prefix(salt: str, channel: str) -> bytes:
    """The bytes every unit's message starts with: ``UTF-8(salt␟channel␟)``."""
    return (salt + SEPARATOR + channel + SEPARATOR).encode("utf-8")


def sha256_unit_hashes(salt: str, channel: str, units: Sequence[str]) -> npt.NDArray[np.uint64]:
    """The top 52 bits of SHA-256 of ``salt␟channel␟unit`` for each unit (the first 13 hex digits)."""
    prefix = message_prefix(salt, channel)
    sha256 = hashlib.sha256
    heads = b"".join([sha256(prefix + unit.encode("utf-8")).digest()[:8] for unit in units])
    return np.frombuffer(heads, dtype=">u8").astype(np.uint64) >> _SHA256_SHIFT


def sha256_threshold(holdout_fraction: float) -> int:
    """``floor(holdout_fraction · 2**52 + 1/2)``, exactly: units whose hash is below it are held out."""
    if not 0.0 <= holdout_fraction <= 1.0:
        raise ValueError("holdout_fraction must be between 0 and 1")
    return int(Fraction(holdout_fraction) * 2**SHA256_BITS + Fraction(1, 2))


def sha256_assign_arms(salt: str, channel: str, holdout_fraction: float, units: Sequence[str]) -> npt.NDArray[np.int8]:
    """Each unit's arm in one channel by the ``sha256`` rule: 1 (holdout) when its hash is below the threshold."""
    threshold = np.uint64(sha256_threshold(holdout_fraction))
    return (sha256_unit_hashes(salt, channel, units) < threshold).astype(np.int8)


ArmRule = Callable[[str, str, float, Sequence[str]], npt.NDArray[np.int8]]
#: Each assignment rule's arms of units in one channel, by the rule's name.
RULES: dict[str, ArmRule] = {"sha256": sha256_assign_arms, "blake2b": assign_arms}


def assign_channels_by_rule(
    rule: str, salt: str, channels: Sequence[tuple[str, float]], units: Sequence[str]
) -> npt.NDArray[np.int8]:
    """Arms of every unit in every channel by the rule named ``rule``: shape ``(len(channels), len(units))``."""
    return _assign_channels(RULES[rule], salt, channels, units)


def _assign_channels(
    arms_of: ArmRule, salt: str, channels: Sequence[tuple[str, float]], units: Sequence[str]
) -> npt.NDArray[np.int8]:
    arms = np.empty((len(channels), len(units)), dtype=np.int8)
    for index, (channel, fraction) in enumerate(channels):
        arms[index] = arms_of(salt, channel, fraction, units)
    return arms


def holdout_masks(arms: npt.NDArray[np.int8]) -> npt.NDArray[np.int64]:
    """Pack a ``(channels, units)`` arm array into one integer per unit: bit k set = holdout in channel k."""
    if arms.shape[0] > 62:
        raise ValueError("at most 62 channels fit in a mask")
    masks = np.zeros(arms.shape[1], dtype=np.int64)
    for index in range(arms.shape[0]):
        masks |= arms[index].astype(np.int64) << np.int64(index)
    return masks
