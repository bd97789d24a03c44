"""Property-based contract test: generated requests for every operation in the committed document.

Requests carry an admin key, so they reach every handler (schemathesis still drops it in some negative
cases, to see the documented 401). No request may produce a 5xx, and every response must conform to the
document (status, content type, headers, schema).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

SPEC = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
schema = schemathesis.openapi.from_path(SPEC)


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_operation_conforms_to_the_committed_document(
    case: schemathesis.Case[Any], live_server_url: str, admin_headers: dict[str, str]
) -> None:
    case.call_and_validate(
        base_url=live_server_url,
        headers=admin_headers,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
