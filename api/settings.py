"""Service settings, read from the environment once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment.

    ``database_url`` is ``None`` when no ``DATABASE_URL`` is set: the service then runs an embedded
    PostgreSQL whose data lives under ``data_dir``.
    """

    database_url: str | None
    data_dir: Path
    pool_min_size: int
    pool_max_size: int
    statement_timeout_ms: int
    max_body_bytes: int
    max_stream_bytes: int
    log_level: str
    job_after_seconds: float = 2.0
    job_max_attempts: int = 3
    job_heartbeat_timeout_seconds: float = 30.0
    health_queue_seconds: float = 60.0
    worker_concurrency: int = 1
    api_key_cache_seconds: float = 5.0
    rate_limit_read_per_minute: int = 6000
    rate_limit_write_per_minute: int = 1200
    rate_limit_admin_per_minute: int = 1200
    api_key_negative_cache_seconds: float = 10.0
    auth_failures_per_minute: int = 60
    max_header_bytes: int = 32 * 1024
    header_timeout_seconds: float = 10.0
    keep_alive_seconds: float = 5.0
    limit_concurrency: int = 1000


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from exc


def _float_env(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be a number, got {raw!r}") from exc


def settings_from_environment() -> Settings:
    """Build the settings from environment variables (documented in the README)."""
    return Settings(
        database_url=os.environ.get("DATABASE_URL") or None,
        data_dir=Path(os.environ.get("COUNTERFACT_DATA_DIR", ".counterfact")).resolve(),
        pool_min_size=_int_env("COUNTERFACT_POOL_MIN_SIZE", 1),
        pool_max_size=_int_env("COUNTERFACT_POOL_MAX_SIZE", 10),
        statement_timeout_ms=_int_env("COUNTERFACT_STATEMENT_TIMEOUT_MS", 30_000),
        max_body_bytes=_int_env("COUNTERFACT_MAX_BODY_BYTES", 10 * 1024 * 1024),
        max_stream_bytes=_int_env("COUNTERFACT_MAX_STREAM_BYTES", 2 * 1024 * 1024 * 1024),
        log_level=os.environ.get("COUNTERFACT_LOG_LEVEL", "INFO"),
        job_after_seconds=_float_env("COUNTERFACT_JOB_AFTER_SECONDS", 2.0),
        job_max_attempts=_int_env("COUNTERFACT_JOB_MAX_ATTEMPTS", 3),
        job_heartbeat_timeout_seconds=_float_env("COUNTERFACT_JOB_HEARTBEAT_TIMEOUT_SECONDS", 30.0),
        health_queue_seconds=_float_env("COUNTERFACT_HEALTH_QUEUE_SECONDS", 60.0),
        worker_concurrency=_int_env("COUNTERFACT_WORKER_CONCURRENCY", 1),
        api_key_cache_seconds=_float_env("COUNTERFACT_API_KEY_CACHE_SECONDS", 5.0),
        rate_limit_read_per_minute=_int_env("COUNTERFACT_RATE_LIMIT_READ", 6000),
        rate_limit_write_per_minute=_int_env("COUNTERFACT_RATE_LIMIT_WRITE", 1200),
        rate_limit_admin_per_minute=_int_env("COUNTERFACT_RATE_LIMIT_ADMIN", 1200),
        api_key_negative_cache_seconds=_float_env("COUNTERFACT_API_KEY_NEGATIVE_CACHE_SECONDS", 10.0),
        auth_failures_per_minute=_int_env("COUNTERFACT_AUTH_FAILURES_PER_MINUTE", 60),
        max_header_bytes=_int_env("COUNTERFACT_MAX_HEADER_BYTES", 32 * 1024),
        header_timeout_seconds=_float_env("COUNTERFACT_HEADER_TIMEOUT_SECONDS", 10.0),
        keep_alive_seconds=_float_env("COUNTERFACT_KEEP_ALIVE_SECONDS", 5.0),
        limit_concurrency=_int_env("COUNTERFACT_LIMIT_CONCURRENCY", 1000),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, built from the environment on first use."""
    return settings_from_environment()
