"""Feed Counterfact's MMM calibration exports to the real PyMC-Marketing and Google Meridian.

The test suite checks each export field by field against the libraries' documented inputs without
installing them (PyMC and TensorFlow would multiply CI's install time). This script closes the loop:

1. In the project's venv it starts the service on a throwaway database (``DATABASE_URL``'s server, as
   the other benchmarks), creates a stopped two-channel holdout test (2026-03-02..2026-03-29) and the
   GeoLift walkthrough geo test (chicago + portland, 2021-04-01..15, spend 10,000), and fetches their
   ``meridian`` and ``pymc-marketing`` exports, plus the results of a holdout test whose lift is
   significantly negative (which the service refuses with 422 for both libraries).
2. It makes a throwaway venv (``--venv``, default ``/tmp/counterfact-mmm-venv``) with
   ``google-meridian`` and ``pymc-marketing`` from PyPI unless one is there, and runs itself in it with
   ``--check FILE``, which:
   - Meridian: builds a weekly ``InputData`` holding the export's channels over the test dates and calls
     ``CalibrationBuilder(data).with_incrementality_experiment_result(channel_name, **arguments)`` then
     ``.build()``, printing the calibrated ROI prior's mean and standard deviation per channel; and
     shows that Meridian's own ``ExperimentResult`` refuses the negative test the service refused.
   - PyMC-Marketing: builds a ``multidimensional.MMM`` (national for the holdout test, ``dims=("geo",)``
     for the geo test), ``build_model``, ``add_lift_test_measurements(pd.DataFrame(df_lift_test))``, and
     evaluates the model's log-probability at its initial point (finite: the lift likelihood is wired);
     and shows that ``assert_monotonic`` refuses the negative test's row.

Run: ``DATABASE_URL=postgresql://… .venv/bin/python bench/mmm_calibration_check.py``. Robyn is an R
package outside PyPI and Debian, so its export is checked only by the tests (``check_calibration``'s
column list and semantics).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VENV = Path("/tmp/counterfact-mmm-venv")
LIBRARIES = ("google-meridian", "pymc-marketing")


# --- 1. Exports from the running service (project venv) ---------------------------------------------


async def gather_exports(database_url: str) -> dict[str, Any]:
    import asyncpg
    import httpx

    async def holdout(client: httpx.AsyncClient, search_holdout_conversions: int) -> str:
        design = {
            "kind": "holdout",
            "name": "meta and search",
            "metric": {"kind": "proportion"},
            "channels": [{"name": "meta", "holdout_fraction": 0.1}, {"name": "search", "holdout_fraction": 0.05}],
        }
        experiment_id: str = (await client.post("/v1/experiments", json=design)).json()["id"]
        observations = [
            {"channel": "meta", "arm": "treatment", "units": 90000, "conversions": 4725, "spend": 25000,
             "value_per_conversion": 40},
            {"channel": "meta", "arm": "holdout", "units": 10000, "conversions": 480},
            {"channel": "search", "arm": "treatment", "units": 95000, "conversions": 5130, "spend": 12000,
             "value_per_conversion": 40},
            {"channel": "search", "arm": "holdout", "units": 5000, "conversions": search_holdout_conversions},
        ]  # fmt: skip
        stored = await client.post(f"/v1/experiments/{experiment_id}/observations", json={"observations": observations})
        stored.raise_for_status()
        connection = await asyncpg.connect(database_url)
        try:
            await connection.execute(
                "UPDATE experiments SET status = 'stopped', started_at = '2026-03-02T08:00Z', "
                "stopped_at = '2026-03-29T20:00Z', actual_start = '2026-03-02', actual_end = '2026-03-29' "
                "WHERE id = $1",
                experiment_id,
            )
        finally:
            await connection.close()
        return experiment_id

    async def get(client: httpx.AsyncClient, path: str, **params: Any) -> httpx.Response:
        return await client.get(path, params=params)

    from testkit.panels import geolift_csv, geolift_design
    from testkit.service import admin_headers, free_port, server

    exports: dict[str, Any] = {}
    with server(database_url, free_port()) as base:
        async with httpx.AsyncClient(base_url=base, timeout=600, headers=admin_headers(database_url)) as client:
            holdout_id = await holdout(client, search_holdout_conversions=250)
            upload = await client.post("/v1/geo/datasets", content=geolift_csv(), headers={"Content-Type": "text/csv"})
            geo = geolift_design(upload.json()["id"])
            geo_id = (await client.post("/v1/experiments", json=geo)).json()["id"]
            for name, experiment_id in (("holdout", holdout_id), ("geo", geo_id)):
                for fmt in ("meridian", "pymc-marketing", "robyn"):
                    response = await get(client, f"/v1/experiments/{experiment_id}/calibration", format=fmt)
                    response.raise_for_status()
                    exports[f"{name}/{fmt}"] = response.json()
            negative_id = await holdout(client, search_holdout_conversions=330)
            refusals = {}
            for fmt in ("meridian", "pymc-marketing"):
                refused = await get(client, f"/v1/experiments/{negative_id}/calibration", format=fmt)
                assert refused.status_code == 422, refused.text
                refusals[fmt] = refused.json()["detail"]
            results = (await get(client, f"/v1/experiments/{negative_id}/results")).json()
            exports["negative"] = {"refusals": refusals, "results": results}
    return exports


async def exports_from_a_throwaway_database() -> dict[str, Any]:
    from testkit.database import throwaway_database

    async with throwaway_database(os.environ["DATABASE_URL"], "counterfact_mmm") as database_url:
        return await gather_exports(database_url)


def ensure_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import meridian, pymc_marketing"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "uv"], check=True)
    subprocess.run([str(venv / "bin" / "uv"), "pip", "install", "--python", str(python), *LIBRARIES], check=True)
    return python


# --- 2. The libraries' own checks (throwaway venv) --------------------------------------------------


def weekly_frame(channels: list[str], first: str, weeks: int, geos: list[str] | None, seed: int) -> Any:
    """A weekly panel: per channel impressions and spend (3,000 a week a geo), a KPI that responds to them."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    dates = pd.date_range(first, periods=weeks, freq="W-MON")
    frames = []
    national: list[str | None] = [None]  # one frame without a geo column
    for geo in geos or national:
        frame = pd.DataFrame({"time": dates.strftime("%Y-%m-%d")})
        if geo is not None:
            frame["geo"] = geo
        kpi = 50_000 + rng.normal(0, 2_000, weeks)
        for channel in channels:
            spend = 3_000 * rng.uniform(0.6, 1.4, weeks)
            frame[f"{channel}_impressions"] = spend * 100
            frame[f"{channel}_spend"] = spend
            kpi += 0.8 * spend
        frame["kpi"] = kpi
        frame["population"] = 1_000_000.0
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def check_meridian(label: str, export: dict[str, Any], first: str, geos: list[str] | None) -> None:
    import numpy as np
    from meridian.data import data_frame_input_data_builder as builders
    from meridian.model.calibration.prior_builder import CalibrationBuilder

    results = export["experiment_results"]
    channels = [r["channel_name"] for r in results]
    frame = weekly_frame(channels, first, 26, geos, seed=1)
    builder = (
        builders.DataFrameInputDataBuilder(kpi_type="revenue")
        .with_kpi(frame)
        .with_media(
            frame,
            media_cols=[f"{c}_impressions" for c in channels],
            media_spend_cols=[f"{c}_spend" for c in channels],
            media_channels=channels,
        )
    )
    if geos:
        builder = builder.with_population(frame)
    calibration = CalibrationBuilder(builder.build())
    for result in results:
        arguments = dict(result)
        calibration = calibration.with_incrementality_experiment_result(arguments.pop("channel_name"), **arguments)
    prior = calibration.build().roi_m
    means, stds = np.asarray(prior.mean()), np.asarray(prior.stddev())
    for index, channel in enumerate(channels):
        mean, std = float(means[index]), float(stds[index])
        point, se = results[index]["point_estimates"][0], results[index]["standard_errors"][0]
        print(
            f"meridian   {label:8} {channel:7} export ROI {point:.4f} ± {se:.4f} -> calibrated ROI prior "
            f"mean {mean:.4f}, sd {std:.4f} ({type(prior).__name__})"
        )


