"""peerscope: real-time connection-quality and performance monitoring for Python servers.

The public API is what this module exports; everything else may change.
"""

from typing import TYPE_CHECKING, Any

from peerscope._version import __version__
from peerscope.config import PeerSpec, Settings, SettingsError, SettingsWarning
from peerscope.core.model import Peer, ServerStats, Session, SystemSample
from peerscope.core.probe_target import ProbeTarget
from peerscope.core.quality import QualityConfig, StatusRules
from peerscope.core.stats import Aggregate
from peerscope.events import (
    Event,
    MetricsTick,
    PeerAdded,
    PeerRemoved,
    PeerStatusChanged,
    SessionEnded,
    SessionStarted,
)
from peerscope.monitor import Monitor, PeerLimitError, UnknownPeerError
from peerscope.probe.reflector import Reflector

if TYPE_CHECKING:
    from peerscope.agent import serve
    from peerscope.probe.prober import Prober


def __getattr__(name: str) -> Any:
    # `peerscope.serve` loads the HTTP side (FastAPI, uvicorn), and `peerscope.Prober` the
    # probe methods (icmplib), only when they are asked for.
    if name == "serve":
        from peerscope.agent import serve

        return serve
    if name == "Prober":
        from peerscope.probe.prober import Prober

        return Prober
    raise AttributeError(f"module 'peerscope' has no attribute {name!r}")

__all__ = [
    "Aggregate",
    "Event",
    "MetricsTick",
    "Monitor",
    "Peer",
    "PeerAdded",
    "PeerLimitError",
    "PeerRemoved",
    "PeerSpec",
    "PeerStatusChanged",
    "ProbeTarget",
    "Prober",
    "QualityConfig",
    "Reflector",
    "ServerStats",
    "Session",
    "SessionEnded",
    "SessionStarted",
    "Settings",
    "SettingsError",
    "SettingsWarning",
    "StatusRules",
    "SystemSample",
    "UnknownPeerError",
    "__version__",
    "serve",
]
