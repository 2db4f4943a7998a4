"""History on disk: an embedded SQLite store of compressed chunks in three tiers."""

from peerscope.store.database import StoreError, default_path
from peerscope.store.history_store import HistoryStore

__all__ = ["HistoryStore", "StoreError", "default_path"]
