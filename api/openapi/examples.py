"""Response examples in the OpenAPI document: real answers of the service, captured, then attached.

``api/examples/<operationId>.json`` holds ``{"<status>": {"summary": ..., "value": ...}}`` for an
operation; they are written by ``python -m scripts.capture_examples``, which runs the documented requests
against a throwaway database, so every example is something the service really answered (long lists
shortened). ``tests/contract/test_response_examples.py`` validates each against the committed
document's schema, so an example cannot drift from the types it illustrates.

Handlers take ``operation_class=ExampleOperation`` (or a subclass of it), whose ``__post_init__``
attaches the examples of its operation id to the JSON content of the matching responses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from litestar.openapi.spec import (
    Example,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Schema,
)

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"


@lru_cache(maxsize=1)
def response_examples() -> dict[str, dict[str, dict[str, Any]]]:
    """Operation id → status → ``{"summary", "value"}``."""
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(EXAMPLES_DIR.glob("*.json"))}


@dataclass
class VerbatimExample(Example):
    """An example whose value goes into the document as captured: Litestar's ``to_schema`` drops every
    ``None`` inside example values, which would turn each JSON ``null`` into a missing required field."""

    def to_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"summary": self.summary, "value": self.value}
        return {key: value for key, value in schema.items() if value is not None}


@dataclass
class ExampleOperation(Operation):
    """An operation whose JSON responses carry the captured examples of its operation id."""

    def __post_init__(self) -> None:
        for status, example in response_examples().get(self.operation_id or "", {}).items():
            response = (self.responses or {}).get(status)
            if not isinstance(response, OpenAPIResponse) or not response.content:
                continue
            media = response.content.get("application/json")
            if media is not None:
                media.examples = {"captured": VerbatimExample(summary=example["summary"], value=example["value"])}


@dataclass
class AcceptedOperation(ExampleOperation):
    """An operation that may answer ``202`` with a job: documents the ``Location`` header ``ResponseSpec`` cannot."""

    def __post_init__(self) -> None:
        super().__post_init__()
        accepted = (self.responses or {}).get("202")
        if isinstance(accepted, OpenAPIResponse):
            accepted.headers = {
                "Location": OpenAPIHeader(
                    schema=Schema(type=OpenAPIType.STRING),
                    description="Where to poll the job: `/v1/jobs/{id}`.",
                    required=True,
                )
            }


@dataclass
class KeptJobOperation(AcceptedOperation):
    """An operation that is always a job and answers ``200`` with the finished job of an identical request:
    documents that answer's ``Location``, ``Age`` and ``Last-Modified`` headers."""

    def __post_init__(self) -> None:
        super().__post_init__()
        answered = (self.responses or {}).get("200")
        if isinstance(answered, OpenAPIResponse):
            answered.headers = {
                "Location": OpenAPIHeader(
                    schema=Schema(type=OpenAPIType.STRING), description="The job: `/v1/jobs/{id}`.", required=True
                ),
                "Age": OpenAPIHeader(
                    schema=Schema(type=OpenAPIType.STRING),
                    description="Seconds since the job finished.",
                    required=True,
                ),
                "Last-Modified": OpenAPIHeader(
                    schema=Schema(type=OpenAPIType.STRING), description="When the job finished.", required=True
                ),
            }


def add_csv_answer(operation: Operation, description: str) -> None:
    """Document ``text/csv`` beside the JSON of the operation's ``200`` (an export the caller may ask for)."""
    ok = (operation.responses or {}).get("200")
    if isinstance(ok, OpenAPIResponse) and ok.content:
        ok.content["text/csv"] = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, description=description))


@dataclass
class CsvExportOperation(ExampleOperation):
    """An operation whose ``200`` is JSON or, with ``format=csv``, the whole table as ``text/csv``."""

    def __post_init__(self) -> None:
        super().__post_init__()
        add_csv_answer(self, "With `format=csv`: every row, streamed, a header line first.")


@dataclass
class AcceptedCsvOperation(AcceptedOperation):
    """An operation that may answer ``202`` with a job and whose ``200`` may also be ``text/csv``."""

    def __post_init__(self) -> None:
        super().__post_init__()
        add_csv_answer(self, "With `media=csv` or `Accept: text/csv`: the rows as CSV, a header line first.")
