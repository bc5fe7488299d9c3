"""The web client at ``/app/``: the built files of ``client/web/dist`` (docs/web-client.md).

Served only when the bundle has been built (``npm run build`` in ``client/web``);
otherwise ``/app/`` answers 404 like any unknown path. Caching: hashed files under
``assets/`` are immutable for a year; ``index.html``, ``sw.js`` and the manifest are
revalidated on every load, so a new release reaches every browser. Every response
carries a Content-Security-Policy that allows only this origin (``'wasm-unsafe-eval'``
lets libsodium's WebAssembly run; no inline script, no third party), and forbids
framing and referrers.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from aiohttp import web

DIST = Path(__file__).resolve().parents[1] / "client" / "web" / "dist"
WEB_DIST = web.AppKey("web_dist", Path)

CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; worker-src 'self'; manifest-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
TYPES = {".webmanifest": "application/manifest+json", ".js": "text/javascript"}


def _file(root: Path, tail: str) -> Path | None:
    """The file ``tail`` names inside ``root``, never outside it; the shell for routes."""
    candidate = (root / tail).resolve() if tail else root / "index.html"
    if not candidate.is_relative_to(root.resolve()):
        return None
    if candidate.is_file():
        return candidate
    if "." not in tail.rsplit("/", 1)[-1]:
        return root / "index.html"  # an application route: the shell answers
    return None


async def serve(request: web.Request) -> web.StreamResponse:
    root = request.app[WEB_DIST]
    path = _file(root, request.match_info["tail"])
    if path is None or not path.is_file():
        raise web.HTTPNotFound()
    cache = IMMUTABLE if path.parent.name == "assets" else REVALIDATE
    content_type = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
    headers = {**SECURITY_HEADERS, "Cache-Control": cache}
    if path.name == "sw.js":
        headers["Service-Worker-Allowed"] = "/app/"
    return web.Response(
        body=path.read_bytes(),
        content_type=content_type or "application/octet-stream",
        headers=headers,
    )


async def redirect(request: web.Request) -> web.StreamResponse:
    raise web.HTTPMovedPermanently("/app/")


def setup(app: web.Application, dist: Path = DIST) -> None:
    """Serve ``dist`` at ``/app/`` if it has been built."""
    if not (dist / "index.html").is_file():
        return
    app[WEB_DIST] = dist
    app.router.add_get("/app", redirect)
    app.router.add_get("/app/{tail:.*}", serve)
