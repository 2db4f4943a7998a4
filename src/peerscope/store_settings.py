"""The ``[store]`` settings group: where history is kept on disk, and for how long."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["StoreSettings"]

DAY_S = 86_400.0


class StoreSettings(BaseModel):
    """The history store: the ``[store]`` table (``--db PATH``, ``--no-db`` on the CLI)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Keep history on disk (--no-db turns it off).")
    db: str | None = Field(
        None,
        description="The SQLite file (default $XDG_DATA_HOME/peerscope/peerscope.db, "
        "~/.local/share when unset); ':memory:' keeps it in memory for this run only.",
    )
    flush_interval_s: float = Field(
        1.0, gt=0, le=60, description="Commit at least this often: what a crash may lose."
    )
    raw_retention_s: float = Field(DAY_S, gt=0, description="How long raw samples are kept.")
    minute_retention_s: float = Field(
        30 * DAY_S, gt=0, description="How long the 1-minute buckets are kept."
    )
    hour_retention_s: float = Field(
        365 * DAY_S, gt=0, description="How long the 1-hour buckets (and events) are kept."
    )
    max_db_bytes: int = Field(
        0,
        ge=0,
        description="Size cap of the file's used pages (0: none); over it the oldest rows "
        "go first, raw rows already rolled up before any bucket.",
    )
    anonymize_ids: bool = Field(
        False,
        description="Keep salted hashes (HMAC-SHA256) of peer ids instead of the ids, and no "
        "names or addresses.",
    )
    queue_size: int = Field(
        600, ge=1, le=100_000, description="Ticks and events waiting for the writer thread."
    )
