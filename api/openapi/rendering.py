"""The OpenAPI document as rendered: Litestar's, with what typed client generators and fuzzers need.

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

**Closed request objects.** A msgspec Struct declared ``forbid_unknown_fields=True`` answers an unknown
field with 400; its schema says so with ``additionalProperties: false`` (without it the document promises
that extra properties are accepted, and a client or a fuzzer sending one is refused against the contract).

**Every constraint the server enforces.** Litestar writes a field typed ``Annotated[float, Meta(ge=0.0)] | None``
with the bounds beside its ``oneOf`` but skips a bound whose value is falsy (``ge=0.0``, ``gt=0.0``), and
drops the constraints of a list's items (``list[GeoName]``: each a non-empty string) — while msgspec still
enforces them, so schema-valid requests were refused with 400. Each Struct field's constraints are read back
from msgspec (``msgspec.inspect``) and any missing one is restored.

**Links from what a request creates to what acts on it.** The id in a created experiment, geo dataset or
job is the path parameter of the operations that read, change or delete it; OpenAPI ``links`` on the
creating response say so (``$response.body#/id`` → ``experiment_id``), so clients and stateful testers
(schemathesis) can follow a create with the calls that use its answer instead of guessing ids. An uploaded
dataset's id also goes into the ``dataset_id`` of the design requests' bodies (``requestBody`` links).

All five are applied as the document is rendered (:class:`RenderedOpenAPI`), for ``/schema/openapi.json``
and ``counterfact openapi`` alike.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
from litestar import Response, Router
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import OpenAPI, Operation, Paths

from api.http.errors import problem_response

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


def struct_classes(base: type[msgspec.Struct] = msgspec.Struct) -> Iterator[type[msgspec.Struct]]:
    """Every subclass of ``base`` defined in the ``api`` package, at any depth."""
    for subclass in base.__subclasses__():
        if subclass.__module__.startswith("api."):
            yield subclass
        yield from struct_classes(subclass)


def closed_struct_names() -> set[str]:
    """Names of the API's Structs that refuse unknown fields (a name two Structs share is left out)."""
    closed: dict[str, bool] = {}
    for struct in struct_classes():
        forbids = bool(struct.__struct_config__.forbid_unknown_fields)
        closed[struct.__name__] = forbids if struct.__name__ not in closed else False
    return {name for name, forbids in closed.items() if forbids}


def close_schemas(schemas: dict[str, Any], names: set[str]) -> None:
    """``additionalProperties: false`` on the object schemas named ``names`` (in place)."""
    for name in names & schemas.keys():
        if schemas[name].get("type") == "object":
            schemas[name]["additionalProperties"] = False


_NUMBER = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "lt": "exclusiveMaximum"}
_ARRAY = {"min_length": "minItems", "max_length": "maxItems"}
#: msgspec's constraints of each kind of type and the JSON Schema keywords that say the same.
CONSTRAINT_KEYWORDS: tuple[tuple[tuple[type[msgspec.inspect.Type], ...], dict[str, str]], ...] = (
    ((msgspec.inspect.FloatType, msgspec.inspect.IntType), _NUMBER),
    ((msgspec.inspect.StrType,), {"min_length": "minLength", "max_length": "maxLength", "pattern": "pattern"}),
    ((msgspec.inspect.ListType, msgspec.inspect.SetType, msgspec.inspect.VarTupleType), _ARRAY),
)
ARRAY_TYPES = (msgspec.inspect.ListType, msgspec.inspect.SetType, msgspec.inspect.VarTupleType)


def unwrapped(type_info: msgspec.inspect.Type) -> msgspec.inspect.Type:
    """The type inside any description or example wrapped around it."""
    while isinstance(type_info, msgspec.inspect.Metadata):
        type_info = type_info.type
    return type_info


def array_items(schema: dict[str, Any]) -> dict[str, Any] | None:
    """The ``items`` schema of an array schema, or of the array alternative of an optional array."""
    for candidate in (schema, *schema.get("oneOf", [])):
        if isinstance(candidate, dict) and isinstance(candidate.get("items"), dict):
            items: dict[str, Any] = candidate["items"]
            return items
    return None


