"""The Broadcaster's events (alerts pushed between the metrics frames): room of their own, so a
burst of alerts never costs a subscriber its metrics frame, nor a full buffer the alert.

Real end to end in tests/test_server_alerts.py (a ``performance_alert`` over a real socket,
served and mounted); here the bounds, with connections that report what waits in them.
"""

from __future__ import annotations

import asyncio

import orjson
from websockets.frames import Frame, Opcode

from peerscope.server.broadcast import EVENT_FRAMES, Broadcaster


class Connection:
    """A direct subscriber's connection whose reader takes nothing: every byte written waits,
    as in a socket whose peer stopped reading (what ``write_frame`` refuses past a limit)."""

    def __init__(self) -> None:
        self.buffered = 0
        self.frames: list[bytes] = []

    def write(self, frame: bytes, limit: int) -> bool:
        if self.buffered > limit:
            return False
        self.buffered += len(frame)
        self.frames.append(frame)
        return True


def frame(kind: str, n: int, size: int = 0) -> bytes:
    return orjson.dumps({"type": kind, "n": n, "pad": "x" * size})


async def drain(subscriber: object, count: int) -> list[dict[str, object]]:
    taken = []
    for _ in range(count):
        text, size = await asyncio.wait_for(subscriber.get(), 1)  # type: ignore[attr-defined]
        assert size == len(text.encode())
        taken.append(orjson.loads(text))
    return taken


async def test_a_burst_of_events_keeps_a_queued_subscribers_metrics_frames():
    broadcaster = Broadcaster(frames=2)
    stalls: list[str] = []
    subscriber = broadcaster.subscribe(lambda: stalls.append("stalled"))
    broadcaster.publish(frame("metrics", 1))
    for n in range(EVENT_FRAMES + 3):
        broadcaster.push(frame("performance_alert", n))
    broadcaster.publish(frame("metrics", 2))
    broadcaster.publish(frame("metrics", 3))  # the frames' room (2) is full: frame 1 goes
    assert len(subscriber) == 2 + EVENT_FRAMES
    # Each kind lost its oldest; the rest come in the order published.
    assert subscriber.missed == 3 + 1
    taken = await drain(subscriber, 2 + EVENT_FRAMES)
    events = [m["n"] for m in taken if m["type"] == "performance_alert"]
    assert events == list(range(3, EVENT_FRAMES + 3))
    assert [m["n"] for m in taken if m["type"] == "metrics"] == [2, 3]
    assert taken[-2:] == [
        {"type": "metrics", "n": 2, "pad": ""},
        {"type": "metrics", "n": 3, "pad": ""},
    ]
    assert len(subscriber) == 0
    assert stalls == []


async def test_a_queued_subscriber_waits_for_its_next_frame():
    broadcaster = Broadcaster(frames=4)
    subscriber = broadcaster.subscribe(lambda: None)
    waiting = asyncio.create_task(subscriber.get())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    broadcaster.push(frame("performance_alert", 7))
    text, _ = await asyncio.wait_for(waiting, 1)
    assert orjson.loads(text)["n"] == 7


def test_an_event_reaches_a_connection_whose_buffer_holds_metrics_frames():
    frames = 4
    broadcaster = Broadcaster(frames)
    connection = Connection()
    sent: list[int] = []
    broadcaster.subscribe_direct(connection.write, sent.append, lambda: None)
    metrics = frame("metrics", 1, size=20_000)
    for _ in range(frames + 1):
        broadcaster.publish(metrics)
    # The frames filled what they may: the last was refused...
    assert len(connection.frames) == frames
    before = len(connection.frames)
    # ...but an alert still goes out after the frames that wait.
    alert = frame("performance_alert", 1)
    broadcaster.push(alert)
    assert len(connection.frames) == before + 1
    assert connection.frames[-1] == Frame(Opcode.TEXT, alert).serialize(mask=False)
    assert sent[-1] == len(alert)


def test_events_are_bounded_and_no_sign_of_a_stall():
    now = [0.0]
    broadcaster = Broadcaster(2, stall_timeout_s=1.0, clock=lambda: now[0])
    connection = Connection()
    stalls: list[str] = []
    subscriber = broadcaster.subscribe_direct(
        connection.write, lambda size: None, lambda: stalls.append("stalled")
    )
    alert = frame("performance_alert", 1, size=500)
    wire = len(Frame(Opcode.TEXT, alert).serialize(mask=False))
    for _ in range(2 * EVENT_FRAMES):
        now[0] += 0.1
        broadcaster.push(alert)
    # At most EVENT_FRAMES of them (one more, written when the limit was just reached).
    assert len(connection.frames) == EVENT_FRAMES + 1
    assert connection.buffered == (EVENT_FRAMES + 1) * wire
    assert subscriber.missed == EVENT_FRAMES - 1
    # 51 s of refused events: whether it reads is for the metrics frames to tell.
    assert subscriber.stalled_since is None
    assert stalls == []
