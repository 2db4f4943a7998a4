"""Cost of evaluating the default alert rules on one tick, at 10,000 peers.

A Monitor of 10,000 game clients (so every default rule applies, ``stale_client`` too) is
probed at 1 Hz on a hand-moved clock; its ticks are built untimed and handed to
``Alerting.evaluate`` (the whole path: the evaluator, the log, silences, the listeners and
the notifiers' queues, here none), which is what is timed. Two cases:

- all changing: every peer gets a new latency before each tick; 2 % of them sit around
  the 100 ms latency line (so alerts go pending, fire and resolve along the way) and the
  rest well inside it;
- nothing changed: half a second after each of those, nothing recorded (the tick lists
  no peer; alerts waiting on ``for_s`` still fall due).

The reference is what the evaluator saves: every rule stepped for every peer on every tick
(``Alert.step`` 70,000 times), measured in the same run on the same ticks.

Targets: <= 5 ms per tick all changing, <= 0.5 ms when nothing changed (medians).

Run alone: ``python -m benchmarks.bench_alerts [--quick]``.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time

from benchmarks.children import ROOT
from benchmarks.results import Reference, Result, Target
from benchmarks.runner import run_alone
from benchmarks.timing import stats, up
from peerscope.alerting import Alerting
from peerscope.alerting.evaluator import host_value, peer_value
from peerscope.config import Settings
from peerscope.core.alerts import DEFAULT_RULES, Alert
from peerscope.events import MetricsTick
from peerscope.monitor import Monitor
from peerscope.testing import ManualClock

PEERS = 10_000
QUICK_PEERS = 1_000
TARGET_CHANGING_MS = 5.0
TARGET_STEADY_MS = 0.5
NEAR_LINE_SHARE = 0.02


def probed_monitor(peers: int, seed: int = 5) -> tuple[Monitor, ManualClock, list[float]]:
    clock = ManualClock()
    monitor = Monitor(Settings(enable_system_metrics=False), clock=clock)
    rng = random.Random(seed)
    base = [
        rng.uniform(90.0, 130.0) if rng.random() < NEAR_LINE_SHARE else rng.uniform(5.0, 60.0)
        for _ in range(peers)
    ]
    for index in range(peers):
        monitor.add_peer(f"client-{index:05d}", kind="client", labels={"region": "eu"})
    return monitor, clock, base


def everything(rules_alerts: dict[tuple[str, str | None], Alert], tick: MetricsTick) -> None:
    """The reference: every rule for every peer the tick knows (here all of them change)."""
    now = tick.timestamp
    for rule in DEFAULT_RULES:
        if rule.scope != "peer":
            key = (rule.name, None)
            alert = rules_alerts.get(key) or Alert(rule)
            rules_alerts[key] = alert.step(host_value(rule.metric, tick.system, tick.server), now)[
                0
            ]
            continue
        for reading in tick.changed:
            if not rule.matches(reading.kind, reading.labels):
                continue
            key = (rule.name, reading.peer_id)
            alert = rules_alerts.get(key) or Alert(rule, reading.peer_id)
            new = alert.step(peer_value(rule.metric, reading, now), now)[0]
            if new.state == "inactive":
                rules_alerts.pop(key, None)
            else:
                rules_alerts[key] = new


def measure(peers: int, ticks: int) -> dict[str, list[float] | int]:
    """The timings, in ms: evaluate all changing, the reference, evaluate nothing changed."""
    monitor, clock, base = probed_monitor(peers)
    # Over a Monitor of its own that never ticks: the ticks are handed to it, timed.
    alerting = Alerting(Monitor(Settings(enable_system_metrics=False), clock=clock))
    events: list[object] = []
    alerting.listen(events.append)
    reference: dict[tuple[str, str | None], Alert] = {}
    ids = monitor.peer_ids
    rng = random.Random(7)
    changing_ns: list[float] = []
    reference_ns: list[float] = []
    steady_ns: list[float] = []
    changed = listed = 0
    for _ in range(ticks):
        clock.advance(1.0)
        for peer_id, rtt in zip(ids, base, strict=True):
            monitor.record_latency(peer_id, rtt * rng.uniform(0.85, 1.15))
        tick = monitor.tick()
        changed = len(tick.changed)
        started = time.perf_counter_ns()
        alerting.evaluate(tick)
        changing_ns.append(time.perf_counter_ns() - started)
        started = time.perf_counter_ns()
        everything(reference, tick)
        reference_ns.append(time.perf_counter_ns() - started)
        # Half a second later, nothing recorded: a tick between two probing rounds.
        clock.advance(0.5)
        tick = monitor.tick()
        listed = max(listed, len(tick.changed))
        started = time.perf_counter_ns()
        alerting.evaluate(tick)
        steady_ns.append(time.perf_counter_ns() - started)
    return {
        "changing_ns": changing_ns,
        "reference_ns": reference_ns,
        "steady_ns": steady_ns,
        "changed": changed,
        "listed": listed,
        "events": len(events),
        "firing": alerting.count("firing"),
    }


def run(quick: bool = False) -> list[Result]:
    peers = QUICK_PEERS if quick else PEERS
    ticks = 15 if quick else 60
    # In an interpreter of its own: not on a heap that the benchmarks before it left large
    # and scattered (measured here in the one process of `make bench`: 6.7 ms against
    # 5.1 ms alone, for the same code).
    code = (
        "import json; from benchmarks.bench_alerts import measure; "
        f"print(json.dumps(measure({peers}, {ticks})))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    timings = json.loads(found.stdout.splitlines()[-1])
    changing_ns, reference_ns = timings["changing_ns"], timings["reference_ns"]
    steady_ns = timings["steady_ns"]
    changed, listed, events = timings["changed"], timings["listed"], timings["events"]
    firing = timings["firing"]
    changing = stats([ns / 1e6 for ns in changing_ns[1:]])  # the first reads every peer
    naive = stats([ns / 1e6 for ns in reference_ns[1:]])
    steady = stats([ns / 1e6 for ns in steady_ns])
    print(
        f"bench_alerts: {len(DEFAULT_RULES)} default rules, {peers} clients, {ticks} ticks "
        f"each case; ms per tick"
    )
    print(f"  {'case':<28} {'median':>8} {'min':>8} {'max':>8}")
    for name, found in (
        (f"all changing ({changed} listed)", changing),
        ("every rule x every peer", naive),
        (f"nothing changed ({listed} listed)", steady),
    ):
        print(
            f"  {name:<28} {up(found.median, 3):>8} {up(found.minimum, 3):>8} "
            f"{up(found.maximum, 3):>8}"
        )
    print(f"  {events} events told, {firing} alerts firing at the end")
    judged = peers == PEERS and not quick
    results = [
        Result(
            name="bench_alerts_changing",
            title=f"Default alert rules at {PEERS:,} peers, all changing: `Alerting.evaluate` "
            "per tick (median)",
            unit="ms",
            digits=3,
            target=Target(TARGET_CHANGING_MS),
            figure=changing.median if judged else None,
            quick=quick,
            # --quick stops below the target's size: neither figure nor ratio is measured.
            reference=Reference("every rule stepped for every peer", naive.median, floor=False)
            if judged
            else None,
            ratio=changing.median / naive.median if judged and naive.median else None,
            detail=f"max {up(changing.maximum, 3)} ms; {events} events told",
        ),
        Result(
            name="bench_alerts_steady",
            title=f"Default alert rules at {PEERS:,} peers, nothing changed: "
            "`Alerting.evaluate` per tick (median)",
            unit="ms",
            digits=3,
            target=Target(TARGET_STEADY_MS),
            figure=steady.median if judged else None,
            quick=quick,
            detail=f"max {up(steady.maximum, 3)} ms",
        ),
    ]
    for result in results:
        print(f"  {result.name}: target {result.target.text('ms')}: {result.verdict.label}")
    return results


if __name__ == "__main__":
    run_alone(run)
