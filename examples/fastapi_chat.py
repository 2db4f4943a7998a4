"""A FastAPI WebSocket chat that reports its own clients to peerscope.

Run it:   .venv/bin/python examples/fastapi_chat.py   (then open ws://127.0.0.1:8000/chat)
Watch it: http://127.0.0.1:8000/peerscope/api/metrics/peers, /peerscope/docs,
          /peerscope/metrics (Prometheus), and the live stream at
          ws://127.0.0.1:8000/peerscope/ws

Every chat connection is a peerscope peer of kind "client": its messages in and out, their
bytes, its connection time and idle time are recorded as they happen; peerscope's own
/ws clients are measured too (their RTT, by an application-level echo).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from peerscope import Monitor, Settings
from peerscope.export.metrics_app import MetricsApp
from peerscope.server import create_app

monitor = Monitor(Settings(metrics_interval=1.0))
members: dict[str, WebSocket] = {}
ids = itertools.count(1)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # A mounted app's own lifespan does not run, so the Monitor is started here.
    async with monitor:
        yield


app = FastAPI(title="chat", lifespan=lifespan)
# peerscope's API, dashboard and /metrics under /peerscope.
app.mount("/peerscope", create_app(monitor, metrics=MetricsApp(monitor)))


@app.websocket("/chat")
async def chat(websocket: WebSocket) -> None:
    await websocket.accept()
    client_id = f"chat-{next(ids)}"
    client = websocket.client
    monitor.add_peer(
        client_id,
        kind="client",
        name=websocket.query_params.get("name"),
        address=f"{client.host}:{client.port}" if client else None,
        labels={"app": "chat"},
    )
    members[client_id] = websocket
    try:
        while True:
            text = await websocket.receive_text()
            size = len(text.encode())
            monitor.record_message(client_id, size=size, direction="in")
            for other_id, other in list(members.items()):
                if other_id != client_id:
                    await other.send_text(text)
                    monitor.record_message(other_id, size=size, direction="out")
    except WebSocketDisconnect:
        pass
    finally:
        members.pop(client_id, None)
        monitor.remove_peer(client_id)


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=8000)
