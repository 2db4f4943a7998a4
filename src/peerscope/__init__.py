"""peerscope: real-time connection-quality and performance monitoring for Python servers.

The public API is what this module exports; everything else may change.
"""

from peerscope.config import Settings, SettingsError
from peerscope.core.model import Peer, ServerStats, Session, SystemSample
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
from peerscope.monitor import Monitor, UnknownPeerError

__version__ = "0.1.0"

__all__ = [
    "Aggregate",
    "Event",
    "MetricsTick",
    "Monitor",
    "Peer",
    "PeerAdded",
    "PeerRemoved",
    "PeerStatusChanged",
    "QualityConfig",
    "ServerStats",
    "Session",
    "SessionEnded",
    "SessionStarted",
    "Settings",
    "SettingsError",
    "StatusRules",
    "SystemSample",
    "UnknownPeerError",
    "__version__",
]
