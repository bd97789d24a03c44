"""Refuse query strings the document does not allow but the parsing would quietly accept (400).

A ``/v1`` operation reads the query parameters it documents and no other: an unknown one (a typo such as
``confidence=0.9``, or ``=null``) is refused as an unknown body field is. Every query parameter of the API
is a single value. Litestar reads a parameter given twice as one of its
values, and msgspec reads the word ``null`` as "absent" for an optional number or enum, so
``?status=null&status=null`` listed every experiment (schemathesis' ``negative_data_rejection``). A
repeated parameter, or ``null`` for a parameter that is not a string, is refused naming the parameter.
"""

from __future__ import annotations

import types
import typing
from collections import Counter
from typing import Any

from litestar import Request
from litestar.enums import ParamType
from litestar.params import ParameterKwarg

from api.http.errors import invalid_field


def takes_strings(annotation: Any) -> bool:
    """Whether a parameter typed ``annotation`` (optional or not) reads any string as itself."""
    is_union = isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union
    return str in (typing.get_args(annotation) if is_union else (annotation,))


def query_parameter_types(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The handler's query parameters by the name they have in the query string, and their types."""
    found: dict[str, Any] = {}
    handler = request.route_handler
    not_query = set(handler.resolve_dependencies()) | set(request.path_params)
    for name, field in handler.parsed_fn_signature.parameters.items():
        kwarg = field.kwarg_definition
        if (
            isinstance(kwarg, ParameterKwarg)
            and kwarg.param_type is ParamType.QUERY
            and kwarg.header is None
            and kwarg.cookie is None
            and name not in not_query
        ):
            found[kwarg.query or name] = field.annotation
    return found


def refuse_ambiguous_query(request: Request[Any, Any, Any]) -> None:
    """400 naming a query parameter given more than once, unknown to a ``/v1`` operation, or ``null`` for a
    parameter that is not a string."""
    if request.method == "OPTIONS":  # a CORS preflight carries the real request's query string
        return
    pairs = list(request.query_params.multi_items())
    types_by_name = query_parameter_types(request)
    counts = Counter(name for name, _ in pairs)
    repeated = [name for name, count in counts.items() if count > 1 and name in types_by_name]
    if repeated:
        raise invalid_field(repeated[0], "is given more than once; it takes one value")
    if str(request.scope["path"]).startswith("/v1/"):
        unknown = [name for name, _ in pairs if name not in types_by_name]
        if unknown:
            raise invalid_field(unknown[0] or "(empty name)", "is not a query parameter of this operation")
    for name, value in pairs:
        if value == "null" and name in types_by_name and not takes_strings(types_by_name[name]):
            raise invalid_field(name, "null is not one of its values; leave the parameter out instead")
