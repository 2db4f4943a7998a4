"""One pass over a tick's changed readings for all peer rules at once.

Each rule's own pass costs a loop over every changed reading: at 10,000 readings and five
rules, five loops of 10,000, and most of the tick's alerting time. :func:`compile_prefilter`
joins the rules' breach tests into one comprehension, compiled once per rule set, that keeps
the readings breaching at least one of them; each rule then tests only those few. It is a
superset test: a reading it keeps may breach none (the rules' own tests decide), and it
never drops one that breaches.

The source it compiles holds only field indices, operators from the rules' fixed set and
argument names; every threshold is an argument, never text (``collections.namedtuple``
builds its methods the same way).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from peerscope.core.alerts import AlertRule
from peerscope.events import PeerReading

__all__ = ["Prefilter", "compile_prefilter"]

# Metrics that are a field of the reading. ``latency_ms`` is the smoothed latency: a rule
# that waits ``for_s`` should not be reset by one quick probe among slow ones.
READING_FIELD = {
    "latency_ms": PeerReading._fields.index("smoothed_latency_ms"),
    "jitter_ms": PeerReading._fields.index("jitter_ms"),
    "loss_percent": PeerReading._fields.index("loss_percent"),
    "forward_loss_percent": PeerReading._fields.index("forward_loss_percent"),
    "return_loss_percent": PeerReading._fields.index("return_loss_percent"),
    "quality_score": PeerReading._fields.index("quality_score"),
    "status": PeerReading._fields.index("status"),
}
IDLE_METRIC = "idle_seconds"
_LAST_SEEN = PeerReading._fields.index("last_seen")

Scan = Callable[..., list[PeerReading]]


class Prefilter:
    """The compiled pass: :meth:`__call__` keeps the readings that may breach one of
    ``rules`` (the names of the rules it covers); rules it cannot express (``mos``, an idle
    rule other than ``>``/``>=`` a positive line) are not in ``rules``."""

    def __init__(
        self, scan: Scan | None, thresholds: tuple[object, ...], rules: frozenset[str]
    ) -> None:
        self._scan = scan
        self._thresholds = thresholds
        self.rules = rules

    def __call__(self, batch: Sequence[PeerReading], now: float) -> list[PeerReading]:
        if self._scan is None:
            return []
        return self._scan(batch, now, *self._thresholds)


def _test(rule: AlertRule, argument: str) -> str | None:
    """The rule's breach test of reading ``r`` as source, or None if it has none here."""
    index = READING_FIELD.get(rule.metric)
    if index is not None:
        value = f"r[{index}]"
        if rule.nodata == "alerting":
            return f"({value} is None or {value} {rule.op} {argument})"
        return f"({value} is not None and {value} {rule.op} {argument})"
    if rule.metric == IDLE_METRIC:
        assert isinstance(rule.threshold, float)
        # idle is max(0, now - last_seen): past a positive line the max changes nothing.
        if (rule.op == ">" and rule.threshold >= 0) or (rule.op == ">=" and rule.threshold > 0):
            return f"(now - r[{_LAST_SEEN}] {rule.op} {argument})"
    return None


def compile_prefilter(rules: Sequence[AlertRule]) -> Prefilter:
    """The pass over ``rules``' peer rules (host and server rules are left out)."""
    tests: list[str] = []
    thresholds: list[object] = []
    covered: set[str] = set()
    for rule in rules:
        if rule.scope != "peer":
            continue
        argument = f"t{len(thresholds)}"
        test = _test(rule, argument)
        if test is None:
            continue
        tests.append(test)
        thresholds.append(rule.threshold)
        covered.add(rule.name)
    if not tests:
        return Prefilter(None, (), frozenset())
    arguments = ", ".join(f"t{index}" for index in range(len(thresholds)))
    source = f"lambda batch, now, {arguments}: [r for r in batch if {' or '.join(tests)}]"
    scan: Scan = eval(source, {"__builtins__": {}})
    return Prefilter(scan, tuple(thresholds), frozenset(covered))
