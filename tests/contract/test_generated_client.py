"""A Python client generated from the committed document works end to end against the live service.

``openapi-python-client`` writes the client (with ``openapi/client-config.yaml``, as the README shows);
the tests import it from a temporary directory and run a holdout test and a geo test through it. Every
answer must parse into its typed model: not ``None``, not a raw ``dict``, nothing left ``Unset`` that
the server sent, and nothing a typed model does not declare swept into its ``additional_properties``.
"""

from __future__ import annotations

import asyncio
import csv
import datetime
import importlib
import io
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from enum import Enum
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg
import attrs
import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.auth.keys import Scope
from api.auth.service import create_key
from api.settings import Settings
from api.workspaces.repository import create_workspace
from tests.api.helpers import create_geolift_experiment
from tests.conftest import DATA_DIR, app_in_thread

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "openapi" / "openapi.json"
CONFIG = ROOT / "openapi" / "client-config.yaml"
PACKAGE = "counterfact_client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The ``counterfact_client`` package, generated from the committed document and importable."""
    output = tmp_path_factory.mktemp("client") / "counterfact-client"
    command = ["generate", "--path", str(DOCUMENT), "--config", str(CONFIG), "--output-path", str(output)]
    completed = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", *command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "Warning" not in completed.stdout + completed.stderr, completed.stdout + completed.stderr
    sys.path.insert(0, str(output))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(output))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def module(name: str) -> Any:
    """A module of the generated package (``api.results.get_experiment_results``, ``models``, ...)."""
    return importlib.import_module(f"{PACKAGE}.{name}")


def api_client(base_url: str, test_client: AsyncTestClient[Litestar]) -> Any:
    """An authenticated generated client with the admin key the ``client`` fixture made."""
    token = test_client.headers["Authorization"].removeprefix("Bearer ")
    return module("client").AuthenticatedClient(base_url=base_url, token=token, raise_on_unexpected_status=True)


def same_json(sent: Any, read: Any) -> bool:
    """Whether the server's JSON and the client's ``to_dict()`` agree (date-times compared as instants)."""
    if isinstance(sent, dict) and isinstance(read, dict):
        return sent.keys() == read.keys() and all(same_json(sent[key], read[key]) for key in sent)
    if isinstance(sent, list) and isinstance(read, list):
        return len(sent) == len(read) and all(same_json(a, b) for a, b in zip(sent, read, strict=True))
    if isinstance(sent, str) and isinstance(read, str) and sent != read:
        try:
            return datetime.datetime.fromisoformat(sent) == datetime.datetime.fromisoformat(read)
        except ValueError:
            return False
    return bool(sent == read) and type(sent) is type(read)


def assert_typed(value: Any, path: str = "$") -> None:
    """Every object under ``value`` is a generated model: no plain dict, no ``Unset``, and a model with
    declared fields keeps nothing in ``additional_properties`` (free-form objects, the Vega-Lite charts,
    declare none)."""
    unset = module("types").Unset
    assert not isinstance(value, unset), f"{path} is Unset"
    assert not isinstance(value, dict), f"{path} is a raw dict: {value!r:.200}"
    if isinstance(value, list):
        for index, item in enumerate(value):
            assert_typed(item, f"{path}[{index}]")
    elif attrs.has(type(value)):
        declared = [field.name for field in attrs.fields(type(value)) if field.name != "additional_properties"]
        extra = getattr(value, "additional_properties", {})
        assert not (declared and extra), f"{path} ({type(value).__name__}) did not declare {sorted(extra)}"
        for name in declared:
            field_value = getattr(value, name)
            if not isinstance(field_value, unset):  # an optional field the server did not send
                assert_typed(field_value, f"{path}.{name}")
    else:
        assert value is None or isinstance(value, str | int | float | bool | Enum | uuid.UUID | datetime.date)


