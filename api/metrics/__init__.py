"""``GET /metrics``: the service's Prometheus metrics."""
