"""An answer given before the request's body was read closes the connection (issue 22): uvicorn otherwise
reads and discards the rest of the body, and a client streaming an upload keeps writing long after its
answer was sent (:mod:`api.http.unread_bodies`). Over real HTTP, with raw sockets."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from dataclasses import replace

import httpx
import pytest

from api.app import create_app
from api.auth.keys import Scope
from api.http.limits import LINGER_SECONDS
from api.http.unread_bodies import has_body
from api.settings import Settings
from testkit.database import make_key
from tests.api.streaming_client import chunked_head, stream_upload
from tests.conftest import app_in_thread

STREAM_CAP = 1024 * 1024
CHUNK = b"date,geo,kpi\n" + b"2021-01-01,chicago,1\n" * 3000  # 63 KB
CHUNKS = 1024  # 64 MB in all, far past the cap and past what the sockets' buffers hold


@pytest.fixture(scope="module")
def capped(settings: Settings) -> Iterator[tuple[str, int]]:
    """The service under uvicorn, its CSV uploads capped at 1 MiB; its address."""
    capped_settings = replace(settings, max_stream_bytes=STREAM_CAP)
    with app_in_thread(create_app(capped_settings), capped_settings) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


@pytest.fixture
async def key(database_url: str) -> str:
    return await make_key(database_url, Scope.WRITE)


async def _sixty_four_megabytes() -> AsyncIterator[bytes]:
    for _ in range(CHUNKS):
        yield CHUNK


async def _csv_for_a_minute() -> AsyncIterator[bytes]:
    for _ in range(6000):  # 380 MB at 6 MB/s at most
        yield CHUNK
        await asyncio.sleep(0.01)


async def test_an_upload_refused_mid_stream_is_answered_and_closed_before_the_client_sends_the_rest(
    capped: tuple[str, int], key: str
) -> None:
    streamed = await stream_upload(capped, chunked_head("/v1/geo/datasets?name=capped", key), _csv_for_a_minute())
    assert streamed.status == 413, streamed.answer[:300]
    assert streamed.header("connection") == "close"
    assert streamed.closed
    assert not streamed.body_finished


async def test_a_client_that_reads_only_once_its_body_is_sent_gets_the_early_answer(
    capped: tuple[str, int], key: str
) -> None:
    # httpx's AsyncClient reads nothing until its body is sent, and on a connection it has read from before,
    # an answer waiting when a write fails is lost with the connection: the service reads the rest of the body
    # a few seconds longer (api.http.limits), so this client gets its answer.
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "text/csv"}
    async with httpx.AsyncClient(base_url=f"http://{capped[0]}:{capped[1]}", headers=headers, timeout=60) as client:
        assert (await client.get("/health")).status_code == 200  # the upload goes on this kept-alive connection
        response = await client.post("/v1/geo/datasets?name=capped", content=_sixty_four_megabytes())
    assert response.status_code == 413, response.text
    assert response.headers["connection"] == "close"


async def test_a_client_that_never_stops_sending_is_cut_off_within_the_linger_time(
    capped: tuple[str, int], key: str
) -> None:
    started = time.monotonic()
    streamed = await stream_upload(
        capped, chunked_head("/v1/geo/datasets?name=capped", key), _csv_for_a_minute(), past_the_servers_end=True
    )
    assert streamed.status == 413
    assert not streamed.body_finished
    assert time.monotonic() - started < LINGER_SECONDS + 10  # the answer comes at once; then the linger


def _exchange(connection: socket.socket, request: bytes) -> bytes:
    """Send ``request`` and read its answer (by its Content-Length); the answer's head."""
    connection.sendall(request)
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += connection.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(int(line[15:]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += connection.recv(65536)
    return head


async def test_a_request_whose_body_was_read_keeps_its_connection(capped: tuple[str, int], key: str) -> None:
    body = b'{"metric": {"kind": "proportion", "baseline": 0.05}, "mde": {"relative": 0.1}}'
    request = (
        f"POST /v1/power/holdout HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with closing(socket.create_connection(capped)) as connection:
        connection.settimeout(30)
        heads = [_exchange(connection, request) for _ in range(2)]  # the second on the same connection
    assert all(head.startswith(b"HTTP/1.1 200 ") for head in heads), heads
    assert all(b"connection: close" not in head.lower() for head in heads)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"content-length", b"12")], True),
        ([(b"transfer-encoding", b"chunked")], True),
        ([(b"content-length", b"0")], False),
        ([(b"host", b"localhost")], False),
    ],
)
def test_a_request_has_a_body_when_it_announces_one(headers: list[tuple[bytes, bytes]], expected: bool) -> None:
    assert has_body(headers) is expected
