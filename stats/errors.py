"""Errors raised by the numerical core when a problem has no valid answer."""

from __future__ import annotations


class InvalidProblem(ValueError):
    """The inputs describe a problem that has no valid answer.

    ``field`` names the input at fault as the caller spelled it (a dotted path such as
    ``"metric.baseline"``) so the HTTP layer can point at it; ``reason`` says why in plain words.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
