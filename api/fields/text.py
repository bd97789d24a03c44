"""The free-text types requests share.

PostgreSQL ``text`` and ``jsonb`` cannot hold U+0000, so every free-text field refuses it with a 400 naming
the field (:data:`NO_NUL`); everything else (quotes, backslashes, SQL keywords, any Unicode) is data, stored
and returned byte for byte (``tests/api/test_text_fields.py``).
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

NO_NUL = r"^[^\x00]*$"

MarketName = Annotated[
    str, Meta(min_length=1, max_length=200, pattern=NO_NUL, description="Market name, as in the panel.")
]
Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=NO_NUL, description="A human-readable name.")]
