"""Rasa's `EndpointConfig.request` opens a new aiohttp `ClientSession`, and with it a new
TCP connection, for every call, and closes it afterwards. Every custom action is such a
call (to the action guard, a route of Rasa's own server), so each one also cost Rasa the
set-up of a session, a connection and the server's side of it: about 4% of our Rasa CPU
per message (py-spy, README "Benchmark").

`install()` makes `EndpointConfig.session()` hand out one session per endpoint and event
loop, kept open, so that requests reuse its connections (HTTP keep-alive; aiohttp drops
a connection idle for 15 s, well before Rasa's server closes it after 120 s). Rasa's
`request` is unchanged: it enters the session with `async with`, which now leaves it
open. `close_all()` closes them when the server stops.
"""
from __future__ import annotations

import asyncio
import weakref
from typing import Any

import aiohttp
from rasa.utils.endpoints import EndpointConfig

_rasa_session = EndpointConfig.session
# event loop -> the sessions kept open in it (for `close_all`)
_opened: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, weakref.WeakSet]" = \
    weakref.WeakKeyDictionary()


class KeptSession:
    """What `async with endpoint.session()` enters: the endpoint's open session."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def __aenter__(self) -> aiohttp.ClientSession:
        return self.session

    async def __aexit__(self, *exc: Any) -> None:
        return None  # kept open for the next request


def session(self: EndpointConfig) -> KeptSession:
    loop = asyncio.get_running_loop()  # aiohttp sessions belong to one event loop
    kept = self.__dict__.setdefault("_kept_sessions", weakref.WeakKeyDictionary())
    current = kept.get(loop)
    if current is None or current.closed:
        current = kept[loop] = _rasa_session(self)  # Rasa's headers, auth and timeout
        _opened.setdefault(loop, weakref.WeakSet()).add(current)
    return KeptSession(current)


async def close_all() -> None:
    """Close the kept sessions of the running event loop."""
    for kept in list(_opened.pop(asyncio.get_running_loop(), ())):
        await kept.close()


def install() -> None:
    EndpointConfig.session = session
