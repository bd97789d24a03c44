"""The response examples in the committed OpenAPI document are real answers that fit their schemas.

They are captured from the running service (``python -m scripts.capture_examples``); here each one is
validated against the JSON Schema of its response in ``openapi/openapi.json`` (OpenAPI 3.1 schemas are
JSON Schema 2020-12), so neither the examples nor the document can drift from the other unnoticed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

DOCUMENT = json.loads((Path(__file__).resolve().parents[2] / "openapi" / "openapi.json").read_text())


def _json_responses() -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for operations in DOCUMENT["paths"].values():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                content = response.get("content", {}).get("application/json")
                if status.startswith("2") and content is not None:
                    found.append((operation["operationId"], status, content))
    return found


@pytest.mark.parametrize(("operation_id", "status", "content"), _json_responses(), ids=lambda v: str(v)[:40])
def test_every_success_response_carries_an_example_valid_against_its_schema(
    operation_id: str, status: str, content: dict[str, Any]
) -> None:
    assert content.get("examples"), f"{operation_id} {status} has no example"
    validator = jsonschema_rs.Draft202012Validator({**content["schema"], "components": DOCUMENT["components"]})
    for name, example in content["examples"].items():
        errors = [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(example["value"])]
        assert not errors, f"{operation_id} {status} example {name}: {errors[:3]}"
