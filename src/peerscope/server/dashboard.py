"""The live dashboard: its page and static files.

They are served without the token: they hold no data, and the page asks for the token when
the API (REST, ``/ws``) wants one. The page's own code lives in ``peerscope/dashboard/static``;
the charting library (uPlot) is copied into its ``vendor`` folder from npm by ``make assets``
and shipped in the wheel, so the dashboard works offline. ``/static`` also serves the API
documentation's files (``peerscope.server.api_docs``).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from peerscope.server.vendored import page_headers, vendored_page

STATIC_DIR = Path(__file__).resolve().parent.parent / "dashboard" / "static"
VENDOR_FILES = ("vendor/uPlot.esm.js", "vendor/uPlot.min.css")
PAGE_HEADERS = page_headers("'self' ws: wss:")  # the page reads /ws


def mount_dashboard(app: FastAPI, static_dir: Path = STATIC_DIR) -> None:
    """Serve the page at ``/`` and ``/dashboard`` and its files under ``/static``."""
    page = vendored_page(
        static_dir,
        "index.html",
        VENDOR_FILES,
        what="dashboard",
        library="The charting library (uPlot)",
        headers=PAGE_HEADERS,
    )
    for path in ("/", "/dashboard"):
        app.add_api_route(path, page, methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=static_dir, check_dir=False), name="static")
