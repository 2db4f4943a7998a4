"""LANrage's observability API over peerscope: ``core/observability/metrics.py`` over
:class:`peerscope.Monitor`, ``profiler.py`` over :class:`peerscope.profiler.Profiler` and
``logging_config.py`` over :mod:`peerscope.logs`.

The submodules mirror LANrage's: ``from core.observability.metrics import X`` becomes
``from peerscope.compat.lanrage.metrics import X``; ``core.observability.profiler`` (or
``core.profiler``) becomes ``peerscope.compat.lanrage.profiler`` (a package re-exporting
:mod:`~.performance_profiler`: a module's file name is never used twice in peerscope), and
``core.observability.logging_config`` (or ``core.logging_config``)
``peerscope.compat.lanrage.logging_config``; every name is importable from this package too.
Method names, arguments, sync/async-ness and dict shapes follow the original; every number
comes from the Monitor or the Profiler.

Deliberate differences of the collector (``metrics``) from the original:

- ``start()`` starts the Monitor's tick loop (keeping its task; host sampling never blocks the
  event loop) and ``stop()`` waits for it to end. The host is sampled every
  ``Settings.metrics_interval`` (default 1 s; ``collection_interval`` reads it) instead of
  every 10 s. There is no ``network_baseline``.
- The collector's own Monitor is built from :func:`~.metrics.lanrage_settings`: as in
  LANrage, status follows the latest sample (no smoothing of the latency the score takes, no
  margin to climb back over 60), so one 250 ms sample after a good one reads ``degraded``,
  and one failed measurement degrades the peer and scores it 0. A wrapped Monitor
  (``monitor=``) keeps its settings: by default the score takes the smoothed latency, so one
  spike does not degrade a peer. Either way status also follows idle time (silent 15 s →
  degraded by default), and a peer whose last measurements failed (one with the
  collector's own Monitor, two by default) shows None (null) latency, jitter and MOS, not
  the last ones.
- Quality score, band, trend and jitter are the Monitor's: peerscope's impairment score
  (where LANrage's additive formula reads 65 at 100 % loss), the trend of its moving
  averages, RFC 3550 jitter by default (``Settings.quality.jitter_method="stddev"`` gives
  the original's standard deviation). An unmeasured peer's score is None, not 100.
- Packet loss is tracked: ``record_packet_loss`` reports it to the Monitor (clamped to
  0..100 as the original did) and a failed measurement (``record_latency(peer, None)``)
  counts as lost; the score uses it at the next refresh, not only at the next sample.
- ``uptime`` / ``uptime_seconds`` / ``connection_uptime`` is the time since the peer
  connected, not since it was last seen (nor always 0). Packet counters are the Monitor's.
- ``peer_metrics`` (a mapping of peer id to :class:`~.metric_views.PeerMetrics`),
  ``system_metrics``, ``game_sessions`` and ``active_session`` are read-only views read from
  the Monitor at each access, not the collector's own state; writing is not supported (no
  setters, no item assignment; ``MetricPoint``, ``GameSession`` and the second scorer's
  samples are frozen, so a test that ages a sample by editing its timestamp must move the
  Monitor's clock instead), and appending to a deque they return changes nothing.
  ``PeerMetrics`` is built from a Monitor and a peer id, and reading it once the Monitor
  forgot the peer raises ``KeyError``; its ``jitter_ms`` is None while the peer shows no
  figures. The series are as long as the Monitor keeps them (``latency_samples``,
  ``system_history_samples``; LANrage kept 360) and ``game_sessions`` holds every ended
  session the Monitor remembers (``session_history``, 100), its own ones included.
- LANrage's second scorer, :class:`~.connection_quality.ConnectionQualityMonitor`
  (``quality_monitor``, the ``advanced`` and ``rolling_5m`` blocks of
  ``get_peer_connection_quality``, ``get_quality_rolling_average`` and
  ``get_quality_hourly_aggregates``), takes its parts as impairments, with peerscope's
  grades and failure rules (its module docstring says how that differs). The collector
  feeds it the Monitor's jitter and loss, the answered share of the Monitor's measurements
  as stability, and as bandwidth the kernel's delivery rate of a watched TCP connection
  (LANrage's stand-in, MiB moved so far, where there is none); a peer's samples go when
  the Monitor forgets it.
- ``get_network_quality_score`` / ``_report`` use the Monitor's network score
  (0.9·mean peer score + 0.1·(100 − current CPU%)), not the second scorer's samples and the
  average CPU.
- ``remove_peer`` forgets the peer (the Monitor has no "keep as disconnected" call); it no
  longer shows in summaries or ``peer_metrics``. ``add_peer`` on a known id updates the
  display name.
- Game sessions are Monitor sessions (``game_id`` is the session id): their latency figures
  come only from samples recorded during the session; starting a session while one is open
  ends the open one (it is kept in the history) instead of discarding it;
  ``end_game_session`` returns the ended :class:`~.metric_views.GameSession`;
  ``get_game_sessions`` lists every ended session of the Monitor, and ``limit=0`` returns
  none rather than all.
- ``get_system_summary``'s ``total_sent``/``total_recv`` are the host's interface byte
  counters (psutil, since boot) instead of an estimate from rates × interval.
- Time windows keep samples with ``now − window < t <= now``: the start is exclusive and
  samples stamped after ``now`` are left out. Extra keys sit beside the original's: ``p50`` and
  ``p99`` in aggregates, ``p95`` in session latency, ``grade`` and ``mos`` in peer quality.
- Log lines go to the ``peerscope.compat.lanrage.metrics`` logger (LANrage's went to
  ``core.observability.metrics``) with the original's words, without its context
  variables. Start, stop and game sessions log at INFO as before; what ``record_latency``
  logs (each scored sample, the quality line every 60 samples, an unknown peer, a failed
  measurement) is DEBUG and built only when DEBUG is on. "Connection degraded" is a
  WARNING once per status change, at the tick that sees it, not at every bad sample.
- Unknown peers are ignored, as in the original, with the collector's own Monitor; a wrapped
  Monitor applies its ``unknown_peer`` setting. Bad input (NaN, negative latency, negative
  byte counts, windows) raises ``ValueError`` naming the argument.
- ``config`` is accepted and kept but never read, exactly as before.

Deliberate differences of the profiler (``performance_profiler``):

- Times are in seconds, as LANrage's were (peerscope's Profiler keeps milliseconds);
  ``get_stats`` and the hotspot and slow tuples carry ``p50_time``, ``p95_time`` and
  ``p99_time`` beside LANrage's keys. ``function_stats`` is a snapshot built at each read
  (LANrage's five keys), not a defaultdict to write to; there is no ``process`` attribute.
- Nothing is recorded while the profiler is disabled: LANrage's ``ProfileContext`` /
  ``profile_block`` recorded all the same. A block that raises counts as an error (and still
  raises); a ``ProfileContext`` is one use at a time (``RuntimeError`` if entered again while
  it runs).
- The global profiler (``get_profiler()``, ``profile``, ``ProfileContext``) wraps peerscope's
  default profiler, the one ``/api/profiler`` shows, which is enabled from the start
  (LANrage's started disabled). A ``PerformanceProfiler()`` of one's own starts disabled, as
  before; ``profiler=`` wraps an existing Profiler.
- ``get_slow_functions`` (and the report's slow section, "p95 > 10ms") takes a name's p95,
  not its average, slowest p95 first: a function slow one call in ten shows up.
- A function is named ``module.qualname`` (LANrage's ``module.__name__`` merged methods of
  the same name in different classes). Generator functions, and a function profiled twice
  under one name, are refused.
- ``get_system_stats``' ``cpu_percent`` is the CPU used since the previous reading, read
  without waiting (LANrage's slept 100 ms to measure it).
- ``print_report`` writes LANrage's report to the
  ``peerscope.compat.lanrage.performance_profiler`` logger, as the observability version
  did (``core/profiler.py`` printed it). Timed calls log nothing (neither LANrage's DEBUG
  line per call nor its WARNING per error: no logging on the hot path), nor do the
  read-outs. Every call is thread-safe.
- Bad arguments raise ``ValueError`` naming them (``top_n``, ``threshold_ms``, ``name``,
  ``enabled``, ``func``, ``profiler``).

Deliberate differences of ``logging_config``:

- ``peer_id``, ``party_id``, ``session_id`` and ``correlation_id`` are peerscope's context
  variables (:data:`peerscope.logs.CONTEXT_VARIABLES`; their ``.name`` is
  ``peerscope_log_peer_id``...): set either way, both APIs' formatters write them. A field
  given with the call (``extra=``) wins over the context's. ``set_context`` refuses a value
  that is no string, naming the argument, and then sets none.
- ``StructuredFormatter`` writes LANrage's keys first, then peerscope's beside them: ``time``
  (ISO 8601, UTC), ``exc_type``, ``exc_message`` and every ``extra=`` field (LANrage wrote
  only ``duration_ms`` and ``extra_data``). ``exception`` is written whenever the record has
  exception information (LANrage's only when another formatter had formatted it first); an
  ``extra_data`` key never replaces another key. Lines are compact JSON.
- ``configure_logging`` still replaces every handler of the root logger, writing to stdout
  (and ``log_file``); it takes a level's name too (``"DEBUG"``), closes the handlers an
  earlier call made (LANrage left its files open), and checks ``json_format``, ``level``
  and ``log_file`` (a file it cannot open too) before it changes anything, raising
  ``ValueError`` naming the argument. ``get_logger`` refuses a name that is no string.
- ``timing_decorator`` is :func:`peerscope.logs.timing`: the DEBUG record says
  ``NAME took 1.234 ms`` (LANrage's: ``Completed NAME``), or ``NAME raised E after …``,
  with ``function`` (the name) and ``duration_ms`` as fields; its location (``module``,
  ``line``, ``file:line`` in a plain line) is where peerscope.logs writes it, not the
  decorated function's. The decorated coroutine function keeps its name and docstring.
"""

