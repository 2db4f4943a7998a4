"""examples/fastapi_chat.py, run for real: its clients show up in peerscope's API."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import uvicorn
import websockets

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fastapi_chat.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fastapi_chat", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
async def test_chat_clients_are_measured_and_served_under_the_mount():
    example = load_example()
    server = uvicorn.Server(
        uvicorn.Config(example.app, host="127.0.0.1", port=0, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        base = f"127.0.0.1:{port}"
        async with (
            websockets.connect(f"ws://{base}/chat?name=alice") as alice,
            websockets.connect(f"ws://{base}/chat?name=bob") as bob,
        ):
            await alice.send("hello bob")
            assert await asyncio.wait_for(bob.recv(), 5) == "hello bob"
            await bob.send("hi")
            assert await asyncio.wait_for(alice.recv(), 5) == "hi"
            async with httpx.AsyncClient(base_url=f"http://{base}") as http:
                page = (await http.get("/peerscope/api/metrics/peers?sort=id")).json()
                by_name = {peer["name"]: peer for peer in page["peers"]}
                assert by_name["alice"]["messages_received"] == 1
                assert by_name["alice"]["messages_sent"] == 1
                assert by_name["alice"]["bytes_received"] == len("hello bob")
                assert by_name["bob"]["bytes_sent"] == len("hello bob")
                assert by_name["bob"]["labels"] == {"app": "chat"}
                assert by_name["alice"]["kind"] == "client"
                server_stats = (await http.get("/peerscope/api/metrics/server")).json()
                assert server_stats["total_messages"] == 4
                assert server_stats["active_connections"] == 2
                # The Prometheus exporter's own app, mounted with the API.
                scrape = await http.get("/peerscope/metrics")
                assert scrape.status_code == 200
                assert scrape.headers["content-type"].startswith("text/plain; version=0.0.4")
                assert "peerscope_peer_received_messages_total{" in scrape.text
            async with websockets.connect(f"ws://{base}/peerscope/ws") as dashboard:
                frame = json.loads(await asyncio.wait_for(dashboard.recv(), 5))
                while frame["type"] != "metrics":
                    frame = json.loads(await asyncio.wait_for(dashboard.recv(), 5))
                names = {client["name"] for client in frame["clients"]}
                assert {"alice", "bob"} <= names
    finally:
        server.should_exit = True
        await task
