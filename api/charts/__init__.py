"""Every Vega-Lite chart the API answers, built in one place from plain data.

The resources call these builders with their figures; nothing here imports a resource. Inputs are read
through small read-only protocols (any object with the fields: a response struct, a dataclass) or plain
values, so a chart cannot reach past what it draws.
"""

VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
