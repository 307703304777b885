"""runtime/http_sessions.py: Rasa's requests to an endpoint reuse one kept-open session
and its connections; a new event loop gets a new session."""
from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from rasa.utils.endpoints import EndpointConfig

from runtime import http_sessions
from tests.services import local_http_server


async def calls_through_rasa(count: int) -> list:
    """`count` requests with Rasa's EndpointConfig.request; the client port of each."""
    ports = []

    async def answer(request: web.Request) -> web.Response:
        ports.append(request.transport.get_extra_info("peername")[1])
        return web.json_response({"events": [], "received": await request.json()})

    async with local_http_server("/webhook", answer) as url:
        endpoint = EndpointConfig(url)
        for n in range(count):
            assert await endpoint.request(json={"n": n}, method="post") == \
                {"events": [], "received": {"n": n}}
        await http_sessions.close_all()
    return ports


@pytest.fixture
def installed(monkeypatch):
    monkeypatch.setattr(EndpointConfig, "session", EndpointConfig.session)  # restored after
    http_sessions.install()


def test_rasa_opens_a_connection_per_request_without_it(monkeypatch):
    monkeypatch.setattr(EndpointConfig, "session", http_sessions._rasa_session)
    assert len(set(asyncio.run(calls_through_rasa(3)))) == 3


def test_requests_reuse_one_connection(installed):
    assert len(set(asyncio.run(calls_through_rasa(3)))) == 1
    assert len(set(asyncio.run(calls_through_rasa(2)))) == 1  # a new loop: works again


def test_close_all_closes_the_loops_sessions(installed):
    async def run() -> None:
        endpoint = EndpointConfig("http://127.0.0.1:9/never-called")
        async with endpoint.session() as session:
            assert not session.closed
        async with endpoint.session() as again:
            assert again is session
        await http_sessions.close_all()
        assert session.closed
        async with endpoint.session() as fresh:
            assert fresh is not session and not fresh.closed
        await http_sessions.close_all()

    asyncio.run(run())
