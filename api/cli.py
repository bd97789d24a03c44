"""The ``counterfact`` command: ``serve`` (API and a worker), ``worker``, API ``keys``, ``workspaces``, the
``openapi`` document."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import msgspec

from api.auth.cli import (
    add_key_commands,
    add_workspace_commands,
    announce_first_admin_key,
    run_key_command,
    run_workspace_command,
)
from api.jobs.supervision import WorkerSupervisor
from api.settings import get_settings


def openapi_document() -> dict[str, object]:
    """The OpenAPI document the app serves, built without touching a database."""
    from api.app import create_app

    app = create_app()
    document: dict[str, object] = msgspec.to_builtins(app.openapi_schema.to_schema())
    return document


def write_openapi(output: Path | None) -> None:
    text = json.dumps(openapi_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def serve(host: str, port: int, workers: int, job_workers: int) -> None:
    """Run the API with uvicorn and ``job_workers`` ``counterfact worker`` processes beside it; without
    ``DATABASE_URL``, start the embedded PostgreSQL first (shared by all, stopped when this process exits).

    A worker process that dies (SIGKILL, out of memory) is started again (:mod:`api.jobs.supervision`).
    On SIGTERM, as on Ctrl-C, uvicorn finishes the requests in flight, then this process stops its workers
    (each hands its jobs back to the queue) and the embedded PostgreSQL before it exits. (uvicorn re-raises
    the signal once it has shut down; SIGTERM's default action would end the process at once and leave
    them running.)"""
    import uvicorn

    signal.signal(signal.SIGTERM, _exit_cleanly)

    from api.db.database import resolve_database_url
    from api.http.limits import uvicorn_options

    settings = get_settings()
    os.environ["DATABASE_URL"] = resolve_database_url(settings)
    announce_first_admin_key(os.environ["DATABASE_URL"], f"http://{host}:{port}")
    supervisor = WorkerSupervisor(job_workers, [sys.executable, "-m", "api.cli", "worker"], os.environ.copy())
    try:
        supervisor.start()
        uvicorn.run(
            "api.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            access_log=False,
            proxy_headers=False,
            **uvicorn_options(settings),
        )
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the workers' hand-back short
        supervisor.stop(timeout=60)


def worker() -> None:
    """Run one worker process: take queued jobs from the database until SIGTERM or SIGINT, which hand the
    jobs it runs back to the queue (:mod:`api.jobs.worker`).

    Its linear algebra runs on as many threads as it runs tasks (``COUNTERFACT_WORKER_CONCURRENCY``):
    workers scale by processes, and BLAS threads of several processes on the same cores only contend
    (a second worker on this 2-core machine was slower than one until each kept to one thread).
    """
    threads = os.environ.get("COUNTERFACT_WORKER_CONCURRENCY", "1")
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, threads)
    from api.http.request_logging import configure_logging
    from api.jobs.worker import run_worker
    from api.worker_tasks import task_registry

    settings = get_settings()
    configure_logging(settings.log_level)
    asyncio.run(run_worker(settings, task_registry()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="counterfact", description="Counterfact incrementality-testing API")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="serve the API")
    serve_parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve_parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    serve_parser.add_argument(
        "--workers", type=int, default=int(os.environ.get("COUNTERFACT_WORKERS", "1")), help="worker processes"
    )
    serve_parser.add_argument(
        "--job-workers",
        type=int,
        default=int(os.environ.get("COUNTERFACT_JOB_WORKERS", "1")),
        help="`counterfact worker` processes started beside the API",
    )
    commands.add_parser("worker", help="run a worker: execute queued jobs (any number, on any machine)")
    openapi_parser = commands.add_parser("openapi", help="write the OpenAPI document (no database needed)")
    openapi_parser.add_argument("--output", type=Path, default=None, help="file to write (default: stdout)")
    add_key_commands(commands)
    add_workspace_commands(commands)
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.host, args.port, args.workers, args.job_workers)
    elif args.command == "worker":
        worker()
    elif args.command == "keys":
        from api.db.database import resolve_database_url

        sys.exit(run_key_command(args, resolve_database_url(get_settings())))
    elif args.command == "workspaces":
        from api.db.database import resolve_database_url

        sys.exit(run_workspace_command(args, resolve_database_url(get_settings())))
    else:
        write_openapi(args.output)


if __name__ == "__main__":
    main()
