"""Every chart the API returns, also as an image: ``?format=svg`` or ``?format=png`` for slides and e-mails.

A response with a ``chart`` (a Vega-Lite v5 spec: the power curve, holdout results' forest plot, geo
results' observed vs counterfactual series, geo power and market-selection curves) answers with that
chart rendered by ``vl-convert`` (Vega's own renderer compiled to a library: no browser, no Node.js)
instead of the JSON body when ``format`` asks for it. Rendering is CPU work (about 0.1-0.3 s, 2 s for the
first in a process), so it runs in a worker thread, never on the event loop.

Handlers take ``operation_class=ChartOperation`` (or ``AcceptedChartOperation`` for those that may
answer ``202``), which documents the image media types beside the JSON of their ``200``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import vl_convert
from litestar import Response
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, Schema
from litestar.params import QueryParameter

from api.openapi.examples import AcceptedOperation, ExampleOperation

ChartFormat = Literal["json", "svg", "png"]
IMAGE_MEDIA_TYPES = {"svg": "image/svg+xml", "png": "image/png"}
PNG_SCALE = 2.0  # pixels per CSS pixel: sharp on high-density screens and in slides

ChartFormatParameter = Annotated[
    ChartFormat,
    QueryParameter(
        description="`json` (default): the JSON body, its `chart` a Vega-Lite v5 spec. `svg` or `png`: that chart "
        "rendered as an image (`image/svg+xml`, `image/png`) instead of the body."
    ),
]


def render_chart(spec: dict[str, Any], image_format: Literal["svg", "png"]) -> bytes:
    """The Vega-Lite ``spec`` as an SVG document or a PNG image (blocking: call it in a thread)."""
    if image_format == "svg":
        svg: str = vl_convert.vegalite_to_svg(spec)
        return svg.encode()
    png: bytes = vl_convert.vegalite_to_png(spec, scale=PNG_SCALE)
    return png


async def chart_image(spec: dict[str, Any], image_format: Literal["svg", "png"]) -> Response[Any]:
    """The response carrying ``spec`` rendered as ``image_format``, rendered off the event loop."""
    image = await asyncio.to_thread(render_chart, spec, image_format)
    return Response(image, media_type=IMAGE_MEDIA_TYPES[image_format])


def add_chart_images(operation: Operation) -> None:
    """Document the images beside the JSON of the operation's ``200``."""
    ok = (operation.responses or {}).get("200")
    if not isinstance(ok, OpenAPIResponse) or not ok.content:
        return
    for image_format, media_type in IMAGE_MEDIA_TYPES.items():
        ok.content[media_type] = OpenAPIMediaType(
            schema=Schema(
                type=OpenAPIType.STRING,
                format=OpenAPIFormat.BINARY,
                description=f"With `format={image_format}`: the response's chart as {image_format.upper()}.",
            )
        )


@dataclass
class ChartOperation(ExampleOperation):
    """An operation whose ``200`` carries a chart, also answered as an image (``?format=svg|png``)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        add_chart_images(self)


@dataclass
class AcceptedChartOperation(AcceptedOperation):
    """An operation that may answer ``202`` with a job and whose ``200`` carries a chart, also as an image."""

    def __post_init__(self) -> None:
        super().__post_init__()
        add_chart_images(self)
