"""Geo experiment results on GeoLift's walkthrough panel (Meta GeoLift, chicago + portland treated).

GeoLift's vignette reports, for 2021-04-01..2021-04-15 after a 2021-01-01..2021-03-31 pre-period, an
ATT of 155.556 and an incremental KPI of about 4,667 (synthetic control), and 156.805 for the
ridge-augmented fit.
"""

from __future__ import annotations

import math
from typing import Any

import asyncpg
import msgspec
import pytest

from api.geo.schemas import GeoResults
from api.geo.service import validate_geo_design
from api.http.errors import Conflict, InvalidInput
from api.results.geo import DEFAULT_PERMUTATIONS, compute_geo_results
from api.results.geo_run import load_geo_run
from tests.api.helpers import Client, create_experiment, create_geolift_experiment, holdout_design

PERMUTATIONS = 200


async def geo_experiment_results(
    connection: asyncpg.Connection,
    row: Any,
    method: str,
    confidence_level: float,
    *,
    n_permutations: int = DEFAULT_PERMUTATIONS,
) -> GeoResults:
    """The results of a geo experiment row as the results service computes them: load, then compute."""
    run = await load_geo_run(connection, row, method, confidence_level)
    results = await compute_geo_results(run, n_permutations=n_permutations)
    assert isinstance(results, GeoResults)
    return results


async def _geo_experiment(client: Client, connection: asyncpg.Connection, **overrides: Any) -> asyncpg.Record:
    experiment_id = await create_geolift_experiment(client, **overrides)
    row = await connection.fetchrow("SELECT * FROM experiments WHERE id = $1", experiment_id)
    assert row is not None
    return row


async def test_synthetic_control_reproduces_geolift(client: Client, connection: asyncpg.Connection) -> None:
    row = await _geo_experiment(client, connection)
    result = await geo_experiment_results(connection, row, "synthetic_control", 0.9, n_permutations=PERMUTATIONS)
    assert isinstance(result, GeoResults)
    assert result.method == "synthetic_control" and result.confidence_level == 0.9
    assert result.att.estimate == pytest.approx(155.556, rel=0.005)
    assert result.incremental.estimate == pytest.approx(4667.0, rel=0.005)
    assert result.lift.absolute == result.att
    assert result.p_value_sharp_null is not None and result.p_value_sharp_null <= 0.05  # GeoLift: 0.017
    assert result.att.ci_low is not None and result.att.ci_high is not None and result.att.estimate is not None
    assert result.att.ci_low < result.att.estimate < result.att.ci_high
    assert result.p_value is not None
    assert (result.p_value <= 0.1) == (not result.att.ci_low <= 0.0 <= result.att.ci_high)
    assert result.incremental.estimate is not None
    assert result.iroas is not None and result.iroas.estimate == pytest.approx(result.incremental.estimate / 10_000)
    assert result.weights and abs(sum(result.weights.values()) - 1.0) < 1e-6
    assert "chicago" not in result.weights and "portland" not in result.weights
    assert len(result.series) == 105
    assert result.series[0].date.isoformat() == "2021-01-01" and result.series[0].ci_low is None
    assert result.series[-1].ci_low is not None
    encoded = msgspec.json.decode(msgspec.json.encode(result))
    assert encoded["kind"] == "geo"
    assert set(encoded["att"]) == {"estimate", "ci_low", "ci_high"}
    assert encoded["chart"]["$schema"].endswith("vega-lite/v5.json")
    assert {"fit", "series", "weights", "p_value_iid", "placebo_p_value", "ci_status", "warnings"} <= set(encoded)


async def test_augmented_synthetic_control_reproduces_geolift(client: Client, connection: asyncpg.Connection) -> None:
    row = await _geo_experiment(client, connection)
    result = await geo_experiment_results(
        connection, row, "augmented_synthetic_control", 0.9, n_permutations=PERMUTATIONS
    )
    assert result.att.estimate == pytest.approx(156.805, rel=0.01)
    assert result.fit["ridge_lambda"] is not None


