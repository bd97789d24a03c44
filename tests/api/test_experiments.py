"""The experiments resource: create, read, list, and the draft → running → stopped life cycle."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.api.helpers import unspent_geolift_design

Client = AsyncTestClient[Litestar]


def holdout_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "holdout",
        "name": "Q1 social and search",
        "metric": {"kind": "proportion", "baseline": 0.05},
        "channels": [{"name": "meta", "holdout_fraction": 0.1}, {"name": "search", "holdout_fraction": 0.05}],
    }
    body.update(overrides)
    return body


async def small_dataset(client: Client) -> str:
    """A four-market panel covering the periods of :func:`~tests.api.helpers.unspent_geolift_design`."""
    rows = [
        {"date": day, "geo": geo, "kpi": 100.0 + i}
        for i, geo in enumerate(("chicago", "portland", "denver", "austin"))
        for day in ("2021-01-01", "2021-03-31", "2021-04-01", "2021-04-15")
    ]
    response = await client.post("/v1/geo/datasets", json={"name": "tiny", "rows": rows})
    assert response.status_code == 201, response.text
    dataset_id: str = response.json()["id"]
    return dataset_id


async def test_creating_a_holdout_experiment_returns_201_with_location_and_a_salt(client: Client) -> None:
    response = await client.post("/v1/experiments", json=holdout_body())
    assert response.status_code == 201
    created = response.json()
    assert response.headers["location"] == f"/v1/experiments/{created['id']}"
    assert created["status"] == "draft"
    assert created["kind"] == "holdout"
    assert len(created["salt"]) >= 16
    assert [c["name"] for c in created["channels"]] == ["meta", "search"]


async def test_a_created_experiment_reads_back_identically(client: Client) -> None:
    created = (await client.post("/v1/experiments", json=holdout_body(salt="fixed-salt"))).json()
    fetched = await client.get(f"/v1/experiments/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created
    assert fetched.json()["salt"] == "fixed-salt"


async def test_a_geo_experiment_keeps_its_markets_and_periods(client: Client) -> None:
    response = await client.post(
        "/v1/experiments", json=unspent_geolift_design(await small_dataset(client), spend=1000.0)
    )
    assert response.status_code == 201
    created = response.json()
    assert created["treatment_markets"] == ["chicago", "portland"]
    assert created["test_period"] == {"start": "2021-04-01", "end": "2021-04-15"}
    assert created["spend"] == 1000.0


async def test_an_unknown_experiment_is_404_problem_json(client: Client) -> None:
    response = await client.get("/v1/experiments/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 404


async def test_an_out_of_range_holdout_fraction_is_400_naming_the_field(client: Client) -> None:
    body = holdout_body(channels=[{"name": "meta", "holdout_fraction": 1.0}])
    response = await client.post("/v1/experiments", json=body)
    assert response.status_code == 400
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert problem["invalid_params"][0]["name"] == "channels[0].holdout_fraction"
    assert "< 1.0" in problem["invalid_params"][0]["reason"]


async def test_a_channel_named_twice_is_400_naming_the_second(client: Client) -> None:
    body = holdout_body(channels=[{"name": "meta", "holdout_fraction": 0.1}, {"name": "meta", "holdout_fraction": 0.2}])
    response = await client.post("/v1/experiments", json=body)
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "channels[1].name"


async def test_a_test_period_before_the_pre_period_ends_is_400(client: Client) -> None:
    body = unspent_geolift_design(await small_dataset(client), test_period={"start": "2021-03-01", "end": "2021-04-15"})
    response = await client.post("/v1/experiments", json=body)
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "test_period.start"


async def test_malformed_json_is_400_problem_json(client: Client) -> None:
    response = await client.post(
        "/v1/experiments", content=b'{"kind": "holdout",', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_non_json_body_is_415(client: Client) -> None:
    response = await client.post("/v1/experiments", content=b"name=x", headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_an_unknown_field_is_400_naming_it(client: Client) -> None:
    response = await client.post("/v1/experiments", json=holdout_body(colour="red"))
    assert response.status_code == 400
    assert "colour" in response.json()["detail"]


async def test_a_retry_with_the_same_idempotency_key_returns_the_first_experiment(client: Client) -> None:
    headers = {"Idempotency-Key": "create-q1-test"}
    first = await client.post("/v1/experiments", json=holdout_body(), headers=headers)
    again = await client.post("/v1/experiments", json=holdout_body(), headers=headers)
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    listed = (await client.get("/v1/experiments")).json()
    assert len(listed["items"]) == 1


async def test_an_idempotency_key_reused_with_another_body_is_422_naming_the_header(client: Client) -> None:
    headers = {"Idempotency-Key": "k1"}
    await client.post("/v1/experiments", json=holdout_body(), headers=headers)
    response = await client.post("/v1/experiments", json=holdout_body(name="other"), headers=headers)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["invalid_params"][0]["name"] == "Idempotency-Key"
    assert len((await client.get("/v1/experiments")).json()["items"]) == 1


async def test_listing_pages_newest_first_with_a_cursor(client: Client) -> None:
    ids = [(await client.post("/v1/experiments", json=holdout_body(name=f"e{i}"))).json()["id"] for i in range(5)]
    first = (await client.get("/v1/experiments", params={"limit": 2})).json()
    second = (await client.get("/v1/experiments", params={"limit": 2, "cursor": first["next_cursor"]})).json()
    third = (await client.get("/v1/experiments", params={"limit": 2, "cursor": second["next_cursor"]})).json()
    seen = [e["id"] for page in (first, second, third) for e in page["items"]]
    assert seen == list(reversed(ids))
    assert third["next_cursor"] is None


async def test_listing_filters_by_kind_and_status(client: Client) -> None:
    holdout = (await client.post("/v1/experiments", json=holdout_body())).json()
    await client.post("/v1/experiments", json=unspent_geolift_design(await small_dataset(client)))
    await client.patch(f"/v1/experiments/{holdout['id']}", json={"status": "running"})
    geos = (await client.get("/v1/experiments", params={"kind": "geo"})).json()["items"]
    running = (await client.get("/v1/experiments", params={"status": "running"})).json()["items"]
    assert [e["kind"] for e in geos] == ["geo"]
    assert [e["id"] for e in running] == [holdout["id"]]


async def test_a_bad_cursor_is_400_naming_cursor(client: Client) -> None:
    response = await client.get("/v1/experiments", params={"cursor": "not-a-cursor"})
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "cursor"


async def test_status_moves_draft_to_running_to_stopped(client: Client) -> None:
    created = (await client.post("/v1/experiments", json=holdout_body())).json()
    running = await client.patch(f"/v1/experiments/{created['id']}", json={"status": "running"})
    stopped = await client.patch(f"/v1/experiments/{created['id']}", json={"status": "stopped"})
    assert running.status_code == 200
    assert running.json()["status"] == "running"
    assert running.json()["started_at"] is not None
    assert stopped.json()["status"] == "stopped"
    assert stopped.json()["stopped_at"] is not None


async def test_an_illegal_transition_is_409(client: Client) -> None:
    created = (await client.post("/v1/experiments", json=holdout_body())).json()
    response = await client.patch(f"/v1/experiments/{created['id']}", json={"status": "stopped"})
    assert response.status_code == 409
    assert response.json()["invalid_params"][0]["name"] == "status"


async def test_design_fields_change_while_draft(client: Client) -> None:
    created = (await client.post("/v1/experiments", json=holdout_body())).json()
    response = await client.patch(
        f"/v1/experiments/{created['id']}", json={"channels": [{"name": "tiktok", "holdout_fraction": 0.2}]}
    )
    assert response.status_code == 200
    assert response.json()["channels"] == [{"name": "tiktok", "holdout_fraction": 0.2}]


async def test_design_fields_are_frozen_once_running(client: Client) -> None:
    created = (await client.post("/v1/experiments", json=holdout_body())).json()
    await client.patch(f"/v1/experiments/{created['id']}", json={"status": "running"})
    response = await client.patch(f"/v1/experiments/{created['id']}", json={"alpha": 0.1})
    assert response.status_code == 409
    assert response.json()["invalid_params"][0]["name"] == "alpha"
    assert (await client.get(f"/v1/experiments/{created['id']}")).json()["alpha"] == 0.05


async def test_a_geo_field_on_a_holdout_experiment_is_400(client: Client) -> None:
    created = (await client.post("/v1/experiments", json=holdout_body())).json()
    response = await client.patch(f"/v1/experiments/{created['id']}", json={"treatment_markets": ["x"]})
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "treatment_markets"


async def test_a_geo_experiment_on_an_unknown_dataset_is_400_naming_dataset_id(client: Client) -> None:
    body = unspent_geolift_design("6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f")
    response = await client.post("/v1/experiments", json=body)
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "dataset_id"


async def test_a_treatment_market_missing_from_the_dataset_is_400(client: Client) -> None:
    body = unspent_geolift_design(await small_dataset(client), treatment_markets=["chicago", "atlantis"])
    response = await client.post("/v1/experiments", json=body)
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "treatment_markets"


async def test_channels_are_frozen_once_units_are_assigned_even_in_draft(client: Client) -> None:
    created = (await client.post("/v1/experiments", json=holdout_body())).json()
    await client.post(f"/v1/experiments/{created['id']}/assignments", json={"units": ["u1"]})
    response = await client.patch(
        f"/v1/experiments/{created['id']}", json={"channels": [{"name": "tiktok", "holdout_fraction": 0.2}]}
    )
    assert response.status_code == 409
    assert response.json()["invalid_params"][0]["name"] == "channels"