from peerscope.compat.lanrage.logging_config import (
    PlainFormatter,
    StructuredFormatter,
    clear_context,
    configure_logging,
    correlation_id,
    get_context,
    get_logger,
    party_id,
    peer_id,
    session_id,
    set_context,
    timing_decorator,
)
from peerscope.compat.lanrage.metrics import (
    ConnectionQualityMonitor,
    ConnectionQualitySample,
    GameSession,
    MetricPoint,
    MetricsCollector,
    PeerMetrics,
    SystemMetrics,
    aggregate_metrics_by_window,
    lanrage_settings,
    predict_connection_quality,
)
from peerscope.compat.lanrage.performance_profiler import (
    PerformanceProfiler,
    ProfileContext,
    get_profiler,
    profile,
    profile_block,
)

__all__ = [
    "ConnectionQualityMonitor",
    "ConnectionQualitySample",
    "GameSession",
    "MetricPoint",
    "MetricsCollector",
    "PeerMetrics",
    "PerformanceProfiler",
    "PlainFormatter",
    "ProfileContext",
    "StructuredFormatter",
    "SystemMetrics",
    "aggregate_metrics_by_window",
    "clear_context",
    "configure_logging",
    "correlation_id",
    "get_context",
    "get_logger",
    "get_profiler",
    "lanrage_settings",
    "party_id",
    "peer_id",
    "predict_connection_quality",
    "profile",
    "profile_block",
    "session_id",
    "set_context",
    "timing_decorator",
]
