"""Schemathesis over the whole committed document against ``counterfact serve``: every check, stateless and stateful.

Run: ``.venv/bin/python bench/bench_fuzz.py [--max-examples 100] [--seed 12] [--keep-report DIR]``.

1. Creates a throwaway database on ``DATABASE_URL``'s server (default
   ``postgresql://postgres@127.0.0.1:5432/test``) and starts ``counterfact serve`` on it, as ``make serve``
   does (the API and one job worker), on a free port; then an admin key with ``counterfact keys create``.
   The admin scope's rate limit is lifted (``COUNTERFACT_RATE_LIMIT_ADMIN=0``), and so is the limit on failed
   authentications per address (``COUNTERFACT_AUTH_FAILURES_PER_MINUTE=0``; the fuzzer sends many requests
   without a key): the run is about what the handlers answer, and a 429 for most requests would hide them
   (the limiters have their own tests).
2. Runs the ``schemathesis`` command line on ``openapi/openapi.json`` (the committed document, not the one
   the server would serve) with every check (schemathesis' default) but what ``schemathesis.toml`` turns
   off, with its reasons (``positive_data_acceptance``; ``use_after_free`` on the audit trails), the hooks of
   ``bench/fuzz_hooks.py`` (a fresh Idempotency-Key per request; scenarios may start with
   CreateExperiment), every phase (the document's examples, coverage of
   its boundaries, fuzzing, and the stateful phase following the document's ``links``: a create, then the
   operations on what it created), ``--max-examples`` per operation and a fixed ``--seed``. One client worker:
   the two cores are shared with the server, its job worker and PostgreSQL.
3. Reads every request and answer from schemathesis' HAR report, and its JSON run report, and prints the
   requests sent, by status class, the distinct failures and the wall time. The run passes when no answer is a 5xx and
   schemathesis reports no failure (any schema mismatch is one); the exit status says so.

The database is dropped and the server stopped at the end.
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
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from testkit.database import create_database, drop_database, with_database
from testkit.service import ROOT, admin_headers, free_port, server

DOCUMENT = ROOT / "openapi" / "openapi.json"
PHASES = "examples,coverage,fuzzing,stateful"
CONFIG = ROOT / "schemathesis.toml"  # every check but the two it turns off, with the reasons
#: schemathesis' names for an answer that does not match its schema.
SCHEMA_MISMATCHES = {"JsonSchemaError", "MalformedJson", "MissingContentType", "UndefinedContentType"}
FUZZ_ENV = {"COUNTERFACT_RATE_LIMIT_ADMIN": "0", "COUNTERFACT_AUTH_FAILURES_PER_MINUTE": "0"}


def run_schemathesis(base: str, headers: dict[str, str], max_examples: int, seed: int, report: Path) -> None:
    """The schemathesis command line over the committed document, its output echoed, its reports in ``report``.

    The key goes in as the document's ``apiKey`` bearer scheme (a configuration beside ``schemathesis.toml``'s),
    so schemathesis knows the requests are authenticated and can still leave it out to see the 401 (a
    ``--header`` would put it back into those, and the checks of authentication would fail).
    """
    config = report / "schemathesis.toml"
    key = headers["Authorization"].removeprefix("Bearer ")
    config.write_text(CONFIG.read_text(encoding="utf-8") + f'\n[auth.openapi.apiKey]\nbearer = "{key}"\n')
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        str(DOCUMENT),
        "--url",
        base,
        "--phases",
        PHASES,
        "--max-examples",
        str(max_examples),
        "--seed",
        str(seed),
        "--workers",
        "1",
        "--request-timeout",
        "60",
        "--suppress-health-check",
        "all",
        "--report",
        "har,json",
        "--report-dir",
        str(report),
        "--no-color",
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "fuzz_hooks", "PYTHONPATH": str(Path(__file__).resolve().parent)}
    subprocess.run(command, cwd=ROOT, env=env, check=False)  # its exit status is read from the JSON report


def har_statuses(report: Path) -> Counter[int]:
    """The status of every answer schemathesis recorded (0: no answer, e.g. a timeout)."""
    statuses: Counter[int] = Counter()
    for har in report.glob("har-*.json"):
        for entry in json.loads(har.read_text(encoding="utf-8"))["log"]["entries"]:
            statuses[int(entry["response"]["status"])] += 1
    return statuses


def run_report(report: Path) -> dict[str, Any]:
    """schemathesis' JSON run report: test cases, distinct failures (type, code, title, count), errors."""
    (path,) = report.glob("json-*.json")
    summary: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return summary


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-examples", type=int, default=100, help="generated cases per operation and phase")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--keep-report", type=Path, default=None, help="keep schemathesis' HAR report here")
    args = parser.parse_args()

    base_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    url = await create_database(with_database(base_url, "postgres"), "bench_fuzz")
    try:
        with tempfile.TemporaryDirectory() as scratch:
            report = args.keep_report or Path(scratch)
            with server(url, free_port(), serve=True, extra_env=FUZZ_ENV) as base:
                headers = admin_headers(url)
                started = time.perf_counter()
                run_schemathesis(base, headers, args.max_examples, args.seed, report)
                elapsed = time.perf_counter() - started
            statuses = har_statuses(report)
            summary = run_report(report)
    finally:
        await drop_database(with_database(base_url, "postgres"), url)

    by_class = Counter(f"{status // 100}xx" if status else "no answer" for status in statuses.elements())
    failures = summary["failures"]
    mismatches = sum(failure["count"] for failure in failures if failure["type"] in SCHEMA_MISMATCHES)
    sent = sum(statuses.values())
    version, seed = summary["schemathesis_version"], summary["seed"]
    print(f"schemathesis {version}, seed {seed}, every check but what {CONFIG.name} turns off")
    print(f"test cases generated: {summary['test_cases']['generated']:,}")
    print(f"requests sent: {sent:,} in {elapsed:.0f} s ({sent / elapsed:.0f}/s)")
    print("by status class: " + ", ".join(f"{name} {count:,}" for name, count in sorted(by_class.items())))
    print("by status: " + ", ".join(f"{status} {count:,}" for status, count in sorted(statuses.items())))
    listed = [f"{failure['code']} {failure['title']} ({failure['type']}): {failure['count']}" for failure in failures]
    print("distinct failures: " + ("; ".join(listed) if listed else "none"))
    print(f"errors: {len(summary['errors'])}")
    print(f"5xx answers: {by_class['5xx']}; schema mismatches: {mismatches}")
    if by_class["5xx"] or failures or summary["errors"]:
        sys.exit(1)


if __name__ == "__main__":
    asyncio.run(main())
