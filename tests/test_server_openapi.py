"""The OpenAPI document, and schemathesis fuzzing the live server against it."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from peerscope import Monitor, Settings, __version__
from peerscope.alerting import Alerting
from peerscope.core.alerts import DEFAULT_RULES, AlertRule
from peerscope.probe.prober import Prober
from peerscope.profiler import Profiler
from peerscope.server import create_app
from peerscope.store import HistoryStore
from peerscope.store_settings import StoreSettings
from tests.server_support import LiveServer, live_server

pytestmark = pytest.mark.asyncio(loop_scope="module")

SEED_PATHS = {
    "/api/metrics/summary",
    "/api/metrics/peers",
    "/api/metrics/peers/{peer_id}",
    "/api/metrics/peers/{peer_id}/latency",
    "/api/metrics/system",
    "/api/metrics/system/history",
    "/api/metrics/sessions",
}
MORE_PATHS = {
    "/api/metrics/system/stats",
    "/api/metrics/server",
    "/api/metrics/current",
    "/api/health",
    "/api/badge.svg",
    "/api/profiler",
    "/api/profiler/sample",
}
# A report, JSON or pyinstrument's page (made, not stored: 200); 409 while one is running.
SAMPLE_PATH = "/api/profiler/sample"
# Those that need the history store answer 404 without one; a peer's names a peer.
HISTORY_PATHS = {
    "/api/metrics/peers/{peer_id}/history",
    "/api/metrics/host/history",
    "/api/metrics/server/history",
    "/api/history/events",
}
STORE_PATHS = {"/api/metrics/server/history", "/api/history/events"}
EXPORT_PATH = "/api/export"  # served only with a store: CSV, JSON or Parquet, streamed
ALERT_PATHS = {
    "/api/alerts",
    "/api/alerts/history",
    "/api/alerts/rules",
    "/api/alerts/silences",
    "/api/alerts/silences/{silence_id}",
    "/api/alerts/notifiers",
}


def busy_monitor() -> Monitor:
    """Peers in every state the API can show: measured, lossy, unmeasured, in sessions."""
    monitor = Monitor(Settings(metrics_interval=0.5))
    for i, latency in enumerate([8.0, 45.0, 180.0, 420.0]):
        peer_id = f"peer-{i}"
        monitor.add_peer(
            peer_id,
            name=f"Peer {i}",
            address=f"10.0.0.{i + 2}:8701",
            labels={"region": "eu" if i % 2 else "us"},
        )
        for k in range(6):
            monitor.record_latency(peer_id, latency + 3 * k)
        monitor.record_traffic(
            peer_id,
            bytes_sent=1000 * i,
            bytes_received=2000 * i,
            packets_sent=i,
            packets_received=2 * i,
        )
    monitor.record_latency("peer-3", None)  # a lost probe
    monitor.record_loss("peer-2", 12.5)
    monitor.record_fps("peer-1", 60.0, 16.6)
    monitor.add_peer("silent", kind="client")
    session = monitor.start_session("Match", ["peer-0", "peer-1"], session_id="match-1")
    monitor.record_latency("peer-0", 9.0)
    monitor.end_session(session)
    monitor.start_session("Open match", ["peer-2"])
    for _ in range(5):
        monitor.record_message("peer-1", size=64)
    return monitor


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveServer]:
    """The agent's app, built by hand to give it alerting: the default rules and one that
    fires at the first tick, so that alerts, events and silences are there to be read; and
    a history store, which keeps them and every tick."""
    monitor = busy_monitor()
    alerting = Alerting(monitor, (*DEFAULT_RULES, AlertRule("slow", "latency_ms", ">", 100.0)))
    store = HistoryStore(StoreSettings(db=str(tmp_path_factory.mktemp("store") / "history.db")))
    store.attach(monitor)
    alerting.listen(store.record_alert)
    # A profiler of its own: schemathesis' PUTs switch it off and on.
    app = create_app(
        monitor, prober=Prober(monitor), alerting=alerting, store=store, profiler=Profiler()
    )
    try:
        async with live_server(monitor, app=app) as server:
            yield server
    finally:
        await alerting.stop()
        store.close()


async def openapi(live: LiveServer) -> dict[str, Any]:
    async with live.http() as http:
        response = await http.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document: dict[str, Any] = response.json()
    return document


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        prefix = "#/components/schemas/"
        assert schema["$ref"].startswith(prefix)
        schema = document["components"]["schemas"][schema["$ref"].removeprefix(prefix)]
    return schema


async def test_openapi_and_docs_are_served(live: LiveServer):
    document = await openapi(live)
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "peerscope"
    assert document["info"]["version"] == __version__
    api_paths = {path for path in document["paths"] if path.startswith("/api/")}
    assert api_paths >= SEED_PATHS | MORE_PATHS | ALERT_PATHS | HISTORY_PATHS | {EXPORT_PATH}
    async with live.http() as http:
        docs = await http.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    # Swagger UI from the package, offline: tests/test_api_docs_server.py and _browser.py.
    assert "static/vendor/swagger-ui-bundle.js" in docs.text


async def test_every_api_path_has_a_response_model(live: LiveServer):
    document = await openapi(live)
    for path, operations in document["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            if method == "delete":  # 204: nothing to describe
                assert set(operation["responses"]) >= {"204", "404", "422"}, where
                continue
            # 404 where a peer or silence is named, a peer's badge asked for, or alerting
            # or the history store may be off.
            not_found = "{" in path or path in ALERT_PATHS | STORE_PATHS or path == "/api/badge.svg"
            assert ("404" in operation["responses"]) == not_found, where
            success = "201" if method == "post" and path != SAMPLE_PATH else "200"
            if path == SAMPLE_PATH:
                assert set(operation["responses"][success]["content"]) == {
                    "application/json",
                    "text/html",
                }
                statuses = ["422", "409"]
            elif path == "/api/badge.svg":  # an image, whatever the peer's state
                for status in (success, "404"):
                    assert set(operation["responses"][status]["content"]) == {"image/svg+xml"}
                statuses = ["422"]
            elif path == EXPORT_PATH:  # rows, as CSV, a JSON array or Parquet
                assert set(operation["responses"][success]["content"]) == {
                    "text/csv",
                    "application/json",
                    "application/vnd.apache.parquet",
                }
                statuses = ["422"]
            else:
                ok = operation["responses"][success]["content"]["application/json"]["schema"]
                model = resolve(document, ok)
                assert model.get("type") == "object", where
                assert model.get("properties"), f"{where}: empty 200 schema"
                assert model.get("required"), f"{where}: a 200 schema that requires nothing"
                for name in model["properties"]:  # every nested reference resolves
                    resolve(document, model["properties"][name])
                statuses = ["422", *(["404"] if not_found else [])]
            # Errors are documented as the JSON the server sends: {"error", "detail"}.
            for status in statuses:
                error = resolve(
                    document,
                    operation["responses"][status]["content"]["application/json"]["schema"],
                )
                assert set(error["properties"]) == {"error", "detail"}, (where, status)
            assert operation.get("summary"), f"{where}: no summary"


@pytest.mark.slow
async def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    live: LiveServer, tmp_path: Path
):
    """Every check schemathesis has, over generated valid and invalid requests, ~25 per
    operation, then its stateful phase; any finding fails the test.

    Except ``POST /api/peers``: every accepted request would send real probes to the
    generated address, and tests send traffic only to loopback. tests/test_server_peers.py
    covers it (valid peers, each invalid field named, 409, 404, the token). And ``POST
    /api/profiler/sample``: each accepted request samples for up to a minute;
    tests/test_server_profiler.py covers it (the report, 409, each bad parameter named).
    """
    # A rule set or silence can be refused whatever its schema says: a rule's clear on the
    # wrong side of its threshold, two rules of one name, a silence ending in the past; and
    # a history range: from after to, a figure or event type the series does not keep. Its
    # 422 names the field (tests/test_server_alerts.py and test_server_history.py check
    # each); valid data is accepted.
    (tmp_path / "schemathesis.toml").write_text(
        "[[operations]]\n"
        'include-name = ["PUT /api/alerts/rules", "POST /api/alerts/silences"]\n'
        'checks.positive_data_acceptance.expected-statuses = ["2xx", 422]\n'
        "[[operations]]\n"
        'include-name = ["GET /api/metrics/peers/{peer_id}/history", '
        '"GET /api/metrics/host/history", "GET /api/metrics/server/history", '
        '"GET /api/history/events"]\n'
        'checks.positive_data_acceptance.expected-statuses = ["2xx", 404, 422]\n'
    )
    st = Path(sys.executable).with_name("st")
    process = await asyncio.create_subprocess_exec(
        str(st),
        "run",
        f"{live.url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        "25",
        "--exclude-operation-id",
        "add_probed_api_peers_post",
        "--exclude-operation-id",
        "sample_api_profiler_sample_post",
        "--request-timeout",
        "10",
        "--no-color",
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 120)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    report = output.decode(errors="replace")
    assert process.returncode == 0, report[-6000:]
    # DELETE /api/peers/{id} only ever sees unknown ids (nothing is POSTed), which
    # schemathesis reports as a warning; a warning is not a finding.
    counts = re.search(r"(\d+) generated, (\d+) passed\n", report)
    assert counts is not None, report[-6000:]
    assert counts[1] == counts[2], report[-6000:]
    assert "Failures:" not in report, report[-6000:]
    assert "29 selected" in report


async def test_with_a_token_the_bearer_scheme_and_401_are_documented():
    secured = Monitor(Settings(metrics_interval=0.5, token="s3cret"))
    async with live_server(secured) as server, server.http() as http:
        document = (await http.get("/openapi.json")).json()
    assert document["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
    }
    for path, operations in document["paths"].items():
        if path.startswith("/api/"):
            for method, operation in operations.items():
                assert operation["security"] == [{"HTTPBearer": []}], (method, path)
                # Health answers without the token too (less), so it never says 401.
                assert ("401" in operation["responses"]) == (path != "/api/health"), path
