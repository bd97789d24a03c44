"""Workspaces keep teams apart: a key sees and changes only its workspace's experiments, datasets, jobs and
audit trail; another workspace's ids answer 404, exactly as ids that do not exist; an all-workspaces admin key
reads every workspace and writes into the one its request names."""

from __future__ import annotations

import contextvars
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.auth.caller import set_current_key
from api.auth.keys import Scope
from api.auth.service import create_key
from api.jobs.questions import ask
from api.workspaces.repository import create_workspace

Client = AsyncTestClient[Litestar]
HEADER = "Counterfact-Workspace"
HOLDOUT = {
    "kind": "holdout",
    "name": "brand test",
    "metric": {"kind": "proportion"},
    "channels": [{"name": "meta", "holdout_fraction": 0.5}],
}
MARKETS = ["austin", "boston", "chicago", "denver"]


def _rows(start: date, days: int) -> list[dict[str, Any]]:
    return [
        {"date": (start + timedelta(days=d)).isoformat(), "geo": geo, "kpi": 100.0 + 7 * g + d % 5}
        for g, geo in enumerate(MARKETS)
        for d in range(days)
    ]


async def _key(database_url: str, workspace: str | None, scope: Scope = Scope.ADMIN) -> str:
    """A key working in ``workspace`` (made first when it is new); ``None``: an all-workspaces admin key."""
    connection = await asyncpg.connect(database_url)
    try:
        if workspace is not None and await connection.fetchval(
            "SELECT NOT EXISTS (SELECT 1 FROM workspaces WHERE name = $1)", workspace
        ):
            await create_workspace(connection, workspace)
        return (await create_key(connection, name=f"key of {workspace}", scope=scope, workspace=workspace)).secret
    finally:
        await connection.close()


