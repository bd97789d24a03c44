"""Captured response examples for the OpenAPI document (see ``api.openapi.examples``)."""
