"""Request bodies read by hand: operations that take either JSON or a streamed CSV body.

Litestar decodes a declared ``data`` parameter itself; an operation that also streams ``text/csv``
reads the JSON alternative with these instead, with the same caps and problem documents.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from litestar import Request
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_413_REQUEST_ENTITY_TOO_LARGE

from api.errors import invalid_field

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
