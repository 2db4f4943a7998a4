"""The interactive API documentation at ``/docs``: Swagger UI from the package's own files.

FastAPI's built-in ``/docs`` and ``/redoc`` load their code from a CDN, so offline they are
blank pages, and their inline script rules out a strict Content-Security-Policy.
``create_app`` turns them off (and with them the OAuth2 redirect page: the API's one security
scheme is a bearer token, which needs no redirect). This page loads Swagger UI, copied from
npm into ``static/vendor`` by ``make assets``, and its start-up script from ``/static``,
which ``mount_dashboard`` serves.

Like the dashboard, the page and ``/openapi.json`` need no token: they describe the API and
hold no data. With a token set, Swagger UI's "Authorize" takes it, and every "Try it out"
request then carries it as ``Authorization: Bearer``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from peerscope.server.dashboard import STATIC_DIR
from peerscope.server.vendored import page_headers, vendored_page

SWAGGER_FILES = ("vendor/swagger-ui-bundle.js", "vendor/swagger-ui.css")
# The dashboard's policy, less WebSockets. Swagger UI's stylesheet draws its icons as data:
# images; its inline styles are set through the DOM, which style-src does not govern.
PAGE_HEADERS = page_headers("'self'")


def mount_api_docs(app: FastAPI, static_dir: Path = STATIC_DIR) -> None:
    """Serve the Swagger UI page at ``/docs``; its files come from ``/static``."""
    page = vendored_page(
        static_dir,
        "api_docs.html",
        SWAGGER_FILES,
        what="API documentation",
        library="Swagger UI",
        headers=PAGE_HEADERS,
    )
    app.add_api_route("/docs", page, methods=["GET"], include_in_schema=False)
