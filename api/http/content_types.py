"""Refuse request bodies whose content type an operation does not read (415)."""

from __future__ import annotations

from typing import Any

from litestar import Request

from api.http.errors import UnsupportedMediaType

JSON_ONLY = ("application/json",)


async def require_declared_content_type(request: Request[Any, Any, Any]) -> None:
    """``before_request`` hook: a write with a body must use one of the handler's ``accepts`` types.

    Handlers declare ``opt={"accepts": (...)}``; the default is JSON only.
    """
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    accepts: tuple[str, ...] = request.route_handler.opt.get("accepts", JSON_ONLY)
    content_type = request.headers.get("content-type")
    if content_type is None:
        if request.headers.get("content-length", "0") == "0" and "transfer-encoding" not in request.headers:
            return
        raise UnsupportedMediaType(f"A Content-Type header is required; this operation reads {', '.join(accepts)}")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in accepts and not (media_type.endswith("+json") and "application/json" in accepts):
        raise UnsupportedMediaType(f"Content-Type {media_type!r} is not read here; send {', '.join(accepts)}")
