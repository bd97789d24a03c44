"""Request bodies read by hand: operations that take either JSON or a streamed CSV body.

Litestar decodes a declared ``data`` parameter itself, whole. An upload that may also be a CSV of
millions of lines must stream instead, so every JSON-or-CSV operation follows one pattern:

* the handler declares ``opt={"accepts": JSON_OR_CSV}`` (``api.http.content_types`` refuses any other type),
  ``request_max_body_size=None`` (Litestar must not cap it with a limit fixed at import time) and an
  ``upload: NamedDependency[Upload]`` parameter (``api.dependencies.provide_upload``);
* it streams :meth:`Upload.csv_stream` when :attr:`Upload.is_csv`, else decodes :meth:`Upload.json_body`
  with :func:`decode_json_body`;
* both are capped by the settings the app was created with: ``max_stream_bytes`` for CSV, ``max_body_bytes``
  for JSON (413 problem documents; ``0`` lifts a cap, as it does for Litestar's own bodies);
* its ``operation_class`` is :func:`json_or_csv_operation`, which documents both request bodies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from litestar import Request
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_413_REQUEST_ENTITY_TOO_LARGE

from api.http.errors import invalid_field
from api.http.json_depth import check_json_depth, not_utf8
from api.settings import Settings

CSV_MEDIA_TYPE = "text/csv"
JSON_OR_CSV = ("application/json", CSV_MEDIA_TYPE)
T = TypeVar("T")


def media_type(request: Request[Any, Any, Any]) -> str:
    """The request's media type, without parameters, lower case."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def capped_stream(request: Request[Any, Any, Any], limit: int, refusal: str) -> AsyncIterator[bytes]:
    """The body's chunks as they arrive, refused with 413 (``refusal``) once more than ``limit`` bytes are
    announced or received (``limit`` 0: no cap)."""

    def too_large() -> HTTPException:
        return HTTPException(status_code=HTTP_413_REQUEST_ENTITY_TOO_LARGE, detail=refusal)

    announced = request.content_length
    if limit and announced is not None and announced > limit:
        raise too_large()
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if limit and size > limit:
            raise too_large()
        yield chunk


@dataclass(frozen=True)
class Upload:
    """The body of a JSON-or-CSV operation, with the caps of the settings the app was created with."""

    request: Request[Any, Any, Any]
    settings: Settings

    @property
    def is_csv(self) -> bool:
        return media_type(self.request) == CSV_MEDIA_TYPE

    def csv_stream(self) -> AsyncIterator[bytes]:
        """The CSV body, streamed; 413 past ``max_stream_bytes``."""
        limit = self.settings.max_stream_bytes
        return capped_stream(self.request, limit, f"A CSV body may be at most {limit} bytes")

    async def json_body(self) -> bytes:
        """The whole JSON body; 413 past ``max_body_bytes``."""
        limit = self.settings.max_body_bytes
        refusal = f"A JSON body may be at most {limit} bytes; send large uploads as text/csv"
        return b"".join([chunk async for chunk in capped_stream(self.request, limit, refusal)])


def decode_json_body(body: bytes, type: type[T]) -> T:
    """Decode and validate a JSON body; a 400 names the offending path (``outcomes[3].value``)."""
    check_json_depth(body)
    try:
        return msgspec.json.decode(body, type=type)
    except msgspec.ValidationError as exc:
        message = str(exc)
        path = "body"
        if "at `$" in message:
            path = message.split("at `$", 1)[1].split("`", 1)[0].lstrip(".") or "body"
        raise invalid_field(path, message.split(" - at `$", 1)[0]) from exc
    except msgspec.DecodeError as exc:
        raise invalid_field("body", f"is not valid JSON ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise not_utf8(exc) from exc


async def complete_lines(chunks: AsyncIterator[bytes], *, max_line_bytes: int) -> AsyncIterator[list[bytes]]:
    """The lines of a streamed body (without their ``\\n``), one list per chunk that completes some.

    The last line need not end with a newline. A line that grows past ``max_line_bytes`` is refused
    with a 400 naming it as soon as it does, so a body without newlines costs linear time and bounded
    memory rather than re-scanning an ever longer buffer.
    """
    buffer = b""
    line_number = 1
    async for chunk in chunks:
        if not chunk:
            continue
        if b"\n" not in chunk:
            buffer += chunk
            if len(buffer) > max_line_bytes:
                raise invalid_field(f"line {line_number}", f"is longer than {max_line_bytes} bytes")
            continue
        lines = (buffer + chunk).split(b"\n")
        buffer = lines.pop()
        if len(buffer) > max_line_bytes:
            raise invalid_field(f"line {line_number + len(lines)}", f"is longer than {max_line_bytes} bytes")
        line_number += len(lines)
        yield lines
    if buffer:
        yield [buffer]


async def line_batches(
    chunks: AsyncIterator[bytes], *, batch_lines: int, max_line_bytes: int
) -> AsyncIterator[tuple[int, list[bytes]]]:
    """``(number of the first line, lines)`` in batches of at most ``batch_lines``, from line 1 (the header).

    Blank lines at the very end of the body are dropped. So that this holds across batches, a batch is
    never cut just after blank lines while more of the body may follow; blank lines inside the body are
    passed on, for the parser to refuse.
    """
    pending: list[bytes] = []
    first = 1
    async for lines in complete_lines(chunks, max_line_bytes=max_line_bytes):
        pending.extend(lines)
        while len(pending) > batch_lines:
            cut = batch_lines
            while cut > 0 and not pending[cut - 1].rstrip(b"\r"):
                cut -= 1
            if cut == 0:
                if len(pending) < 4 * batch_lines:
                    break  # only blank lines so far: wait for what follows them
                cut = batch_lines  # a flood of blank lines: pass them on (they will be refused)
            yield first, pending[:cut]
            pending = pending[cut:]
            first += cut
    while pending and not pending[-1].rstrip(b"\r"):
        pending.pop()
    if pending:
        yield first, pending