def check_meridian_refusal(negative: dict[str, Any]) -> None:
    from meridian.model.calibration.base import ExperimentResult

    search = next(c for c in negative["results"]["channels"] if c["channel"] == "search")
    iroas = search["iroas"]
    se = (iroas["ci_high"] - iroas["ci_low"]) / (2 * 1.959963984540054)
    try:
        ExperimentResult(point_estimate=iroas["estimate"], standard_error=se)
    except ValueError as refused:
        print(f"meridian   refuses  search  ROI {iroas['estimate']:.4f} ± {se:.4f}: {refused}")
    else:
        raise AssertionError("Meridian accepted a result the service refused")
    print(f"counterfact refused it too: {negative['refusals']['meridian']}")


def check_pymc_marketing(label: str, export: dict[str, Any], first: str, geos: list[str] | None) -> None:
    import numpy as np
    import pandas as pd
    from pymc_marketing.mmm import GeometricAdstock, LogisticSaturation
    from pymc_marketing.mmm.multidimensional import MMM

    lift = pd.DataFrame(export["df_lift_test"])
    channels = sorted(set(lift["channel"]))
    frame = weekly_frame(channels, first, 26, geos, seed=2)
    frame["time"] = pd.to_datetime(frame["time"])
    columns = [f"{c}_spend" for c in channels]
    data = frame.rename(columns=dict(zip(columns, channels, strict=True)))
    mmm = MMM(
        date_column="time",
        channel_columns=channels,
        target_column="kpi",
        adstock=GeometricAdstock(l_max=4),
        saturation=LogisticSaturation(),
        dims=("geo",) if geos else (),
    )
    features = data[["time", *channels, *(["geo"] if geos else [])]]
    mmm.build_model(features, data["kpi"])
    mmm.add_lift_test_measurements(lift)
    model = mmm.model
    logp = float(model.compile_logp()(model.initial_point()))
    observed = [v.name for v in model.observed_RVs]
    assert "lift_measurements" in observed and np.isfinite(logp), (observed, logp)
    rows = ", ".join(
        f"{r.channel}{'/' + r.geo if 'geo' in lift else ''}: "
        f"x={r.x:.0f} Δx={r.delta_x:.1f} Δy={r.delta_y:.1f} σ={r.sigma:.1f}"
        for r in lift.itertuples()
    )
    print(f"pymc-mkt   {label:8} lift_measurements added ({len(lift)} rows: {rows}); model logp {logp:.1f}")


