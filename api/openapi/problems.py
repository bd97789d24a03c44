"""Problem responses added to generated operations, for behaviour applied once outside the handlers: API
keys (``api.auth``) and ``Idempotency-Key`` (``api.idempotency``), whose documenters the app factory hands
to :class:`api.openapi.rendering.RenderedOpenAPIConfig`."""

from __future__ import annotations

from litestar.openapi.spec import Example, OpenAPIHeader, OpenAPIMediaType, OpenAPIResponse, Operation, Reference

from api.http.errors import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_BASE


def add_problem_response(
    operation: Operation,
    status: int,
    slug: str,
    title: str,
    description: str,
    headers: dict[str, OpenAPIHeader | Reference] | None = None,
) -> None:
    """Declare a problem+json ``status`` on ``operation``, with the schema its 500 response already uses."""
    responses = operation.responses if operation.responses is not None else {}
    server_error = responses.get("500")
    if not isinstance(server_error, OpenAPIResponse) or not server_error.content:
        return
    example = {"type": PROBLEM_TYPE_BASE + slug, "title": title, "status": status, "detail": description}
    responses[str(status)] = OpenAPIResponse(
        description=description,
        content={
            PROBLEM_MEDIA_TYPE: OpenAPIMediaType(
                schema=server_error.content[PROBLEM_MEDIA_TYPE].schema,
                examples={title: Example(summary=title, value=example)},
            )
        },
        headers=headers,
    )
    operation.responses = responses
