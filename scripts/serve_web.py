"""Serve the demo clinic page with the chat widget (rasa-webchat from web/node_modules).

The page takes the clinic's details from the clinic settings (data/clinic.yml and
CLINIC_* variables). Usage: python scripts/serve_web.py  (WEB_HOST, WEB_PORT,
RASA_SOCKET_URL from the environment).
"""
from __future__ import annotations

import html
import json
import os
import sys
from pathlib import Path
from string import Template

from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from actions import content  # noqa: E402

WEB = ROOT / "web"
WEBCHAT_JS = WEB / "node_modules" / "rasa-webchat" / "lib" / "index.js"


def render_page(socket_url: str) -> str:
    settings = content.clinic()
    config = {"socketUrl": socket_url, "title": settings["name"]}
    values = {key: html.escape(value) for key, value in settings.items()}
    # JSON inside <script>: "</" must not close the element.
    values["config_json"] = json.dumps(config).replace("</", "<\\/")
    return Template((WEB / "index.html").read_text(encoding="utf-8")).substitute(values)


def security_headers(socket_url: str) -> dict:
    ws_url = socket_url.replace("http://", "ws://").replace("https://", "wss://")
    return {
        "Content-Security-Policy": (
            "default-src 'self'; script-src 'self'; "
            f"connect-src 'self' {socket_url} {ws_url}; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def make_app(socket_url: str) -> web.Application:
    if not WEBCHAT_JS.exists():
        raise SystemExit(f"{WEBCHAT_JS} is missing: run `make install` (npm ci in web/)")
    headers = security_headers(socket_url)

    async def index(_: web.Request) -> web.Response:
        return web.Response(text=render_page(socket_url), content_type="text/html",
                            headers=headers)

    async def webchat(_: web.Request) -> web.FileResponse:
        return web.FileResponse(WEBCHAT_JS, headers={"Content-Type": "application/javascript"})

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/static/webchat.js", webchat)
    app.router.add_static("/static/", WEB / "static")
    return app


def main() -> None:
    port = int(os.environ.get("WEB_PORT", "8080"))
    socket_url = os.environ.get("RASA_SOCKET_URL", "http://localhost:5005")
    web.run_app(make_app(socket_url), host=os.environ.get("WEB_HOST", "127.0.0.1"), port=port,
                print=lambda *_: print(f"Clinic page on http://localhost:{port}", flush=True))


if __name__ == "__main__":
    main()