def parsed(response: Any, model: str, status: int) -> Any:
    """The typed body of a ``Response``, checked: its status, its model, fully typed and lossless."""
    assert response.status_code == status, response.content
    body = response.parsed
    assert type(body).__name__ == model, f"{type(body).__name__}: {response.content!r:.300}"
    assert_typed(body)
    assert same_json(json.loads(response.content), body.to_dict())
    return body


async def create_geolift_test(api: Any, dataset_id: Any) -> Any:
    """GeoLift's walkthrough test (chicago + portland, April 1-15 after Q1, 10,000 spent) created through the
    generated client on ``dataset_id``: the ``GeoExperiment`` it answers."""
    models = module("models")
    body = models.GeoExperimentCreate(
        kind="geo",
        name="TV in Chicago and Portland",
        dataset_id=dataset_id,
        channel="tv",
        treatment_markets=["chicago", "portland"],
        pre_period=models.Period(start=datetime.date(2021, 1, 1), end=datetime.date(2021, 3, 31)),
        test_period=models.Period(start=datetime.date(2021, 4, 1), end=datetime.date(2021, 4, 15)),
        spend=10_000.0,
    )
    create_experiment = module("api.experiments.create_experiment")
    return parsed(await create_experiment.asyncio_detailed(client=api, body=body), "GeoExperiment", 201)


async def set_status(api: Any, experiment_id: Any, status: str) -> Any:
    """Move the experiment to ``status`` through the generated client: the ``GeoExperiment`` it answers."""
    models = module("models")
    body = models.ExperimentPatch(status=models.ExperimentPatchStatusType0(status))
    update_experiment = module("api.experiments.update_experiment")
    return parsed(
        await update_experiment.asyncio_detailed(experiment_id=experiment_id, client=api, body=body),
        "GeoExperiment",
        200,
    )


async def test_a_holdout_test_runs_end_to_end_through_the_generated_client(
    generated: ModuleType, live_server_url: str, client: AsyncTestClient[Litestar]
) -> None:
    models = module("models")
    create_experiment = module("api.experiments.create_experiment")
    create_assignments = module("api.assignments.create_assignments")
    create_observations = module("api.results.create_observations")
    get_results = module("api.results.get_experiment_results")
    get_power = module("api.power.get_holdout_power")
    async with api_client(live_server_url, client) as api:
        power = parsed(
            await get_power.asyncio_detailed(
                client=api,
                body=models.HoldoutPowerRequest(
                    metric=models.ProportionMetric(kind="proportion", baseline=0.05), mde=models.Mde(relative=0.1)
                ),
            ),
            "HoldoutPowerResponse",
            200,
        )
        assert power.sample_size.total == power.sample_size.treatment + power.sample_size.holdout

        experiment = parsed(
            await create_experiment.asyncio_detailed(
                client=api,
                body=models.HoldoutExperimentCreate(
                    kind="holdout",
                    name="Meta and search holdout",
                    metric=models.ProportionMetricSpec(kind="proportion"),
                    channels=[
                        models.ChannelSpec(name="meta", holdout_fraction=0.1),
                        models.ChannelSpec(name="search", holdout_fraction=0.2),
                    ],
                ),
            ),
            "HoldoutExperiment",
            201,
        )
        batch = parsed(
            await create_assignments.asyncio_detailed(
                experiment_id=experiment.id,
                client=api,
                body=models.CreateAssignmentsJsonBody(units=["u1", "u2", "u3"]),
            ),
            "AssignmentBatch",
            200,
        )
        assert [assignment.unit for assignment in batch.assignments] == ["u1", "u2", "u3"]

        arms = [
            models.ArmObservation(
                channel=channel, arm=models.ArmObservationArm(arm), units=units, conversions=conversions
            )
            for channel in ("meta", "search")
            for arm, units, conversions in (("treatment", 90_000, 4_500), ("holdout", 10_000, 450))
        ]
        parsed(
            await create_observations.asyncio_detailed(
                experiment_id=experiment.id, client=api, body=models.ObservationsUpload(observations=arms)
            ),
            "ObservationsAccepted",
            200,
        )
        results = parsed(
            await get_results.asyncio_detailed(experiment_id=experiment.id, client=api),
            "HoldoutResults",
            200,
        )
    assert [channel.channel for channel in results.channels] == ["meta", "search"]
    assert all(type(channel).__name__ == "ChannelResult" for channel in results.channels)
    meta = results.channels[0]
    assert meta.lift.absolute.estimate == pytest.approx(0.005)
    assert meta.decision.action.value in ("scale", "iterate", "stop", "investigate")


