"""The HTTP contract where the framework or the server answers, on SQLite and PostgreSQL: one
status for a duplicate unique value whatever the timing, ``Allow`` naming every method of a
resource, and problem details for requests the HTTP parser cannot read."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import uvicorn

from formloom.platform.api import create_app
from formloom.platform.clock import Clock
from formloom.platform.errors import ProblemH11Protocol
from formloom.platform.records import service as records_service
from formloom.platform.settings import Settings
from tests import factories as f

CONTACTS = "/api/records/demo/contact"


@contextmanager
def live_server(settings: Settings, clock: Clock | None = None) -> Iterator[str]:
    """The real application under uvicorn (h11 with problem details, as ``formloom serve``
    runs it) on a free port of 127.0.0.1, served from a thread; yields its base URL. Give
    the tests' ``clock`` when the ``users`` fixture's tokens are used."""
    app = create_app(settings, clock=clock)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", http=ProblemH11Protocol
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive(), "the server stopped while starting"
            assert time.monotonic() < deadline, "the server did not start in 30 s"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _raw_request(url: str, target: str) -> bytes:
    """Send one GET with a raw request target and read the whole answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
        )
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


# -- a duplicate unique value -------------------------------------------------------------


async def test_a_duplicate_found_by_the_database_is_answered_like_one_found_by_the_check(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await client.post("/api/apps/import", json=f.app())).status_code == 201
    first = await client.post(CONTACTS, json={"data": {"name": "Ann", "phone": "+1 555 0100"}})
    assert first.status_code == 201, first.text
    checked = await client.post(CONTACTS, json={"data": {"name": "Bob", "phone": "+1 555 0100"}})
    assert checked.status_code == 422

    # A concurrent write that commits between this one's check and its insert: the check
    # sees nothing, and the database's unique index finds the clash.
    async def sees_nothing(*args: Any, **kwargs: Any) -> list[Any]:
        return []

    monkeypatch.setattr(records_service, "check_unique", sees_nothing)
    raced = await client.post(CONTACTS, json={"data": {"name": "Cy", "phone": "+1 555 0100"}})
    assert raced.status_code == 422, raced.text
    assert raced.headers["content-type"] == "application/problem+json"
    assert raced.json() == checked.json()
    assert raced.json()["errors"] == [
        {
            "field": "phone",
            "path": "/data/phone",
            "code": "unique",
            "message": "Phone must be unique; another record already has this value.",
        }
    ]
    listing = await client.get(CONTACTS, params={"count": "true"})
    assert listing.json()["count"] == 1


async def test_concurrent_creates_of_one_unique_value_answer_422_with_the_field(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post("/api/apps/import", json=f.app())).status_code == 201
    answers = await asyncio.gather(
        *[
            client.post(CONTACTS, json={"data": {"name": f"N{i}", "phone": "+1 555 0199"}})
            for i in range(6)
        ]
    )
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [201, 422, 422, 422, 422, 422], [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 422:
            assert [(e["field"], e["code"]) for e in answer.json()["errors"]] == [
                ("phone", "unique")
            ]


# -- 405 and OPTIONS ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        # GET and POST are two routes; Starlette named only the first one's method.
        (CONTACTS, "GET, POST, OPTIONS"),
        (f"{CONTACTS}/0123", "GET, PATCH, DELETE, OPTIONS"),
        # `/query` also fits `/{record_id}`: the resource is the more specific template.
        (f"{CONTACTS}/query", "POST, OPTIONS"),
        ("/api/apps/import", "POST, OPTIONS"),
        ("/api/auth/session", "POST, DELETE, OPTIONS"),
        ("/static/app.css", "GET, HEAD, OPTIONS"),
    ],
)
async def test_405_names_every_method_of_the_resource(
    client: httpx.AsyncClient, path: str, allow: str
) -> None:
    refused = await client.put(path, json={})
    assert refused.status_code == 405
    assert refused.headers["allow"] == allow
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["status"] == 405
    options = await client.options(path)
    assert options.status_code == 204
    assert options.headers["allow"] == allow


# -- requests the HTTP parser cannot read -----------------------------------------------------


def _nested_filter(depth: int) -> str:
    return '{"!":' * depth + "true" + "}" * depth


def test_a_10000_level_filter_in_the_query_string_gets_problem_details(
    settings: Settings,
) -> None:
    with live_server(settings) as url:
        for target in (
            # Too long for the HTTP parser's buffer (about 180 KB once percent-encoded).
            "/api/records/demo/contact?filter=" + quote(_nested_filter(10_000)),
            # A request line h11 refuses outright.
            "/api/health bad target",
        ):
            answer = _raw_request(url, target)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 400 "), head
            assert b"content-type: application/problem+json" in head.lower()
            problem = json.loads(body)
            assert problem["status"] == 400 and problem["title"] == "Bad request"
            assert "too long" in problem["detail"]
        # Short enough for the parser: the application answers, as problem details too.
        answer = _raw_request(url, "/api/records/demo/contact?filter=" + _nested_filter(2_000))
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 4"), head
        assert b"content-type: application/problem+json" in head.lower()
