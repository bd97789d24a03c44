"""One structured log line per request, and a request id echoed in ``X-Request-ID``."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = b"x-request-id"
logger = logging.getLogger("counterfact.access")


class JsonLogFormatter(logging.Formatter):
    """Formats records as one JSON object a line, with any ``extra`` fields merged in."""

    _STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update({k: v for k, v in record.__dict__.items() if k not in self._STANDARD})
        if record.exc_info:
            payload["stack"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure_logging(level: str) -> None:
    """Send every counterfact log record to stderr as JSON lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger("counterfact")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def _valid_request_id(raw: bytes) -> bool:
    return 0 < len(raw) <= 128 and all(33 <= b < 127 for b in raw)


class TimedResponse:
    """The ``send`` of an HTTP request's app: passes the response on, adding ``headers`` to its start, and notes
    its status (500 until the app sends one: an app that failed first) and the seconds since the request came."""

    def __init__(self, send: Send, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        self._send = send
        self._headers = list(headers)
        self.started = time.perf_counter()
        self.status = 500

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            if self._headers:
                message["headers"] = [*message.get("headers", []), *self._headers]
        await self._send(message)

    def seconds(self) -> float:
        return time.perf_counter() - self.started


def request_logging_middleware(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: assign or accept a request id, time the request, log it once."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(REQUEST_ID_HEADER, b"")
        request_id = incoming.decode() if _valid_request_id(incoming) else uuid.uuid4().hex
        response = TimedResponse(send, [(REQUEST_ID_HEADER, request_id.encode())])
        try:
            await app(scope, receive, response.send)
        finally:
            if logger.isEnabledFor(logging.INFO):
                logger.info(
                    "request",
                    extra={
                        "method": scope.get("method"),
                        "path": scope["path"],
                        "status": response.status,
                        "duration_ms": round(response.seconds() * 1000, 3),
                        "request_id": request_id,
                    },
                )

    return middleware