def check_pymc_refusal(negative: dict[str, Any]) -> None:
    import pandas as pd
    from pymc_marketing.mmm.lift_test import NonMonotonicError, assert_monotonic

    search = next(c for c in negative["results"]["channels"] if c["channel"] == "search")
    delta_y = search["iroas"]["estimate"] * search["spend"]
    try:
        assert_monotonic(pd.Series([search["spend"]]), pd.Series([delta_y]))
    except NonMonotonicError as refused:
        print(f"pymc-mkt   refuses  search  Δx={search['spend']:.0f} Δy={delta_y:.1f}: {refused}")
    else:
        raise AssertionError("PyMC-Marketing accepted a row the service refused")
    print(f"counterfact refused it too: {negative['refusals']['pymc-marketing']}")


def check(path: Path) -> None:
    import importlib.metadata as metadata

    exports = json.loads(path.read_text())
    print(
        "google-meridian",
        metadata.version("google-meridian"),
        "| pymc-marketing",
        metadata.version("pymc-marketing"),
        "| python",
        sys.version.split()[0],
    )
    check_meridian("holdout", exports["holdout/meridian"], "2026-01-05", None)
    check_meridian("geo", exports["geo/meridian"], "2021-01-04", ["chicago", "portland", "houston"])
    check_meridian_refusal(exports["negative"])
    check_pymc_marketing("holdout", exports["holdout/pymc-marketing"], "2026-01-05", None)
    check_pymc_marketing("geo", exports["geo/pymc-marketing"], "2021-01-04", ["chicago", "portland", "houston"])
    check_pymc_refusal(exports["negative"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", type=Path, help="(inside the throwaway venv) exports to feed to the libraries")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="the throwaway venv with the libraries")
    args = parser.parse_args()
    if args.check is not None:
        check(args.check)
        return
    sys.path.insert(0, str(ROOT))
    started = time.monotonic()
    exports = asyncio.run(exports_from_a_throwaway_database())
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as out:
        json.dump(exports, out, indent=1)
    print(f"exports gathered in {time.monotonic() - started:.1f} s -> {out.name}")
    python = ensure_venv(args.venv)
    quiet = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    subprocess.run([str(python), str(Path(__file__).resolve()), "--check", out.name], check=True, env=quiet)


if __name__ == "__main__":
    main()
