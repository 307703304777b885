"""What the routes Rasa itself defines (not a channel's) get from this assistant.

- `GET /` answers 200 "ok" instead of Rasa's "Hello from Rasa: <version>": it stays the
  health check (scripts/servers.py, deploy/haproxy.cfg, the Makefile wait for it) without
  telling every scanner which Rasa release, and so which known flaws, it runs.
- A JSON body of Rasa's HTTP API (on only with RASA_API_TOKEN) is parsed by
  channels/limits.py's `loads` before Rasa's handlers read it, and refused (400) if it
  is nested deeper than limits.PARSE_DEPTH: the API can append events to a tracker, and
  the tracker store writes them with orjson (channels/limits.py says why that matters).
  The channels' own routes check their bodies themselves, with their own limits.

Each channel blueprint of ours calls `install`; the middleware is added to the app once.
"""
from __future__ import annotations

import logging
from typing import Any, Optional

from sanic import Blueprint, Sanic, response
from sanic.request import Request

from channels import limits

logger = logging.getLogger(__name__)

HEALTH_TEXT = "ok"
# Routes that check their own bodies: the channels (Rasa's `--route`) and Socket.IO.
OWN_CHECKS = ("/webhooks/", "/socket.io")


async def hide_version(request: Request, answer: Any) -> Optional[response.HTTPResponse]:
    if request.path == "/" and getattr(answer, "status", None) == 200:
        return response.text(HEALTH_TEXT)
    return None


async def bound_api_bodies(request: Request) -> Optional[response.HTTPResponse]:
    body = request.body
    if not body or request.path.startswith(OWN_CHECKS) or body.lstrip()[:1] not in (b"{", b"["):
        return None
    try:
        value = limits.loads(body)
    except (ValueError, RecursionError):
        return None  # not JSON: Rasa's handler answers as it does
    try:
        limits.check_structure(value, max_depth=limits.PARSE_DEPTH, max_keys=len(body),
                               max_items=len(body), max_string=len(body))
    except limits.StructureError:
        logger.info("Rejected an HTTP API request nested too deep")
        return response.json({"error": "too_deep", "message": f"JSON bodies may be nested "
                              f"at most {limits.PARSE_DEPTH} levels deep."}, status=400)
    request.parsed_json = value  # what `request.json` returns to Rasa's handler
    return None


def install(blueprint: Blueprint) -> None:
    @blueprint.listener("before_server_start")
    async def add_middleware(app: Sanic, _: Any) -> None:
        if getattr(app.ctx, "clinic_server_checks", False):
            return
        app.ctx.clinic_server_checks = True
        app.register_middleware(hide_version, "response")
        app.register_middleware(bound_api_bodies, "request")
