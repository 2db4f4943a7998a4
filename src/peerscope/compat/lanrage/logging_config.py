"""LANrage's ``core/observability/logging_config.py`` (earlier ``core/logging_config.py``)
over :mod:`peerscope.logs`.

``from core.observability.logging_config import X`` becomes ``from
peerscope.compat.lanrage.logging_config import X``. Names, signatures and the JSON keys
follow the original. The context variables ``peer_id``, ``party_id``, ``session_id`` and
``correlation_id`` are peerscope's own (:data:`peerscope.logs.CONTEXT_VARIABLES`): what
LANrage code sets here, peerscope's formatters and ``log_context`` see, and the other way
round. The deliberate differences are listed in :mod:`peerscope.compat.lanrage`.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
import weakref
from collections.abc import Callable
from functools import update_wrapper
from typing import Any, TypeVar, cast

import orjson

from peerscope import logs
from peerscope.core.validation import preview, validate_text

__all__ = [
    "PlainFormatter",
    "StructuredFormatter",
    "clear_context",
    "configure_logging",
    "correlation_id",
    "get_context",
    "get_logger",
    "party_id",
    "peer_id",
    "session_id",
    "set_context",
    "timing_decorator",
]

F = TypeVar("F", bound=Callable[..., Any])

peer_id = logs.CONTEXT_VARIABLES["peer_id"]
party_id = logs.CONTEXT_VARIABLES["party_id"]
session_id = logs.CONTEXT_VARIABLES["session_id"]
correlation_id = logs.CONTEXT_VARIABLES["correlation_id"]

# LANrage's order of the context fields, and their names in a plain line.
_PLAIN_NAMES = {
    "peer_id": "peer",
    "party_id": "party",
    "session_id": "session",
    "correlation_id": "corr_id",
}
# The handlers configure_logging made, which it closes when a later call replaces them.
_MADE: weakref.WeakSet[logging.Handler] = weakref.WeakSet()


def _context_of(record: logging.LogRecord) -> dict[str, Any]:
    """The context fields to write with ``record``, in LANrage's order: each as the call gave
    it (``extra=``) or a ``ContextFilter`` put it on the record, else as the context holds
    it while the record is formatted; empty ones are left out, as LANrage left them."""
    attributes = record.__dict__
    found: dict[str, Any] = {}
    for name in _PLAIN_NAMES:
        value = attributes.get(name)
        if value is None:
            value = logs.CONTEXT_VARIABLES[name].get()
        if value:
            found[name] = value
    return found


class StructuredFormatter(logs.JsonFormatter):
    """LANrage's JSON line over peerscope's :class:`~peerscope.logs.JsonFormatter`:
    ``timestamp`` (``formatTime``: local time, ``datefmt``), ``level``, ``logger``,
    ``message``, ``module``, ``function``, ``line``, the context fields set, ``exception``
    (the traceback), ``duration_ms``, the keys of an ``extra_data`` dict; then peerscope's
    own beside them: ``time`` (ISO 8601, UTC), ``exc_type``, ``exc_message`` and every
    other ``extra=`` field. A field the call gave as ``extra=`` wins over the record's own
    ``module``/``function``/``line`` and the context's; an ``extra_data`` key never
    replaces another key."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = orjson.loads(super().format(record))
        del entry["timestamp"]  # epoch seconds: LANrage's is the formatted time
        line: dict[str, Any] = {
            "timestamp": self.formatTime(record),
            "level": entry.pop("level"),
            "logger": entry.pop("logger"),
            "message": entry.pop("message"),
            "module": entry.pop("module", record.module),
            "function": entry.pop("function", record.funcName),
            "line": entry.pop("line", record.lineno),
        }
        for name in _PLAIN_NAMES:
            entry.pop(name, None)
        line.update(_context_of(record))
        if "traceback" in entry:
            line["exception"] = entry.pop("traceback")
        if "duration_ms" in entry:
            line["duration_ms"] = entry.pop("duration_ms")
        extra_data = entry.pop("extra_data", None)
        for key, value in entry.items():
            line.setdefault(key, value)
        if isinstance(extra_data, dict):
            for key, value in extra_data.items():
                line.setdefault(key, value)
        elif extra_data is not None:
            line["extra_data"] = extra_data
        return orjson.dumps(line, default=str).decode()


class PlainFormatter(logging.Formatter):
    """LANrage's line for people: ``LEVEL    logger [peer=…, party=…, session=…,
    corr_id=…] message (file.py:line) [took 1.23ms]``, the context in brackets (left out
    when none is set), the traceback on the lines after."""

    def format(self, record: logging.LogRecord) -> str:
        context = _context_of(record)
        shown = ", ".join(f"{_PLAIN_NAMES[name]}={value}" for name, value in context.items())
        prefix = f"[{shown}] " if shown else ""
        text = f"{record.levelname:8} {record.name:30} {prefix}{record.getMessage()}"
        if record.levelno >= logging.DEBUG:  # LANrage's test: so every record, in effect
            text += f" ({record.filename}:{record.lineno})"
        duration = record.__dict__.get("duration_ms")
        if isinstance(duration, int | float) and not isinstance(duration, bool):
            text += f" [took {duration:.2f}ms]"
        if record.exc_info and record.exc_info[0] is not None:
            text += "\n" + self.formatException(record.exc_info)
        return text