async def test_tbr_gives_finite_values_and_a_ci_consistent_with_its_p_value(
    client: Client, connection: asyncpg.Connection
) -> None:
    row = await _geo_experiment(client, connection)
    for level in (0.8, 0.9, 0.99):
        result = await geo_experiment_results(connection, row, "tbr", level)
        assert result.method == "tbr" and result.p_value is not None
        att, incremental = result.att, result.incremental
        for value in (att.estimate, att.ci_low, att.ci_high, incremental.estimate, result.p_value):
            assert value is not None and math.isfinite(value)
        assert incremental.ci_low is not None and incremental.ci_high is not None
        excludes_zero = incremental.ci_low > 0 or incremental.ci_high < 0
        assert excludes_zero == (result.p_value < 1 - level)
        assert incremental.estimate == pytest.approx(att.estimate * 2 * 15)  # type: ignore[operator]
        assert result.iroas is not None
        assert len(result.series) == 105 and len(result.weights) == 38


async def test_unknown_markets_and_uncovered_periods_are_refused(
    client: Client, connection: asyncpg.Connection
) -> None:
    # Rows as the experiments service might hold them once the design has drifted from the dataset.
    row = await _geo_experiment(client, connection)
    design = msgspec.json.decode(row["design"])
    unknown = {"id": row["id"], "design": {**design, "treatment_markets": ["chicago", "atlantis"]}}
    with pytest.raises(InvalidInput) as refused:
        await geo_experiment_results(connection, unknown, "tbr", 0.9)
    assert refused.value.invalid_params[0][0] == "treatment_markets"
    late = {"id": row["id"], "design": {**design, "test_period": {"start": "2021-04-01", "end": "2021-04-30"}}}
    with pytest.raises(Conflict) as conflict:
        await geo_experiment_results(connection, late, "synthetic_control", 0.9)
    assert "2021-04-30" in conflict.value.detail
    with pytest.raises(InvalidInput) as bad_method:
        await geo_experiment_results(connection, late, "trimmed_mean", 0.9)
    assert bad_method.value.invalid_params[0][0] == "method"


async def test_validate_geo_design_names_the_field(client: Client, connection: asyncpg.Connection) -> None:
    row = await _geo_experiment(client, connection)
    design = msgspec.json.decode(row["design"])
    await validate_geo_design(connection, design["dataset_id"], ["chicago"], [["chicago", "boston"]])
    cases: list[tuple[Any, list[str], list[list[str]] | None, str]] = [
        ("00000000-0000-0000-0000-000000000000", ["chicago"], None, "dataset_id"),
        (design["dataset_id"], ["chicago", "atlantis"], None, "treatment_markets"),
        (design["dataset_id"], ["chicago"], [["chicago", "atlantis"]], "pairs[0][1]"),
    ]
    for dataset_id, markets, pairs, field in cases:
        with pytest.raises(InvalidInput) as refused:
            await validate_geo_design(connection, dataset_id, markets, pairs)
        assert refused.value.invalid_params[0][0] == field


async def test_the_results_route_answers_a_geo_experiment_with_the_geo_shape(
    client: Client, connection: asyncpg.Connection
) -> None:
    row = await _geo_experiment(client, connection)
    response = await client.get(f"/v1/experiments/{row['id']}/results", params={"method": "synthetic_control"})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["kind"] == "geo"
    assert result["confidence_level"] == 0.9
    assert result["att"]["estimate"] == pytest.approx(155.556, rel=0.005)
    assert result["iroas"]["estimate"] == pytest.approx(result["incremental"]["estimate"] / 10_000.0)
    assert result["chart"]["$schema"].endswith("vega-lite/v5.json")


async def test_a_geo_method_on_a_holdout_experiment_is_400(client: Client) -> None:
    experiment_id = await create_experiment(client, holdout_design("h"))
    response = await client.get(f"/v1/experiments/{experiment_id}/results", params={"method": "tbr"})
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "method"