def geolift_rows(models: Any, file_name: str = "GeoLift_Test.csv") -> list[Any]:
    """A GeoLift panel (tests/data/geolift; the walkthrough's by default) as the generated client's JSON rows."""
    with (DATA_DIR / "geolift" / file_name).open() as fh:
        return [
            models.CreateGeoDatasetJsonBodyRowsItem(
                date=datetime.date.fromisoformat(row["date"]), geo=row["location"], kpi=float(row["Y"])
            )
            for row in csv.DictReader(fh)
        ]


async def test_a_geo_test_runs_end_to_end_through_the_generated_client_with_its_job(
    generated: ModuleType, live_server_url: str, client: AsyncTestClient[Litestar], worker: None
) -> None:
    models = module("models")
    create_dataset = module("api.geo.create_geo_dataset")
    get_results = module("api.results.get_experiment_results")
    get_job = module("api.jobs.get_job")
    async with api_client(live_server_url, client) as api:
        dataset = parsed(
            await create_dataset.asyncio_detailed(
                client=api, body=models.CreateGeoDatasetJsonBody(name="GeoLift walkthrough", rows=geolift_rows(models))
            ),
            "GeoDataset",
            201,
        )
        experiment = await create_geolift_test(api, dataset.id)
        accepted = parsed(
            await get_results.asyncio_detailed(experiment_id=experiment.id, client=api, prefer="respond-async"),
            "Job",
            202,
        )
        job = accepted
        for _ in range(1200):
            if job.status.value in ("succeeded", "failed", "cancelled"):
                break
            await asyncio.sleep(0.05)
            job = parsed(await get_job.asyncio_detailed(job_id=uuid.UUID(accepted.id), client=api), "Job", 200)
    assert job.status.value == "succeeded", job.error
    results = job.result
    assert type(results).__name__ == "GeoResults"
    assert results.method.value == "synthetic_control"
    # GeoLift's vignette: ATT 155.556 on this panel and these periods (tests/api/test_geo_results.py).
    assert results.att.estimate == pytest.approx(155.556, rel=0.01)
    assert all(type(point).__name__ == "GeoSeriesPoint" for point in results.series)


async def test_a_multi_cell_geo_test_parses_into_its_typed_models_through_the_generated_client(
    generated: ModuleType, live_server_url: str, client: AsyncTestClient[Litestar]
) -> None:
    models = module("models")
    create_dataset = module("api.geo.create_geo_dataset")
    create_experiment = module("api.experiments.create_experiment")
    get_results = module("api.results.get_experiment_results")
    rows = geolift_rows(models, "GeoLift_Test_MultiCell.csv")
    async with api_client(live_server_url, client) as api:
        dataset = parsed(
            await create_dataset.asyncio_detailed(
                client=api, body=models.CreateGeoDatasetJsonBody(name="Multi-cell", rows=rows)
            ),
            "GeoDataset",
            201,
        )
        cells = [
            models.GeoCell(name="social", treatment_markets=["chicago", "cincinnati"], channel="meta", spend=2e4),
            models.GeoCell(name="search", treatment_markets=["honolulu", "indianapolis"], spend=1e4),
        ]
        experiment = parsed(
            await create_experiment.asyncio_detailed(
                client=api,
                body=models.GeoExperimentCreate(
                    kind="geo",
                    name="Social vs search",
                    dataset_id=dataset.id,
                    channel="media",
                    cells=cells,
                    pre_period=models.Period(start=datetime.date(2021, 1, 1), end=datetime.date(2021, 3, 31)),
                    test_period=models.Period(start=datetime.date(2021, 4, 1), end=datetime.date(2021, 4, 15)),
                ),
            ),
            "GeoExperiment",
            201,
        )
        results = parsed(
            await get_results.asyncio_detailed(
                experiment_id=experiment.id,
                client=api,
                method=models.GetExperimentResultsMethod("tbr"),
                prefer="wait=300",
            ),
            "MultiCellGeoResults",
            200,
        )
    assert [type(cell).__name__ for cell in results.cells] == ["GeoCellResult", "GeoCellResult"]
    assert type(results.cells[0].results).__name__ == "GeoResults"
    (comparison,) = results.comparisons
    assert type(comparison).__name__ == "GeoCellComparison"
    assert (comparison.first, comparison.second) == ("social", "search")


