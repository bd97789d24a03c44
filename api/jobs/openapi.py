"""The schema of a job's ``result`` in the OpenAPI document: the union of the answers its tasks give.

``api.jobs`` names no resource, so :class:`~api.jobs.schemas.JobResult` is only a name; the app factory
hands this plugin the types the resources registered with their tasks (:class:`~api.jobs.tasks.TaskRegistry`),
and the document shows their union, in the order registered, where the name stands.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce
from operator import or_
from typing import TYPE_CHECKING, Any

from litestar.openapi.spec import Schema
from litestar.plugins import OpenAPISchemaPlugin
from litestar.typing import FieldDefinition

from api.jobs.schemas import JobResult

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator


class JobResultSchema(OpenAPISchemaPlugin):
    """Draws :class:`~api.jobs.schemas.JobResult` as the ``oneOf`` of the registered answer types."""

    def __init__(self, answers: Sequence[type]) -> None:
        if not answers:
            raise ValueError("no task registered the type of its answers")
        self.answers = tuple(answers)

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return field_definition.annotation is JobResult

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        union: Any = reduce(or_, self.answers)
        schema = schema_creator.for_field_definition(FieldDefinition.from_annotation(union))
        return schema if isinstance(schema, Schema) else Schema(one_of=[schema])
