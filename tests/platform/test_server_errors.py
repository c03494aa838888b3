"""A bug is answered as problem details that leak nothing, and closes the connection
saying so (issue 19, item 6: after a 500 the server dropped a keep-alive connection
without `Connection: close`)."""

from __future__ import annotations

import gc
import logging

import httpx
import pytest

from formloom.platform.api import create_app
from formloom.platform.clock import FixedClock
from formloom.platform.settings import Settings


async def test_an_unexpected_error_is_a_problem_that_closes_the_connection(
    settings: Settings, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings, clock=clock)

    @app.get("/api/boom-for-the-test")
    async def boom() -> None:
        raise RuntimeError("secret detail 1234")

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            with caplog.at_level(logging.ERROR, logger="formloom"):
                response = await client.get("/api/boom-for-the-test")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["connection"] == "close"
    assert response.json()["type"] == "/problems/internal-error"
    assert "secret detail" not in response.text
    assert any(
        "secret detail 1234" in record.getMessage() or record.exc_info for record in caplog.records
    )


async def test_serve_moves_what_start_up_built_out_of_the_collectors_sight(
    settings: Settings, clock: FixedClock
) -> None:
    """``formloom serve`` freezes start-up's objects (a full collection during a request then
    walks only what requests made); a service built without asking does not."""
    assert gc.get_freeze_count() == 0
    plain = create_app(settings, clock=clock)
    async with plain.router.lifespan_context(plain):
        assert gc.get_freeze_count() == 0
    app = create_app(settings, clock=clock, freeze_startup_objects=True)
    try:
        async with app.router.lifespan_context(app):
            frozen = gc.get_freeze_count()
            assert frozen > 10_000  # the app, its routes, SQLAlchemy's metadata...
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                assert (await client.get("/api/health")).status_code == 200
            assert gc.get_freeze_count() <= frozen  # what requests make stays collectable
    finally:
        gc.unfreeze()
