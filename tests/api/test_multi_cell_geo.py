"""Multi-cell geo experiments on GeoLift's multi-cell example (Meta GeoLift, ``GeoLift_Test_MultiCell``):
cell ``social`` = chicago + cincinnati, cell ``search`` = honolulu + indianapolis, treated 2021-04-01..15.

GeoLift's multi-cell walkthrough (``GeoLiftMultiCell``, Ridge chosen for both cells) reports ATT 673.819 for
the first cell and 216.423 for the second; our ridge-augmented synthetic control on each cell, with the other
cell's markets out of its donors, gives the same (see also ``tests/stats/test_multi_cell.py``).
"""

from __future__ import annotations

import csv
from typing import Any

import pytest

from testkit.jobs import finished_job
from tests.api.helpers import Client, upload_dataset
from tests.conftest import DATA_DIR

CSV = {"Content-Type": "text/csv"}
WAIT = {"Prefer": "wait=300"}  # answer within the request even on a busy machine
SOCIAL = ["chicago", "cincinnati"]
SEARCH = ["honolulu", "indianapolis"]


def multi_cell_csv() -> str:
    with (DATA_DIR / "geolift" / "GeoLift_Test_MultiCell.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    return "geo,kpi,date\n" + "".join(f"{r['location']},{r['Y']},{r['date']}\n" for r in rows)


def body(dataset_id: str, **overrides: Any) -> dict[str, Any]:
    design: dict[str, Any] = {
        "kind": "geo",
        "name": "Social vs search",
        "dataset_id": dataset_id,
        "channel": "media",
        "cells": [
            {"name": "social", "channel": "meta", "treatment_markets": SOCIAL, "spend": 20_000.0},
            {"name": "search", "treatment_markets": SEARCH, "spend": 10_000.0},
        ],
        "pre_period": {"start": "2021-01-01", "end": "2021-03-31"},
        "test_period": {"start": "2021-04-01", "end": "2021-04-15"},
    }
    design.update(overrides)
    return design


async def create(client: Client, **overrides: Any) -> dict[str, Any]:
    response = await client.post(
        "/v1/experiments", json=body(await upload_dataset(client, multi_cell_csv()), **overrides)
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def results(client: Client, experiment_id: str, method: str) -> dict[str, Any]:
    response = await client.get(f"/v1/experiments/{experiment_id}/results", params={"method": method}, headers=WAIT)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_a_multi_cell_experiment_stores_its_cells_and_lists_every_treated_market(client: Client) -> None:
    created = await create(client)
    assert created["treatment_markets"] == sorted(SOCIAL + SEARCH)
    assert [c["name"] for c in created["cells"]] == ["social", "search"]
    assert created["cells"][0]["channel"] == "meta"
    assert created["cells"][1]["channel"] is None
    fetched = (await client.get(f"/v1/experiments/{created['id']}")).json()
    assert fetched["cells"] == created["cells"]


async def test_a_single_cell_experiment_has_no_cells(client: Client) -> None:
    created = await create(client, cells=None, treatment_markets=SOCIAL, spend=5_000.0)
    assert created["cells"] is None
    assert created["treatment_markets"] == SOCIAL
    assert (await results(client, created["id"], "tbr"))["kind"] == "geo"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cells": [{"name": "a", "treatment_markets": ["chicago"]}, {"name": "b", "treatment_markets": ["chicago"]}]},
         "cells[1].treatment_markets"),
        ({"cells": [{"name": "a", "treatment_markets": ["chicago", "chicago"]},
                    {"name": "b", "treatment_markets": ["reno"]}]}, "cells[0].treatment_markets"),
        ({"cells": [{"name": "a", "treatment_markets": ["chicago"]}, {"name": "b", "treatment_markets": []}]},
         "cells[1].treatment_markets"),
        ({"cells": [{"name": "a", "treatment_markets": ["chicago"]}, {"name": "a", "treatment_markets": ["reno"]}]},
         "cells[1].name"),
        ({"cells": [{"name": "a", "treatment_markets": ["chicago"]}, {"name": "b", "treatment_markets": ["atlantis"]}]},
         "cells[1].treatment_markets"),
        ({"pairs": [["chicago", "reno"]]}, "cells"),
        ({"treatment_markets": ["chicago"]}, "cells"),
        ({"spend": 1_000.0}, "spend"),
        ({"cells": [{"name": "a", "treatment_markets": ["chicago"]}]}, "cells"),
        ({"cells": None}, "treatment_markets"),
    ],
    ids=[
        "market-in-two-cells", "market-twice-in-a-cell", "cell-without-markets", "duplicate-cell-names",
        "market-not-in-dataset", "cells-with-pairs", "cells-with-treatment-markets", "experiment-wide-spend",
        "one-cell", "no-treatment-at-all",
    ],
)  # fmt: skip
async def test_a_bad_multi_cell_design_is_400_naming_the_field(
    client: Client, change: dict[str, Any], field: str
) -> None:
    response = await client.post("/v1/experiments", json=body(await upload_dataset(client, multi_cell_csv()), **change))
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["invalid_params"][0]["name"].removeprefix("$.") == field


