"""The OpenAPI document as rendered: Litestar's, with two touches that typed client generators need.

**Discriminators on the unions of tagged structs**, so generators can tell the members apart.

Every union the API answers or accepts is a union of msgspec Structs tagged by one field (``kind``:
``holdout`` / ``geo`` experiments and results, ``proportion`` / ``mean`` metrics, the answers a job
holds). Litestar writes such a union as a plain ``oneOf`` of ``$ref``s; OpenAPI 3.1's
``discriminator`` (``propertyName`` plus a ``mapping`` from each tag to its schema) is what typed
generators (openapi-generator, orval, Kiota) read to pick the member without trying each in turn.

A discriminator goes on every ``oneOf`` whose ``$ref`` members all declare a ``const`` for one same
property; a ``null`` member (an optional union) is left beside them.

**Parameters without ``null``.** An optional query or header parameter is typed ``X | None`` in the
handler, which Litestar writes as ``oneOf: [X, null]`` (or an ``enum`` with ``null``). A query string
cannot carry a JSON ``null``: an absent parameter is how a request says nothing, and the ``null``
alternative only made generators invent types such as ``GetExperimentResultsMethodType2Type1``.

Both are applied as the document is rendered (:class:`RenderedOpenAPI`), for ``/schema/openapi.json``
and ``counterfact openapi`` alike.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import OpenAPI

SCHEMA_PREFIX = "#/components/schemas/"
NULL_SCHEMA = {"type": "null"}


def tag_property(members: list[dict[str, Any]], schemas: dict[str, Any]) -> str | None:
    """The one property every referenced schema fixes with a ``const`` (the msgspec tag field), if any."""
    common: set[str] | None = None
    for member in members:
        schema = schemas.get(member["$ref"].removeprefix(SCHEMA_PREFIX), {})
        constant = {name for name, spec in schema.get("properties", {}).items() if "const" in spec}
        common = constant if common is None else common & constant
    return next(iter(common)) if common is not None and len(common) == 1 else None


def discriminator_for(one_of: list[Any], schemas: dict[str, Any]) -> dict[str, Any] | None:
    """``{"propertyName", "mapping"}`` for a ``oneOf`` of tagged structs, else ``None``."""
    members = [member for member in one_of if member != NULL_SCHEMA]
    if len(members) < 2 or not all(isinstance(member, dict) and "$ref" in member for member in members):
        return None
    name = tag_property(members, schemas)
    if name is None:
        return None
    mapping = {
        schemas[member["$ref"].removeprefix(SCHEMA_PREFIX)]["properties"][name]["const"]: member["$ref"]
        for member in members
    }
    return {"propertyName": name, "mapping": mapping}


def add_discriminators(node: Any, schemas: dict[str, Any]) -> None:
    """Add a discriminator to every union of tagged structs under ``node`` (in place)."""
    if isinstance(node, dict):
        one_of = node.get("oneOf")
        if isinstance(one_of, list) and "discriminator" not in node:
            discriminator = discriminator_for(one_of, schemas)
            if discriminator is not None:
                node["discriminator"] = discriminator
        for value in node.values():
            add_discriminators(value, schemas)
    elif isinstance(node, list):
        for value in node:
            add_discriminators(value, schemas)


def without_null(schema: dict[str, Any]) -> None:
    """Drop the ``null`` alternative of a parameter's schema (in place)."""
    one_of = schema.get("oneOf")
    if isinstance(one_of, list) and NULL_SCHEMA in one_of:
        rest = [member for member in one_of if member != NULL_SCHEMA]
        if len(rest) == 1 and isinstance(rest[0], dict) and "$ref" not in rest[0]:
            del schema["oneOf"]
            schema.update(rest[0])
    if isinstance(schema.get("enum"), list):
        schema["enum"] = [value for value in schema["enum"] if value is not None]
    types = schema.get("type")
    if isinstance(types, list) and "null" in types:
        rest_types = [kind for kind in types if kind != "null"]
        schema["type"] = rest_types[0] if len(rest_types) == 1 else rest_types


def parameters_without_null(document: dict[str, Any]) -> None:
    """Every operation's parameters without their ``null`` alternative (in place)."""
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if isinstance(parameter, dict) and isinstance(parameter.get("schema"), dict):
                    without_null(parameter["schema"])


class RenderedOpenAPI(OpenAPI):
    """The OpenAPI object Litestar builds, rendered with discriminators and parameters without ``null``."""

    def to_schema(self) -> dict[str, Any]:
        document = super().to_schema()
        add_discriminators(document, document.get("components", {}).get("schemas", {}))
        parameters_without_null(document)
        return document


@dataclasses.dataclass
class RenderedOpenAPIConfig(OpenAPIConfig):
    """``OpenAPIConfig`` whose document is a :class:`RenderedOpenAPI`."""

    def to_openapi_schema(self) -> OpenAPI:
        openapi = super().to_openapi_schema()
        return RenderedOpenAPI(**{field.name: getattr(openapi, field.name) for field in dataclasses.fields(openapi)})
