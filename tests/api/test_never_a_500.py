"""Requests from the third hostile review (issue 22) that answered 500: each is now a 4xx problem document.

``GET /app/%00`` (the static-file handler's ``ValueError: embedded null byte``); bytes that are not UTF-8
inside a JSON string (msgspec's ``UnicodeDecodeError``), sent to every operation that takes a body;
``/schema/*`` pages that do not exist (an HTML 404); HEAD on the GET routes (405).
"""

from __future__ import annotations

import asyncio
import math
import re
import uuid
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.cli import openapi_document
from tests.api.helpers import holdout_design, upload_dataset

Client = AsyncTestClient[Litestar]
DOCUMENT: dict[str, Any] = openapi_document()
HOLDOUT = holdout_design("hostile")
PANEL = "date,geo,kpi\n" + "".join(f"2026-01-{d:02d},{g},{10 + d}\n" for g in ("a", "b", "c") for d in range(1, 29))


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


def _operations_with_a_body() -> list[tuple[str, str, str]]:
    return [
        (method.upper(), path, operation["operationId"])
        for path, item in DOCUMENT["paths"].items()
        for method, operation in item.items()
        if "requestBody" in operation
    ]


WITH_A_BODY = _operations_with_a_body()


async def _concrete(client: Client, path: str) -> str:
    """``path`` with a real holdout experiment and a real dataset where it names them (so a handler that
    loads them first still reads the body), and fresh UUIDs for any other parameter."""
    experiment = (await client.post("/v1/experiments", json=HOLDOUT)).json()["id"]
    dataset = (await client.post("/v1/geo/datasets", content=PANEL, headers={"Content-Type": "text/csv"})).json()["id"]
    path = path.replace("{experiment_id}", experiment).replace("{dataset_id}", dataset)
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


# --- /app and /schema ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/app/%00", "/app/index.html%00.js", "/app/%00/x"])
async def test_a_page_path_with_a_nul_byte_is_404_problem_json_without_a_key(client: Client, path: str) -> None:
    del client.headers["Authorization"]
    _problem(await client.get(path), 404)


@pytest.mark.parametrize("path", ["/schema/nope", "/schema/nope.json", "/schema/%00"])
async def test_an_unknown_schema_page_is_404_problem_json(client: Client, path: str) -> None:
    _problem(await client.get(path), 404)


async def test_the_schema_pages_that_exist_still_answer(client: Client) -> None:
    assert (await client.get("/schema/openapi.json")).json()["openapi"].startswith("3.")
    assert (await client.get("/schema")).status_code == 200


# --- bytes that are not UTF-8 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b'{"metric":{"kind":"a\xff\xfe"}}', b'{"a\xff\xfe": 1}', b'{"name": "\xed\xa0\x80"}', b"\xff\xfe{}"],
    ids=["in-a-value", "in-a-key", "a-lone-surrogate", "before-the-object"],
)
async def test_the_reported_power_request_with_bytes_that_are_not_utf8_is_400_naming_the_body(
    client: Client, body: bytes
) -> None:
    response = await client.post("/v1/power/holdout", content=body, headers={"Content-Type": "application/json"})
    assert _problem(response, 400)["invalid_params"][0]["name"] == "body"


@pytest.mark.parametrize(("method", "path", "operation_id"), WITH_A_BODY, ids=[o[2] for o in WITH_A_BODY])
async def test_no_json_body_that_is_not_utf8_answers_500_on_any_operation(
    client: Client, method: str, path: str, operation_id: str
) -> None:
    concrete = await _concrete(client, path)
    for body in (b'{"a\xff\xfe": 1}', b'{"name": "a\xff\xfe", "units": ["\xff"], "outcomes": [{"unit": "\xfe"}]}'):
        response = await client.request(method, concrete, content=body, headers={"Content-Type": "application/json"})
        assert 400 <= response.status_code < 500, (operation_id, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/experiments/{experiment_id}/assignments", b"unit\nu\xff\xfe\n"),
        ("/v1/experiments/{experiment_id}/outcomes", b"unit,value\nu\xff,1\n"),
        ("/v1/geo/datasets", b"date,geo,kpi\n2026-01-01,g\xff,1\n"),
    ],
)
async def test_a_csv_body_that_is_not_utf8_is_400_naming_the_line(client: Client, path: str, body: bytes) -> None:
    response = await client.post(await _concrete(client, path), content=body, headers={"Content-Type": "text/csv"})
    names = [param["name"] for param in _problem(response, 400)["invalid_params"]]
    assert names and all("2" in name for name in names), names


# --- HEAD -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/health", "/v1/experiments", "/app/", "/app/app.css", "/schema/openapi.json"])
async def test_head_on_a_get_route_answers_the_gets_status_and_headers_without_a_body(
    client: Client, path: str
) -> None:
    head = await client.head(path)
    get = await client.get(path)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == str(len(get.content))


