"""``GET /metrics``: Prometheus' text format, parsed by prometheus_client's own parser, with series that move."""

from __future__ import annotations

import asyncio

from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from api.settings import Settings
from testkit.jobs import finished_job
from tests.api.helpers import create_geolift_experiment
from tests.api.test_jobs import _submit_toy

Client = AsyncTestClient[Litestar]


async def scrape(client: Client) -> list[Sample]:
    response = await client.get("/metrics", headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return [sample for family in text_string_to_metric_families(response.text) for sample in family.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The sample's value; 0 when the series is absent (a counter not yet incremented)."""
    found = [sample.value for sample in samples if sample.name == name and labels.items() <= sample.labels.items()]
    assert len(found) <= 1, f"{name}{labels} matches several series"
    return found[0] if found else 0.0


async def test_metrics_are_open_without_an_api_key(client: Client) -> None:
    response = await client.get("/metrics", headers={"Authorization": ""})
    assert response.status_code == 200


async def test_requests_are_counted_and_timed_by_route_template_and_status(client: Client) -> None:
    route = {"method": "GET", "route": "/v1/jobs/{job_id}", "status": "404"}
    before = await scrape(client)
    for _ in range(3):
        missing = await client.get("/v1/jobs/00000000-0000-4000-8000-000000000000")
        assert missing.status_code == 404
    after = await scrape(client)
    assert (
        value(after, "counterfact_http_requests_total", **route)
        - value(before, "counterfact_http_requests_total", **route)
        == 3
    )
    assert (
        value(after, "counterfact_http_request_duration_seconds_count", **route)
        - value(before, "counterfact_http_request_duration_seconds_count", **route)
        == 3
    )
    assert value(after, "counterfact_http_request_duration_seconds_sum", **route) > value(
        before, "counterfact_http_request_duration_seconds_sum", **route
    )


async def test_a_path_no_route_has_is_counted_as_unmatched_not_by_its_path(client: Client) -> None:
    await client.get("/no/such/path/42")
    samples = await scrape(client)
    assert value(samples, "counterfact_http_requests_total", route="unmatched", status="404") >= 1
    assert not [sample for sample in samples if "/no/such/path/42" in sample.labels.values()]


async def test_a_method_an_existing_path_lacks_is_counted_under_the_path_template(client: Client) -> None:
    job_path = "/v1/jobs/00000000-0000-4000-8000-000000000000"
    assert (await client.put(job_path)).status_code == 405
    assert (await client.delete("/v1/power/holdout")).status_code == 405
    samples = await scrape(client)
    total = "counterfact_http_requests_total"
    assert value(samples, total, method="PUT", route="/v1/jobs/{job_id}", status="405") == 1
    assert value(samples, total, method="DELETE", route="/v1/power/holdout", status="405") == 1
    assert value(samples, "counterfact_http_requests_total", route="unmatched", status="405") == 0


async def test_queued_jobs_are_counted_by_kind(client: Client) -> None:
    queued = {"kind": "experiment_results", "status": "queued"}
    before = await scrape(client)
    assert value(before, "counterfact_jobs", **queued) == 0  # the series exists before any job
    experiment_id = await create_geolift_experiment(client, spend=None)
    started = await client.get(f"/v1/experiments/{experiment_id}/results", headers={"Prefer": "respond-async"})
    assert started.status_code == 202
    after = await scrape(client)
    assert value(after, "counterfact_jobs", **queued) == 1
    assert value(after, "counterfact_database_up") == 1


async def test_finished_jobs_durations_are_a_histogram_by_kind_and_status(
    client: Client, worker: None, database_url: str, settings: Settings
) -> None:
    finished = {"kind": "toy_sleep", "status": "succeeded"}
    before = await scrape(client)
    job_id = await _submit_toy(database_url, settings, "toy_sleep", b"2")
    job = await finished_job(client, f"/v1/jobs/{job_id}")
    assert job["status"] == "succeeded"
    after = await scrape(client)
    assert (
        value(after, "counterfact_job_duration_seconds_count", **finished)
        == value(before, "counterfact_job_duration_seconds_count", **finished) + 1
    )
    assert value(after, "counterfact_job_duration_seconds_sum", **finished) >= 0.2  # it slept two tenths
    assert value(after, "counterfact_job_duration_seconds_bucket", le="+Inf", **finished) == value(
        after, "counterfact_job_duration_seconds_count", **finished
    )
    assert value(after, "counterfact_job_duration_seconds_bucket", le="0.5", **finished) <= value(
        after, "counterfact_job_duration_seconds_bucket", le="3600.0", **finished
    )


async def test_database_pools_report_open_and_idle_connections(client: Client) -> None:
    await asyncio.gather(*(client.get("/health") for _ in range(4)))
    samples = await scrape(client)
    for pool in ("service", "queue"):
        size = value(samples, "counterfact_db_pool_connections", pool=pool)
        assert 1 <= size <= value(samples, "counterfact_db_pool_max_connections", pool=pool)
        assert 0 <= value(samples, "counterfact_db_pool_idle_connections", pool=pool) <= size
