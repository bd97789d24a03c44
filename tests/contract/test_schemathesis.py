"""Property-based contract tests: generated requests for every operation in the committed document.

Requests carry an admin key, so they reach every handler, and a fresh Idempotency-Key
(:func:`as_a_client_would`). Every schemathesis check
runs but what ``schemathesis.toml`` turns off, with its reasons (``positive_data_acceptance``, and
``use_after_free`` on the audit trails, which outlive what they record): no request may produce a 5xx,
every response must conform to the document (status, content type, headers, schema), schema-violating
requests must be refused, a deleted resource must be gone, ``Allow`` must list the methods, and so on.
``bench/bench_fuzz.py`` runs the same checks over many more requests.

The stateless test sends each operation's generated requests on their own; the stateful one follows the
document's ``links`` (a create, then the operations on what it created: read, change, results, delete).
Both are seeded and derandomized, so CI sees the same requests every run.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi import stateful

ROOT = Path(__file__).resolve().parents[2]
MAX_IDEMPOTENCY_KEY = 200
schema = schemathesis.openapi.from_path(
    ROOT / "openapi" / "openapi.json", config=SchemathesisConfig.from_path(ROOT / "schemathesis.toml")
)


def as_a_client_would(case: schemathesis.Case[Any], admin_headers: dict[str, str]) -> None:
    """The admin key in place of the bearer token schemathesis made up, and a fresh Idempotency-Key in place
    of a valid one it generated, as a client sends a new key with each new request.

    A case whose ``Authorization`` is missing or malformed tests the 401, and one with an invalid
    Idempotency-Key its 400: both are left alone. Generated keys repeat ("0", the example), so without
    this most creates were replays of an earlier answer or 422s for a reused key (behaviour
    tests/api/test_idempotency.py covers), and a replayed 201 names a dataset a later scenario deleted.
    """
    if case.headers is None:
        return
    if str(case.headers.get("Authorization", "")).startswith("Bearer "):
        case.headers.update(admin_headers)
    if 1 <= len(str(case.headers.get("Idempotency-Key", ""))) <= MAX_IDEMPOTENCY_KEY:
        case.headers["Idempotency-Key"] = str(uuid.uuid4())


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_operation_conforms_to_the_committed_document(
    case: schemathesis.Case[Any], live_server_url: str, admin_headers: dict[str, str]
) -> None:
    as_a_client_would(case, admin_headers)
    case.call_and_validate(base_url=live_server_url)


def test_stateful_links_conform_to_the_committed_document(
    live_server_url: str, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # schemathesis starts scenarios only from operations its heuristic expects to succeed on random data, and
    # it reads CreateExperiment's optional `dataset_id` as a "Dataset" no operation makes (ours is a
    # GeoDataset): without this, no scenario created an experiment, and none of the ten operations linked
    # from it ran.
    likely_root = stateful.is_likely_root_transition
    monkeypatch.setattr(
        stateful,
        "is_likely_root_transition",
        lambda operation, *rest: operation.label == "POST /v1/experiments" or likely_root(operation, *rest),
    )

    class Scenarios(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: schemathesis.Case[Any]) -> None:
            as_a_client_would(case, admin_headers)

        def get_call_kwargs(self, case: schemathesis.Case[Any]) -> dict[str, Any]:
            return {"base_url": live_server_url}

    Scenarios.run(
        settings=settings(
            max_examples=80,
            stateful_step_count=10,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
    )