def _as(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


@dataclass(frozen=True)
class Owned:
    """What workspace `brand-a` holds: an experiment with data, a dataset, a job and two designs."""

    experiment: str
    dataset: str
    job: str
    selection: str
    pairs: str


@pytest.fixture
async def brand_a(client: Client, database_url: str) -> AsyncIterator[tuple[str, Owned]]:
    key = await _key(database_url, "brand-a")
    headers = _as(key)
    experiment = (await client.post("/v1/experiments", json=HOLDOUT, headers=headers)).json()["id"]
    path = f"/v1/experiments/{experiment}"
    assert (await client.post(f"{path}/assignments", json={"units": ["u1", "u2"]}, headers=headers)).status_code == 200
    await client.post(f"{path}/outcomes", json={"outcomes": [{"unit": "u1", "value": 1}]}, headers=headers)
    job_response = await client.get(f"{path}/results", headers={**headers, "Prefer": "respond-async"})
    assert job_response.status_code == 202
    job = job_response.headers["location"].rsplit("/", 1)[1]
    created = await client.post(
        "/v1/geo/datasets", json={"name": "a", "rows": _rows(date(2026, 1, 1), 60)}, headers=headers
    )
    assert created.status_code == 201
    dataset = created.json()["id"]
    selection, pairs = uuid.uuid4(), uuid.uuid4()
    connection = await asyncpg.connect(database_url)
    try:  # designs as their jobs store them; only who may see them matters here
        for table, design_id in (("geo_market_selections", selection), ("geo_matched_pair_designs", pairs)):
            await connection.execute(
                f"INSERT INTO {table} (id, dataset_id, request, result) VALUES ($1, $2, '{{}}', '{{}}')",
                design_id,
                uuid.UUID(dataset),
            )
    finally:
        await connection.close()
    yield key, Owned(experiment, dataset, job, str(selection), str(pairs))


ROUTES_WITH_AN_ID = [
    ("GET", "/v1/experiments/{experiment}", None),
    ("PATCH", "/v1/experiments/{experiment}", {"name": "taken over"}),
    ("DELETE", "/v1/experiments/{experiment}", None),
    ("GET", "/v1/experiments/{experiment}/assignment-rule", None),
    ("GET", "/v1/experiments/{experiment}/assignments", None),
    ("POST", "/v1/experiments/{experiment}/assignments", {"units": ["u9"]}),
    ("GET", "/v1/experiments/{experiment}/assignments/summary", None),
    ("GET", "/v1/experiments/{experiment}/assignments/u1", None),
    ("GET", "/v1/experiments/{experiment}/calibration?format=robyn", None),
    ("GET", "/v1/experiments/{experiment}/events", None),
    (
        "POST",
        "/v1/experiments/{experiment}/observations",
        {"observations": [{"arm": "treatment", "channel": "meta", "conversions": 5, "units": 90}]},
    ),
    ("POST", "/v1/experiments/{experiment}/outcomes", {"outcomes": [{"unit": "u2", "value": 1}]}),
    ("GET", "/v1/experiments/{experiment}/results", None),
    ("PUT", "/v1/experiments/{experiment}/spend", {"channels": [{"channel": "meta", "spend": 100}]}),
    ("GET", "/v1/geo/datasets/{dataset}", None),
    ("DELETE", "/v1/geo/datasets/{dataset}", None),
    ("GET", "/v1/geo/datasets/{dataset}/events", None),
    ("POST", "/v1/geo/datasets/{dataset}/rows", {"rows": _rows(date(2026, 3, 2), 1)}),
    ("GET", "/v1/geo/datasets/{dataset}/series", None),
    ("GET", "/v1/geo/datasets/{dataset}/versions", None),
    ("GET", "/v1/jobs/{job}", None),
    ("DELETE", "/v1/jobs/{job}", None),
    ("POST", "/v1/geo/market-selection/{selection}/experiments", {"rank": 1, "name": "taken", "channel": "tv"}),
    ("POST", "/v1/geo/matched-pairs/{pairs}/experiments", {"name": "taken", "channel": "tv", "pairs_kept": 1}),
]


@pytest.mark.parametrize(
    ("method", "template", "body"), ROUTES_WITH_AN_ID, ids=lambda v: v if isinstance(v, str) else ""
)
async def test_another_workspaces_id_answers_404_on_every_route_that_takes_one(
    client: Client,
    database_url: str,
    brand_a: tuple[str, Owned],
    method: str,
    template: str,
    body: dict[str, Any] | None,
) -> None:
    _, owned = brand_a
    other = _as(await _key(database_url, "brand-b"))
    path = template.format(**vars(owned))
    response = await client.request(method, path, json=body, headers=other)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_another_workspaces_job_and_experiment_are_left_as_they_were(
    client: Client, database_url: str, brand_a: tuple[str, Owned]
) -> None:
    key, owned = brand_a
    other = _as(await _key(database_url, "brand-b"))
    await client.delete(f"/v1/jobs/{owned.job}", headers=other)
    await client.patch(f"/v1/experiments/{owned.experiment}", json={"name": "taken over"}, headers=other)
    assert (await client.get(f"/v1/jobs/{owned.job}", headers=_as(key))).json()["status"] != "cancelled"
    assert (await client.get(f"/v1/experiments/{owned.experiment}", headers=_as(key))).json()["name"] == "brand test"


async def test_another_workspaces_dataset_in_a_body_answers_as_an_unknown_one(
    client: Client, database_url: str, brand_a: tuple[str, Owned]
) -> None:
    _, owned = brand_a
    other = _as(await _key(database_url, "brand-b"))
    geo = {
        "kind": "geo",
        "name": "on a's data",
        "channel": "tv",
        "treatment_markets": ["austin"],
        "pre_period": {"start": "2026-01-01", "end": "2026-01-31"},
        "test_period": {"start": "2026-02-01", "end": "2026-02-14"},
    }
    for dataset in (owned.dataset, str(uuid.uuid4())):
        answers = [
            await client.post("/v1/experiments", json={**geo, "dataset_id": dataset}, headers=other),
            await client.post(
                "/v1/geo/power",
                json={"dataset_id": dataset, "durations": [7], "effect_sizes": [0.1], "treatment_markets": ["austin"]},
                headers=other,
            ),
        ]
        seen = [(r.status_code, json.dumps(r.json()).replace(dataset, "ID")) for r in answers]
        if dataset == owned.dataset:
            theirs = seen
    assert theirs == seen
    assert all(400 <= status < 500 for status, _ in seen)


async def test_listings_show_only_the_keys_workspace(
    client: Client, database_url: str, brand_a: tuple[str, Owned]
) -> None:
    key, owned = brand_a
    other = _as(await _key(database_url, "brand-b"))
    mine = (await client.post("/v1/experiments", json={**HOLDOUT, "name": "b's"}, headers=other)).json()["id"]
    for path, expected_a in (
        ("/v1/experiments", owned.experiment),
        ("/v1/geo/datasets", owned.dataset),
        ("/v1/jobs", owned.job),
    ):
        listed_a = (await client.get(path, headers=_as(key))).json()["items"]
        listed_b = (await client.get(path, headers=other)).json()["items"]
        assert [item["id"] for item in listed_a] == [expected_a]
        assert {item["workspace"] for item in listed_a} == {"brand-a"}
        assert expected_a not in [item["id"] for item in listed_b]
    assert [e["id"] for e in (await client.get("/v1/experiments", headers=other)).json()["items"]] == [mine]


async def test_an_all_workspaces_key_lists_every_workspace_and_says_whose_each_item_is(
    client: Client, database_url: str, brand_a: tuple[str, Owned]
) -> None:
    _, owned = brand_a
    other = _as(await _key(database_url, "brand-b"))
    theirs = (await client.post("/v1/experiments", json=HOLDOUT, headers=other)).json()["id"]
    every = _as(await _key(database_url, None))
    listed = (await client.get("/v1/experiments", headers=every)).json()["items"]
    assert {(e["id"], e["workspace"]) for e in listed} == {(owned.experiment, "brand-a"), (theirs, "brand-b")}
    got = await client.get(f"/v1/geo/datasets/{owned.dataset}", headers=every)
    assert got.status_code == 200 and got.json()["workspace"] == "brand-a"


async def test_an_all_workspaces_key_reading_with_the_header_sees_only_that_workspace(
    client: Client, database_url: str, brand_a: tuple[str, Owned]
) -> None:
    _, owned = brand_a
    await client.post("/v1/experiments", json=HOLDOUT, headers=_as(await _key(database_url, "brand-b")))
    every = await _key(database_url, None)
    listed = (await client.get("/v1/experiments", headers=_as(every, **{HEADER: "brand-a"}))).json()["items"]
    assert [e["id"] for e in listed] == [owned.experiment]
    elsewhere = await client.get(f"/v1/experiments/{owned.experiment}", headers=_as(every, **{HEADER: "brand-b"}))
    assert elsewhere.status_code == 404


async def test_an_all_workspaces_key_writing_without_the_header_is_400_naming_it(
    client: Client, database_url: str
) -> None:
    every = _as(await _key(database_url, None))
    response = await client.post("/v1/experiments", json=HOLDOUT, headers=every)
    assert response.status_code == 400
    assert [p["name"] for p in response.json()["invalid_params"]] == [HEADER]
    assert (await client.get("/v1/experiments", headers=every)).json()["items"] == []


async def test_an_all_workspaces_key_writes_into_the_workspace_its_header_names(
    client: Client, database_url: str
) -> None:
    in_a = _as(await _key(database_url, "brand-a"))
    in_b = _as(await _key(database_url, "brand-b"))
    every = await _key(database_url, None)
    made = await client.post("/v1/experiments", json=HOLDOUT, headers=_as(every, **{HEADER: "brand-b"}))
    assert made.status_code == 201 and made.json()["workspace"] == "brand-b"
    assert (await client.get(f"/v1/experiments/{made.json()['id']}", headers=in_b)).status_code == 200
    assert (await client.get(f"/v1/experiments/{made.json()['id']}", headers=in_a)).status_code == 404


async def test_a_header_naming_no_workspace_is_400(client: Client, database_url: str) -> None:
    every = await _key(database_url, None)
    response = await client.post("/v1/experiments", json=HOLDOUT, headers=_as(every, **{HEADER: "brand-z"}))
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == HEADER


@pytest.mark.parametrize("named", ["\u00ff\u00fe-latin-1", "x" * 4_000, "brand a; DROP TABLE workspaces", " "])
async def test_a_hostile_workspace_header_is_400_naming_it(client: Client, database_url: str, named: str) -> None:
    every = await _key(database_url, None)
    headers = {b"Authorization": f"Bearer {every}".encode(), HEADER.encode(): named.encode("latin-1")}
    response = await client.post("/v1/experiments", json=HOLDOUT, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["invalid_params"][0]["name"] == HEADER


async def test_a_one_workspace_key_may_name_only_its_own_workspace(client: Client, database_url: str) -> None:
    await _key(database_url, "brand-b")
    in_a = await _key(database_url, "brand-a")
    own = await client.post("/v1/experiments", json=HOLDOUT, headers=_as(in_a, **{HEADER: "brand-a"}))
    assert own.status_code == 201
    for named in ("brand-b", "brand-z"):  # existing or not, the same answer: names cannot be probed
        response = await client.get("/v1/experiments", headers=_as(in_a, **{HEADER: named}))
        assert response.status_code == 400
        assert response.json()["invalid_params"] == [
            {"name": HEADER, "reason": "this key works in the workspace 'brand-a' only"}
        ]


async def test_an_all_workspaces_key_reading_results_queues_the_job_in_the_experiments_workspace(
    client: Client, database_url: str, brand_a: tuple[str, Owned]
) -> None:
    key, owned = brand_a
    await client.post(
        f"/v1/experiments/{owned.experiment}/outcomes",
        json={"outcomes": [{"unit": "u2", "value": 0}]},
        headers=_as(key),
    )
    every = _as(await _key(database_url, None), Prefer="respond-async")
    response = await client.get(f"/v1/experiments/{owned.experiment}/results", headers=every)
    assert response.status_code == 202
    job = (await client.get(response.headers["location"], headers=_as(key))).json()
    assert job["workspace"] == "brand-a"


async def test_an_all_workspaces_keys_idempotency_key_is_its_own_in_each_workspace(
    client: Client, database_url: str
) -> None:
    await _key(database_url, "brand-a")
    await _key(database_url, "brand-b")
    every = await _key(database_url, None)
    body = {"name": "same", "rows": _rows(date(2026, 1, 1), 10)}
    made = {
        workspace: await client.post(
            "/v1/geo/datasets", json=body, headers=_as(every, **{HEADER: workspace, "Idempotency-Key": "k1"})
        )
        for workspace in ("brand-a", "brand-b")
    }
    assert [r.status_code for r in made.values()] == [201, 201]
    assert [r.json()["workspace"] for r in made.values()] == ["brand-a", "brand-b"]
    assert "idempotent-replayed" not in made["brand-b"].headers
    experiments = [
        await client.post(
            "/v1/experiments", json=HOLDOUT, headers=_as(every, **{HEADER: workspace, "Idempotency-Key": "k2"})
        )
        for workspace in ("brand-a", "brand-b")
    ]
    assert [r.status_code for r in experiments] == [201, 201]
    assert experiments[0].json()["id"] != experiments[1].json()["id"]


async def test_keys_made_without_a_workspace_work_in_default(client: Client) -> None:
    made = await client.post("/v1/experiments", json=HOLDOUT)  # the fixture's key: `keys create` without --workspace
    assert made.json()["workspace"] == "default"


def test_the_same_question_asked_in_two_workspaces_is_two_questions() -> None:
    """A question's key holds the workspace it is asked in, so no workspace is handed another's job or
    kept answer (questions on data all workspaces could name, such as a design's parameters, included)."""
    experiment_id = uuid.uuid4()

    def asked_in(workspace: str) -> str:
        def ask_there() -> str:
            set_current_key(None, workspace)
            return ask("experiment_results", b"{}", experiment_id, "r1").key

        return contextvars.copy_context().run(ask_there)

    assert asked_in("brand-a") == asked_in("brand-a")
    assert asked_in("brand-a") != asked_in("brand-b")
