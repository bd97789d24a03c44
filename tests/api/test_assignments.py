"""The assignments resource: deterministic, stored-once arms per channel; bulk CSV; summary and SRM."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient
from scipy import stats as scipy_stats

from api.app import create_app
from api.settings import Settings
from stats.assignment_hash import assign_arms, sha256_assign_arms

Client = AsyncTestClient[Litestar]
SALT = "pinned-salt"
CHANNELS: list[dict[str, Any]] = [
    {"name": "meta", "holdout_fraction": 0.1},
    {"name": "search", "holdout_fraction": 0.3},
]


async def create_experiment(client: Client, **overrides: Any) -> str:
    body: dict[str, Any] = {
        "kind": "holdout",
        "name": "Assignments",
        "metric": {"kind": "proportion", "baseline": 0.05},
        "channels": CHANNELS,
        "salt": SALT,
    }
    body.update(overrides)
    response = await client.post("/v1/experiments", json=body)
    assert response.status_code == 201, response.text
    experiment_id: str = response.json()["id"]
    return experiment_id


def expected_arms(unit: str, salt: str = SALT) -> dict[str, str]:
    return {
        c["name"]: ("holdout" if sha256_assign_arms(salt, c["name"], c["holdout_fraction"], [unit])[0] else "treatment")
        for c in CHANNELS
    }


def csv_body(units: list[str]) -> bytes:
    return ("unit\n" + "\n".join(units) + "\n").encode()


async def post_csv(client: Client, experiment_id: str, body: bytes) -> Any:
    return await client.post(
        f"/v1/experiments/{experiment_id}/assignments", content=body, headers={"Content-Type": "text/csv"}
    )


async def test_each_unit_gets_its_hashed_arm_in_every_channel(client: Client) -> None:
    experiment_id = await create_experiment(client)
    units = [f"u{i}" for i in range(50)]
    response = await client.post(f"/v1/experiments/{experiment_id}/assignments", json={"units": units})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [a["unit"] for a in body["assignments"]] == units
    for assignment in body["assignments"]:
        assert assignment["arms"] == expected_arms(assignment["unit"])
        assert assignment["assigned_at"]


async def test_a_repeated_call_returns_the_stored_arms_and_first_timestamp(client: Client) -> None:
    experiment_id = await create_experiment(client)
    url = f"/v1/experiments/{experiment_id}/assignments"
    first = (await client.post(url, json={"units": ["a", "b"]})).json()["assignments"]
    second = (await client.post(url, json={"units": ["b", "a", "c"]})).json()["assignments"]
    by_unit = {a["unit"]: a for a in second}
    for assignment in first:
        assert by_unit[assignment["unit"]] == assignment
    assert [a["unit"] for a in second] == ["b", "a", "c"]


async def test_a_unit_repeated_within_a_request_is_answered_once(client: Client) -> None:
    experiment_id = await create_experiment(client)
    response = await client.post(f"/v1/experiments/{experiment_id}/assignments", json={"units": ["x", "y", "x"]})
    assert [a["unit"] for a in response.json()["assignments"]] == ["x", "y"]


async def test_two_app_instances_assign_identically(client: Client, settings: Settings) -> None:
    first_experiment = await create_experiment(client)
    units = [f"user-{i}" for i in range(200)]
    first = (await client.post(f"/v1/experiments/{first_experiment}/assignments", json={"units": units})).json()
    async with AsyncTestClient(app=create_app(settings)) as other:
        other.headers["Authorization"] = client.headers["Authorization"]
        # A second experiment with the same salt and channels: nothing stored yet, the arms are recomputed.
        second_experiment = await create_experiment(other)
        second = (await other.post(f"/v1/experiments/{second_experiment}/assignments", json={"units": units})).json()
    assert [a["arms"] for a in first["assignments"]] == [a["arms"] for a in second["assignments"]]


async def test_one_unit_reads_back_its_stored_arms_even_with_a_slash_in_its_id(client: Client) -> None:
    experiment_id = await create_experiment(client)
    posted = (await client.post(f"/v1/experiments/{experiment_id}/assignments", json={"units": ["u 1/é"]})).json()
    response = await client.get(f"/v1/experiments/{experiment_id}/assignments/u%201%2F%C3%A9")
    assert response.status_code == 200
    assert response.json() == posted["assignments"][0]


async def test_a_unit_never_assigned_is_404_problem_json(client: Client) -> None:
    experiment_id = await create_experiment(client)
    response = await client.get(f"/v1/experiments/{experiment_id}/assignments/nobody")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_assign_on_read_stores_the_unit(client: Client) -> None:
    experiment_id = await create_experiment(client)
    assigned = await client.get(f"/v1/experiments/{experiment_id}/assignments/newcomer?assign=true")
    assert assigned.status_code == 200
    assert assigned.json()["arms"] == expected_arms("newcomer")
    again = await client.get(f"/v1/experiments/{experiment_id}/assignments/newcomer")
    assert again.json() == assigned.json()


async def test_summary_is_a_route_not_a_unit_id(client: Client) -> None:
    experiment_id = await create_experiment(client)
    await client.post(f"/v1/experiments/{experiment_id}/assignments", json={"units": ["summary", "u2"]})
    response = await client.get(f"/v1/experiments/{experiment_id}/assignments/summary")
    assert response.status_code == 200
    body = response.json()
    assert [c["channel"] for c in body["channels"]] == ["meta", "search"]
    assert body["channels"][0]["units"] == 2


async def test_csv_bulk_upload_of_20k_units_is_counted_in_the_summary(client: Client) -> None:
    experiment_id = await create_experiment(client)
    units = [f"user-{i}" for i in range(20_000)]
    response = await post_csv(client, experiment_id, csv_body(units))
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["units_received"] == 20_000
    assert result["units_assigned"] == 20_000
    assert result["rows_inserted"] == 40_000
    summary = (await client.get(f"/v1/experiments/{experiment_id}/assignments/summary")).json()
    for channel in summary["channels"]:
        fraction = channel["holdout_fraction"]
        held_out = int(sha256_assign_arms(SALT, channel["channel"], fraction, units).sum())
        assert channel["units"] == 20_000
        assert channel["holdout"]["observed"] == held_out
        assert channel["treatment"]["observed"] == 20_000 - held_out
        assert channel["holdout"]["expected"] == 20_000 * fraction
        reference = scipy_stats.chisquare([20_000 - held_out, held_out], [20_000 * (1 - fraction), 20_000 * fraction])
        assert abs(channel["srm_p_value"] - reference.pvalue) < 1e-12
        assert abs(channel["srm_statistic"] - reference.statistic) < 1e-9
        assert channel["srm_flagged"] is False


async def test_csv_units_match_json_units_and_duplicates_are_skipped(client: Client) -> None:
    experiment_id = await create_experiment(client)
    json_arms = (await client.post(f"/v1/experiments/{experiment_id}/assignments", json={"units": ["a", "b"]})).json()[
        "assignments"
    ]
    response = await post_csv(client, experiment_id, b'unit\r\na\r\nc\r\nc\r\n"d,1"\r\nb')
    assert response.status_code == 200, response.text
    assert response.json()["units_received"] == 5
    assert response.json()["units_assigned"] == 2
    assert response.json()["units_skipped"] == 3
    for unit in ("c", "d,1"):
        fetched = await client.post(f"/v1/experiments/{experiment_id}/assignments", json={"units": [unit]})
        assert fetched.json()["assignments"][0]["arms"] == expected_arms(unit)
    again = (await client.post(f"/v1/experiments/{experiment_id}/assignments", json={"units": ["a", "b"]})).json()
    assert again["assignments"] == json_arms


async def test_csv_units_with_tabs_backslashes_and_crlf_are_stored_as_sent(client: Client, database_url: str) -> None:
    experiment_id = await create_experiment(client)
    units = ["tab\there", "back\\slash", "\\N", "\\.", "trailing\\", "é\tß", "plain"]
    response = await post_csv(client, experiment_id, ("unit\r\n" + "\r\n".join(units) + "\r\n").encode())
    assert response.status_code == 200, response.text
    assert response.json()["units_assigned"] == len(units)
    connection = await asyncpg.connect(database_url)
    try:
        stored = await connection.fetch(
            "SELECT unit, array_agg(arm ORDER BY position) AS arms FROM assignments WHERE experiment_id = $1 "
            "GROUP BY unit",
            uuid.UUID(experiment_id),
        )
    finally:
        await connection.close()
    names = [c["name"] for c in CHANNELS]
    assert {
        r["unit"]: {n: ("holdout" if a else "treatment") for n, a in zip(names, r["arms"], strict=True)} for r in stored
    } == {unit: expected_arms(unit) for unit in units}


async def test_a_unit_repeated_in_a_later_csv_batch_is_skipped(client: Client) -> None:
    experiment_id = await create_experiment(client)
    units = [f"user-{i}" for i in range(50_000)] + ["user-1", "user-2", "late-new"]
    result = (await post_csv(client, experiment_id, csv_body(units))).json()
    assert (result["units_received"], result["units_assigned"], result["units_skipped"]) == (50_003, 50_001, 2)
    late = await client.get(f"/v1/experiments/{experiment_id}/assignments/late-new")
    assert late.json()["arms"] == expected_arms("late-new")


async def test_uploading_the_same_csv_twice_stores_nothing_new(client: Client) -> None:
    experiment_id = await create_experiment(client)
    body = csv_body([f"user-{i}" for i in range(500)])
    first = (await post_csv(client, experiment_id, body)).json()
    second = (await post_csv(client, experiment_id, body)).json()
    assert first["units_assigned"] == 500
    assert (second["units_assigned"], second["units_skipped"], second["rows_inserted"]) == (0, 500, 0)


async def test_csv_export_streams_every_stored_unit(client: Client) -> None:
    experiment_id = await create_experiment(client)
    units = [f"user-{i}" for i in range(1234)] + ["has,comma", 'has"quote']
    await post_csv(client, experiment_id, csv_body(units[:1234]))
    await client.post(f"/v1/experiments/{experiment_id}/assignments", json={"units": units[1234:]})
    response = await client.get(f"/v1/experiments/{experiment_id}/assignments?format=csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == len(units)
    assert sorted(r["unit"] for r in rows) == sorted(units)
    for row in rows[:50] + rows[-2:]:
        assert {"meta": row["meta"], "search": row["search"]} == expected_arms(row["unit"])


async def test_accept_text_csv_on_the_listing_answers_the_csv_export(client: Client) -> None:
    experiment_id = await create_experiment(client)
    units = ["u1", "u2", "u3"]
    await client.post(f"/v1/experiments/{experiment_id}/assignments", json={"units": units})
    path = f"/v1/experiments/{experiment_id}/assignments"
    negotiated = await client.get(path, headers={"Accept": "text/csv"})
    assert negotiated.status_code == 200
    assert negotiated.headers["content-type"].startswith("text/csv")
    assert negotiated.text == (await client.get(path, params={"format": "csv"})).text
    assert sorted(row["unit"] for row in csv.DictReader(io.StringIO(negotiated.text))) == units
    preferred = await client.get(path, headers={"Accept": "application/json;q=0.5, text/csv"})
    assert preferred.headers["content-type"].startswith("text/csv")
    explicit = await client.get(path, params={"format": "json"}, headers={"Accept": "text/csv"})
    assert explicit.headers["content-type"].startswith("application/json")
    assert (await client.get(path)).json()["items"][0]["unit"] == "u1"


async def test_json_listing_pages_through_units_in_order(client: Client) -> None:
    experiment_id = await create_experiment(client)
    units = [f"u{i:03d}" for i in range(25)]
    await client.post(f"/v1/experiments/{experiment_id}/assignments", json={"units": units})
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"/v1/experiments/{experiment_id}/assignments", params=params)).json()
        seen += [item["unit"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == units


async def test_an_empty_unit_id_is_400_naming_its_index_and_nothing_is_stored(client: Client) -> None:
    experiment_id = await create_experiment(client)
    response = await client.post(f"/v1/experiments/{experiment_id}/assignments", json={"units": ["a", "b", "c", ""]})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["invalid_params"][0]["name"] == "units[3]"
    assert (await client.get(f"/v1/experiments/{experiment_id}/assignments/a")).status_code == 404


async def test_a_unit_id_over_256_characters_is_400_naming_its_index(client: Client) -> None:
    experiment_id = await create_experiment(client)
    response = await client.post(f"/v1/experiments/{experiment_id}/assignments", json={"units": ["ok", "é" * 257]})
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "units[1]"


async def test_a_unit_id_of_256_multibyte_characters_is_assigned_as_the_document_allows(client: Client) -> None:
    # schemathesis' positive_data_acceptance: maxLength counts characters, and 256 of "😀" are 1,024 bytes
    experiment_id = await create_experiment(client)
    unit = "😀" * 256
    response = await client.post(f"/v1/experiments/{experiment_id}/assignments", json={"units": [unit]})
    assert response.status_code == 200
    assert response.json()["assignments"][0]["unit"] == unit


async def test_a_unit_id_of_256_multibyte_characters_is_assigned_from_csv(client: Client) -> None:
    experiment_id = await create_experiment(client)
    unit = "😀" * 255 + ","
    response = await post_csv(client, experiment_id, f'unit\n"{unit}"\n'.encode())
    assert response.status_code == 200, response.text
    assert (await client.get(f"/v1/experiments/{experiment_id}/assignments/{unit}")).status_code == 200


async def test_a_unit_id_with_a_line_feed_is_400_as_its_pattern_says(client: Client) -> None:
    experiment_id = await create_experiment(client)
    response = await client.post(f"/v1/experiments/{experiment_id}/assignments", json={"units": ["a\nb"]})
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "units[0]"


async def test_more_than_10000_units_in_json_is_400(client: Client) -> None:
    experiment_id = await create_experiment(client)
    response = await client.post(
        f"/v1/experiments/{experiment_id}/assignments", json={"units": [str(i) for i in range(10_001)]}
    )
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "units"


async def test_a_bad_csv_line_is_400_naming_the_line_and_nothing_is_stored(client: Client) -> None:
    experiment_id = await create_experiment(client)
    lines = [f"user-{i}" for i in range(15)] + [""] + [f"user-{i}" for i in range(15, 20)]
    response = await post_csv(client, experiment_id, csv_body(lines))
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "line 17"
    summary = (await client.get(f"/v1/experiments/{experiment_id}/assignments/summary")).json()
    assert summary["channels"][0]["units"] == 0
    assert summary["channels"][0]["srm_p_value"] is None


async def test_a_bad_line_in_a_late_csv_batch_rolls_back_the_earlier_batches(client: Client) -> None:
    experiment_id = await create_experiment(client)
    lines = [f"user-{i}" for i in range(60_000)] + ["x" * 257]
    response = await post_csv(client, experiment_id, csv_body(lines))
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "line 60002"
    assert (await client.get(f"/v1/experiments/{experiment_id}/assignments/user-1")).status_code == 404


async def test_a_csv_without_the_unit_header_is_400_naming_line_1(client: Client) -> None:
    experiment_id = await create_experiment(client)
    response = await post_csv(client, experiment_id, b"u1\nu2\n")
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "line 1"


async def test_a_csv_line_with_two_columns_is_400(client: Client) -> None:
    experiment_id = await create_experiment(client)
    response = await post_csv(client, experiment_id, b"unit\nu1\nu2,extra\n")
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "line 3"


async def test_invalid_utf8_in_csv_is_400(client: Client) -> None:
    experiment_id = await create_experiment(client)
    response = await post_csv(client, experiment_id, b"unit\nu1\n\xff\xfe\n")
    assert response.status_code == 400
    assert response.json()["invalid_params"][0]["name"] == "line 3"


async def test_another_content_type_is_415(client: Client) -> None:
    experiment_id = await create_experiment(client)
    response = await client.post(
        f"/v1/experiments/{experiment_id}/assignments", content=b"u1", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415


async def test_an_unknown_experiment_is_404_for_every_operation(client: Client) -> None:
    base = "/v1/experiments/00000000-0000-0000-0000-000000000000/assignments"
    assert (await client.post(base, json={"units": ["u1"]})).status_code == 404
    assert (await post_csv(client, "00000000-0000-0000-0000-000000000000", b"unit\nu1\n")).status_code == 404
    assert (await client.get(f"{base}/summary")).status_code == 404
    assert (await client.get(f"{base}/u1")).status_code == 404
    assert (await client.get(f"{base}?format=csv")).status_code == 404


async def test_a_stopped_experiment_refuses_new_assignments_but_serves_stored_ones(client: Client) -> None:
    experiment_id = await create_experiment(client)
    await client.post(f"/v1/experiments/{experiment_id}/assignments", json={"units": ["kept"]})
    for status in ("running", "stopped"):
        assert (await client.patch(f"/v1/experiments/{experiment_id}", json={"status": status})).status_code == 200
    refused = await client.post(f"/v1/experiments/{experiment_id}/assignments", json={"units": ["late"]})
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert (await post_csv(client, experiment_id, b"unit\nlate\n")).status_code == 409
    assert (await client.get(f"/v1/experiments/{experiment_id}/assignments/late?assign=true")).status_code == 409
    assert (await client.get(f"/v1/experiments/{experiment_id}/assignments/kept")).status_code == 200


async def test_a_geo_experiment_has_no_unit_assignments(client: Client, database_url: str) -> None:
    # Stored directly: creating a geo experiment through the API needs a geo dataset, beside the point here.
    experiment_id = uuid.uuid4()
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            "INSERT INTO experiments (id, kind, name, design, workspace)"
            " VALUES ($1, 'geo', 'TV', '{}'::jsonb, 'default')",
            experiment_id,
        )
    finally:
        await connection.close()
    refused = await client.post(f"/v1/experiments/{experiment_id}/assignments", json={"units": ["u1"]})
    assert refused.status_code == 409
    assert (await client.get(f"/v1/experiments/{experiment_id}/assignments/summary")).status_code == 409


async def test_the_csv_export_is_documented_as_text_csv(client: Client) -> None:
    # schemathesis' content_type_conformance: format=csv answered text/csv, the document said JSON only
    document = (await client.get("/schema/openapi.json")).json()
    ok = document["paths"]["/v1/experiments/{experiment_id}/assignments"]["get"]["responses"]["200"]["content"]
    assert set(ok) == {"application/json", "text/csv"}


async def test_an_experiment_on_the_blake2b_rule_assigns_by_blake2b(client: Client) -> None:
    """Experiments made before the sha256 rule keep theirs; a new one may still choose it."""
    experiment_id = await create_experiment(client, assignment_rule="blake2b")
    units = [f"user-{i}" for i in range(200)]
    response = await client.post(f"/v1/experiments/{experiment_id}/assignments", json={"units": units})
    assert response.status_code == 200, response.text
    arms = {a["unit"]: a["arms"]["meta"] for a in response.json()["assignments"]}
    fraction = next(c["holdout_fraction"] for c in CHANNELS if c["name"] == "meta")
    expected = assign_arms(SALT, "meta", fraction, units)
    assert [arms[u] for u in units] == ["holdout" if held else "treatment" for held in expected]
    assert expected.tolist() != sha256_assign_arms(SALT, "meta", fraction, units).tolist()
