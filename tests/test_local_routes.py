"""runtime/local_routes.py: Rasa's request to a route of its own server is answered in the
process, with what Rasa's HTTP request would have made of the route's answer; every other
request still goes over HTTP."""
from __future__ import annotations

import asyncio
from typing import Any, List, Tuple

import pytest
from aiohttp import web
from rasa.utils.endpoints import ClientResponseError, EndpointConfig

from runtime import local_routes
from runtime.local_routes import Answer
from tests.services import local_http_server

PATH = "/webhooks/action_guard/webhook"


@pytest.fixture
def routes(monkeypatch) -> List[Tuple[Any, Any]]:
    """A clean registry with one route on PATH that records its calls; the patched
    `request` installed (both restored afterwards)."""
    monkeypatch.setattr(local_routes, "_routes", {})
    monkeypatch.setattr(local_routes, "_addresses", set())
    monkeypatch.setattr(EndpointConfig, "request", EndpointConfig.request)
    local_routes.install()
    calls: List[Tuple[Any, Any]] = []

    async def handler(call: Any, compress: Any) -> Answer:
        calls.append((call, compress))
        return Answer(200, b'{"events": []}', "application/json", {"events": []})

    local_routes.serve(PATH, handler)
    return calls


@pytest.mark.parametrize("host, url, ours", [
    ("127.0.0.1", f"http://127.0.0.1:5005{PATH}", True),
    ("127.0.0.1", f"http://localhost:5005{PATH}", True),
    ("0.0.0.0", f"http://127.0.0.1:5005{PATH}", True),
    ("0.0.0.0", f"http://[::1]:5005{PATH}", True),
    ("10.1.2.3", f"http://10.1.2.3:5005{PATH}", True),
    ("10.1.2.3", f"http://127.0.0.1:5005{PATH}", False),  # not listening on loopback
    ("127.0.0.1", f"http://127.0.0.1:5006{PATH}", False),  # another server
    ("127.0.0.1", f"http://10.9.9.9:5005{PATH}", False),
    ("127.0.0.1", f"https://127.0.0.1:5005{PATH}", False),
    ("127.0.0.1", f"http://127.0.0.1:5005{PATH}?token=x", False),
    ("127.0.0.1", "http://127.0.0.1:5005/webhooks/rest/webhook", False),  # no handler
    ("127.0.0.1", "http://127.0.0.1:notaport/x", False),
])
def test_only_a_registered_route_of_this_server_is_local(routes, host, url, ours):
    local_routes.listening(host, 5005)
    assert (local_routes.local_handler(url) is not None) == ours


def test_nothing_is_local_before_the_server_listens(routes):
    assert local_routes.local_handler(f"http://127.0.0.1:5005{PATH}") is None


def test_rasas_call_reaches_the_handler_without_http(routes):
    local_routes.listening("127.0.0.1", 5005)
    endpoint = EndpointConfig(f"http://127.0.0.1:5005{PATH}")  # nothing listens there
    call = {"next_action": "action_x", "tracker": {"events": []}}
    answer = asyncio.run(endpoint.request(json=call, method="post", timeout=300,
                                          compress=True))
    assert answer == {"events": []}
    assert routes == [(call, True)]


def test_other_requests_go_over_http(routes):
    async def run() -> Any:
        async def echo(request: web.Request) -> web.Response:
            return web.json_response({"got": await request.json()})

        async with local_http_server(PATH, echo) as url:
            port = int(url.split(":")[2].split("/")[0])
            local_routes.listening("127.0.0.1", port + 1)  # this "server" is elsewhere
            return await EndpointConfig(url).request(json={"a": 1}, method="post")

    assert asyncio.run(run()) == {"got": {"a": 1}}
    assert routes == []


# (status, content type, body) as the guard's route would answer over HTTP
ANSWERS = [
    (200, "application/json", b'{"events": [], "responses": [{"text": "hi"}]}'),
    (200, "application/json; charset=utf-8", '{"responses": [{"text": "caf\u00e9"}]}'.encode()),
    (200, "application/json", b" "),
    (200, "text/html", b"<html>not json</html>"),
    (400, "application/json", b'{"error": "slot not valid", "action_name": "action_x"}'),
    (404, "application/json", b'{"error": "No registered action", "action_name": "action_x"}'),
    (502, "text/plain", b"bad gateway"),
]


async def outcome(call: Any) -> Tuple[str, Any]:
    try:
        return "returned", await call
    except ClientResponseError as error:
        return "raised", (error.status, error.message, error.text)


@pytest.mark.parametrize("status, content_type, body", ANSWERS)
def test_same_result_as_rasas_http_request(routes, monkeypatch, status, content_type, body):
    async def answer(_: web.Request) -> web.Response:
        response = web.Response(status=status, body=body)
        response.headers["Content-Type"] = content_type
        return response

    async def over_http() -> Tuple[str, Any]:
        async with local_http_server(PATH, answer) as url:
            return await outcome(local_routes._rasa_request(EndpointConfig(url), "post",
                                                            json={"x": 1}))

    async def handler(call: Any, compress: Any) -> Answer:
        return Answer(status, body, content_type)

    local_routes.serve(PATH, handler)
    local_routes.listening("127.0.0.1", 5005)
    in_process = asyncio.run(outcome(EndpointConfig(f"http://127.0.0.1:5005{PATH}").request(
        json={"x": 1}, method="post")))
    assert in_process == asyncio.run(over_http())
