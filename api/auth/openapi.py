"""How the OpenAPI document describes API keys: the bearer scheme, and 401/403 on every guarded operation."""

from __future__ import annotations

from litestar.openapi.spec import (
    Components,
    OpenAPIHeader,
    OpenAPIType,
    Operation,
    Reference,
    Schema,
    SecurityRequirement,
    SecurityScheme,
)

from api.openapi.problems import add_problem_response

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

_PROBLEMS = {
    401: (
        "unauthorized",
        "Unauthorized",
        "No `Authorization: Bearer <key>` header, or a key that is unknown, expired or revoked.",
    ),
    403: ("forbidden", "Forbidden", "The key is valid but lacks the scope this operation needs."),
}


def security_components() -> Components:
    """The components entry that declares the bearer scheme."""
    return Components(
        security_schemes={
            SCHEME_NAME: SecurityScheme(
                type="http", scheme="bearer", bearer_format="cf_<43 characters>", description=SCHEME_DESCRIPTION
            )
        }
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
