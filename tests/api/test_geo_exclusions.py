"""`exclude_from_controls` on a geo experiment: markets that may be contaminated by the treatment are in
no control group or donor pool, and the result lists them (issue 13). The reference is the same
analysis of the panel uploaded without those markets."""

from __future__ import annotations

import csv
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import DATA_DIR

Client = AsyncTestClient[Litestar]
CSV = {"Content-Type": "text/csv"}
NEIGHBOURS = ["milwaukee", "oakland"]  # near chicago; sharing west-coast media with portland


def _rows() -> list[dict[str, str]]:
    with (DATA_DIR / "geolift" / "GeoLift_Test.csv").open() as fh:
        return list(csv.DictReader(fh))


def _csv(rows: list[dict[str, str]]) -> str:
    return "location,Y,date\n" + "".join(f"{r['location']},{r['Y']},{r['date']}\n" for r in rows)


async def _dataset(client: Client, rows: list[dict[str, str]]) -> str:
    upload = await client.post("/v1/geo/datasets", content=_csv(rows), headers=CSV)
    assert upload.status_code == 201, upload.text
    dataset_id: str = upload.json()["id"]
    return dataset_id


def _design(dataset_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "kind": "geo",
        "name": "TV in Chicago and Portland",
        "dataset_id": dataset_id,
        "channel": "tv",
        "treatment_markets": ["chicago", "portland"],
        "pre_period": {"start": "2021-01-01", "end": "2021-03-31"},
        "test_period": {"start": "2021-04-01", "end": "2021-04-15"},
        "spend": 10_000.0,
    } | overrides


async def _create(client: Client, body: dict[str, Any]) -> str:
    created = await client.post("/v1/experiments", json=body)
    assert created.status_code == 201, created.text
    experiment_id: str = created.json()["id"]
    return experiment_id


async def _results(client: Client, experiment_id: str, method: str) -> dict[str, Any]:
    response = await client.get(f"/v1/experiments/{experiment_id}/results", params={"method": method})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_excluded_markets_are_in_no_control_group_and_are_listed(client: Client) -> None:
    rows = _rows()
    with_exclusions = await _create(client, _design(await _dataset(client, rows), exclude_from_controls=NEIGHBOURS))
    without_markets = await _create(
        client, _design(await _dataset(client, [r for r in rows if r["location"] not in NEIGHBOURS]))
    )
    for method in ("tbr", "synthetic_control"):
        result = await _results(client, with_exclusions, method)
        expected = await _results(client, without_markets, method)
        assert result["incremental"] == pytest.approx(expected["incremental"], rel=1e-9)
        assert result["excluded_from_controls"] == NEIGHBOURS
        assert expected["excluded_from_controls"] == []
        assert not set(NEIGHBOURS) & set(result["weights"])
    assert len((await _results(client, with_exclusions, "tbr"))["weights"]) == 36


async def test_the_experiment_shows_and_patches_its_exclusions(client: Client) -> None:
    dataset_id = await _dataset(client, _rows())
    experiment_id = await _create(client, _design(dataset_id, exclude_from_controls=["reno"]))
    shown = await client.get(f"/v1/experiments/{experiment_id}")
    assert shown.json()["exclude_from_controls"] == ["reno"]
    patched = await client.patch(f"/v1/experiments/{experiment_id}", json={"exclude_from_controls": NEIGHBOURS})
    assert patched.status_code == 200, patched.text
    assert patched.json()["exclude_from_controls"] == NEIGHBOURS
    refused = await client.patch(f"/v1/experiments/{experiment_id}", json={"exclude_from_controls": ["chicago"]})
    assert refused.status_code == 400
    assert refused.json()["invalid_params"][0]["name"] == "exclude_from_controls[0]"


@pytest.mark.parametrize(
    ("excluded", "pairs", "field", "reason"),
    [
        (["atlantis"], None, "exclude_from_controls[0]", "not in dataset"),
        (["reno", "chicago"], None, "exclude_from_controls[1]", "treatment market"),
        (["reno", "reno"], None, "exclude_from_controls[1]", "twice"),
        (["boston"], [["chicago", "boston"], ["portland", "denver"]], "exclude_from_controls[0]", "control of a pair"),
    ],
)
async def test_a_bad_exclusion_is_400_naming_the_entry(
    client: Client, excluded: list[str], pairs: list[list[str]] | None, field: str, reason: str
) -> None:
    dataset_id = await _dataset(client, _rows())
    body = _design(dataset_id, exclude_from_controls=excluded) | ({"pairs": pairs} if pairs else {})
    response = await client.post("/v1/experiments", json=body)
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["invalid_params"][0]["name"] == field
    assert reason in problem["invalid_params"][0]["reason"]


async def test_exclusions_leaving_fewer_than_two_controls_are_400(client: Client) -> None:
    rows = _rows()
    controls = sorted({r["location"] for r in rows} - {"chicago", "portland"})
    response = await client.post(
        "/v1/experiments", json=_design(await _dataset(client, rows), exclude_from_controls=controls[1:])
    )
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "exclude_from_controls"
