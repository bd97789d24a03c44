"""The committed OpenAPI document is exactly what the app serves, and it documents every operation."""

from __future__ import annotations

import json
from pathlib import Path

from api.cli import openapi_document

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def test_the_committed_document_matches_what_the_app_generates() -> None:
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert committed == openapi_document(), "openapi/openapi.json drifted: run `make openapi` and commit it"


def test_every_operation_has_an_id_a_summary_a_tag_and_problem_responses() -> None:
    document = openapi_document()
    for path, item in document["paths"].items():  # type: ignore[attr-defined]
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            assert operation.get("operationId"), where
            assert operation.get("summary"), where
            assert operation.get("tags"), where
            problem = operation["responses"]["500"]["content"]["application/problem+json"]
            assert problem["schema"] == {"$ref": "#/components/schemas/Problem"}, where


def test_every_request_body_has_an_example() -> None:
    document = openapi_document()
    for path, item in document["paths"].items():  # type: ignore[attr-defined]
        for method, operation in item.items():
            body = operation.get("requestBody")
            if body is None:
                continue
            for media in body["content"].values():
                assert media.get("examples") or media["schema"].get("examples"), f"{method.upper()} {path}"
