"""How the OpenAPI document describes API keys: the bearer scheme, and 401/403 on every guarded operation."""

from __future__ import annotations

from litestar.enums import ParamType
from litestar.openapi.spec import (
    Components,
    Example,
    OpenAPIHeader,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    Schema,
    SecurityRequirement,
    SecurityScheme,
)

from api.auth.caller import WORKSPACE_HEADER
from api.http.errors import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_BASE
from api.openapi.problems import add_problem_response
from api.workspaces.repository import NAME_PATTERN

SCHEME_NAME = "apiKey"
SECURITY: list[SecurityRequirement] = [{SCHEME_NAME: []}]

SCHEME_DESCRIPTION = """\
An API key in `Authorization: Bearer <key>`, made with `counterfact keys create --name NAME --scopes SCOPE`
(`make serve` prints an admin key on its first start). Scopes: `read` (every `GET`, and the `POST`s that
only compute: holdout power, power curves, geo power), `write` (every other `POST`, `PUT` and `PATCH`),
`admin` (`DELETE`); `admin` implies `write`, which implies `read`. Each key may make a number of requests a
minute set by its scope (429 with `Retry-After` beyond it).

A key works in one workspace (`counterfact keys create --workspace NAME`; `default` without it): another
workspace's ids answer 404, and lists hold its workspace's items only. An admin key made with
`--all-workspaces` reads every workspace and writes into the one a request names with the header
`Counterfact-Workspace: NAME` (400 naming the header without it; with it, reads see that workspace only)."""

WORKSPACE_PARAMETER_NAME = "CounterfactWorkspace"
WORKSPACE_PARAMETER = Parameter(
    name=WORKSPACE_HEADER,
    param_in=ParamType.HEADER,
    required=False,
    schema=Schema(type=OpenAPIType.STRING, pattern=f"^{NAME_PATTERN.pattern}$", max_length=64),
    description="The workspace this request works in. Needed for writes by an admin key made with "
    "`--all-workspaces` (its reads then see that workspace only; without the header they see every one). A key "
    "of one workspace may send its own workspace's name only. 400 naming the header otherwise.",
)

_PROBLEMS = {
    401: (
        "unauthorized",
        "Unauthorized",
        "No `Authorization: Bearer <key>` header, or a key that is unknown, expired or revoked.",
    ),
    403: ("forbidden", "Forbidden", "The key is valid but lacks the scope this operation needs."),
}


def security_components() -> Components:
    """The components entry that declares the bearer scheme and the workspace header."""
    return Components(
        parameters={WORKSPACE_PARAMETER_NAME: WORKSPACE_PARAMETER},
        security_schemes={
            SCHEME_NAME: SecurityScheme(
                type="http", scheme="bearer", bearer_format="cf_<43 characters>", description=SCHEME_DESCRIPTION
            )
        },
    )


def add_auth_problems(operation: Operation) -> None:
    """Document 401 and 403 on an operation that requires a key (one whose ``security`` names the scheme)."""
    if not operation.security or not any(SCHEME_NAME in requirement for requirement in operation.security):
        return
    challenge: dict[str, OpenAPIHeader | Reference] = {
        "WWW-Authenticate": OpenAPIHeader(
            schema=Schema(type=OpenAPIType.STRING), description="The bearer challenge (RFC 6750)."
        )
    }
    for status, (slug, title, description) in _PROBLEMS.items():
        add_problem_response(operation, status, slug, title, description, headers=challenge)
    retry: dict[str, OpenAPIHeader | Reference] = {
        "Retry-After": OpenAPIHeader(schema=Schema(type=OpenAPIType.INTEGER), description="Seconds to wait.")
    }
    add_problem_response(
        operation,
        429,
        "too-many-requests",
        "Too many requests",
        "The key made more requests a minute than its scope allows (per service process); retry after "
        "`Retry-After` seconds.",
        headers=retry,
    )


_WORKSPACE_PROBLEM = (
    "The `Counterfact-Workspace` header names no workspace, another workspace than the key's, or is missing on a "
    "write by an all-workspaces key."
)


def add_workspace_header(operation: Operation) -> None:
    """Declare ``Counterfact-Workspace`` on every operation that requires a key, and its 400: an example added to
    the operation's own 400 when it has one, else a 400 of its own."""
    if not operation.security or not any(SCHEME_NAME in requirement for requirement in operation.security):
        return
    reference = Reference(ref=f"#/components/parameters/{WORKSPACE_PARAMETER_NAME}")
    operation.parameters = [*(operation.parameters or []), reference]
    bad_request = (operation.responses or {}).get("400")
    if not isinstance(bad_request, OpenAPIResponse) or not bad_request.content:
        add_problem_response(operation, 400, "invalid-input", "Invalid input", _WORKSPACE_PROBLEM)
        return
    problem = bad_request.content.get(PROBLEM_MEDIA_TYPE)
    if problem is None:
        return
    detail = f"{WORKSPACE_HEADER}: no workspace named 'brand-z'"
    example = {
        "type": PROBLEM_TYPE_BASE + "invalid-input",
        "title": "Invalid input",
        "status": 400,
        "detail": detail,
        "invalid_params": [{"name": WORKSPACE_HEADER, "reason": "no workspace named 'brand-z'"}],
    }
    problem.examples = {
        **(problem.examples or {}),
        "Unknown workspace": Example(summary=_WORKSPACE_PROBLEM, value=example),
    }
