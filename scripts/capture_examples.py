"""Capture the response examples of the OpenAPI document from the running service.

Run from the repository root: ``make examples``, or
``DATABASE_URL=postgresql://… .venv/bin/python -m scripts.capture_examples`` (without ``DATABASE_URL``
the embedded server is used). Creates a throwaway database, sends each operation its documented request
example (the GeoLift walkthrough panel for the geo operations), and writes every answer to
``api/examples/<operationId>.json``, lists longer than ``MAX_LIST`` cut to their first items. Then run
``make openapi`` to fold them into the committed document.

A development script, not part of ``api``: it needs ``testkit`` and the panels in ``tests/data``, which
are not shipped.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.openapi.spec import Example
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.auth.keys import Scope
from api.db.embedded import start_embedded_postgres
from api.experiments.controller import CREATE_EXAMPLES, IMPORTED_HOLDOUT_EXAMPLE
from api.geo.controller import APPEND_EXAMPLES
from api.geo_design.controller import FROM_DESIGN_EXAMPLES, SELECTION_EXAMPLES
from api.geo_design.controller import POWER_EXAMPLES as GEO_POWER_EXAMPLES
from api.geo_pairs.controller import DESIGN_EXAMPLES as PAIR_DESIGN_EXAMPLES
from api.geo_pairs.controller import FROM_DESIGN_EXAMPLES as FROM_PAIR_DESIGN_EXAMPLES
from api.jobs.worker import run_worker
from api.observations.controller import EXAMPLES as OBSERVATION_EXAMPLES
from api.openapi.examples import EXAMPLES_DIR
from api.outcomes.controller import SPEND_EXAMPLES
from api.power.controller import CURVE_EXAMPLES, POWER_EXAMPLES
from api.settings import settings_from_environment
from api.worker_tasks import task_registry
from testkit.database import make_key, throwaway_database
from testkit.jobs import finished_job
from testkit.panels import geolift_csv, geolift_design, pair_design_csv, pretest_csv

MAX_LIST = 3
Client = AsyncTestClient[Litestar]


def example_value(example: Example) -> dict[str, Any]:
    value: dict[str, Any] = dict(example.value or {})
    return value


def shorten(value: Any) -> Any:
    """``value`` with every list cut to ``MAX_LIST`` items (dictionaries kept whole)."""
    if isinstance(value, list):
        return [shorten(item) for item in value[:MAX_LIST]]
    if isinstance(value, dict):
        return {key: shorten(item) for key, item in value.items()}
    return value


class Recorder:
    def __init__(self) -> None:
        self.examples: dict[str, dict[str, dict[str, Any]]] = {}

    def keep(self, operation_id: str, response: Any, summary: str) -> Any:
        assert response.status_code < 300, (operation_id, response.status_code, response.text)
        body = response.json()
        self.examples.setdefault(operation_id, {})[str(response.status_code)] = {
            "summary": summary,
            "value": shorten(body),
        }
        return body

    def write(self) -> None:
        for operation_id, by_status in self.examples.items():
            path = EXAMPLES_DIR / f"{operation_id}.json"
            path.write_text(json.dumps(by_status, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


async def capture_matched_pairs(client: Client, recorder: Recorder) -> None:
    """A matched-pair design on trimmed_match's example, and a paired experiment made of it."""
    keep = recorder.keep
    upload = await client.post("/v1/geo/datasets", content=pair_design_csv(), headers={"Content-Type": "text/csv"})
    request = {**example_value(PAIR_DESIGN_EXAMPLES[0]), "dataset_id": upload.json()["id"]}
    queued = await client.post("/v1/geo/matched-pairs", json=request)
    keep("CreateMatchedPairDesign", queued, "Queued")
    await finished_job(client, queued.headers["location"])
    again = await client.post("/v1/geo/matched-pairs", json=request)
    keep("CreateMatchedPairDesign", again, "The same design again, once finished: its job, with its age")
    path = f"/v1/geo/matched-pairs/{queued.json()['id']}/experiments"
    once = {"Idempotency-Key": "pairs-60"}
    body = example_value(FROM_PAIR_DESIGN_EXAMPLES[0])
    keep("CreateExperimentFromPairDesign", await client.post(path, json=body, headers=once), "Created")
    replay = await client.post(path, json=body, headers=once)
    keep("CreateExperimentFromPairDesign", replay, "The same request again with the same Idempotency-Key")


