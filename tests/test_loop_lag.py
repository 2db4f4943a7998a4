"""The event-loop lag: a timer's lateness on the Monitor's loop, as the server's figure, on
/metrics and for alert rules. A test blocks the loop for 200 ms and sees it rise."""

from __future__ import annotations

import asyncio
import time

import pytest
from pydantic import ValidationError

from peerscope import Monitor, Settings
from peerscope.alerting import Alerting
from peerscope.core.alerts import AlertRule
from peerscope.events import MetricsTick
from peerscope.export.metrics_app import render
from peerscope.loop_lag import LoopLag

BLOCK_S = 0.2


def block_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # what a handler computing on the loop does to everyone else


async def test_a_quiet_loop_lags_little_and_a_blocked_one_by_the_block():
    lag = LoopLag(0.01, 1.0)
    assert lag.take() == (None, None)  # not started
    lag.start()
    try:
        await asyncio.sleep(0.3)
        worst, p99 = lag.take()
        assert worst is not None
        assert p99 is not None
        assert 0.0 <= p99 <= worst < 50.0
        asyncio.get_running_loop().call_soon(block_the_loop, BLOCK_S)
        await asyncio.sleep(0.3)
        worst, p99 = lag.take()
        assert worst is not None
        assert p99 is not None
        assert BLOCK_S * 1000 - 20 <= worst < BLOCK_S * 1000 + 100
        # One late firing of ~30 in the window: p99 is the largest.
        assert p99 == pytest.approx(worst)
        later, _ = lag.take()
        assert later is not None
        assert later < 50.0  # the worst is per take
    finally:
        lag.stop()
    assert not lag.is_running
    assert lag.take() == (None, None)


async def test_a_loop_still_blocked_when_the_figure_is_taken_reads_as_blocked():
    lag = LoopLag(0.01, 1.0)
    lag.start()
    try:
        await asyncio.sleep(0.05)
        block_the_loop(0.1)  # here, on the loop: the timer cannot fire before take()
        worst, _ = lag.take()
        assert worst is not None
        assert worst >= 80.0
    finally:
        lag.stop()


async def test_the_monitors_ticks_carry_the_lag_to_metrics_and_alert_rules():
    monitor = Monitor(
        Settings(metrics_interval=0.1, loop_lag_interval_s=0.01, enable_system_metrics=False)
    )
    alerting = Alerting(monitor, [AlertRule("laggy", "loop_lag_ms", ">", 100.0)])
    seen: list[float | None] = []

    def keep(event: object) -> None:
        if isinstance(event, MetricsTick):
            seen.append(event.server.loop_lag_ms)

    monitor.subscribe(keep)
    assert monitor.server_stats().loop_lag_ms is None  # not running: not measured
    async with monitor:
        await asyncio.sleep(0.35)
        quiet = [lag for lag in seen if lag is not None]
        assert quiet
        assert max(quiet) < 50.0
        assert alerting.count("firing") == 0
        asyncio.get_running_loop().call_soon(block_the_loop, BLOCK_S)
        await asyncio.sleep(0.35)
        assert max(lag for lag in seen if lag is not None) >= BLOCK_S * 1000 - 20
        # It fired on the tick after the block (and resolves once the loop is quiet again).
        fired = [event for event in alerting.history() if event["state"] == "firing"]
        assert [(event["rule"], event["peer_id"]) for event in fired] == [("laggy", None)]
        assert fired[0]["value"] >= BLOCK_S * 1000 - 20
        body = render(monitor)[0].decode()
        stats = monitor.server_stats()
        assert stats.loop_lag_p99_ms is not None
        assert stats.loop_lag_p99_ms >= BLOCK_S * 1000 - 20  # one in ~60 firings so far
        assert f"peerscope_event_loop_lag_p99_seconds {stats.loop_lag_p99_ms / 1000!r}" in body
        assert "# TYPE peerscope_event_loop_lag_seconds gauge" in body
        message = monitor.last_message
        assert message is not None
        assert message["server"]["loop_lag_ms"] is not None
    assert monitor.server_stats().loop_lag_ms is None  # stopped
    assert "peerscope_event_loop_lag" not in render(monitor)[0].decode()


def test_a_bad_period_is_refused_naming_it():
    with pytest.raises(ValueError, match="interval_s: must be > 0"):
        LoopLag(0.0)
    with pytest.raises(ValueError, match="window_s: must be >= interval_s"):
        LoopLag(1.0, 0.5)
    with pytest.raises(ValidationError, match="loop_lag_interval_s"):
        Settings(loop_lag_interval_s=-1)


async def test_a_period_of_zero_measures_nothing():
    monitor = Monitor(Settings(metrics_interval=0.05, loop_lag_interval_s=0))
    async with monitor:
        await asyncio.sleep(0.12)
        assert monitor.server_stats().loop_lag_ms is None
        message = monitor.last_message
        assert message is not None
        assert message["server"]["loop_lag_ms"] is None