def readme_client_lines() -> str:
    """The README's Python block (under "A typed Python client"), as a reader copies it."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("```python\n", readme.index("### A typed Python client")) + len("```python\n")
    return readme[start : readme.index("```", start)]


async def test_the_readmes_client_lines_wait_for_a_results_job_and_take_its_result(
    generated: ModuleType, client: AsyncTestClient[Litestar], worker: None, settings: Settings
) -> None:
    """The lines run as written, only the URL and the key replaced, on a service that answers every
    results call with a job (``job_after_seconds=0``), as a slow one does after 2 s."""
    experiment_id = await create_geolift_experiment(client)
    code = readme_client_lines()
    assert 'base_url="http://127.0.0.1:8000"' in code and 'token="cf_..."' in code
    token = client.headers["Authorization"].removeprefix("Bearer ")
    immediate_jobs = replace(settings, job_after_seconds=0.0)
    with app_in_thread(create_app(immediate_jobs), immediate_jobs) as url:
        direct = httpx.get(
            f"{url}/v1/experiments/{experiment_id}/results", headers={"Authorization": f"Bearer {token}"}
        )
        assert direct.status_code == 202  # so the lines below do meet a Job
        code = code.replace("http://127.0.0.1:8000", url).replace("cf_...", token)
        namespace: dict[str, Any] = {"experiment_id": uuid.UUID(experiment_id)}
        await asyncio.to_thread(exec, compile(code, "README.md", "exec"), namespace)
    results = namespace["results"]
    assert type(results).__name__ == "GeoResults"
    # GeoLift's vignette: ATT 155.556 on this panel and these periods (tests/api/test_geo_results.py).
    assert results.att.estimate == pytest.approx(155.556, abs=5e-4)


def geolift_csv_file(rows: list[str], header: str) -> Any:
    """CSV lines as the generated client's ``File`` body (sent as ``text/csv``)."""
    payload = io.BytesIO((header + "".join(rows)).encode())
    return module("types").File(payload=payload, file_name="rows.csv", mime_type="text/csv")


async def send_csv(operation: Any, **kwargs: Any) -> Any:
    """A CSV body sent with the operation's sync call, in a thread: the generated code hands the
    ``File``'s ``BytesIO`` to httpx as ``content``, a sync stream, which an ``AsyncClient`` refuses
    (openapi-python-client issue 1239: async calls want an async file there)."""
    return await asyncio.to_thread(operation.sync_detailed, **kwargs)


