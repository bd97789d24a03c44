"""Every chart the API returns can be had as an SVG or PNG image (``?format=svg|png``), rendered by vl-convert."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ElementTree
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.charts.images import render_chart
from api.cli import openapi_document
from testkit.jobs import finished_job
from testkit.panels import pretest_csv
from tests.api.helpers import create_geolift_experiment

Client = AsyncTestClient[Litestar]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG_ROOT = "{http://www.w3.org/2000/svg}svg"
WAIT = {"Prefer": "wait=120"}  # answer within the request even on a busy machine
CURVE = {
    "metric": {"kind": "proportion", "baseline": 0.05},
    "mde": {"relative": 0.1},
    "sample_size_range": {"min": 10_000, "max": 200_000, "points": 5},
}
CHART_OPERATIONS = [
    ("/v1/power/holdout/curve", "post"),
    ("/v1/experiments/{experiment_id}/results", "get"),
    ("/v1/geo/power", "post"),
    ("/v1/jobs/{job_id}", "get"),
]


def svg_text(response: Any) -> str:
    """The body of an SVG answer, checked: its media type and an ``<svg>`` root element."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert ElementTree.fromstring(response.content).tag == SVG_ROOT
    text: str = response.text
    return text


def png_size(response: Any) -> tuple[int, int]:
    """Width and height of a PNG answer, checked: its media type, signature and IHDR chunk."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.content[:8] == PNG_SIGNATURE
    assert response.content[12:16] == b"IHDR"
    width, height = struct.unpack(">II", response.content[16:24])
    return width, height


async def test_the_power_curve_as_svg_is_its_json_chart_rendered(client: Client) -> None:
    chart = (await client.post("/v1/power/holdout/curve", json=CURVE)).json()["chart"]
    image = await client.post("/v1/power/holdout/curve?format=svg", json=CURVE)
    assert svg_text(image) == render_chart(chart, "svg").decode()


async def test_the_power_curve_as_png_is_drawn_at_twice_its_svg_size(client: Client) -> None:
    svg = ElementTree.fromstring(svg_text(await client.post("/v1/power/holdout/curve?format=svg", json=CURVE)))
    width, height = png_size(await client.post("/v1/power/holdout/curve?format=png", json=CURVE))
    assert (width, height) == (round(2 * float(svg.attrib["width"])), round(2 * float(svg.attrib["height"])))


async def test_format_json_is_the_default_answer(client: Client) -> None:
    response = await client.post("/v1/power/holdout/curve?format=json", json=CURVE)
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == (await client.post("/v1/power/holdout/curve", json=CURVE)).json()


async def test_an_unknown_format_is_400_naming_it(client: Client) -> None:
    response = await client.post("/v1/power/holdout/curve?format=gif", json=CURVE)
    assert response.status_code == 400
    assert "format" in response.text


async def test_holdout_results_forest_plot_as_svg_and_png(client: Client) -> None:
    body = {
        "kind": "holdout",
        "name": "forest plot",
        "metric": {"kind": "proportion"},
        "channels": [{"name": "meta", "holdout_fraction": 0.1}],
    }
    experiment_id = (await client.post("/v1/experiments", json=body)).json()["id"]
    observations = [
        {"channel": "meta", "arm": "treatment", "units": 90_000, "conversions": 4_725},
        {"channel": "meta", "arm": "holdout", "units": 10_000, "conversions": 480},
    ]
    posted = await client.post(f"/v1/experiments/{experiment_id}/observations", json={"observations": observations})
    assert posted.status_code == 200, posted.text
    assert "meta" in svg_text(await client.get(f"/v1/experiments/{experiment_id}/results?format=svg"))
    assert min(png_size(await client.get(f"/v1/experiments/{experiment_id}/results?format=png"))) > 0


async def test_geo_results_series_as_svg(client: Client) -> None:
    experiment_id = await create_geolift_experiment(client, spend=None)
    svg = svg_text(await client.get(f"/v1/experiments/{experiment_id}/results?format=svg", headers=WAIT))
    assert "Counterfactual" in svg or "counterfactual" in svg


async def test_geo_power_curves_as_png(client: Client) -> None:
    upload = await client.post("/v1/geo/datasets", content=pretest_csv(), headers={"Content-Type": "text/csv"})
    body = {
        "dataset_id": upload.json()["id"],
        "treatment_markets": ["chicago", "portland"],
        "durations": [10],
        "effect_sizes": [0.0, 0.1],
    }
    assert min(png_size(await client.post("/v1/geo/power?format=png", json=body, headers=WAIT))) > 0


async def test_a_succeeded_jobs_chart_as_svg_and_png(client: Client, worker: None) -> None:
    experiment_id = await create_geolift_experiment(client, spend=None)
    started = await client.get(
        f"/v1/experiments/{experiment_id}/results?format=svg", headers={"Prefer": "respond-async"}
    )
    assert started.status_code == 202  # a job answers as a job, whatever the format
    job = await finished_job(client, started.headers["location"])
    assert job["status"] == "succeeded"
    svg = svg_text(await client.get(f"{started.headers['location']}?format=svg"))
    assert svg == render_chart(job["result"]["chart"], "svg").decode()
    assert min(png_size(await client.get(f"{started.headers['location']}?format=png"))) > 0


async def test_a_jobs_chart_before_it_succeeded_is_409(client: Client) -> None:
    experiment_id = await create_geolift_experiment(client, spend=None)
    started = await client.get(f"/v1/experiments/{experiment_id}/results", headers={"Prefer": "respond-async"})
    response = await client.get(f"{started.headers['location']}?format=png")
    assert response.status_code == 409
    assert "queued" in response.json()["detail"]


@pytest.mark.parametrize(("path", "method"), CHART_OPERATIONS)
def test_the_document_declares_the_images_beside_the_json(path: str, method: str) -> None:
    paths: Any = openapi_document()["paths"]
    operation = paths[path][method]
    content = operation["responses"]["200"]["content"]
    assert {"application/json", "image/svg+xml", "image/png"} <= set(content)
    assert content["image/png"]["schema"] == {
        "type": "string",
        "format": "binary",
        "description": "With `format=png`: the response's chart as PNG.",
    }
    assert any(parameter["name"] == "format" for parameter in operation["parameters"])
