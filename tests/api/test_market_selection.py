"""`POST /v1/geo/market-selection` end to end: always a job, run by a worker, GeoLift's walkthrough ranked.

GeoLift 2.7.5 ranks chicago + cincinnati + houston + portland (15 days, effect 0.05, investment 74,118)
and chicago + portland (15 days, 0.10) first on ``GeoLift_PreTest`` with these settings.
"""

from __future__ import annotations

from typing import Any

import pytest

from api.geo_design import panel as design_panel
from api.geo_design import service
from testkit.jobs import finished_job
from tests.api.helpers import Client

CSV = {"Content-Type": "text/csv"}
WALKTHROUGH = {
    "treatment_sizes": [2, 3, 4, 5],
    "durations": [10, 15],
    "effect_sizes": [0, 0.05, 0.1, 0.15, 0.2],
    "include": ["chicago"],
    "exclude": ["honolulu"],
    "cost_per_kpi": 7.5,
    "budget": 100000,
    "alpha": 0.1,
}


async def select(client: Client, dataset_id: str, **overrides: Any) -> Any:
    return await client.post("/v1/geo/market-selection", json={"dataset_id": dataset_id, **WALKTHROUGH, **overrides})


async def test_a_selection_is_always_a_job(client: Client, dataset_id: str) -> None:
    response = await select(client, dataset_id)
    assert response.status_code == 202
    assert response.headers["location"] == f"/v1/jobs/{response.json()['id']}"
    assert response.json()["kind"] == "geo_market_selection"


async def test_geolifts_first_designs_are_among_the_top_candidates(
    client: Client, worker: None, dataset_id: str
) -> None:
    job = await finished_job(client, (await select(client, dataset_id)).headers["location"])
    assert job["status"] == "succeeded", job
    listed = {(tuple(c["markets"]), c["duration"]): c for c in job["result"]["candidates"]}
    four = listed[(("chicago", "cincinnati", "houston", "portland"), 15)]
    two = listed[(("chicago", "portland"), 15)]
    assert four["mde"] == 0.05 and four["investment"] == pytest.approx(74_118.375)
    assert abs(two["mde"] - 0.10) <= 0.05 + 1e-12
    assert [c["rank"] for c in job["result"]["candidates"]] == list(range(1, len(listed) + 1))
    assert all(0.0 <= p["power"] <= 1.0 for c in listed.values() for p in c["power_curve"])


async def test_a_selection_where_nothing_qualifies_succeeds_and_says_why(
    client: Client, worker: None, dataset_id: str
) -> None:
    job = await finished_job(
        client, (await select(client, dataset_id, budget=10, treatment_sizes=[2])).headers["location"]
    )
    assert job["status"] == "succeeded"
    result = job["result"]
    assert result["candidates"] == []
    assert result["dropped"] and result["dropped"][0]["count"] > 0 and result["dropped"][0]["relax"]
    assert any("no design met every constraint" in w for w in result["warnings"])


