"""Latency of ``POST /v1/power/holdout`` with a read key checked on every call, open loop, beside ``GET /health``.

Run: ``.venv/bin/python bench/bench_power_latency.py [--rate 500] [--seconds 10] [--repeats 3] [--access-log]``.

``counterfact serve`` (uvicorn and one job worker, rate limits lifted) on a throwaway database on
``DATABASE_URL``'s server (default ``postgresql://postgres@127.0.0.1:5432/test``). Requests leave at a fixed
``--rate`` whatever the server is doing (``bench/open_loop.py``), as independent callers send them; ``wrk``'s
closed loop (``bench/bench_http_power.sh``) measures throughput instead, and its p99 is the queue of its own
connections at saturation. Health and power alternate, ``--repeats`` times each, with the state of the
machine before each run (load average; CPU pressure: the share of the last 10 s in which a runnable task waited
for a CPU). With ``--access-log`` the service logs every request (the production default,
``COUNTERFACT_LOG_LEVEL=INFO``) and the time each power call spent inside the service, from the first byte
of the request reaching the application to its last byte sent, is summarised beside what the client saw: a
tail the client sees and the service does not lies outside our code (the socket, the event loop's wake-up,
the scheduler of a shared machine). Beside each run, the time the server's event loop ran on a CPU and the
time it was ready to run but waited for one (``/proc/<pid>/schedstat``, Linux).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.open_loop import run_open_loop
from testkit.database import create_database, drop_database
from testkit.service import free_port, key_headers, server

POWER_BODY = json.dumps(
    {
        "metric": {"kind": "proportion", "baseline": 0.05},
        "solve_for": "sample_size",
        "mde": {"relative": 0.1},
        "holdout_fraction": 0.1,
        "daily_units": 20000,
    }
).encode()


def constant(path: str) -> Callable[[int], str]:
    """The same path for every request."""
    return lambda _: path


def machine_state() -> str:
    """The load average, and the share of the last 10 s in which some runnable task waited for a CPU (PSI)."""
    state = "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])
    pressure = Path("/proc/pressure/cpu")
    if pressure.exists():
        some = pressure.read_text().split()[1]  # avg10=…
        state += f", CPU pressure {some.partition('=')[2]}%"
    return state


def scheduling(pid: int) -> tuple[float, float]:
    """Seconds the process's main thread (uvicorn's event loop) has run on a CPU and waited for one."""
    on_cpu, waiting, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
    return int(on_cpu) / 1e9, int(waiting) / 1e9


def service_times(log: Path, offset: int, path: str) -> np.ndarray:
    """``duration_ms`` of the access-log lines for ``path`` written after ``offset``."""
    with log.open("rb") as file:
        file.seek(offset)
        lines = file.read().decode().splitlines()
    durations = []
    for line in lines:
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if record.get("message") == "request" and record.get("path") == path:
            durations.append(record["duration_ms"])
    return np.array(durations)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--access-log", action="store_true", help="log every request, as in production (INFO)")
    args = parser.parse_args()
    server_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    database_url = await create_database(server_url, "counterfact_bench")
    log = Path(tempfile.mkstemp(prefix="counterfact_power_", suffix=".log")[1])
    env = {f"COUNTERFACT_RATE_LIMIT_{scope}": "0" for scope in ("READ", "WRITE", "ADMIN")}
    if args.access_log:
        env["COUNTERFACT_LOG_LEVEL"] = "INFO"
    try:
        processes: list[subprocess.Popen[bytes]] = []
        with server(database_url, free_port(), serve=True, extra_env=env, log=log, started=processes.append) as base:
            pid = processes[0].pid
            address = urlsplit(base)
            assert address.hostname is not None and address.port is not None
            headers = key_headers(database_url, "read")
            power_headers = {**headers, "Content-Type": "application/json"}
            calls = {
                "GET /health": ("/health", "GET", b"", headers),
                "POST /v1/power/holdout": ("/v1/power/holdout", "POST", POWER_BODY, power_headers),
            }
            for path, method, body, sent_headers in calls.values():  # warm-up: imports, key cache, pool
                await run_open_loop(
                    address.hostname,
                    address.port,
                    constant(path),
                    rate=100,
                    seconds=1,
                    headers=sent_headers,
                    method=method,
                    body=body,
                )
            print(f"open loop at {args.rate}/s for {args.seconds:.0f} s, read key checked on every call")
            for repeat in range(1, args.repeats + 1):
                for label, (path, method, body, sent_headers) in calls.items():
                    before = machine_state()
                    offset = log.stat().st_size
                    cpu_before, waited_before = scheduling(pid)
                    result = await run_open_loop(
                        address.hostname,
                        address.port,
                        constant(path),
                        rate=args.rate,
                        seconds=args.seconds,
                        headers=sent_headers,
                        method=method,
                        body=body,
                    )
                    cpu_after, waited_after = scheduling(pid)
                    cpu, waited = cpu_after - cpu_before, waited_after - waited_before
                    print(f"run {repeat}, {label} ({before}): {result.summary()}")
                    print(
                        f"  the server's event loop ran {cpu:.2f} s on a CPU ({cpu / result.scheduled * 1000:.2f} ms a "
                        f"call) and waited {waited:.2f} s for one"
                    )
                    if args.access_log:
                        inside = service_times(log, offset, path)
                        p50, p99 = np.percentile(inside, [50, 99]) if len(inside) else (np.nan, np.nan)
                        print(f"  inside the service: p50 {p50:.2f} ms, p99 {p99:.2f} ms, {len(inside)} requests")
    finally:
        await drop_database(server_url, database_url)
        log.unlink(missing_ok=True)


if __name__ == "__main__":
    asyncio.run(main())
