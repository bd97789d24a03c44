"""Captured response examples for the OpenAPI document (see ``api.openapi.examples``).

Written by ``python -m scripts.capture_examples`` (``make examples``), which lives outside ``api``: it needs
``testkit``, which is never shipped.
"""