def _file_handler(log_file: object) -> logging.FileHandler:
    if not isinstance(log_file, str | os.PathLike):
        raise ValueError(f"log_file: must be a path or None, got {preview(log_file)}")
    try:
        return logging.FileHandler(log_file)
    except OSError as error:
        raise ValueError(f"log_file: cannot open {preview(log_file)}: {error.strerror}") from None


def configure_logging(
    json_format: bool = False,
    level: int | str = logging.INFO,
    log_file: str | os.PathLike[str] | None = None,
) -> logging.Logger:
    """Write every logger's records of ``level`` and above (``logging.INFO`` or ``"INFO"``)
    to stdout, and to ``log_file`` if given, as :class:`StructuredFormatter` JSON lines
    (``json_format``) or :class:`PlainFormatter` lines; returns the root logger.

    As in LANrage, the root logger's level is set and its handlers are replaced (a handler
    an earlier call made is closed). ``ValueError`` naming ``json_format``, ``level`` or
    ``log_file`` (a file that cannot be opened too) leaves the set-up as it was.
    """
    if type(json_format) is not bool:
        raise ValueError(f"json_format: must be True or False, got {preview(json_format)}")
    level_name = logs.check_level(level, "level")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if log_file is not None and log_file != "":  # LANrage: an empty path is no file
        handlers.append(_file_handler(log_file))
    formatter: type[logging.Formatter] = StructuredFormatter if json_format else PlainFormatter
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        if old in _MADE:
            old.close()
    root.setLevel(level_name)
    for handler in handlers:
        handler.setLevel(level_name)
        handler.setFormatter(formatter())
        root.addHandler(handler)
        _MADE.add(handler)
    return root


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)``; ``ValueError`` naming ``name`` for no string."""
    if not isinstance(name, str):
        raise ValueError(f"name: must be a logger name (a string), got {preview(name)}")
    return logging.getLogger(name)


def timing_decorator(name: str | None = None) -> Callable[[F], F]:
    """Log each call's duration at DEBUG on the function's module's logger, as
    :func:`peerscope.logs.timing` does (``NAME took 1.234 ms``, ``NAME raised E after …``;
    fields ``function`` and ``duration_ms``), ``NAME`` being ``name`` or the function's
    ``__name__``. With DEBUG off for that logger the clock is never read."""
    label = None if name is None else validate_text(name, "name")

    def decorator(func: F) -> F:
        if not callable(func):
            raise ValueError(f"func: must be a function, got {preview(func)}")
        module = getattr(func, "__module__", None)
        qualname = label if label is not None else str(getattr(func, "__name__", repr(func)))
        timer = logs.timing(logger=module if isinstance(module, str) else __name__)
        return cast(F, update_wrapper(timer(_forwarding(func, qualname)), func))

    return decorator


def _forwarding(func: Callable[..., Any], qualname: str) -> Callable[..., Any]:
    """A function that calls ``func`` under the ``__qualname__`` peerscope's ``timing``
    names its records by, so ``func`` itself is left untouched."""
    if inspect.iscoroutinefunction(func):

        async def forward_awaited(*args: Any, **kwargs: Any) -> Any:
            return await func(*args, **kwargs)

        forward_awaited.__qualname__ = qualname
        return forward_awaited

    def forward(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    forward.__qualname__ = qualname
    return forward


_ARGUMENTS = {
    "peer_id_val": "peer_id",
    "party_id_val": "party_id",
    "session_id_val": "session_id",
    "correlation_id_val": "correlation_id",
}


def set_context(
    peer_id_val: str | None = None,
    party_id_val: str | None = None,
    session_id_val: str | None = None,
    correlation_id_val: str | None = None,
) -> None:
    """Set the context fields given for the rest of this context (a task, a thread); one
    left as None keeps its value. ``ValueError`` naming the argument that is no string (and
    none is set)."""
    given = {
        "peer_id_val": peer_id_val,
        "party_id_val": party_id_val,
        "session_id_val": session_id_val,
        "correlation_id_val": correlation_id_val,
    }
    fields: dict[str, str | None] = {}
    for argument, value in given.items():
        if value is None:
            continue
        if not isinstance(value, str):
            raise ValueError(f"{argument}: must be a string or None, got {preview(value)}")
        fields[_ARGUMENTS[argument]] = value
    logs.set_context(**fields)


def clear_context() -> None:
    """Unset every context field in this context."""
    logs.clear_context()


def get_context() -> dict[str, str | None]:
    """The four context fields, None for one not set."""
    found = logs.get_context()
    return {name: found.get(name) for name in _PLAIN_NAMES}