async def test_an_unknown_dataset_is_404_before_queueing(client: Client) -> None:
    response = await select(client, "00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404


async def test_an_unknown_included_market_is_400_naming_include(client: Client, dataset_id: str) -> None:
    response = await select(client, dataset_id, include=["atlantis"])
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "include"


async def test_sizes_larger_than_the_market_count_are_400(client: Client, dataset_id: str) -> None:
    response = await select(client, dataset_id, treatment_sizes=[45])
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "treatment_sizes"


async def test_durations_longer_than_the_history_allows_are_400(client: Client, dataset_id: str) -> None:
    response = await select(client, dataset_id, durations=[60])
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "durations"


async def test_an_empty_effect_grid_is_400(client: Client, dataset_id: str) -> None:
    response = await select(client, dataset_id, effect_sizes=[])
    assert response.status_code == 400


async def test_a_panel_with_holes_is_409(client: Client) -> None:
    rows = [
        {"date": f"2026-01-{d:02d}", "geo": g, "kpi": 10.0 + d}
        for g in ("a", "b", "c", "d")
        for d in range(1, 29)
        if not (g == "b" and d == 5)
    ]
    upload = await client.post("/v1/geo/datasets", json={"rows": rows})
    response = await select(
        client, upload.json()["id"], treatment_sizes=[1], durations=[7], include=[], exclude=[], budget=None
    )
    assert response.status_code == 409
    assert "b on 2026-01-05" in response.json()["detail"]


async def test_every_listed_candidate_carries_its_backtest(client: Client, worker: None, dataset_id: str) -> None:
    job = await finished_job(client, (await select(client, dataset_id)).headers["location"])
    for candidate in job["result"]["candidates"]:
        assert candidate["backtest"]["effect"] == candidate["mde"]
        assert candidate["backtest"]["windows"] > 0


async def test_a_selection_with_percent_effect_sizes_warns_and_spells_markets_as_the_dataset(
    client: Client, worker: None, dataset_id: str
) -> None:
    response = await select(
        client,
        dataset_id,
        treatment_sizes=[2],
        durations=[10],
        effect_sizes=[0, 5, 10],
        include=["Chicago"],
        exclude=["HONOLULU"],
        exclude_from_controls=["New York"],
        budget=None,
    )
    assert response.status_code == 202, response.text
    job = await finished_job(client, response.headers["location"])
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert result["warnings"][0].startswith("effect_sizes[1]: 5 (+500%), 10 (+1000%) are lifts of 100% or more")
    assert result["excluded_from_controls"] == ["new york"]
    assert all("chicago" in c["markets"] and "honolulu" not in c["markets"] for c in result["candidates"])


@pytest.fixture
def small_request_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """GeoLift's 3,600 market-days count as a panel too large to read in the API process."""
    monkeypatch.setattr(service, "PANEL_CELLS_IN_REQUEST", 100)


async def test_a_selection_on_a_panel_above_the_limit_is_queued_without_reading_it(
    client: Client, dataset_id: str, small_request_limit: None
) -> None:
    design_panel._cache.clear()
    response = await select(client, dataset_id)
    assert response.status_code == 202, response.text
    assert not any(str(key[0]) == dataset_id for key in design_panel._cache)


async def test_an_unknown_included_market_of_a_large_panel_is_still_400_naming_include(
    client: Client, dataset_id: str, small_request_limit: None
) -> None:
    response = await select(client, dataset_id, include=["atlantis"])
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "include"


async def test_a_large_panels_selection_it_cannot_answer_fails_its_job_with_the_400(
    client: Client, worker: None, dataset_id: str, small_request_limit: None
) -> None:
    job = await finished_job(client, (await select(client, dataset_id, treatment_sizes=[45])).headers["location"])
    assert job["status"] == "failed", job
    assert job["error"]["status"] == 400
    assert job["error"]["invalid_params"][0]["name"] == "treatment_sizes"


async def test_a_large_panels_selection_ranks_as_a_small_ones(
    client: Client, worker: None, dataset_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = await finished_job(client, (await select(client, dataset_id)).headers["location"])
    monkeypatch.setattr(service, "PANEL_CELLS_IN_REQUEST", 100)
    # The durations in another order: the same selection, but not the question the first job answered.
    large = await finished_job(client, (await select(client, dataset_id, durations=[15, 10])).headers["location"])
    assert small["status"] == large["status"] == "succeeded", (small, large)
    assert large["result"]["candidates"] == small["result"]["candidates"]


async def test_a_candidates_predicted_power_is_what_geo_power_predicts_for_the_same_design(
    client: Client, worker: None, dataset_id: str
) -> None:
    # The ranking orders designs by the power, MDE and backtest of the test the results will run (the conformal test
    # on the panel deflated by the donors' level, stats.geo.power): the figures POST /v1/geo/power gives for them.
    selection = {"treatment_sizes": [2, 3], "durations": [15], "exclude_from_controls": ["new york"], "top": 3}
    job = await finished_job(client, (await select(client, dataset_id, budget=None, **selection)).headers["location"])
    assert job["status"] == "succeeded", job
    candidates = job["result"]["candidates"]
    assert len(candidates) == 3
    for candidate in candidates:
        response = await client.post(
            "/v1/geo/power",
            json={
                "dataset_id": dataset_id,
                "treatment_markets": candidate["markets"],
                "durations": [15],
                "effect_sizes": WALKTHROUGH["effect_sizes"],
                "alpha": WALKTHROUGH["alpha"],
                "cost_per_kpi": WALKTHROUGH["cost_per_kpi"],
                "exclude_from_controls": ["new york"],
            },
            headers={"Prefer": "wait=60"},
        )
        assert response.status_code == 200, response.text
        (design,) = response.json()["durations"]
        assert candidate["power_curve"] == design["power_curve"], candidate["markets"]
        for key in ("mde", "mde_exact", "power_at_mde", "investment", "fit"):
            assert candidate[key] == design[key], (candidate["markets"], key)
        for key in ("windows", "false_positive_rate", "placebo_rmse", "effect", "detection_rate"):
            assert candidate["backtest"][key] == design["backtest"][key], (candidate["markets"], key)
