"""The OpenAPI document as rendered: examples, problem responses, what client generators need."""