async def test_head_on_a_v1_route_needs_a_key_as_the_get_does(client: Client) -> None:
    del client.headers["Authorization"]
    response = await client.head("/v1/experiments")
    assert response.status_code == 401
    assert response.content == b""


async def test_head_where_there_is_no_get_is_405(client: Client) -> None:
    response = await client.head("/v1/power/holdout")
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]


# --- numbers a job would use, checked before it is queued -----------------------------------------------


async def _pair_panel(client: Client) -> str:
    from tests.api.test_matched_pairs import design_csv

    return await upload_dataset(client, design_csv(geos=24, since="2020-10-01"))


async def _jobs(database_url: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        count: int = await connection.fetchval("SELECT count(*) FROM jobs")
        return count
    finally:
        await connection.close()


@pytest.mark.parametrize("budget", [5e-324, 1e-200, 1.0])
async def test_a_matched_pair_budget_too_small_for_the_panel_is_400_before_any_job(
    client: Client, database_url: str, budget: float
) -> None:
    body = {"dataset_id": await _pair_panel(client), "budgets": [1000, budget], "pair_counts": [12]}
    problem = _problem(await client.post("/v1/geo/matched-pairs", json=body), 400)
    assert problem["invalid_params"][0]["name"] == "budgets[1]"
    assert "a millionth of the design geos' response" in problem["detail"]
    assert await _jobs(database_url) == 0


async def test_a_target_iroas_whose_budget_would_overflow_is_400_before_any_job(
    client: Client, database_url: str
) -> None:
    body = {"dataset_id": await _pair_panel(client), "target_iroas": 5e-324, "pair_counts": [12]}
    assert _problem(await client.post("/v1/geo/matched-pairs", json=body), 400)["invalid_params"][0]["name"] == (
        "target_iroas"
    )
    assert await _jobs(database_url) == 0


async def test_the_smallest_budget_accepted_designs_with_finite_numbers(client: Client, worker: None) -> None:
    from tests.api.test_matched_pairs import design

    dataset_id = await _pair_panel(client)
    refused = await client.post("/v1/geo/matched-pairs", json={"dataset_id": dataset_id, "budgets": [1.0]})
    floor = float(refused.json()["detail"].split("at least ")[1].split(" ")[0])
    body = {"dataset_id": dataset_id, "budgets": [floor * 1.001], "pair_counts": [12], "simulations": 10, "seed": 1}
    (evaluation,) = (await design(client, body))["designs"][0]["budgets"]
    assert all(math.isfinite(evaluation[name]) for name in ("rmse", "minimum_detectable_iroas", "bias"))


async def _job_outcome(client: Client, path: str, body: dict[str, Any]) -> str:
    """``"refused"`` for a 4xx, else the status its job ends in."""
    response = await client.post(path, json=body, headers={"Prefer": "respond-async"})
    if 400 <= response.status_code < 500:
        return "refused"
    assert response.status_code == 202, response.text
    for _ in range(2400):
        job = (await client.get(response.headers["location"])).json()
        if job["status"] not in ("queued", "running"):
            return str(job["status"])
        await asyncio.sleep(0.05)
    raise AssertionError("the job did not finish in 2 minutes")


async def test_geo_power_and_market_selection_at_the_extremes_are_refused_or_finish(
    client: Client, worker: None
) -> None:
    from testkit.panels import pretest_csv

    dataset = await client.post("/v1/geo/datasets", content=pretest_csv(), headers={"Content-Type": "text/csv"})
    common = {"dataset_id": dataset.json()["id"], "durations": [10], "alpha": 5e-324}
    tiny_and_huge = {"effect_sizes": [5e-324, -0.9999999999999999, 10.0], "cost_per_kpi": 1e12}
    power = {**common, **tiny_and_huge, "treatment_markets": ["chicago", "portland"], "power_target": 5e-324}
    selection = {**common, **tiny_and_huge, "treatment_sizes": [2], "budget": 5e-324}
    assert await _job_outcome(client, "/v1/geo/power", power) in ("refused", "succeeded")
    assert await _job_outcome(client, "/v1/geo/market-selection", selection) in ("refused", "succeeded")


async def test_trimmed_match_results_of_an_unpaired_experiment_are_400_before_any_job(
    client: Client, database_url: str
) -> None:
    from tests.api.helpers import create_geolift_experiment

    experiment = await create_geolift_experiment(client)
    response = await client.get(
        f"/v1/experiments/{experiment}/results",
        params={"method": "trimmed_match"},
        headers={"Prefer": "respond-async"},
    )
    assert _problem(response, 400)["invalid_params"][0]["name"] == "method"
    assert await _jobs(database_url) == 0


async def test_allow_lists_head_wherever_get_is_served(client: Client) -> None:
    assert "HEAD" in (await client.options("/health")).headers["allow"].split(", ")
    assert "HEAD" not in (await client.options("/v1/power/holdout")).headers["allow"].split(", ")