async def test_cells_can_be_patched_in_draft_and_the_treated_markets_follow(client: Client) -> None:
    created = await create(client)
    cells = [
        {"name": "social", "treatment_markets": ["chicago"], "spend": 1.0},
        {"name": "search", "treatment_markets": ["reno", "honolulu"], "spend": 2.0},
    ]
    response = await client.patch(f"/v1/experiments/{created['id']}", json={"cells": cells})
    assert response.status_code == 200, response.text
    assert response.json()["treatment_markets"] == ["chicago", "honolulu", "reno"]
    overlapping = [cells[0], {**cells[1], "treatment_markets": ["chicago"]}]
    refused = await client.patch(f"/v1/experiments/{created['id']}", json={"cells": overlapping})
    assert refused.status_code == 400
    assert refused.json()["invalid_params"][0]["name"] == "cells[1].treatment_markets"
    markets = await client.patch(f"/v1/experiments/{created['id']}", json={"treatment_markets": ["reno"]})
    assert markets.status_code == 400
    assert markets.json()["invalid_params"][0]["name"] == "treatment_markets"


async def test_a_running_test_in_a_cells_market_collides_with_a_new_one(client: Client) -> None:
    created = await create(client)
    started = await client.patch(f"/v1/experiments/{created['id']}", json={"status": "running"})
    assert started.status_code == 200, started.text
    other = body(created["dataset_id"], cells=None, treatment_markets=["indianapolis", "reno"], name="Overlap")
    response = await client.post("/v1/experiments", json=other)
    assert response.status_code == 409
    assert "indianapolis" in response.json()["detail"]


async def test_each_cell_reproduces_geolift_multi_cell_with_only_untreated_controls(client: Client) -> None:
    created = await create(client)
    answer = await results(client, created["id"], "augmented_synthetic_control")
    assert answer["kind"] == "geo_cells"
    assert answer["method"] == "augmented_synthetic_control"
    controls = set(answer["control_markets"])
    assert len(controls) == 36 and not controls & set(SOCIAL + SEARCH)
    social, search = answer["cells"]
    assert (social["name"], social["channel"], search["channel"]) == ("social", "meta", "media")
    # GeoLift prints ATT to 3 decimals.
    assert social["results"]["att"]["estimate"] == pytest.approx(673.819, abs=5e-4)
    assert search["results"]["att"]["estimate"] == pytest.approx(216.423, abs=5e-4)
    # On these data the search cell's conformal interval lies above its estimate, and so the difference's
    # interval below it: both say so.
    assert any("does not contain the point estimate" in w for w in search["results"]["warnings"])
    assert any("social minus search does not contain its estimate" in w for w in answer["warnings"])
    for cell in (social, search):
        assert set(cell["results"]["weights"]) <= controls
        assert cell["results"]["fit"]["n_donors"] == 36
        assert cell["results"]["iroas"]["estimate"] == pytest.approx(
            cell["results"]["incremental"]["estimate"] / cell["spend"]
        )


