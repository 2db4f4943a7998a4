"""Checks for values arriving at peerscope's edge; each error names the offending argument."""

from __future__ import annotations

import math

MAX_ID_LENGTH = 128
MAX_TEXT_LENGTH = 256
MAX_LABELS = 32


def validate_id(value: object, field_name: str = "peer_id") -> str:
    """An id is 1–128 printable characters."""
    if not isinstance(value, str):
        raise ValueError(f"{field_name}: must be a string, got {type(value).__name__}")
    if not 1 <= len(value) <= MAX_ID_LENGTH:
        raise ValueError(f"{field_name}: must be 1-{MAX_ID_LENGTH} characters, got {len(value)}")
    if not value.isprintable():
        raise ValueError(f"{field_name}: must be printable characters only, got {value!r}")
    return value


def validate_text(value: object, field_name: str) -> str:
    """Display text (names, addresses): 1–256 printable characters."""
    if not (isinstance(value, str) and 1 <= len(value) <= MAX_TEXT_LENGTH
            and value.isprintable()):
        raise ValueError(f"{field_name}: must be 1-{MAX_TEXT_LENGTH} printable characters, "
                         f"got {value!r}")
    return value


def validate_count(value: object, field_name: str) -> int:
    """A counter increment: an int >= 0 (bools are refused; they are not counts)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{field_name}: must be an integer >= 0, got {value!r}")
    return value


def validate_number(value: object, field_name: str, *, low: float = 0.0,
                    high: float = math.inf) -> float:
    """A finite number within low..high (NaN and infinities are refused)."""
    try:
        valid = low <= value <= high and value < math.inf  # type: ignore[operator]
    except TypeError:
        valid = False
    if not valid or isinstance(value, bool):
        raise ValueError(f"{field_name}: must be a finite number within {low:g}..{high:g}, "
                         f"got {value!r}")
    return float(value)  # type: ignore[arg-type]


def validate_labels(labels: object) -> dict[str, str]:
    """Labels: at most 32, keys are identifiers (they become Prometheus label names)."""
    if labels is None:
        return {}
    if not isinstance(labels, dict):
        raise ValueError(f"labels: must be a dict of str to str, got {type(labels).__name__}")
    if len(labels) > MAX_LABELS:
        raise ValueError(f"labels: at most {MAX_LABELS} labels, got {len(labels)}")
    for key, value in labels.items():
        if not (isinstance(key, str) and key.isidentifier() and len(key) <= 64):
            raise ValueError(f"labels: key {key!r} must be an identifier of at most 64 chars")
        if not (isinstance(value, str) and value.isprintable()
                and len(value) <= MAX_TEXT_LENGTH):
            raise ValueError(f"labels: value of {key!r} must be printable text of at most "
                             f"{MAX_TEXT_LENGTH} chars")
    return dict(labels)
