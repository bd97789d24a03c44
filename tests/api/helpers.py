"""What the tests of the API call again and again: the client's type, the CSV header, and the requests that
make a geo dataset, an experiment or a result, each asserting the status it expects."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from testkit.panels import geolift_csv, geolift_design

Client = AsyncTestClient[Litestar]
CSV = {"Content-Type": "text/csv"}
# GeoLift's walkthrough: chicago and portland treated from April 1 to 15, 2021, after a 90-day history.


def holdout_design(name: str, /, **overrides: Any) -> dict[str, Any]:
    """A holdout experiment called ``name``: a proportion metric, one channel (``meta``) holding out 10%."""
    return {
        "kind": "holdout",
        "name": name,
        "metric": {"kind": "proportion"},
        "channels": [{"name": "meta", "holdout_fraction": 0.1}],
    } | overrides


async def upload_dataset(client: Client, body: str) -> str:
    """A geo dataset made of the CSV ``body`` (201 asserted); its id."""
    upload = await client.post("/v1/geo/datasets", content=body, headers=CSV)
    assert upload.status_code == 201, upload.text
    return str(upload.json()["id"])


async def sixty_day_dataset(client: Client, markets: Sequence[str], name: str) -> str:
    """A geo dataset called ``name``: ``markets`` over the 60 days from 2026-01-01, market ``g``'s KPI on day ``d``
    100 + 7 g + d mod 5 (201 asserted); its id."""
    start = date(2026, 1, 1)
    rows = [
        {"date": (start + timedelta(days=d)).isoformat(), "geo": geo, "kpi": 100.0 + 7 * g + d % 5}
        for g, geo in enumerate(markets)
        for d in range(60)
    ]
    upload = await client.post("/v1/geo/datasets", json={"name": name, "rows": rows})
    assert upload.status_code == 201, upload.text
    return str(upload.json()["id"])


async def create_experiment(client: Client, body: dict[str, Any]) -> str:
    """The experiment ``body`` describes, created (201 asserted); its id."""
    created = await client.post("/v1/experiments", json=body)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def unspent_geolift_design(dataset_id: str, /, **overrides: Any) -> dict[str, Any]:
    """:func:`geolift_design` without its spend (a test that states none, or a spend change per market)."""
    return {key: value for key, value in geolift_design(dataset_id).items() if key != "spend"} | overrides


async def create_geolift_experiment(client: Client, /, **overrides: Any) -> str:
    """A draft geo experiment on GeoLift's walkthrough panel (chicago + portland, April 1-15); its id. The
    overrides replace any field, ``dataset_id`` too."""
    return await create_walkthrough_experiment(client, geolift_csv(), **overrides)


async def create_walkthrough_experiment(client: Client, panel_csv: str, /, **overrides: Any) -> str:
    """The walkthrough's design (``geolift_design`` with ``overrides``) on ``panel_csv`` uploaded; its id."""
    return await create_experiment(client, geolift_design(await upload_dataset(client, panel_csv), **overrides))


async def results(client: Client, experiment_id: str, **params: Any) -> dict[str, Any]:
    """``GET /v1/experiments/{id}/results`` with ``params`` (200 asserted); the answer."""
    response = await client.get(f"/v1/experiments/{experiment_id}/results", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