@pytest.mark.parametrize("method", ["synthetic_control", "tbr"])
async def test_cells_are_compared_on_iroas_with_an_interval_for_the_difference(client: Client, method: str) -> None:
    created = await create(client)
    answer = await results(client, created["id"], method)
    (comparison,) = answer["comparisons"]
    social, search = (cell["results"] for cell in answer["cells"])
    assert (comparison["first"], comparison["second"], comparison["compared"]) == ("social", "search", "iroas")
    difference = comparison["difference"]
    expected = social["iroas"]["estimate"] - search["iroas"]["estimate"]
    assert difference["estimate"] == pytest.approx(expected, rel=1e-6)
    assert difference["ci_low"] < difference["ci_high"]
    excludes_zero = difference["ci_low"] > 0 or difference["ci_high"] < 0
    assert (comparison["p_value"] <= 0.1) == excludes_zero


async def test_cells_without_spend_are_compared_on_relative_lift(client: Client) -> None:
    cells = [
        {"name": "social", "treatment_markets": SOCIAL, "spend": 20_000.0},
        {"name": "search", "treatment_markets": SEARCH},
    ]
    created = await create(client, cells=cells)
    answer = await results(client, created["id"], "tbr")
    (comparison,) = answer["comparisons"]
    social, search = (cell["results"] for cell in answer["cells"])
    assert comparison["compared"] == "relative_lift"
    expected = social["lift"]["relative"]["estimate"] - search["lift"]["relative"]["estimate"]
    assert comparison["difference"]["estimate"] == pytest.approx(expected, rel=1e-6)
    assert search["iroas"] is None
    assert any("search" in w and "relative lift" in w for w in answer["warnings"])


async def test_trimmed_match_on_a_multi_cell_experiment_is_400(client: Client) -> None:
    created = await create(client)
    response = await client.get(f"/v1/experiments/{created['id']}/results", params={"method": "trimmed_match"})
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "method"


