"""How the OpenAPI document describes ``Idempotency-Key`` on the operations that honour it."""

from __future__ import annotations

from litestar.enums import ParamType
from litestar.openapi.spec import OpenAPIType, Operation, Parameter, Schema

from api.idempotency.middleware import IDEMPOTENT_OPERATIONS, MAX_KEY_LENGTH, TRANSACTIONAL_OPERATIONS
from api.openapi.problems import add_problem_response

PARAMETER = Parameter(
    name="Idempotency-Key",
    param_in=ParamType.HEADER,
    required=False,
    schema=Schema(type=OpenAPIType.STRING, min_length=1, max_length=MAX_KEY_LENGTH),
    description="Makes a retry safe: the same key with the same path, query and body within 24 h gets the first "
    "answer again (with `Idempotent-Replayed: true`) and nothing is stored twice; the same key with another path, "
    "query or body is 422. Keys belong to the API key that sent them; deleting an experiment or a dataset deletes "
    "the answers stored about it.",
)


def add_idempotency_docs(operation: Operation) -> None:
    """Declare the header, 409 (the first request is still running) and 422 (reused with another body).

    The operations with their own, transactional mechanism declare the header themselves (and wait for
    a first request still running instead of answering 409): only 422 is added to them.
    """
    if operation.operation_id not in IDEMPOTENT_OPERATIONS | TRANSACTIONAL_OPERATIONS:
        return
    if operation.operation_id in IDEMPOTENT_OPERATIONS:
        operation.parameters = [*(operation.parameters or []), PARAMETER]
        if "409" not in (operation.responses or {}):
            add_problem_response(
                operation, 409, "conflict", "Conflict", "A request with this `Idempotency-Key` is still running."
            )
    add_problem_response(
        operation,
        422,
        "unprocessable-content",
        "Unprocessable content",
        "The `Idempotency-Key` was already used with another request (path, query or body).",
    )
