"""The OpenAPI operation of a JSON-or-CSV upload: its request body, which Litestar cannot infer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from litestar.openapi.spec import Example, OpenAPIFormat, OpenAPIMediaType, OpenAPIType, RequestBody, Schema

from api.http.request_bodies import CSV_MEDIA_TYPE
from api.openapi.examples import ExampleOperation


def json_or_csv_operation(
    description: str,
    json_schema: Schema,
    json_examples: Mapping[str, Example],
    csv_description: str,
    csv_examples: Mapping[str, Example],
) -> type[ExampleOperation]:
    """The ``operation_class`` of a JSON-or-CSV upload: its request body, which Litestar cannot infer."""
    request_body = RequestBody(
        required=True,
        description=description,
        content={
            "application/json": OpenAPIMediaType(schema=json_schema, examples=dict(json_examples)),
            CSV_MEDIA_TYPE: OpenAPIMediaType(
                schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY, description=csv_description),
                examples=dict(csv_examples),
            ),
        },
    )

    @dataclass
    class UploadOperation(ExampleOperation):
        def __post_init__(self) -> None:
            super().__post_init__()
            self.request_body = request_body

    return UploadOperation
