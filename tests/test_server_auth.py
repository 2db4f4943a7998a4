"""Security defaults on a real server: bearer token, /metrics, CORS, body limit, bind refusal."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr
from websockets.exceptions import ConnectionClosed, InvalidStatus

from peerscope import Monitor, Settings
from peerscope.agent import serve
from peerscope.config import SettingsError
from peerscope.server.auth import check_bind
from tests.server_support import (
    LiveServer,
    live_server,
    next_of_type,
    read_until_closed,
)

TOKEN = "s3cret-Token_42"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
UNAUTHORIZED = {"error": "unauthorized", "detail": "missing or wrong bearer token"}
API_PATHS = [
    "/api/metrics/summary",
    "/api/metrics/peers",
    "/api/metrics/peers/alpha",
    "/api/metrics/peers/alpha/latency",
    "/api/metrics/system",
    "/api/metrics/system/history",
    "/api/metrics/system/stats",
    "/api/metrics/sessions",
    "/api/metrics/server",
    "/api/metrics/current",
    "/api/badge.svg",  # unless badge_public: tests/test_server_alerts.py
]
ORIGIN = "http://dash.example"


def quiet_monitor(**overrides: Any) -> Monitor:
    settings: dict[str, Any] = {"metrics_interval": 3600.0, "enable_system_metrics": False}
    settings.update(overrides)
    monitor = Monitor(Settings(**settings))
    monitor.record_latency("alpha", 12.0)
    return monitor


# --- REST ---------------------------------------------------------------------------------


async def test_rest_needs_the_bearer_token():
    async with live_server(quiet_monitor(token=TOKEN)) as live, live.http() as http:
        for path in API_PATHS:
            for headers in (
                {},
                {"Authorization": "Bearer wrong-token"},
                {"Authorization": f"Basic {TOKEN}"},
                {"Authorization": TOKEN},
            ):
                response = await http.get(path, headers=headers)
                assert response.status_code == 401, (path, headers)
                assert response.json() == UNAUTHORIZED
                assert response.headers["www-authenticate"] == "Bearer"
            # The WebSocket's query token is not a REST credential.
            assert (await http.get(path, params={"token": TOKEN})).status_code == 401
            response = await http.get(path, headers=BEARER)
            assert response.status_code == 200, (path, response.text)
        # Scheme names are case-insensitive (RFC 7235).
        lower = await http.get("/api/health", headers={"Authorization": f"bearer {TOKEN}"})
        assert lower.status_code == 200
        # Without the token nobody learns which peers exist: 401, not 404.
        assert (await http.get("/api/metrics/peers/nope")).status_code == 401
        assert (await http.get("/api/metrics/peers/nope", headers=BEARER)).status_code == 404
        assert (await http.get("/api/metrics/peers/alpha", headers=BEARER)).json()[
            "latency_ms"
        ] == 12.0


async def test_health_answers_liveness_without_the_token_and_details_with_it():
    async with live_server(quiet_monitor(token=TOKEN)) as live, live.http() as http:
        for headers in ({}, {"Authorization": "Bearer wrong-token"}):
            response = await http.get("/api/health", headers=headers)
            assert response.status_code == 200
            assert response.json() == {"status": "ok"}  # nothing more without the token
        details = (await http.get("/api/health", headers=BEARER)).json()
        assert details["status"] == "ok"
        assert details["peers"] == 1
        assert details["monitor_running"] is True
        assert details["reflector"] is None  # live_server runs no reflector
    async with live_server(quiet_monitor()) as live, live.http() as http:
        assert (await http.get("/api/health")).json()["peers"] == 1  # no token: all of it


async def test_without_a_token_rest_is_open():
    async with live_server(quiet_monitor()) as live, live.http() as http:
        for path in API_PATHS:
            assert (await http.get(path)).status_code == 200, path


# --- WebSocket ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        (f"?token={TOKEN}", None),
        ("", BEARER),
    ],
    ids=["query", "bearer-header"],
)
async def test_ws_accepts_the_token(query: str, headers: dict[str, str] | None):
    async with live_server(quiet_monitor(token=TOKEN, metrics_interval=0.1)) as live:
        ws = await live.ws(query, additional_headers=headers)
        frame = await next_of_type(ws, "metrics")
        assert frame["clients_total"] == 2  # alpha and this client
        await ws.send('{"type": "ping", "t": 7}')
        assert (await next_of_type(ws, "pong"))["t"] == 7
        await ws.close()


async def test_ws_without_the_right_token_is_closed_1008():
    monitor = quiet_monitor(token=TOKEN, metrics_interval=0.1)
    async with live_server(monitor) as live:
        for query, headers in (
            ("", None),
            ("?token=wrong", None),
            ("", {"Authorization": "Bearer wrong"}),
            ("?token=", None),
        ):
            try:
                ws = await live.ws(query, additional_headers=headers)
            except InvalidStatus as error:
                pytest.fail(
                    f"{query or headers or 'no token'}: the handshake was refused "
                    f"with HTTP {error.response.status_code}; the contract is a "
                    "WebSocket close with code 1008"
                )
            messages = await read_until_closed(ws)
            assert ws.close_code == 1008, (query, headers)
            assert messages == []  # nothing leaked before the close
            assert monitor.peer_ids == ["alpha"]  # the refused client never became a peer


@pytest.mark.slow
async def test_ws_refuses_pages_from_other_origins():
    """Browsers apply no CORS to WebSockets: without an Origin check any web page the user
    opens could read the live stream (every peer's address) from the tokenless loopback
    default. Same-origin pages, configured origins and non-browser clients get in."""
    monitor = quiet_monitor(metrics_interval=0.1, cors_origins=[ORIGIN])
    async with live_server(monitor) as live:
        for origin in (None, f"http://127.0.0.1:{live.port}", ORIGIN):
            ws = await live.ws(origin=origin)
            assert (await next_of_type(ws, "metrics"))["type"] == "metrics", origin
            await ws.close()
        leaked = None
        try:
            ws = await live.ws(origin="http://evil.example")
        except InvalidStatus as refused:
            outcome = refused.response.status_code
        else:
            with contextlib.suppress(ConnectionClosed, TimeoutError):
                leaked = await next_of_type(ws, "metrics", timeout=1.0)
            outcome = ws.close_code
            await ws.close()
        assert leaked is None, (
            f"a page from another origin read the stream ({leaked['clients_total']} peers listed)"
        )
        assert outcome in (403, 1008)  # refused at the handshake, or closed as a violation


# --- /metrics -----------------------------------------------------------------------------


async def test_metrics_is_public_by_default_even_with_a_token():
    async with live_server(quiet_monitor(token=TOKEN)) as live, live.http() as http:
        response = await http.get("/metrics")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        assert "# TYPE " in response.text
        assert (await http.get("/api/metrics/server")).status_code == 401  # the rest stays closed


async def test_metrics_needs_the_token_when_not_public():
    monitor = quiet_monitor(token=TOKEN, metrics_public=False)
    async with live_server(monitor) as live, live.http() as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            response = await http.get("/metrics", headers=headers)
            assert response.status_code == 401
            assert response.json() == UNAUTHORIZED
        response = await http.get("/metrics", headers=BEARER)
        assert response.status_code == 200, response.text
        assert "# TYPE " in response.text
        # Refused as every API route refuses: the header says which scheme to use.
        response = await http.get("/metrics")
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["content-type"] == "application/json"


async def test_metrics_without_a_token_answers_loopback_host_names_only():
    """/metrics is the Prometheus exporter's own app, served inside the API's Host check:
    a page re-pointing its name at 127.0.0.1 cannot scrape every peer's address."""
    async with (
        live_server(quiet_monitor(allowed_hosts=["monitor.lan"])) as live,
        live.http() as http,
    ):
        for host in ("evil.example", f"evil.example:{live.port}"):
            response = await http.get("/metrics", headers={"Host": host})
            assert response.status_code == 400, host
            assert response.json()["detail"].startswith("host: ")
            assert "# TYPE " not in response.text
        for host in ("localhost", "monitor.lan"):
            response = await http.get("/metrics", headers={"Host": host})
            assert response.status_code == 200, host
            assert (
                'peerscope_peer_rtt_seconds{kind="peer",name="",peer_id="alpha"} 0.012'
                in response.text
            )


# --- CORS ---------------------------------------------------------------------------------


async def preflight(live: LiveServer, origin: str) -> Any:
    async with live.http() as http:
        return await http.options(
            "/api/health",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )


async def test_cors_is_off_by_default():
    async with live_server(quiet_monitor()) as live, live.http() as http:
        response = await http.get("/api/health", headers={"Origin": ORIGIN})
        assert response.status_code == 200
        assert not any(name.startswith("access-control-") for name in response.headers)
        response = await preflight(live, ORIGIN)
        assert response.status_code == 405
        assert not any(name.startswith("access-control-") for name in response.headers)


async def test_cors_allows_only_the_configured_origins():
    monitor = quiet_monitor(token=TOKEN, cors_origins=[ORIGIN])
    async with live_server(monitor) as live, live.http() as http:
        response = await http.get("/api/health", headers={"Origin": ORIGIN, **BEARER})
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == ORIGIN
        # A browser can read the 401 too, so the dashboard can ask for the token.
        response = await http.get("/api/metrics/server", headers={"Origin": ORIGIN})
        assert response.status_code == 401
        assert response.headers["access-control-allow-origin"] == ORIGIN
        # The preflight is answered without the token (browsers never send it there).
        response = await preflight(live, ORIGIN)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == ORIGIN
        assert "GET" in response.headers["access-control-allow-methods"]
        assert "authorization" in response.headers["access-control-allow-headers"].lower()
        # Another origin gets no CORS grant.
        other = await http.get("/api/health", headers={"Origin": "http://evil.example", **BEARER})
        assert other.status_code == 200
        assert "access-control-allow-origin" not in other.headers
        assert (
            "access-control-allow-origin"
            not in (await preflight(live, "http://evil.example")).headers
        )


# --- request bodies -----------------------------------------------------------------------


async def test_a_body_over_the_limit_gets_413_json_before_routing():
    monitor = quiet_monitor(token=TOKEN, max_body_bytes=1024)
    async with live_server(monitor) as live, live.http() as http:
        too_large = {
            "error": "request body too large",
            "detail": "body: at most 1024 bytes (max_body_bytes)",
        }
        for method, path in (
            ("POST", "/api/health"),
            ("GET", "/api/health"),
            ("PUT", "/api/no-such-route"),
            ("POST", "/metrics"),
        ):
            response = await http.request(method, path, content=b"x" * 2048, headers=BEARER)
            assert response.status_code == 413, (method, path)
            assert response.headers["content-type"] == "application/json"
            assert response.json() == too_large
        # Within the limit the request reaches routing (and auth) as usual.
        assert (
            await http.post("/api/health", content=b"x" * 1024, headers=BEARER)
        ).status_code == 405
        assert (
            await http.request("GET", "/api/health", content=b"x" * 1024, headers=BEARER)
        ).status_code == 200
        assert (
            await http.request("GET", "/api/metrics/server", content=b"x" * 10)
        ).status_code == 401


async def chunks(total: int, size: int = 100) -> AsyncIterator[bytes]:
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


async def test_a_chunked_body_over_the_limit_gets_413_too():
    """No Content-Length to refuse up front: the body is counted as it arrives (it was
    reported as FastAPI's 400 "error parsing the body")."""
    monitor = quiet_monitor(max_body_bytes=1024)
    async with live_server(monitor) as live, live.http() as http:
        response = await http.post(
            "/api/peers", content=chunks(2048), headers={"content-type": "application/json"}
        )
        assert "content-length" not in response.request.headers  # really chunked
        assert response.status_code == 413
        assert response.json() == {
            "error": "request body too large",
            "detail": "body: at most 1024 bytes (max_body_bytes)",
        }
        # Within the limit, a chunked body reaches the route whole.
        body = b'{"address": "127.0.0.1:9", "id": "chunked"}'

        async def one_by_one() -> AsyncIterator[bytes]:
            for byte in body:
                yield bytes([byte])

        response = await http.post(
            "/api/peers", content=one_by_one(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 201, response.text
        assert response.json()["id"] == "chunked"


# --- where the server may listen ----------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "peerscope.example"])
async def test_serve_refuses_a_public_address_without_a_token(host: str):
    monitor = Monitor(Settings(enable_system_metrics=False))
    with pytest.raises(SettingsError) as refused:
        # The refusal comes before binding; the timeout only guards a regression.
        await asyncio.wait_for(serve(monitor, host=host, port=0), 5)
    message = str(refused.value)
    assert f"refusing to bind {host} without a token" in message
    assert "--token" in message
    assert "PEERSCOPE_TOKEN" in message
    assert not monitor.is_running
    # The same from the settings alone.
    configured = Monitor(Settings(host=host, port=0, enable_system_metrics=False))
    with pytest.raises(SettingsError, match="without a token"):
        await asyncio.wait_for(serve(configured), 5)


async def test_a_blank_token_is_no_token_for_the_bind_check_and_the_guard():
    """Settings copied without validation can still hold one: the bind check and the guard
    read the token the same way, so neither takes it for a token the other ignores."""
    blank = Settings(enable_system_metrics=False).model_copy(
        update={"token": SecretStr(""), "host": "0.0.0.0"}
    )
    with pytest.raises(SettingsError, match=r"refusing to bind 0\.0\.0\.0 without a token"):
        check_bind(blank)
    with pytest.raises(SettingsError, match=r"refusing to bind 0\.0\.0\.0 without a token"):
        await asyncio.wait_for(serve(Monitor(blank), port=0), 5)
    loopback = Monitor(blank.model_copy(update={"host": "127.0.0.1"}))
    async with live_server(loopback) as live, live.http() as http:
        # Served as without a token: Host checked, no 401 (and no bearer scheme documented).
        assert (await http.get("/api/health")).status_code == 200
        assert (await http.get("/api/health", headers={"Host": "evil.example"})).status_code == 400


@pytest.mark.parametrize(
    ("host", "token"),
    [
        ("127.0.0.1", None),
        ("127.0.0.2", None),
        ("localhost", None),
        ("::1", None),
        ("0.0.0.0", TOKEN),
        ("192.0.2.10", TOKEN),
    ],
)
def test_loopback_or_a_token_may_bind(host: str, token: str | None):
    check_bind(Settings(host=host, token=token))  # no SettingsError


# --- DNS rebinding ------------------------------------------------------------------------


async def test_without_a_token_only_loopback_host_names_are_served():
    """A page on evil.example whose name is re-pointed at 127.0.0.1 sends `Host: evil.example`:
    the tokenless API must not answer it, while loopback names and configured ones work."""
    monitor = quiet_monitor(allowed_hosts=["monitor.lan"])
    async with live_server(monitor) as live, live.http() as http:
        assert (await http.get("/api/health")).status_code == 200
        for host in ("localhost", f"localhost:{live.port}", "monitor.lan"):
            response = await http.get("/api/health", headers={"Host": host})
            assert response.status_code == 200, host
        for host in ("localhost", "[::1]:8700", "LOCALHOST", "Monitor.LAN:80"):
            assert (await http.get("/api/health", headers={"Host": host})).status_code == 200
        for host in (
            "evil.example",
            f"evil.example:{live.port}",
            "127.0.0.1.evil.example",
            "[::1",
            "monitor.lan.evil.example",
            "x" * 5000,
        ):
            response = await http.get("/api/health", headers={"Host": host})
            assert response.status_code == 400, host
            # JSON like every other refusal, naming the field, the bad value cut short.
            assert response.headers["content-type"] == "application/json"
            body = response.json()
            assert body["error"] == "bad request"
            assert body["detail"].startswith("host: "), body
            assert "allowed_hosts" in body["detail"]
            assert len(body["detail"]) < 200
        with pytest.raises(InvalidStatus) as refused:
            await live.ws(additional_headers={"Host": "evil.example"})
        assert refused.value.response.status_code == 400


async def test_with_a_token_any_host_name_is_served():
    monitor = quiet_monitor(token=TOKEN)
    async with live_server(monitor) as live, live.http() as http:
        response = await http.get(
            "/api/health",
            headers={"Host": "monitor.example.org", "Authorization": f"Bearer {TOKEN}"},
        )
    assert response.status_code == 200
