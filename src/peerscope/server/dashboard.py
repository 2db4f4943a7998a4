"""The live dashboard: its page and static files.

They are served without the token: they hold no data, and the page asks for the token when
the API (REST, ``/ws``) wants one. The page's own code lives in ``peerscope/dashboard/static``;
the charting library (uPlot) is copied into its ``vendor`` folder from npm by ``make assets``
and shipped in the wheel, so the dashboard works offline.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent.parent / "dashboard" / "static"
VENDOR_FILES = ("vendor/uPlot.esm.js", "vendor/uPlot.min.css")
# No inline script or style, no third-party origin: data shown on the page (peer names,
# labels) can never run as code even if some rendering path forgot to treat it as text.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'none'")
PAGE_HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY,
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-cache"}
ASSETS_MISSING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>peerscope: dashboard assets missing</title>
</head><body><h1>The dashboard's assets are not built</h1>
<p>The charting library is missing from {vendor}. In a source checkout, run
<code>make assets</code> (it runs <code>npm ci</code> in <code>web/</code> and copies uPlot
into the package), then reload. The REST API under <code>/api</code> and <code>/ws</code>
work without it.</p></body></html>
"""


def missing_assets(static_dir: Path = STATIC_DIR) -> list[str]:
    """The vendored files the page needs but ``static_dir`` lacks."""
    return [name for name in VENDOR_FILES if not (static_dir / name).is_file()]


def mount_dashboard(app: FastAPI, static_dir: Path = STATIC_DIR) -> None:
    """Serve the page at ``/`` and ``/dashboard`` and its files under ``/static``."""

    async def page() -> Response:
        # Checked per request, so assets built while the server runs are picked up.
        if missing_assets(static_dir):
            body = ASSETS_MISSING.format(vendor=static_dir / "vendor")
            return HTMLResponse(body, status_code=503, headers=PAGE_HEADERS)
        return FileResponse(static_dir / "index.html", media_type="text/html",
                            headers=PAGE_HEADERS)

    for path in ("/", "/dashboard"):
        app.add_api_route(path, page, methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=static_dir, check_dir=False), name="static")
