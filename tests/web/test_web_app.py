"""``/app/`` (server/web_app.py): the built shell with its CSP and cache headers,
application routes answered by the shell, nothing outside ``dist`` reachable."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from aiohttp import web

from server import web_app
from tests.support.servers import RunningServer
from tests.web.node import WEB


async def test_shell_assets_and_headers(server: RunningServer, http: aiohttp.ClientSession) -> None:
    if not (WEB / "dist" / "index.html").exists():
        async with http.get(server.url + "/app/") as response:
            assert response.status == 404  # not built: no route at all
        return
    async with http.get(server.url + "/app", allow_redirects=False) as response:
        assert response.status == 301 and response.headers["Location"] == "/app/"
    async with http.get(server.url + "/app/") as response:
        assert response.status == 200 and response.content_type == "text/html"
        assert response.headers["Cache-Control"] == "no-cache"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        html = await response.text()
    asset = html.split('src="/app/', 1)[1].split('"', 1)[0]
    async with http.get(f"{server.url}/app/{asset}") as response:
        assert response.status == 200 and "immutable" in response.headers["Cache-Control"]
    async with http.get(server.url + "/app/sw.js") as response:
        assert response.headers["Service-Worker-Allowed"] == "/app/"
    async with http.get(server.url + "/app/people") as response:
        assert response.status == 200 and await response.text() == html
    for path in ("/app/missing.js", "/app/..%2F..%2Fpyproject.toml", "/app/../pyproject.toml"):
        async with http.get(server.url + path) as response:
            assert response.status == 404, path


def test_no_route_without_a_build(tmp_path: Path) -> None:
    app = web.Application()
    web_app.setup(app, tmp_path)
    assert not [r for r in app.router.routes() if r.resource and "/app" in r.resource.canonical]