async def capture_power(client: Client, recorder: Recorder) -> None:
    """Health, and a holdout power calculation and its curve."""
    keep = recorder.keep
    keep("GetHealth", await client.get("/health"), "Up: database reachable, one worker alive, nothing queued")
    power = await client.post("/v1/power/holdout", json=example_value(POWER_EXAMPLES[0]))
    keep("GetHoldoutPower", power, "Sample size")
    curve = await client.post("/v1/power/holdout/curve", json=example_value(CURVE_EXAMPLES[0]))
    keep("GetHoldoutPowerCurve", curve, "Power curve")


async def capture_holdout(client: Client, recorder: Recorder) -> tuple[dict[str, Any], list[str]]:
    """A holdout experiment with assigned units, their outcomes and spend; (its request, its units)."""
    keep = recorder.keep
    design = {**example_value(CREATE_EXAMPLES[0]), "salt": "example-salt"}
    once = {"Idempotency-Key": "q1-holdout-2026"}
    experiment = keep("CreateExperiment", await client.post("/v1/experiments", json=design, headers=once), "Created")
    replayed = await client.post("/v1/experiments", json=design, headers=once)
    keep("CreateExperiment", replayed, "The same request again with the same Idempotency-Key: the stored experiment")
    experiment_id = experiment["id"]
    path = f"/v1/experiments/{experiment_id}"
    keep("GetExperiment", await client.get(path), "A holdout experiment")
    keep("UpdateExperiment", await client.patch(path, json={"status": "running"}), "Started")
    keep("ListExperiments", await client.get("/v1/experiments", params={"limit": 2}), "First page")

    units = [f"user-{i}" for i in range(2000)]
    keep(
        "CreateAssignments",
        await client.post(f"{path}/assignments", json={"units": units}),
        "Each unit's arm in every channel",
    )
    keep("GetAssignment", await client.get(f"{path}/assignments/user-1"), "One unit")
    keep("ListAssignments", await client.get(f"{path}/assignments", params={"limit": 3}), "A page of units")
    keep("GetAssignmentSummary", await client.get(f"{path}/assignments/summary"), "Counts and SRM")
    keep("GetAssignmentRule", await client.get(f"{path}/assignment-rule"), "The sha256 rule and its warehouse SQL")
    outcomes = [{"unit": unit, "value": int(i % 17 == 0 or i % 23 == 0)} for i, unit in enumerate(units)]
    keep("CreateOutcomes", await client.post(f"{path}/outcomes", json={"outcomes": outcomes}), "Stored")
    spend = example_value(SPEND_EXAMPLES[0])
    keep("PutChannelSpend", await client.put(f"{path}/spend", json=spend), "Spend per channel")
    return design, units


