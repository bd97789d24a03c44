"""Request bodies read by hand: operations that take either JSON or a streamed CSV body.

Litestar decodes a declared ``data`` parameter itself; an operation that also streams ``text/csv``
reads the JSON alternative with these instead, with the same caps and problem documents.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeVar

import msgspec
from litestar import Request
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_413_REQUEST_ENTITY_TOO_LARGE

from api.errors import invalid_field
from api.json_depth import check_json_depth

CSV_MEDIA_TYPE = "text/csv"
T = TypeVar("T")


def media_type(request: Request[Any, Any, Any]) -> str:
    """The request's media type, without parameters, lower case."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_capped_body(request: Request[Any, Any, Any]) -> bytes:
    """The whole body, refused with 413 once it passes the app's JSON body cap."""
    app_limit = request.app.request_max_body_size
    limit = app_limit if isinstance(app_limit, int) else None
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if limit is not None and size > limit:
            raise HTTPException(
                status_code=HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                detail=f"A JSON body may be at most {limit} bytes; send large uploads as text/csv",
            )
        parts.append(chunk)
    return b"".join(parts)


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
