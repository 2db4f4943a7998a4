"""peerscope: real-time connection-quality and performance monitoring for Python servers.

The public API is what this module exports; everything else may change.
"""

from typing import TYPE_CHECKING, Any

from peerscope._version import __version__
from peerscope.alerting import ActiveAlert, AlertEvent, Alerting
from peerscope.config import PeerSpec, Settings, SettingsError, SettingsWarning
from peerscope.core.alerts import DEFAULT_RULES, AlertRule
from peerscope.core.kernel_tcp import TcpInfo
from peerscope.core.loss import Arrival
from peerscope.core.model import ServerStats, Session, SystemSample
from peerscope.core.probe_target import ProbeTarget
from peerscope.core.quality import QualityConfig, StatusRules
from peerscope.core.stats import Aggregate
from peerscope.events import (
    Event,
    MetricsTick,
    PeerAdded,
    PeerPathChanged,
    PeerReading,
    PeerRemoved,
    PeerStatusChanged,
    SessionEnded,
    SessionStarted,
)
from peerscope.message import (
    MetricsMessage,
    NetworkEntry,
    PeerDetail,
    PeerEntry,
    ProbeCounts,
    ServerEntry,
    SystemEntry,
    TcpEntry,
)
from peerscope.monitor import Monitor
from peerscope.peer_table import PeerLimitError, UnknownPeerError
from peerscope.probe.reflector import Reflector
from peerscope.profiler import profile, profile_block
from peerscope.tcp_info import read_tcp_info

if TYPE_CHECKING:
    from peerscope.agent import serve
    from peerscope.probe.prober import Prober


def __getattr__(name: str) -> Any:
    # `peerscope.serve` loads the HTTP side (FastAPI, uvicorn), and `peerscope.Prober` the
    # probe methods, only when they are asked for.
    if name == "serve":
        from peerscope.agent import serve

        return serve
    if name == "Prober":
        from peerscope.probe.prober import Prober

        return Prober
    raise AttributeError(f"module 'peerscope' has no attribute {name!r}")


__all__ = [
    "DEFAULT_RULES",
    "ActiveAlert",
    "Aggregate",
    "AlertEvent",
    "AlertRule",
    "Alerting",
    "Arrival",
    "Event",
    "MetricsMessage",
    "MetricsTick",
    "Monitor",
    "NetworkEntry",
    "PeerAdded",
    "PeerDetail",
    "PeerEntry",
    "PeerLimitError",
    "PeerPathChanged",
    "PeerReading",
    "PeerRemoved",
    "PeerSpec",
    "PeerStatusChanged",
    "ProbeCounts",
    "ProbeTarget",
    "Prober",
    "QualityConfig",
    "Reflector",
    "ServerEntry",
    "ServerStats",
    "Session",
    "SessionEnded",
    "SessionStarted",
    "Settings",
    "SettingsError",
    "SettingsWarning",
    "StatusRules",
    "SystemEntry",
    "SystemSample",
    "TcpEntry",
    "TcpInfo",
    "UnknownPeerError",
    "__version__",
    "profile",
    "profile_block",
    "read_tcp_info",
    "serve",
]