async def capture_observations(client: Client, recorder: Recorder) -> None:
    """A holdout experiment read from aggregate observations: results, events and Robyn's export."""
    keep = recorder.keep
    observed = await client.post("/v1/experiments", json={**example_value(CREATE_EXAMPLES[0]), "name": "Aggregates"})
    observed_path = f"/v1/experiments/{observed.json()['id']}"
    meta = example_value(OBSERVATION_EXAMPLES[0])["observations"]
    search = [
        {"channel": "search", "arm": "treatment", "units": 95000, "conversions": 4840, "spend": 12000},
        {"channel": "search", "arm": "holdout", "units": 5000, "conversions": 251},
    ]
    body = {"observations": [*meta, *search]}
    keep("CreateObservations", await client.post(f"{observed_path}/observations", json=body), "Stored")
    keep("GetExperimentResults", await client.get(f"{observed_path}/results"), "Lift per channel")
    events = await client.get(f"{observed_path}/events")
    keep("ListExperimentEvents", events, "Created, observations stored, results read: by whom and when")
    await client.patch(observed_path, json={"status": "running"})
    await client.patch(observed_path, json={"status": "stopped"})
    robyn = await client.get(f"{observed_path}/calibration", params={"format": "robyn", "kpi_name": "conversions"})
    keep("GetCalibrationExport", robyn, "Robyn's calibration_input rows of a stopped holdout test")


async def capture_geo_datasets(client: Client, recorder: Recorder) -> tuple[dict[str, Any], dict[str, Any]]:
    """GeoLift's walkthrough panel uploaded, read and appended to, and a pre-test history; (panel, history)."""
    keep = recorder.keep
    csv_type = {"Content-Type": "text/csv"}
    dataset = keep(
        "CreateGeoDataset",
        await client.post("/v1/geo/datasets", content=geolift_csv(), headers=csv_type),
        "GeoLift's walkthrough panel",
    )
    dataset_path = f"/v1/geo/datasets/{dataset['id']}"
    keep("GetGeoDataset", await client.get(dataset_path), "A stored panel")
    keep("GetGeoDatasetSeries", await client.get(f"{dataset_path}/series", params={"geo": "chicago"}), "One market")
    appended = await client.post(f"{dataset_path}/rows", json=example_value(APPEND_EXAMPLES[0]))
    keep("AppendGeoDatasetRows", appended, "A day appended: version 2")
    keep("ListGeoDatasetVersions", await client.get(f"{dataset_path}/versions"), "The upload and one append")
    history = (await client.post("/v1/geo/datasets", content=pretest_csv(), headers=csv_type)).json()
    keep("ListGeoDatasets", await client.get("/v1/geo/datasets"), "Newest first")
    return dataset, history


async def capture_geo_design(client: Client, recorder: Recorder, history: dict[str, Any]) -> None:
    """Geo power and a market selection on ``history``, an experiment made of it, and a cancelled job."""
    keep = recorder.keep
    geo_power = {**example_value(GEO_POWER_EXAMPLES[0]), "dataset_id": history["id"]}
    keep("GetGeoPower", await client.post("/v1/geo/power", json=geo_power), "Power curves for 10 and 15 days")
    # Another question (the first is answered now, and would be read back): 15 days only.
    queued_power = await client.post(
        "/v1/geo/power", json={**geo_power, "durations": [15]}, headers={"Prefer": "respond-async"}
    )
    keep("GetGeoPower", queued_power, "Asked for a job (Prefer: respond-async)")
    await finished_job(client, queued_power.headers["location"])
    selection = {**example_value(SELECTION_EXAMPLES[0]), "dataset_id": history["id"]}
    selected = await client.post("/v1/geo/market-selection", json=selection)
    keep("CreateMarketSelection", selected, "Queued")
    await finished_job(client, selected.headers["location"])
    done = await client.get(selected.headers["location"])
    keep("GetJob", done, "A finished market selection on GeoLift's walkthrough")
    again = await client.post("/v1/geo/market-selection", json=selection)
    keep("CreateMarketSelection", again, "The same selection again, once finished: its job, with its age")
    from_design = example_value(FROM_DESIGN_EXAMPLES[0])
    design_path = f"/v1/geo/market-selection/{selected.json()['id']}/experiments"
    once_more = {"Idempotency-Key": "design-rank-1"}
    keep("CreateExperimentFromDesign", await client.post(design_path, json=from_design, headers=once_more), "Created")
    replay = await client.post(design_path, json=from_design, headers=once_more)
    keep("CreateExperimentFromDesign", replay, "The same request again with the same Idempotency-Key")
    slow = await client.post("/v1/geo/market-selection", json={**selection, "durations": [10, 15, 20]})
    keep("CancelJob", await client.delete(slow.headers["location"]), "Cancelled before a worker took it")