def restore_constraints(schema: dict[str, Any], type_info: msgspec.inspect.Type) -> None:
    """Every constraint msgspec enforces on ``type_info`` (an optional one's too, and its items'), on
    ``schema`` where it is missing (in place). A union of several non-null types is left alone."""
    type_info = unwrapped(type_info)
    members = type_info.types if isinstance(type_info, msgspec.inspect.UnionType) else (type_info,)
    kept = [unwrapped(member) for member in members if not isinstance(member, msgspec.inspect.NoneType)]
    if len(kept) != 1:
        return
    member = kept[0]
    for kinds, keywords in CONSTRAINT_KEYWORDS:
        if isinstance(member, kinds):
            for constraint, keyword in keywords.items():
                value = getattr(member, constraint)
                if value is not None:
                    schema.setdefault(keyword, value)
    if isinstance(member, ARRAY_TYPES):
        items = array_items(schema)
        if items is not None:
            restore_constraints(items, member.item_type)


def restore_field_constraints(schemas: dict[str, Any], structs: list[type[msgspec.Struct]]) -> None:
    """Every constraint of every Struct field on its property's schema where Litestar left it out (in place)."""
    names = [struct.__name__ for struct in structs]
    for struct in structs:
        schema = schemas.get(struct.__name__)
        if schema is None or names.count(struct.__name__) > 1:
            continue
        info = msgspec.inspect.type_info(struct)
        assert isinstance(info, msgspec.inspect.StructType)
        for field in info.fields:
            prop = schema.get("properties", {}).get(field.encode_name)
            if isinstance(prop, dict):
                restore_constraints(prop, field.type)


@dataclasses.dataclass(frozen=True)
class Link:
    """Responses ``statuses`` of ``source`` name, at ``value``, the ``parameter`` of each of ``targets``."""

    source: str
    statuses: tuple[str, ...]
    parameter: str
    targets: tuple[str, ...]
    value: str = "$response.body#/id"
    in_body: bool = False  # ``parameter`` is a field of the target's JSON body, not a path parameter


EXPERIMENT_OPERATIONS = (
    "GetExperiment",
    "UpdateExperiment",
    "CreateAssignments",
    "GetAssignmentSummary",
    "ListAssignments",
    "CreateObservations",
    "CreateOutcomes",
    "PutChannelSpend",
    "GetExperimentResults",
    "GetCalibrationExport",
    "ListExperimentEvents",
    "DeleteExperiment",
)
JOB_OPERATIONS = ("GetJob", "CancelJob")
#: Every create and the operations its answer's id feeds (a job is created by any operation answering 202).
LINKS = (
    Link("CreateExperiment", ("200", "201"), "experiment_id", EXPERIMENT_OPERATIONS),
    Link("CreateExperimentFromDesign", ("200", "201"), "experiment_id", EXPERIMENT_OPERATIONS),
    Link("CreateExperimentFromPairDesign", ("200", "201"), "experiment_id", EXPERIMENT_OPERATIONS),
    Link(
        "CreateGeoDataset",
        ("201",),
        "dataset_id",
        ("GetGeoDataset", "GetGeoDatasetSeries", "ListGeoDatasetEvents", "DeleteGeoDataset"),
    ),
    Link(
        "CreateGeoDataset",
        ("201",),
        "dataset_id",
        ("GetGeoPower", "CreateMarketSelection", "CreateMatchedPairDesign"),
        in_body=True,
    ),
    Link("CreateMarketSelection", ("202",), "job_id", (*JOB_OPERATIONS, "CreateExperimentFromDesign")),
    Link("CreateMatchedPairDesign", ("202",), "job_id", (*JOB_OPERATIONS, "CreateExperimentFromPairDesign")),
    Link("GetGeoPower", ("202",), "job_id", JOB_OPERATIONS),
    Link("GetExperimentResults", ("202",), "job_id", JOB_OPERATIONS),
    Link("GetCalibrationExport", ("202",), "job_id", JOB_OPERATIONS),
)


