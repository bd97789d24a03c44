"""Numbers at the extremes of float64 in request bodies: a finite answer or a 4xx naming the field, never a 500.

Issue 12: ``POST /v1/power/holdout`` with a mean metric of baseline and std_dev 1e308 and a relative MDE of
1e-300 answered 500 (ZeroDivisionError in ``stats/power``). The numerical core now refuses such problems
itself (tests/stats/test_extremes.py); these tests prove the HTTP side for power, holdout results and
geo power: every answer is 200 with finite numbers, or 400 / 422 problem+json whose ``invalid_params``
name the input at fault.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

Client = AsyncTestClient[Litestar]
JSON = {"Content-Type": "application/json"}
CSV = {"Content-Type": "text/csv"}
MAX = 1.7976931348623157e308


def _numbers(value: Any) -> list[float]:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return []
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, dict):
        return [x for item in value.values() for x in _numbers(item)]
    if isinstance(value, list):
        return [x for item in value for x in _numbers(item)]
    return []


def _answer_or_field(response: Any) -> str | None:
    """None for a 200 whose numbers are all finite; the first field named by a 4xx problem otherwise."""
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        assert all(math.isfinite(x) for x in _numbers(response.json()))
        return None
    assert response.status_code in (400, 409, 422), response.text  # 409: stored data that cannot be analysed
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    names = [p["name"] for p in problem["invalid_params"]]
    assert names and all(names), problem
    return str(names[0])


# --- power --------------------------------------------------------------------------------------------


def _mean(baseline: float, std_dev: float) -> dict[str, Any]:
    return {"kind": "mean", "baseline": baseline, "std_dev": std_dev}


async def test_the_issue_12_power_request_is_400_naming_a_field(client: Client) -> None:
    body = {"metric": _mean(1e308, 1e308), "mde": {"relative": 1e-300}, "solve_for": "sample_size"}
    response = await client.post("/v1/power/holdout", json=body)
    assert response.status_code == 400
    assert _answer_or_field(response) in {"metric.baseline", "metric.std_dev", "mde.relative"}


@pytest.mark.parametrize(
    "body",
    [
        {"metric": _mean(1e100, 1e-100), "mde": {"absolute": 1e100}, "solve_for": "sample_size"},
        {"metric": _mean(-1e100, 1e100), "mde": {"relative": 1e-300}, "solve_for": "power", "sample_size": 10**12},
        {"metric": _mean(1e-300, 1e100), "solve_for": "mde", "sample_size": 4, "power": 1 - 1e-16},
        {"metric": _mean(MAX, MAX), "mde": {"relative": 1.0}, "solve_for": "sample_size"},
        {"metric": {"kind": "proportion", "baseline": 5e-324}, "mde": {"relative": 1e6}, "solve_for": "sample_size"},
        {"metric": {"kind": "proportion", "baseline": 5e-324}, "solve_for": "mde", "sample_size": 10**12},
        {"metric": {"kind": "proportion", "baseline": 0.05}, "mde": {"relative": 0.1}, "holdout_fraction": 1e-300},
        {
            "metric": {"kind": "proportion", "baseline": 1 - 1e-16},
            "mde": {"absolute": 1e-17},
            "alternative": "smaller",
            "variance_reduction": {"r_squared": 1 - 1e-16},
        },
        {"metric": _mean(5e-324, 1e-100), "mde": {"relative": 1e6}, "alpha": 5e-324, "power": 1 - 1e-16},
    ],
    ids=[
        "huge-effect-size",
        "negative-baseline-tiny-lift-at-a-trillion-units",
        "mde-at-4-units-and-power-near-1",
        "largest-double",
        "subnormal-conversion-rate",
        "mde-of-a-subnormal-rate",
        "holdout-of-1e-300",
        "rate-near-1-and-r2-near-1",
        "subnormal-alpha",
    ],
)
async def test_power_at_the_extremes_answers_or_names_the_field(client: Client, body: dict[str, Any]) -> None:
    _answer_or_field(await client.post("/v1/power/holdout", json=body))


async def test_the_power_curve_at_the_extremes_answers_or_names_the_field(client: Client) -> None:
    body = {"metric": _mean(1e100, 1e100), "mde": {"relative": 1e-300}, "sample_sizes": [4, 10**12]}
    _answer_or_field(await client.post("/v1/power/holdout/curve", json=body))
    body = {"metric": _mean(1e-100, 1e100), "solve_for": "mde", "sample_sizes": [4, 10**12]}
    _answer_or_field(await client.post("/v1/power/holdout/curve", json=body))


@pytest.mark.parametrize("literal", [b"1e400", b"-1e400", b"NaN", b"Infinity"])
async def test_a_number_beyond_the_double_range_or_nan_is_refused_naming_the_field(
    client: Client, literal: bytes
) -> None:
    body = b'{"metric": {"kind": "mean", "baseline": 10, "std_dev": ' + literal + b'}, "mde": {"relative": 0.1}}'
    response = await client.post("/v1/power/holdout", content=body, headers=JSON)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


# --- holdout results ----------------------------------------------------------------------------------


async def _mean_experiment(client: Client) -> str:
    body = {
        "kind": "holdout",
        "name": "extremes",
        "metric": {"kind": "mean"},
        "channels": [{"name": "meta", "holdout_fraction": 0.5}],
    }
    response = await client.post("/v1/experiments", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _arm(arm: str, units: int, total: float, squares: float, **extra: float) -> dict[str, Any]:
    return {"channel": "meta", "arm": arm, "units": units, "sum": total, "sum_squares": squares, **extra}


@pytest.mark.parametrize(
    "observations",
    [
        # The reproduction of the NaN Fieller bound: (Σy)²/n overflowed, so an impossible arm got through.
        [_arm("treatment", 2, 1e300, 5e-324), _arm("holdout", 2, 5e299, 5e-324)],
        [_arm("treatment", 1000, 1e300, 1e300), _arm("holdout", 1000, -1e300, 1e300)],
        [_arm("treatment", 2, 1e154, MAX), _arm("holdout", 2, -1e154, MAX)],
        [_arm("treatment", 10**9, 5e-324, 5e-324), _arm("holdout", 10**9, 0.0, 5e-324)],
        [_arm("treatment", 3, 1e16 + 1.0, 1e32), _arm("holdout", 3, 1e16, 1e32)],
        # A valid covariate whose (Σx)² is past the double range (Σx = 1e156 over a million units).
        [
            _arm("treatment", 10**6, 1e6, 3e6, covariate_sum=1e156, covariate_sum_squares=1e307, cross_sum=1e156),
            _arm("holdout", 10**6, 9e5, 2e6, covariate_sum=-1e156, covariate_sum_squares=1e307, cross_sum=-9e155),
        ],
    ],
    ids=["huge-sum-with-subnormal-squares", "huge-sums", "largest-squares", "subnormal-sums", "cancelling", "cuped"],
)
@pytest.mark.parametrize("sequential", [False, True])
async def test_results_from_extreme_observations_answer_or_name_the_field(
    client: Client, observations: list[dict[str, Any]], sequential: bool
) -> None:
    experiment_id = await _mean_experiment(client)
    posted = await client.post(f"/v1/experiments/{experiment_id}/observations", json={"observations": observations})
    if _answer_or_field(posted) is not None:
        return
    response = await client.get(
        f"/v1/experiments/{experiment_id}/results", params={"sequential": "true" if sequential else "false"}
    )
    field = _answer_or_field(response)
    # A sequential look whose mixing variance would overflow names the stored channel (observations[meta]), 409.
    named = ("observations", "treatment", "holdout", "mixing_variance")
    assert field is None or field.startswith(named), field


async def test_an_arm_whose_squares_cannot_hold_its_sum_is_400_naming_sum_squares(client: Client) -> None:
    experiment_id = await _mean_experiment(client)
    observations = [_arm("treatment", 2, 1e300, 5e-324), _arm("holdout", 2, 5e299, 5e-324)]
    posted = await client.post(f"/v1/experiments/{experiment_id}/observations", json={"observations": observations})
    if posted.status_code == 200:
        posted = await client.get(f"/v1/experiments/{experiment_id}/results")
    assert posted.status_code == 400, posted.text
    assert _answer_or_field(posted) is not None
    assert any("sum_squares" in p["name"] for p in posted.json()["invalid_params"])


# --- geo power ----------------------------------------------------------------------------------------


def _panel_csv(scale: float, offset: float) -> str:
    start = date(2024, 1, 1)
    rows = [
        f"g{g},{offset + scale * (1 + ((g * 7 + d * 3) % 11) / 10)},{start + timedelta(days=d)}"
        for g in range(6)
        for d in range(40)
    ]
    return "geo,kpi,date\n" + "\n".join(rows) + "\n"


@pytest.mark.parametrize(
    ("scale", "offset"),
    [(1e300, 0.0), (1e-300, 0.0), (5e-324, 1.0), (1.0, 1e16)],
    ids=["1e300", "1e-300", "subnormal", "cancelling"],
)
async def test_geo_power_on_an_extreme_panel_answers_or_names_the_dataset(
    client: Client, scale: float, offset: float
) -> None:
    upload = await client.post("/v1/geo/datasets", content=_panel_csv(scale, offset), headers=CSV)
    if upload.status_code != 201:  # refused at upload: a 4xx naming the field
        assert _answer_or_field(upload) is not None
        return
    body = {
        "dataset_id": upload.json()["id"],
        "treatment_markets": ["g0"],
        "durations": [5],
        "effect_sizes": [0.0, 0.1],
        "alpha": 0.1,
        "cost_per_kpi": 1e12,
    }
    response = await client.post("/v1/geo/power", json=body)
    field = _answer_or_field(response)
    assert field is None or field in {"dataset", "dataset_id", "cost_per_kpi", "effect_sizes"}, field