async def capture_geo_results(client: Client, recorder: Recorder, dataset: dict[str, Any]) -> None:
    """A geo experiment on ``dataset`` whose results and calibration export are queued as jobs."""
    keep = recorder.keep
    geo_id = (await client.post("/v1/experiments", json=geolift_design(dataset["id"]))).json()["id"]
    started = await client.get(f"/v1/experiments/{geo_id}/results", headers={"Prefer": "respond-async"})
    keep("GetExperimentResults", started, "Queued for a worker: a job")
    await finished_job(client, started.headers["location"])
    calibration = f"/v1/experiments/{geo_id}/calibration"
    queued = await client.get(calibration, params={"format": "pymc-marketing"}, headers={"Prefer": "respond-async"})
    keep("GetCalibrationExport", queued, "Queued for a worker: a job whose result is the export")
    await finished_job(client, queued.headers["location"])


async def capture_listing_and_deletes(
    client: Client, recorder: Recorder, design: dict[str, Any], units: list[str], dataset: dict[str, Any]
) -> None:
    """The jobs list, an imported holdout, and deleting an experiment and the geo dataset."""
    keep = recorder.keep
    dataset_path = f"/v1/geo/datasets/{dataset['id']}"
    keep("ListJobs", await client.get("/v1/jobs", params={"kind": "geo_power"}), "Geo power jobs only")
    imported = {**example_value(IMPORTED_HOLDOUT_EXAMPLE), "salt": "example-salt"}
    keep("CreateExperiment", await client.post("/v1/experiments", json=imported), "A test registered after it ran")
    retired = (await client.post("/v1/experiments", json={**design, "name": "Retired test"})).json()["id"]
    await client.post(f"/v1/experiments/{retired}/assignments", json={"units": units[:100]})
    deleted = await client.delete(f"/v1/experiments/{retired}")
    keep("DeleteExperiment", deleted, "Deleted with its assignments")
    keep("DeleteGeoDataset", await client.delete(dataset_path), "Deleted; a draft experiment still names it")
    keep("ListGeoDatasetEvents", await client.get(f"{dataset_path}/events"), "Uploaded, then deleted: by whom and when")


async def capture(client: Client, recorder: Recorder) -> None:
    """Every operation's examples but the matched-pair ones, in the order they build on each other."""
    await capture_power(client, recorder)
    design, units = await capture_holdout(client, recorder)
    await capture_observations(client, recorder)
    dataset, history = await capture_geo_datasets(client, recorder)
    await capture_geo_design(client, recorder, history)
    await capture_geo_results(client, recorder, dataset)
    await capture_listing_and_deletes(client, recorder, design, units, dataset)


async def main() -> None:
    settings = settings_from_environment()
    server = settings.database_url or start_embedded_postgres(Path(tempfile.mkdtemp(prefix="counterfact-examples-")))
    async with throwaway_database(server, "counterfact_examples") as url:
        app = create_app(replace(settings, database_url=url, log_level="WARNING"))
        recorder = Recorder()
        stop = asyncio.Event()
        worker = asyncio.create_task(run_worker(replace(settings, database_url=url), task_registry(), stop))
        async with AsyncTestClient(app=app) as client:
            client.headers["Authorization"] = f"Bearer {await make_key(url, Scope.ADMIN, name='examples')}"
            await capture(client, recorder)
            await capture_matched_pairs(client, recorder)
        stop.set()
        await worker
        recorder.write()
        print(f"wrote {len(recorder.examples)} operations' examples to {EXAMPLES_DIR}")


if __name__ == "__main__":
    os.environ.setdefault("COUNTERFACT_LOG_LEVEL", "WARNING")
    asyncio.run(main())
