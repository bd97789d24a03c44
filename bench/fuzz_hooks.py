"""schemathesis hooks for ``bench/bench_fuzz.py`` (loaded through ``SCHEMATHESIS_HOOKS``): requests as a
client sends them, and scenarios that start by creating an experiment. The same as
``tests/contract/test_schemathesis.py`` does in CI.

* A fresh Idempotency-Key in place of a valid one schemathesis generated: generated keys repeat ("0",
  the document's example), so most creates were replays of an earlier answer or 422s for a reused key
  (tests/api/test_idempotency.py covers those), and a replayed 201 names a dataset a later scenario
  deleted. An invalid key (empty, too long) is left alone: that case tests the 400.
* schemathesis starts scenarios only from operations its heuristic expects to succeed on random data, and
  reads CreateExperiment's optional ``dataset_id`` as a "Dataset" no operation makes (ours is a
  GeoDataset): without the patch below no scenario created an experiment.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import schemathesis
from schemathesis.specs.openapi import stateful

MAX_IDEMPOTENCY_KEY = 200
_likely_root: Callable[..., bool] = stateful.is_likely_root_transition


def _likely_root_or_experiment(operation: Any, *rest: Any) -> bool:
    return operation.label == "POST /v1/experiments" or _likely_root(operation, *rest)


setattr(stateful, "is_likely_root_transition", _likely_root_or_experiment)  # noqa: B010 (mypy: another signature)


@schemathesis.hook
def before_call(context: Any, case: schemathesis.Case[Any], kwargs: dict[str, Any]) -> None:
    if case.headers is not None and 1 <= len(str(case.headers.get("Idempotency-Key", ""))) <= MAX_IDEMPOTENCY_KEY:
        case.headers["Idempotency-Key"] = str(uuid.uuid4())
