"""The dashboard's files over HTTP: served without the token, with a strict CSP, and a clear
503 when the vendored assets were never built."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from peerscope import Monitor, Settings
from peerscope.server.dashboard import STATIC_DIR, mount_dashboard
from tests.server_support import live_server


def quiet_monitor(**overrides: Any) -> Monitor:
    return Monitor(Settings(metrics_interval=3600.0, enable_system_metrics=False, **overrides))


async def test_page_and_assets_are_served_with_a_strict_policy():
    async with live_server(quiet_monitor()) as live, live.http() as http:
        for path in ("/", "/dashboard"):
            page = await http.get(path)
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            policy = page.headers["content-security-policy"]
            assert "default-src 'self'" in policy
            assert "script-src 'self';" in policy  # no 'unsafe-inline': no inline scripts
            assert "connect-src 'self' ws: wss:" in policy
            assert page.headers["x-content-type-options"] == "nosniff"
            assert '<script type="module" src="static/dashboard.js">' in page.text
            assert "<script>" not in page.text
        for asset, kind in (
            ("peerscope.js", "javascript"),
            ("stream.js", "javascript"),
            ("vendor/uPlot.esm.js", "javascript"),
            ("vendor/uPlot.min.css", "text/css"),
            ("dashboard.css", "text/css"),
        ):
            response = await http.get(f"/static/{asset}")
            assert response.status_code == 200, asset
            assert kind in response.headers["content-type"], asset
        assert (await http.get("/static/nothing.js")).status_code == 404
        # The page is not an API route: OpenAPI does not list it.
        paths = (await http.get("/openapi.json")).json()["paths"]
        assert "/" not in paths
        assert "/dashboard" not in paths


async def test_with_a_token_the_page_is_open_and_the_data_is_not():
    async with live_server(quiet_monitor(token="s3cret")) as live, live.http() as http:
        assert (await http.get("/")).status_code == 200
        assert (await http.get("/static/dashboard.js")).status_code == 200
        assert (await http.get("/api/metrics/peers")).status_code == 401
        authorized = await http.get(
            "/api/metrics/peers", headers={"Authorization": "Bearer s3cret"}
        )
        assert authorized.status_code == 200


async def test_without_a_token_foreign_host_names_are_refused_on_the_page_too():
    async with live_server(quiet_monitor()) as live, live.http() as http:
        rebound = await http.get("/", headers={"Host": "attacker.example"})
        assert rebound.status_code == 400
        assert (await http.get("/", headers={"Host": f"localhost:{live.port}"})).status_code == 200


async def test_missing_vendor_assets_answer_503_saying_how_to_build_them(tmp_path: Path):
    static = tmp_path / "static"
    shutil.copytree(STATIC_DIR, static, ignore=shutil.ignore_patterns("vendor"))
    app = FastAPI()
    mount_dashboard(app, static)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        page = await http.get("/")
        assert page.status_code == 503
        assert "make assets" in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
        # Built while the server runs: the next request serves the dashboard.
        shutil.copytree(STATIC_DIR / "vendor", static / "vendor")
        page = await http.get("/dashboard")
        assert page.status_code == 200
        assert "static/dashboard.js" in page.text