async def test_a_geo_test_grows_day_by_day_to_its_final_result_through_the_generated_client(
    generated: ModuleType, live_server_url: str, client: AsyncTestClient[Litestar]
) -> None:
    """Issue 20's walkthrough through the client: the history uploaded, the experiment running while the
    15 test days are appended one CSV day at a time, interim after day 3, final once stopped."""
    create_dataset = module("api.geo.create_geo_dataset")
    append_rows = module("api.geo.append_geo_dataset_rows")
    get_results = module("api.results.get_experiment_results")
    header = (DATA_DIR / "geolift" / "GeoLift_PreTest.csv").read_text().splitlines(keepends=True)
    test_lines = (DATA_DIR / "geolift" / "GeoLift_Test.csv").read_text().splitlines(keepends=True)
    days = [(datetime.date(2021, 4, 1) + datetime.timedelta(days=k)).isoformat() for k in range(15)]
    async with api_client(live_server_url, client) as api:
        with api:  # the sync httpx client too, for the CSV bodies (send_csv)
            dataset = parsed(
                await send_csv(
                    create_dataset, client=api, body=geolift_csv_file(header[1:], header[0]), name="GeoLift history"
                ),
                "GeoDataset",
                201,
            )
            experiment = await create_geolift_test(api, dataset.id)
            running = await set_status(api, experiment.id, "running")
            assert running.status.value == "running"
            for k, day in enumerate(days):
                appended = parsed(
                    await send_csv(
                        append_rows,
                        dataset_id=dataset.id,
                        client=api,
                        body=geolift_csv_file(
                            [line for line in test_lines if line.rstrip().endswith(day)], "location,Y,date\n"
                        ),
                    ),
                    "GeoDatasetAppend",
                    201,
                )
                assert appended.appended.version == k + 2 and appended.appended.added_last_date.isoformat() == day
                if k == 2:
                    third_day = parsed(
                        await get_results.asyncio_detailed(experiment_id=experiment.id, client=api, prefer="wait=300"),
                        "GeoResults",
                        200,
                    )
                    assert third_day.interim is True and third_day.monitoring.days_observed == 3
            await set_status(api, experiment.id, "stopped")
            final = parsed(
                await get_results.asyncio_detailed(experiment_id=experiment.id, client=api, prefer="wait=300"),
                "GeoResults",
                200,
            )
            as_of_day_three = parsed(
                await get_results.asyncio_detailed(
                    experiment_id=experiment.id, client=api, dataset_version=4, prefer="wait=300"
                ),
                "GeoResults",
                200,
            )
    # GeoLift's vignette: ATT 155.556 on this panel and these periods (tests/api/test_geo_results.py).
    assert final.att.estimate == pytest.approx(155.556, rel=0.005)
    assert final.dataset_version == 16 and final.interim is False
    assert as_of_day_three.dataset_version == 4
    assert as_of_day_three.interim is True and as_of_day_three.monitoring.days_observed == 3


async def all_workspaces_key_and_workspace(database_url: str, workspace: str) -> str:
    """The secret of a new all-workspaces admin key, once ``workspace`` exists."""
    connection = await asyncpg.connect(database_url)
    try:
        await create_workspace(connection, workspace)
        return (await create_key(connection, name="ops", scope=Scope.ADMIN, workspace=None)).secret
    finally:
        await connection.close()


async def test_the_generated_client_names_the_workspace_an_all_workspaces_key_writes_into(
    generated: ModuleType, live_server_url: str, database_url: str
) -> None:
    models = module("models")
    create_experiment = module("api.experiments.create_experiment")
    token = await all_workspaces_key_and_workspace(database_url, "brand-client")
    body = models.HoldoutExperimentCreate(
        kind="holdout",
        name="Brand client holdout",
        metric=models.ProportionMetricSpec(kind="proportion"),
        channels=[models.ChannelSpec(name="meta", holdout_fraction=0.1)],
    )
    client = module("client").AuthenticatedClient(base_url=live_server_url, token=token)
    async with client as api:
        unnamed = parsed(await create_experiment.asyncio_detailed(client=api, body=body), "Problem", 400)
        named = parsed(
            await create_experiment.asyncio_detailed(client=api, body=body, counterfact_workspace="brand-client"),
            "HoldoutExperiment",
            201,
        )
    assert [param.name for param in unnamed.invalid_params] == ["Counterfact-Workspace"]
    assert named.workspace == "brand-client"
