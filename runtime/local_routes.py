"""Rasa's requests to a route of its own server, answered in the process, not over HTTP.

endpoints*.yml point Rasa's action endpoint at the action guard, a route of the same Rasa
server (channels/action_guard.py). So every custom action was an HTTP request from the
Rasa process to itself: aiohttp encoding the call, Sanic parsing it again, the guard
decoding its JSON a second time, and the answer back the same way. That round trip was
about 8% of our Rasa CPU per message (py-spy, README "Benchmark").

A route registers a handler with `serve(path, handler)`; once the server listens,
`listening(host, port)` says where. From then on `EndpointConfig.request` for a POST to
that path on this server (a loopback address, or the server's own, and its port) calls
the handler with the JSON that Rasa would have sent, and returns or raises what Rasa's
`request` would have made of the route's HTTP answer: the decoded JSON of a JSON answer
below 400, None for another answer below 400, and Rasa's `ClientResponseError(status,
reason, body)` from 400 up. Every other request goes over HTTP as before. With
SANIC_WORKERS=2 the request may have reached the other worker; it runs the same code.

Same answers as over HTTP (tests/test_local_routes.py, tests/test_faults.py).
"""
from __future__ import annotations

import http
import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, Optional, Set, Text, Tuple
from urllib.parse import urlsplit

from rasa.utils.endpoints import ClientResponseError, EndpointConfig, concat_url

# aiohttp's test for a JSON content type (ClientResponse.json)
_JSON_TYPE = re.compile(r"^application/(?:[\w.+-]+?\+)?json")


@dataclass
class Answer:
    """What the route would have answered over HTTP. `data` is the body decoded, when
    the handler has it at hand (it then need not be decoded again)."""
    status: int
    body: bytes
    content_type: str = "application/json"
    data: Any = None


# handler(the JSON Rasa sends, Rasa's `compress` flag) -> the route's answer
Handler = Callable[[Any, Any], Awaitable[Answer]]

_routes: Dict[Text, Handler] = {}
_addresses: Set[Tuple[Text, int]] = set()  # (host, port) that reach this server

_rasa_request = EndpointConfig.request
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_WILDCARD = ("", "0.0.0.0", "::")


def serve(path: Text, handler: Handler) -> None:
    _routes[path] = handler


def listening(host: Optional[Text], port: Optional[int]) -> None:
    """The server listens on `host`:`port` (Sanic's app.state once it started)."""
    if port is None:
        return
    host = host or ""
    hosts = set(_LOOPBACK) if host in _WILDCARD or _is_loopback(host) else set()
    hosts.add(host)
    _addresses.update((h, int(port)) for h in hosts if h not in _WILDCARD)


def reset() -> None:
    _routes.clear()
    _addresses.clear()


def _is_loopback(host: Text) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def local_handler(url: Text) -> Optional[Handler]:
    """The handler that would answer a POST to `url`, if it is a route of this server."""
    if not _routes or not _addresses:
        return None
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.query or parts.fragment:
        return None
    try:
        address = (parts.hostname or "", parts.port or 80)
    except ValueError:  # a port that is not a number
        return None
    return _routes.get(parts.path) if address in _addresses else None


async def request(self: EndpointConfig, method: Text = "post", subpath: Optional[Text] = None,
                  content_type: Optional[Text] = "application/json", compress: bool = False,
                  **kwargs: Any) -> Optional[Any]:
    """Rasa's `EndpointConfig.request`, answered in the process for a route of this
    server that registered a handler."""
    handler = local_handler(concat_url(self.url, subpath)) \
        if method.lower() == "post" and "json" in kwargs and not self.params \
        and not self.token and "params" not in kwargs else None
    if handler is None:
        return await _rasa_request(self, method, subpath, content_type, compress, **kwargs)
    answer = await handler(kwargs["json"], compress)
    if answer.status >= 400:
        raise ClientResponseError(answer.status, _reason(answer.status), answer.body)
    if not _JSON_TYPE.match(answer.content_type.lower()):
        return None
    if answer.data is not None:
        return answer.data
    body = answer.body.strip()
    return json.loads(body) if body else None


def _reason(status: int) -> Text:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def install() -> None:
    EndpointConfig.request = request
