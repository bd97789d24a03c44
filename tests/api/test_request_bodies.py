"""Streamed bodies are cut into lines in linear time, with the length of a line capped."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from api.errors import InvalidInput
from api.request_bodies import complete_lines, line_batches


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_lines_split_across_chunks_are_joined() -> None:
    seen = [
        line async for lines in complete_lines(_chunks(b"ab", b"c\nde", b"f\ng"), max_line_bytes=10) for line in lines
    ]
    assert seen == [b"abc", b"def", b"g"]


async def test_a_line_growing_past_the_limit_over_many_chunks_is_refused_naming_it() -> None:
    with pytest.raises(InvalidInput) as refused:
        async for _ in complete_lines(_chunks(b"h\nx", *([b"y" * 100] * 50)), max_line_bytes=1000):
            pass
    assert refused.value.invalid_params[0][0] == "line 2"


async def test_batches_never_end_on_blank_lines_that_may_end_the_body() -> None:
    body = _chunks(b"h\n1\n2\n\n\n", b"3\n\n")
    batches = [batch async for batch in line_batches(body, batch_lines=3, max_line_bytes=100)]
    assert batches == [(1, [b"h", b"1", b"2"]), (4, [b"", b"", b"3"])]
