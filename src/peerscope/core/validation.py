"""Checks for values arriving at peerscope's edge; each error names the offending argument.

Numbers are taken only when they are real numbers in Python's numeric tower (``int``,
``float``, ``fractions.Fraction``, numpy's scalars) and never ``bool``; they are stored as a
plain ``float`` or ``int``, so no foreign type reaches the rings, the tick's arithmetic or
the JSON encoder. A ``Decimal`` is refused rather than converted: it is not a ``Real`` and
would silently lose the exactness its caller chose it for.
"""

from __future__ import annotations

import math
import numbers
import operator

MAX_ID_LENGTH = 128
MAX_TEXT_LENGTH = 256
MAX_LABELS = 32
# Bad input is echoed back to name it, but only this much of it: an error message must not
# become a way to make the server repeat 60 KB.
PREVIEW_CHARS = 40
# The largest count one call may add: 2**53 is where floats (Prometheus's samples) stop
# holding every integer, and a total stays far below the 64-bit range JSON encoders accept.
MAX_COUNT = 2**53


def require(condition: bool, field_name: str, message: str) -> None:
    """Raise ``ValueError("field: message")`` unless ``condition`` holds: the one shape of every
    configuration check."""
    if not condition:
        raise ValueError(f"{field_name}: {message}")


def preview(value: object) -> str:
    """``repr(value)``, cut to a short prefix with an ellipsis."""
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__ must not turn a refusal into a crash
        text = f"<{type(value).__name__}>"
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + "…"


def validate_id(value: object, field_name: str = "peer_id") -> str:
    """An id is 1–128 printable characters."""
    if not isinstance(value, str):
        raise ValueError(f"{field_name}: must be a string, got {type(value).__name__}")
    if not 1 <= len(value) <= MAX_ID_LENGTH:
        raise ValueError(f"{field_name}: must be 1-{MAX_ID_LENGTH} characters, got {len(value)}")
    if not value.isprintable():
        raise ValueError(f"{field_name}: must be printable characters only, got {preview(value)}")
    return value


def validate_text(value: object, field_name: str, *, max_length: int = MAX_TEXT_LENGTH) -> str:
    """Display text (names, addresses): 1–256 (``max_length``) printable characters."""
    if not (isinstance(value, str) and 1 <= len(value) <= max_length and value.isprintable()):
        raise ValueError(
            f"{field_name}: must be 1-{max_length} printable characters, got {preview(value)}"
        )
    return value


def validate_count(value: object, field_name: str) -> int:
    """A counter increment: an integer within 0..2**53, as a plain ``int`` (bools are not
    counts)."""
    if type(value) is not int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(f"{field_name}: must be an integer >= 0, got {preview(value)}")
        value = operator.index(value)
    if not 0 <= value <= MAX_COUNT:
        raise ValueError(f"{field_name}: must be an integer within 0..2**53, got {preview(value)}")
    return value


def real_number(value: object, field_name: str) -> float:
    """``value`` as a plain ``float`` if it is a real number; ValueError if it is not."""
    if type(value) is float:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"{field_name}: must be a real number, got {type(value).__name__} {preview(value)}"
        )
    try:
        return float(value)
    except (ArithmeticError, TypeError, ValueError):  # an int too large for a float, say
        raise ValueError(f"{field_name}: must be a finite number, got {preview(value)}") from None


def validate_number(
    value: object, field_name: str, *, low: float = 0.0, high: float = math.inf
) -> float:
    """A finite number within low..high, as a ``float`` (NaN and infinities are refused)."""
    number = real_number(value, field_name)
    if not (low <= number <= high and math.isfinite(number)):
        raise ValueError(
            f"{field_name}: must be a finite number within {low:g}..{high:g}, got {preview(value)}"
        )
    return number


def validate_labels(labels: object, field_name: str = "labels") -> dict[str, str]:
    """Labels: at most 32, keys are identifiers (they become Prometheus label names)."""
    if labels is None:
        return {}
    if not isinstance(labels, dict):
        raise ValueError(f"{field_name}: must be a dict of str to str, got {type(labels).__name__}")
    if len(labels) > MAX_LABELS:
        raise ValueError(f"{field_name}: at most {MAX_LABELS} labels, got {len(labels)}")
    for key, value in labels.items():
        if not (isinstance(key, str) and key.isidentifier() and len(key) <= 64):
            raise ValueError(
                f"{field_name}: key {preview(key)} must be an identifier of at most 64 chars"
            )
        if not (isinstance(value, str) and value.isprintable() and len(value) <= MAX_TEXT_LENGTH):
            raise ValueError(
                f"{field_name}: value of {preview(key)} must be printable text of at "
                f"most {MAX_TEXT_LENGTH} chars"
            )
    return dict(labels)
