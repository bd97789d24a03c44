"""Limits on what a connection may hold (issue 22): a 64 MB header was read and answered 200, and 500
connections that trickled their headers were all kept open. The service, under uvicorn with the options
``counterfact serve`` uses (:func:`api.http.limits.uvicorn_options`), now answers 431 past the header cap
and 408 to a head that does not arrive in time, closing the connection; past ``limit_concurrency`` it
answers 503. Raw sockets, so that what is sent is exactly what a hostile client sends."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import replace

import httpx
import pytest
import uvicorn

from api.app import create_app
from api.http.limits import LimitedHttpToolsProtocol, limited_http_protocol, uvicorn_options
from api.settings import Settings
from testkit.service import free_port

HEAD = b"GET /health HTTP/1.1\r\nHost: localhost\r\n"


@contextmanager
def _serving(limits: Settings) -> Iterator[tuple[str, int]]:
    """The service under uvicorn with the connection limits of ``limits``; its address once it answers."""
    port = free_port()
    options = {**uvicorn_options(limits), "http": limited_http_protocol(limits)}
    config = uvicorn.Config(create_app(limits), host="127.0.0.1", port=port, log_level="warning", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    try:
        yield ("127.0.0.1", port)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def limited(settings: Settings) -> Iterator[tuple[str, int]]:
    """The service with an 8 KiB header cap and 1 s for a request head."""
    with _serving(replace(settings, max_header_bytes=8192, header_timeout_seconds=1.0)) as address:
        yield address


@pytest.fixture(scope="module")
def three_at_most(settings: Settings) -> Iterator[tuple[str, int]]:
    """The service with room for 3 connections (and a minute for a head, so that idle ones stay open)."""
    with _serving(replace(settings, limit_concurrency=3, header_timeout_seconds=60.0)) as address:
        yield address


def _answer(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (30 s at most)."""
    connection.settimeout(30)
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def test_a_header_past_the_cap_is_431_problem_json_and_the_connection_closes(limited: tuple[str, int]) -> None:
    with closing(socket.create_connection(limited)) as connection:
        connection.sendall(HEAD + b"X-Padding: " + b"a" * 9000 + b"\r\n")
        answer = _answer(connection)
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert b"content-type: application/problem+json" in answer
    assert b'"status":431' in answer


def test_headers_under_the_cap_are_served(limited: tuple[str, int]) -> None:
    with closing(socket.create_connection(limited)) as connection:
        connection.sendall(HEAD + b"X-Padding: " + b"a" * 4000 + b"\r\nConnection: close\r\n\r\n")
        assert _answer(connection).startswith(b"HTTP/1.1 200 ")


def test_a_head_trickled_a_line_at_a_time_is_408_and_the_connection_closes(limited: tuple[str, int]) -> None:
    with closing(socket.create_connection(limited)) as connection:
        connection.sendall(HEAD)
        for line in range(300):  # a header line every 0.1 s, never the blank line that ends the head
            readable, _, _ = select.select([connection], [], [], 0.1)
            if readable:
                break
            connection.sendall(b"X-Slow-%d: a\r\n" % line)
        answer = _answer(connection)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b'"status":408' in answer


def test_a_connection_that_sends_nothing_is_closed(limited: tuple[str, int]) -> None:
    with closing(socket.create_connection(limited)) as connection:
        assert _answer(connection).startswith(b"HTTP/1.1 408 ")


def test_a_kept_alive_connection_serves_several_requests(limited: tuple[str, int]) -> None:
    with closing(socket.create_connection(limited)) as connection:
        connection.sendall(HEAD + b"\r\n")
        connection.settimeout(30)
        first = connection.recv(65536)
        connection.sendall(HEAD + b"Connection: close\r\n\r\n")
        second = _answer(connection)
    assert first.startswith(b"HTTP/1.1 200 ")
    assert second.startswith(b"HTTP/1.1 200 ")


def test_past_the_concurrency_limit_a_request_is_503(three_at_most: tuple[str, int]) -> None:
    held = [socket.create_connection(three_at_most) for _ in range(3)]
    try:
        with closing(socket.create_connection(three_at_most)) as connection:
            connection.sendall(HEAD + b"Connection: close\r\n\r\n")
            assert _answer(connection).startswith(b"HTTP/1.1 503 ")
    finally:
        for connection in held:
            connection.close()


def test_serve_passes_the_limits_from_the_settings(settings: Settings) -> None:
    options = uvicorn_options(replace(settings, max_header_bytes=1000, keep_alive_seconds=3.0, limit_concurrency=0))
    assert options["http"] is LimitedHttpToolsProtocol  # by name: uvicorn pickles it for its worker processes
    assert options["h11_max_incomplete_event_size"] == 1000
    assert options["timeout_keep_alive"] == 3.0
    assert options["limit_concurrency"] is None


def test_a_body_sent_with_its_head_in_one_write_is_not_counted_as_head(limited: tuple[str, int]) -> None:
    # curl sends a 100 KB upload's head and the start of its body in the same segments: only the head is capped.
    body = b'{"metric": {"kind": "proportion", "baseline": 0.05}, "mde": {"relative": 0.1}}' + b" " * 100_000
    head = (
        b"POST /v1/power/holdout HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    )
    with closing(socket.create_connection(limited)) as connection:
        connection.sendall(head + body)
        answer = _answer(connection)
    assert not answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert answer.startswith(b"HTTP/1.1 401 ")  # no key: the request reached the application
