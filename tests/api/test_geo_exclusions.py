"""`exclude_from_controls` on a geo experiment: markets that may be contaminated by the treatment are in
no control group or donor pool, and the result lists them (issue 13). The reference is the same
analysis of the panel uploaded without those markets."""

from __future__ import annotations

import csv

import pytest

from testkit.panels import geolift_design
from tests.api.helpers import Client, create_experiment, results, upload_dataset
from tests.conftest import DATA_DIR

CSV = {"Content-Type": "text/csv"}
NEIGHBOURS = ["milwaukee", "oakland"]  # near chicago; sharing west-coast media with portland


def _rows() -> list[dict[str, str]]:
    with (DATA_DIR / "geolift" / "GeoLift_Test.csv").open() as fh:
        return list(csv.DictReader(fh))


def _csv(rows: list[dict[str, str]]) -> str:
    return "location,Y,date\n" + "".join(f"{r['location']},{r['Y']},{r['date']}\n" for r in rows)


async def test_excluded_markets_are_in_no_control_group_and_are_listed(client: Client) -> None:
    rows = _rows()
    with_exclusions = await create_experiment(
        client, geolift_design(await upload_dataset(client, _csv(rows)), exclude_from_controls=NEIGHBOURS)
    )
    without_markets = await create_experiment(
        client, geolift_design(await upload_dataset(client, _csv([r for r in rows if r["location"] not in NEIGHBOURS])))
    )
    for method in ("tbr", "synthetic_control"):
        result = await results(client, with_exclusions, method=method)
        expected = await results(client, without_markets, method=method)
        assert result["incremental"] == pytest.approx(expected["incremental"], rel=1e-9)
        assert result["excluded_from_controls"] == NEIGHBOURS
        assert expected["excluded_from_controls"] == []
        assert not set(NEIGHBOURS) & set(result["weights"])
    assert len((await results(client, with_exclusions, method="tbr"))["weights"]) == 36


async def test_the_experiment_shows_and_patches_its_exclusions(client: Client) -> None:
    dataset_id = await upload_dataset(client, _csv(_rows()))
    experiment_id = await create_experiment(client, geolift_design(dataset_id, exclude_from_controls=["reno"]))
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
    dataset_id = await upload_dataset(client, _csv(_rows()))
    body = geolift_design(dataset_id, exclude_from_controls=excluded) | ({"pairs": pairs} if pairs else {})
    response = await client.post("/v1/experiments", json=body)
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["invalid_params"][0]["name"] == field
    assert reason in problem["invalid_params"][0]["reason"]


async def test_exclusions_leaving_fewer_than_two_controls_are_400(client: Client) -> None:
    rows = _rows()
    controls = sorted({r["location"] for r in rows} - {"chicago", "portland"})
    response = await client.post(
        "/v1/experiments",
        json=geolift_design(await upload_dataset(client, _csv(rows)), exclude_from_controls=controls[1:]),
    )
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "exclude_from_controls"