def add_links(document: dict[str, Any], links: tuple[Link, ...] = LINKS) -> None:
    """Put each of ``links`` on its source's responses, named after the target operation (in place).

    A link whose source or target is not in the document is an error: the table must follow the API.
    """
    operations = {
        operation["operationId"]: operation
        for path_item in document.get("paths", {}).values()
        for operation in path_item.values()
        if isinstance(operation, dict) and "operationId" in operation
    }
    for link in links:
        unknown = {link.source, *link.targets} - operations.keys()
        if unknown:
            raise KeyError(f"links name operations the API does not have: {sorted(unknown)}")
        for status in link.statuses:
            response = operations[link.source]["responses"][status]
            for target in link.targets:
                where = "requestBody" if link.in_body else "parameters"
                response.setdefault("links", {})[target] = {
                    "operationId": target,
                    where: {link.parameter: link.value},
                }


#: Adds what applies to operations beyond their handlers (API keys' 401/403/429, ``Idempotency-Key``); the app
#: factory hands them over, so this module names no resource.
OperationDocumenter = Callable[[Operation], None]


def operations(paths: Paths | None) -> Iterator[Operation]:
    for path_item in (paths or {}).values():
        for name in ("get", "put", "post", "delete", "options", "head", "patch", "trace"):
            operation = getattr(path_item, name)
            if operation is not None:
                yield operation


@dataclasses.dataclass
class RenderedOpenAPI(OpenAPI):
    """The OpenAPI object Litestar builds, rendered with its operations documented, discriminators, parameters
    without ``null``, closed request objects and links."""

    operation_documenters: tuple[OperationDocumenter, ...] = ()

    @property
    def _exclude_fields(self) -> set[str]:
        return {*super()._exclude_fields, "operation_documenters"}

    def documented(self) -> OpenAPI:
        """A copy whose operations went through every documenter (rendering twice documents nothing twice)."""
        plain = OpenAPI(
            **{field.name: getattr(self, field.name) for field in dataclasses.fields(OpenAPI)},
        )
        if not self.operation_documenters:
            return plain
        plain.paths = copy.deepcopy(self.paths)
        for operation in operations(plain.paths):
            for document in self.operation_documenters:
                document(operation)
        return plain

    def to_schema(self) -> dict[str, Any]:
        document = self.documented().to_schema()
        schemas = document.get("components", {}).get("schemas", {})
        add_discriminators(document, schemas)
        parameters_without_null(document)
        close_schemas(schemas, closed_struct_names())
        restore_field_constraints(schemas, list(struct_classes()))
        add_links(document)
        return document


@dataclasses.dataclass
class RenderedOpenAPIConfig(OpenAPIConfig):
    """``OpenAPIConfig`` whose document is a :class:`RenderedOpenAPI`, its operations documented by
    ``operation_documenters``."""

    operation_documenters: tuple[OperationDocumenter, ...] = ()

    def to_openapi_schema(self) -> OpenAPI:
        openapi = super().to_openapi_schema()
        return RenderedOpenAPI(
            **{field.name: getattr(openapi, field.name) for field in dataclasses.fields(openapi)},
            operation_documenters=self.operation_documenters,
        )


async def missing_schema_page_as_problem(response: Response[Any]) -> Response[Any]:
    """``after_request`` of the ``/schema`` router: Litestar answers an unknown ``/schema/…`` page with an HTML
    404; every other error of the API is problem+json, so this one is too."""
    if response.status_code != 404:
        return response
    return problem_response(404, "No such page of the API's documentation: see /schema or /schema/openapi.json")


def schema_router() -> Router:
    """The router Litestar fills with the documentation pages (``openapi_router``), its 404 as problem+json."""
    return Router(
        path="/schema", route_handlers=[], include_in_schema=False, after_request=missing_schema_page_as_problem
    )
