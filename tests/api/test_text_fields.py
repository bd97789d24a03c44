"""Free text is data, never code (issue 12, "Security"): SQL metacharacters, escapes and Unicode of every kind
in each free-text field (experiment names and salts, unit ids, geo dataset names and market names) are stored
and returned byte for byte, and a NUL character, which PostgreSQL text cannot hold, is a 400 naming the field.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

Client = AsyncTestClient[Litestar]

HOSTILE = [
    "Robert'); DROP TABLE experiments;--",
    '" OR "1"="1',
    "50% off_ \\ \\\\ $1 $$ E'\\x41' /* c */ -- c",
    "Zürich · 東京 · القاهرة · Ελλάδα · 🚀👩🏽‍🚀",  # accents, CJK, right-to-left, emoji with skin tone and joiner
    "e\u0301 \u200b\u200d\u2028\ufeff",  # combining accent, zero-width space and joiner, line separator, BOM
    "  leading and trailing spaces  ",
    "tab\tnew\nline\rreturn",
]
NUL = "before\x00after"


def holdout(name: str, salt: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "holdout",
        "name": name,
        "metric": {"kind": "proportion"},
        "channels": [{"name": "meta", "holdout_fraction": 0.5}],
    }
    if salt is not None:
        body["salt"] = salt
    return body


def panel(geos: list[str]) -> list[dict[str, Any]]:
    return [
        {"date": f"2024-01-{day:02d}", "geo": geo, "kpi": 100.0 + day + k, "spend": 1.0}
        for k, geo in enumerate(geos)
        for day in range(1, 11)
    ]


def invalid_names(response: Any) -> list[str]:
    return [p["name"] for p in response.json()["invalid_params"]]


@pytest.mark.parametrize("text", HOSTILE)
async def test_an_experiment_name_and_salt_come_back_verbatim(client: Client, text: str) -> None:
    created = await client.post("/v1/experiments", json=holdout(text, salt=text))
    assert created.status_code == 201, created.text
    read = (await client.get(f"/v1/experiments/{created.json()['id']}")).json()
    assert (read["name"], read["salt"]) == (text, text)
    listed = (await client.get("/v1/experiments", params={"limit": 200})).json()["items"]
    assert text in {item["name"] for item in listed}


async def test_a_renamed_experiment_keeps_the_new_name_verbatim(client: Client) -> None:
    experiment_id = (await client.post("/v1/experiments", json=holdout("plain"))).json()["id"]
    for text in HOSTILE:
        renamed = await client.patch(f"/v1/experiments/{experiment_id}", json={"name": text})
        assert renamed.status_code == 200, renamed.text
        assert (await client.get(f"/v1/experiments/{experiment_id}")).json()["name"] == text


async def test_unit_ids_are_assigned_and_looked_up_verbatim(client: Client) -> None:
    experiment_id = (await client.post("/v1/experiments", json=holdout("units"))).json()["id"]
    units = [text.replace("\n", " ").replace("\r", " ") for text in HOSTILE]
    loaded = await client.post(f"/v1/experiments/{experiment_id}/assignments", json={"units": units})
    assert loaded.status_code == 200, loaded.text
    for unit in units:
        found = await client.get(f"/v1/experiments/{experiment_id}/assignments/{quote(unit, safe='')}")
        assert found.status_code == 200, (unit, found.text)
        assert found.json()["unit"] == unit
    listed = (await client.get(f"/v1/experiments/{experiment_id}/assignments", params={"limit": 100})).json()
    assert {item["unit"] for item in listed["items"]} == set(units)


async def test_geo_dataset_and_market_names_come_back_verbatim(client: Client) -> None:
    geos = [*HOSTILE[:3], "plain"]
    created = await client.post("/v1/geo/datasets", json={"name": HOSTILE[3], "rows": panel(geos)})
    assert created.status_code == 201, created.text
    dataset = (await client.get(f"/v1/geo/datasets/{created.json()['id']}")).json()
    assert dataset["name"] == HOSTILE[3]
    assert set(dataset["geos"]) == set(geos)
    series = (await client.get(f"/v1/geo/datasets/{created.json()['id']}/series")).json()["rows"]
    assert {row["geo"] for row in series} == set(geos)


async def test_a_nul_in_an_experiment_name_is_400_naming_it(client: Client) -> None:
    response = await client.post("/v1/experiments", json=holdout(NUL))
    assert response.status_code == 400, response.text
    assert invalid_names(response) == ["name"]


async def test_a_nul_in_a_salt_is_400_naming_it(client: Client) -> None:
    response = await client.post("/v1/experiments", json=holdout("salted", salt=NUL))
    assert response.status_code == 400, response.text
    assert invalid_names(response) == ["salt"]


async def test_a_nul_in_a_unit_id_is_400_naming_it(client: Client) -> None:
    experiment_id = (await client.post("/v1/experiments", json=holdout("nul unit"))).json()["id"]
    response = await client.post(f"/v1/experiments/{experiment_id}/assignments", json={"units": ["ok", NUL]})
    assert response.status_code == 400, response.text
    assert invalid_names(response) == ["units[1]"]


async def test_a_nul_in_a_market_name_is_400_naming_its_row(client: Client) -> None:
    response = await client.post("/v1/geo/datasets", json={"rows": panel(["a", NUL, "c"])})
    assert response.status_code == 400, response.text
    assert invalid_names(response)[0].endswith(".geo")
