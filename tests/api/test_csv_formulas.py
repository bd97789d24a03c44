"""CSV exports neutralize spreadsheet formulas as OWASP recommends (issue 22: ``=1+1`` was written verbatim).

A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'``; other
text and every number are written as they are.
"""

from __future__ import annotations

import csv
import io

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.http.csv_cells import spreadsheet_safe
from tests.api.helpers import holdout_design
from tests.api.test_calibration import holdout_experiment

Client = AsyncTestClient[Litestar]
HOLDOUT = holdout_design("formulas")
HOSTILE = ["=1+1", "+1+1", "-1+1", "@SUM(A1:A9)", "\tcmd", "\rcmd", '=HYPERLINK("http://x","y")']
HARMLESS = ["u1", "1-2", "a=b", "'quoted", " =lead-space", "ü@x"]


@pytest.mark.parametrize("value", HOSTILE)
def test_text_a_spreadsheet_would_evaluate_gets_a_leading_quote(value: str) -> None:
    assert spreadsheet_safe(value) == "'" + value


@pytest.mark.parametrize("value", [*HARMLESS, -0.03, -5, 1e-9, None])
def test_other_text_and_every_number_is_left_alone(value: object) -> None:
    assert spreadsheet_safe(value) == value


async def test_the_assignments_export_prefixes_formula_like_unit_ids(client: Client) -> None:
    experiment_id = (await client.post("/v1/experiments", json=HOLDOUT)).json()["id"]
    hostile = [unit for unit in HOSTILE if "\r" not in unit]  # a unit id may not hold a line break
    units = hostile + HARMLESS
    assigned = await client.post(f"/v1/experiments/{experiment_id}/assignments", json={"units": units})
    assert assigned.status_code == 200, assigned.text
    exported = await client.get(f"/v1/experiments/{experiment_id}/assignments", params={"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(exported.text, newline="")))
    written = {row["unit"] for row in rows}
    assert written == {"'" + unit for unit in hostile} | set(HARMLESS)


async def test_the_calibration_csv_prefixes_a_formula_like_kpi_name_and_keeps_negative_numbers(
    client: Client,
    connection: asyncpg.Connection,
) -> None:
    experiment_id = await holdout_experiment(client, connection)
    response = await client.get(
        f"/v1/experiments/{experiment_id}/calibration",
        params={"format": "robyn", "kpi_name": "=1+1"},
        headers={"Accept": "text/csv"},
    )
    assert response.status_code == 200, response.text
    (row,) = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert row["metric"] == "'=1+1"
    assert row["channel"] == "meta"
    json_row = (
        await client.get(f"/v1/experiments/{experiment_id}/calibration", params={"format": "robyn", "kpi_name": "=1+1"})
    ).json()["calibration_input"][0]
    assert json_row["metric"] == "=1+1"  # JSON is not a spreadsheet: the value as given
    assert float(row["liftAbs"]) == json_row["liftAbs"]
