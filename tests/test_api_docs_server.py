"""``/docs`` over HTTP: a page that loads only same-origin files, all of them served, under a
strict Content-Security-Policy; open with a token; a clear 503 when Swagger UI was never
built; FastAPI's CDN pages gone."""

from __future__ import annotations

import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from fastapi import FastAPI

from peerscope import Monitor, Settings
from peerscope.server.api_docs import SWAGGER_FILES, mount_api_docs
from peerscope.server.dashboard import STATIC_DIR, mount_dashboard
from tests.server_support import live_server

TOKEN = "docs-test-token-0123456789"
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'none'"
)


def quiet_monitor(**overrides: Any) -> Monitor:
    return Monitor(Settings(metrics_interval=3600.0, enable_system_metrics=False, **overrides))


class References(HTMLParser):
    """Every URL a page loads (scripts, stylesheets, icons), and any inline code."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[tuple[str, str]] = []  # (tag, URL)
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if "style" in found or any(name.startswith("on") for name in found):
            self.inline.append(f"<{tag}> attribute")
        if tag == "style":
            self.inline.append("<style>")
        if tag == "script":
            self._in_script = True
            if found.get("src"):
                self.loads.append((tag, found["src"] or ""))
        elif tag == "link" and found.get("href"):
            self.loads.append((f"link {found.get('rel')}", found["href"] or ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(f"<script> {data.strip()[:40]}")


async def test_docs_load_only_same_origin_files_and_every_one_is_served():
    async with live_server(quiet_monitor()) as live, live.http() as http:
        page = await http.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["content-security-policy"] == POLICY
        assert page.headers["x-content-type-options"] == "nosniff"
        parsed = References()
        parsed.feed(page.text)
        assert parsed.inline == []  # the policy's script-src/style-src 'self' allow none
        kinds = {"script": "javascript", "link stylesheet": "text/css"}
        loaded = {}
        for tag, reference in parsed.loads:
            url = urlsplit(urljoin(live.url + "/docs", reference))
            if url.scheme == "data":  # the empty favicon: nothing is fetched
                continue
            assert (url.scheme, url.netloc) == ("http", f"127.0.0.1:{live.port}"), reference
            response = await http.get(url.path)
            assert response.status_code == 200, reference
            assert kinds[tag] in response.headers["content-type"], reference
            loaded[url.path] = len(response.content)
        assert set(loaded) == {
            "/static/vendor/swagger-ui-bundle.js",
            "/static/vendor/swagger-ui.css",
            "/static/api_docs.js",
        }
        assert loaded["/static/vendor/swagger-ui-bundle.js"] > 500_000  # the real bundle
        # The page's own script asks for the document next to the page.
        assert (await http.get("/openapi.json")).status_code == 200
        # FastAPI's CDN pages are off; the page is not an API route.
        for gone in ("/redoc", "/docs/oauth2-redirect"):
            assert (await http.get(gone)).status_code == 404, gone
        assert "/docs" not in (await http.get("/openapi.json")).json()["paths"]


async def test_with_a_token_the_docs_and_document_are_open_and_the_api_is_not():
    async with live_server(quiet_monitor(token=TOKEN)) as live, live.http() as http:
        assert (await http.get("/docs")).status_code == 200
        assert (await http.get("/static/api_docs.js")).status_code == 200
        document = await http.get("/openapi.json")
        assert document.status_code == 200
        assert document.json()["components"]["securitySchemes"]["HTTPBearer"] == {
            "type": "http",
            "scheme": "bearer",
        }
        assert (await http.get("/api/metrics/server")).status_code == 401


async def test_without_swagger_ui_docs_answer_503_saying_how_to_build_it(tmp_path: Path):
    """uPlot present, Swagger UI not: the dashboard works, /docs says what to run."""
    static = tmp_path / "static"
    shutil.copytree(STATIC_DIR, static)
    for name in SWAGGER_FILES:
        (static / name).unlink()
    app = FastAPI(docs_url=None, redoc_url=None)
    mount_dashboard(app, static)
    mount_api_docs(app, static)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        page = await http.get("/docs")
        assert page.status_code == 503
        assert page.headers["content-security-policy"] == POLICY
        assert "Swagger UI is missing" in page.text
        assert "vendor/swagger-ui-bundle.js, vendor/swagger-ui.css" in page.text
        assert "<code>make assets</code>" in page.text
        assert (await http.get("/")).status_code == 200
        # Built while the server runs: the next request serves the docs.
        for name in SWAGGER_FILES:
            shutil.copy(STATIC_DIR / name, static / name)
        page = await http.get("/docs")
        assert page.status_code == 200
        assert "static/api_docs.js" in page.text