async def test_a_multi_cell_result_renders_its_chart(client: Client) -> None:
    created = await create(client)
    response = await client.get(
        f"/v1/experiments/{created['id']}/results", params={"method": "tbr", "format": "svg"}, headers=WAIT
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert "social" in response.text and "search" in response.text


async def test_a_multi_cell_result_computed_by_a_worker_is_the_jobs_result(client: Client, worker: None) -> None:
    created = await create(client)
    path = f"/v1/experiments/{created['id']}/results"
    started = await client.get(path, params={"method": "tbr"}, headers={"Prefer": "respond-async"})
    assert started.status_code == 202, started.text
    job = await finished_job(client, started.headers["location"])
    assert job["status"] == "succeeded", job
    assert job["result"] == await results(client, created["id"], "tbr")


# --- What every geo result gets (main's post-processing), cell by cell ---------------------------------


async def test_excluded_markets_are_in_no_cells_controls_and_each_cell_says_so(client: Client) -> None:
    created = await create(client, exclude_from_controls=["reno"])
    answer = await results(client, created["id"], "tbr")
    assert "reno" not in answer["control_markets"] and len(answer["control_markets"]) == 35
    for cell in answer["cells"]:
        assert cell["results"]["excluded_from_controls"] == ["reno"]


async def test_a_cell_result_has_no_backtest(client: Client) -> None:
    answer = await results(client, (await create(client))["id"], "tbr")
    assert [cell["results"]["backtest"] for cell in answer["cells"]] == [None, None]


async def test_missing_days_in_a_control_market_are_said_once_in_the_multi_cell_warnings(client: Client) -> None:
    gappy = "".join(line for line in multi_cell_csv().splitlines(keepends=True) if line != "reno,3432,2021-02-01\n")
    assert len(gappy) < len(multi_cell_csv())  # the row was there
    uploaded = await client.post("/v1/geo/datasets", content=gappy, headers=CSV)
    assert uploaded.status_code == 201, uploaded.text
    created = await client.post("/v1/experiments", json=body(uploaded.json()["id"]))
    assert created.status_code == 201, created.text
    answer = await results(client, created.json()["id"], "tbr")
    assert "reno" not in answer["control_markets"]
    assert [w for w in answer["warnings"] if "missing=drop_market" in w and "reno" in w]
    for cell in answer["cells"]:
        assert not [w for w in cell["results"]["warnings"] if "missing=drop_market" in w]


GO_DARK_CHANGE = {"chicago": -12_000.0, "cincinnati": -8_000.0, "honolulu": -4_000.0, "indianapolis": -6_000.0}


async def test_a_go_dark_multi_cell_test_costs_each_cell_its_markets_spend_cut(client: Client) -> None:
    """Each cell's cost is the sum of `spend_change` over its markets; its iROAS is over that negative cost,
    and the difference of the cells' iROAS is that of the same test with positive spends, negated."""
    cells = [{"name": "social", "treatment_markets": SOCIAL}, {"name": "search", "treatment_markets": SEARCH}]
    dark = await create(client, cells=cells, test_type="go-dark", spend_change=GO_DARK_CHANGE)
    answer = await results(client, dark["id"], "tbr")
    social, search = answer["cells"]
    assert (social["spend"], search["spend"]) == (20_000.0, 10_000.0)
    for cell in (social, search):
        result = cell["results"]
        assert (result["test_type"], result["roi_kind"]) == ("go-dark", "average")
        assert result["iroas"]["estimate"] == pytest.approx(-result["incremental"]["estimate"] / cell["spend"])
    positive = await create(client)  # the same cells, spending 20,000 and 10,000
    (plain,) = (await results(client, positive["id"], "tbr"))["comparisons"]
    (signed,) = answer["comparisons"]
    assert signed["difference"]["estimate"] == pytest.approx(
        social["results"]["iroas"]["estimate"] - search["results"]["iroas"]["estimate"], rel=1e-9
    )
    assert signed["difference"]["estimate"] == pytest.approx(-plain["difference"]["estimate"], rel=1e-9)
    assert signed["difference"]["ci_low"] == pytest.approx(-plain["difference"]["ci_high"], rel=1e-9)
    assert signed["difference"]["ci_high"] == pytest.approx(-plain["difference"]["ci_low"], rel=1e-9)
    assert signed["p_value"] == pytest.approx(plain["p_value"])


async def test_a_cells_spend_beside_spend_change_is_400_naming_the_cell(client: Client) -> None:
    response = await client.post(
        "/v1/experiments",
        json=body(await upload_dataset(client, multi_cell_csv()), test_type="go-dark", spend_change=GO_DARK_CHANGE),
    )
    assert response.status_code == 400, response.text
    assert response.json()["invalid_params"][0]["name"] == "cells[0].spend"


async def test_each_cell_gets_its_own_cooldown_effect(client: Client) -> None:
    created = await create(
        client,
        test_period={"start": "2021-04-01", "end": "2021-04-08"},
        cooldown_period={"start": "2021-04-09", "end": "2021-04-15"},
    )
    answer = await results(client, created["id"], "tbr")
    for cell in answer["cells"]:
        cooldown = cell["results"]["cooldown"]
        assert (cooldown["start"], cooldown["end"], cooldown["n_periods"]) == ("2021-04-09", "2021-04-15", 7)
        assert cooldown["total_incremental"] == pytest.approx(
            cell["results"]["incremental"]["estimate"] + cooldown["incremental"]["estimate"]
        )
