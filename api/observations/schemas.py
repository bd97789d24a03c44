"""Request and response bodies for holdout observations."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

NonNegativeInt = Annotated[int, Meta(ge=0, le=10**15)]
Money = Annotated[float, Meta(ge=0.0)]


class ArmObservation(Struct, frozen=True, forbid_unknown_fields=True):
    """Sufficient statistics of one channel's arm.

    Proportions send `conversions`; means send `sum` (Σy) and `sum_squares` (Σy²). CUPED needs the
    pre-period covariate's `covariate_sum` (Σx), `covariate_sum_squares` (Σx²) and `cross_sum` (Σxy) on
    both arms. `spend` (and `value_per_conversion` for proportions) go on the treatment arm.
    """

    channel: Annotated[str, Meta(min_length=1, max_length=64)]
    arm: Literal["treatment", "holdout"]
    units: NonNegativeInt
    conversions: NonNegativeInt | None = None
    sum: float | None = None
    sum_squares: Annotated[float, Meta(ge=0.0)] | None = None
    covariate_sum: float | None = None
    covariate_sum_squares: Annotated[float, Meta(ge=0.0)] | None = None
    cross_sum: float | None = None
    spend: Money | None = None
    value_per_conversion: Annotated[float, Meta(gt=0.0)] | None = None


class ObservationsUpload(Struct, frozen=True, forbid_unknown_fields=True):
    """Totals per channel and arm; re-sending a channel/arm replaces it (the old totals are kept)."""

    observations: Annotated[list[ArmObservation], Meta(min_length=1, max_length=200)]


class ObservationsAccepted(Struct, frozen=True):
    experiment_id: str
    stored: int
    replaced: int
