"""A bound on JSON nesting depth, checked on the raw bytes before any decoder sees them; and UTF-8.

Decoders recurse once per level: a body of 100,000 ``[`` makes msgspec raise ``RecursionError``. Every
JSON body the API reads passes :func:`check_json_depth` first — Litestar's (through
:class:`DepthCheckedRequest`) and the hand-read ones (``api.http.request_bodies.decode_json_body``).

msgspec raises ``UnicodeDecodeError`` (not its ``DecodeError``) for bytes that are not UTF-8 inside a
JSON string (``{"kind": "a\xff"}``); both paths turn it into a 400 naming the body
(:func:`not_utf8`), never a 500.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Request
from litestar.exceptions import SerializationException

from api.http.errors import InvalidInput, invalid_field

MAX_JSON_DEPTH = 64
# A whole string (skipped: brackets inside it are text) or one bracket.
_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_OPENERS = frozenset(b"[{")


def check_json_depth(body: bytes, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse (400 naming ``body``) a JSON document whose arrays and objects nest deeper than ``limit``."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return  # cannot nest deeper than the number of openers: no scan needed
    depth = 0
    for token in _TOKENS.finditer(body):
        first = token.group()[0]
        if first == 0x22:  # a string
            continue
        if first in _OPENERS:
            depth += 1
            if depth > limit:
                raise invalid_field("body", f"nests arrays and objects deeper than {limit} levels")
        else:
            depth -= 1


def not_utf8(error: UnicodeDecodeError) -> InvalidInput:
    """The 400 for a JSON body that is not UTF-8 (RFC 8259 §8.1), naming the first bad byte's offset."""
    return invalid_field("body", f"is not UTF-8, as JSON text must be ({error.reason})")


class DepthCheckedRequest(Request[Any, Any, Any]):
    """Litestar's request, with the nesting depth of a JSON body checked before it is decoded."""

    async def json(self) -> Any:
        check_json_depth(await self.body())
        try:
            return await super().json()
        except UnicodeDecodeError as error:
            raise not_utf8(error) from error
        except SerializationException as error:
            raise invalid_field("body", f"is not valid JSON ({error.detail})") from error
