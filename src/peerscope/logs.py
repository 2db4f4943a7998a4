"""peerscope's log lines: plain or JSON, with the context they were written in.

:func:`configure_logging` gives the ``peerscope`` logger tree one handler of its own (a
second call replaces it, never adds one) writing one line per record, to stderr by
default: ``plain``, a line for people with the context fields appended as ``key=value``,
or ``json``, one object per line for a log shipper. Other loggers, the root's among them,
are left alone unless named in ``also``.

The context fields ``peer_id``, ``session_id``, ``correlation_id`` and ``party_id`` live
in :mod:`contextvars`: set with :func:`log_context` (a ``with`` block) or
:func:`set_context`, they ride on every record the handler writes from that context, and
an asyncio task keeps its own (a task starts with a copy of its creator's). A field given
as ``extra=`` to one call wins over the context's.

:func:`timing` logs how long a function (plain or ``async``) took, at DEBUG; with DEBUG off
for its logger a call costs one cached level check and never reads the clock.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from time import perf_counter
from types import MappingProxyType
from typing import Any, Literal, ParamSpec, TextIO, TypeVar, cast, get_args, overload

import orjson

from peerscope.core.validation import preview

__all__ = [
    "CONTEXT_FIELDS",
    "CONTEXT_VARIABLES",
    "FORMATS",
    "LEVELS",
    "ContextFilter",
    "JsonFormatter",
    "LogFormat",
    "LogLevel",
    "PlainFormatter",
    "check_format",
    "check_level",
    "clear_context",
    "configure_logging",
    "get_context",
    "log_context",
    "set_context",
    "timing",
]

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["plain", "json"]
LEVELS: tuple[LogLevel, ...] = get_args(LogLevel)
FORMATS: tuple[LogFormat, ...] = get_args(LogFormat)
TREE = "peerscope"

CONTEXT_FIELDS = ("peer_id", "session_id", "correlation_id", "party_id")
_CONTEXT: dict[str, ContextVar[str | None]] = {
    name: ContextVar(f"peerscope_log_{name}", default=None) for name in CONTEXT_FIELDS
}
# The variables themselves, read-only, for an adapter whose API hands them out (LANrage's
# ``peer_id.set(...)``): what is set through them is what the handler writes.
CONTEXT_VARIABLES: Mapping[str, ContextVar[str | None]] = MappingProxyType(_CONTEXT)
# What every LogRecord has: the rest of a record's attributes were given as ``extra=``.
_RECORD_ATTRIBUTES = frozenset(
    logging.LogRecord("", logging.INFO, "", 0, "", None, None).__dict__
) | {"message", "asctime"}
# Keys the formatter itself fills with strings and numbers JSON always holds.
_OWN_KEYS = frozenset(
    {"time", "timestamp", "level", "logger", "message", "exc_type", "exc_message", "traceback"}
    | {"stack", *CONTEXT_FIELDS}
)


# --- checks -------------------------------------------------------------------------------


def check_level(value: object, field_name: str = "level") -> LogLevel:
    """A level by name in any case (``"debug"``) or as ``logging.DEBUG``..., as its name."""
    if isinstance(value, str):
        upper = value.strip().upper()
        for level in LEVELS:
            if upper == level:
                return level
    elif isinstance(value, int) and not isinstance(value, bool):
        name = logging.getLevelName(value)
        for level in LEVELS:
            if name == level:
                return level
    raise ValueError(f"{field_name}: must be one of {', '.join(LEVELS)}, got {preview(value)}")


def check_format(value: object, field_name: str = "fmt") -> LogFormat:
    """``plain`` or ``json``, in any case."""
    if isinstance(value, str):
        lower = value.strip().lower()
        for form in FORMATS:
            if lower == form:
                return form
    raise ValueError(f"{field_name}: must be 'plain' or 'json', got {preview(value)}")


# --- context ------------------------------------------------------------------------------


def _checked(fields: Mapping[str, object]) -> dict[str, str | None]:
    """All of ``fields`` checked before any is set: a bad one changes nothing."""
    for name, value in fields.items():
        if name not in _CONTEXT:
            raise ValueError(f"{name}: not a context field; they are {', '.join(CONTEXT_FIELDS)}")
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name}: must be a string or None, got {preview(value)}")
    return {name: cast(str | None, value) for name, value in fields.items()}


@contextlib.contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Within the block, records carry these context fields (None unsets one); on the way
    out each is what it was before. ``ValueError`` naming a field that is none of
    :data:`CONTEXT_FIELDS`, or a value that is no string."""
    tokens: list[tuple[ContextVar[str | None], Token[str | None]]] = []
    for name, value in _checked(fields).items():
        variable = _CONTEXT[name]
        tokens.append((variable, variable.set(value)))
    try:
        yield
    finally:
        for variable, token in reversed(tokens):
            variable.reset(token)


def set_context(**fields: str | None) -> None:
    """Set context fields for the rest of this context (a task, a thread); None unsets one."""
    for name, value in _checked(fields).items():
        _CONTEXT[name].set(value)


def clear_context() -> None:
    """Unset every context field in this context."""
    for variable in _CONTEXT.values():
        variable.set(None)


def get_context() -> dict[str, str]:
    """The context fields set in this context."""
    found = {name: variable.get() for name, variable in _CONTEXT.items()}
    return {name: value for name, value in found.items() if value is not None}


class ContextFilter(logging.Filter):
    """Puts the context fields set where a record was made on it (a handler runs in the
    caller's context), unless the call gave one itself as ``extra=``."""

    def filter(self, record: logging.LogRecord) -> bool:
        attributes = record.__dict__
        for name, variable in _CONTEXT.items():
            value = variable.get()
            if value is not None and name not in attributes:
                attributes[name] = value
        return True


# --- formats ------------------------------------------------------------------------------


def _iso_utc(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _type_name(kind: type[BaseException]) -> str:
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _dumps(entry: object) -> str:
    return orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def _encodable(value: object) -> object:
    try:
        _dumps(value)
    except orjson.JSONEncodeError:
        return repr(value)
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: ``time`` (ISO 8601, UTC), ``timestamp``
    (epoch seconds), ``level``, ``logger``, ``message``, the context fields present, every
    ``extra=`` field (one named like a key above is dropped: the record's own wins), and
    with exception information ``exc_type``, ``exc_message`` and the whole ``traceback``
    (``stack`` for ``stack_info``). A value JSON cannot hold is written as its ``str``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _iso_utc(record.created),
            "timestamp": record.created,
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        attributes = record.__dict__
        for name in CONTEXT_FIELDS:
            if attributes.get(name) is not None:
                entry[name] = attributes[name]
        for name, value in attributes.items():
            if name not in _RECORD_ATTRIBUTES and name not in entry:
                entry[name] = value
        if record.exc_info and record.exc_info[0] is not None:
            kind, error, _ = record.exc_info
            entry["exc_type"] = _type_name(kind)
            entry["exc_message"] = str(error)
            entry["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["traceback"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        try:
            return _dumps(entry)
        except orjson.JSONEncodeError:
            # An integer past 64 bits, a cycle: such an extra is told as its repr rather
            # than the line lost.
            safe = {k: v if k in _OWN_KEYS else _encodable(v) for k, v in entry.items()}
            return _dumps(safe)


def _logfmt(value: object) -> str:
    """``value`` as ``key=value`` takes it: bare, or quoted when it holds spaces, quotes or
    ``=`` (or is empty), so that the line still splits into its fields."""
    text = str(value)
    if not text or any(c.isspace() or c in '"=' for c in text):
        return orjson.dumps(text).decode()
    return text


class PlainFormatter(logging.Formatter):
    """``2025-01-31T12:00:00.123Z INFO peerscope.agent: message peer_id=a session_id=b``:
    time (UTC), level, logger and message on one line, the context fields present
    appended as ``key=value``; a traceback follows on the lines after."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_iso_utc(record.created)} {record.levelname} {record.name}: {record.getMessage()}"
        attributes = record.__dict__
        fields = [
            f"{name}={_logfmt(attributes[name])}"
            for name in CONTEXT_FIELDS
            if attributes.get(name) is not None
        ]
        if fields:
            line += " " + " ".join(fields)
        if record.exc_info and record.exc_info[0] is not None:
            line += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


# --- the handler --------------------------------------------------------------------------


class _LineHandler(logging.Handler):
    """Writes each record as a line to its stream, flushed; with none given, to whatever
    ``sys.stderr`` is at that moment (a terminal UI or a test may swap it meanwhile)."""

    def __init__(self, stream: TextIO | None, formatter: logging.Formatter) -> None:
        super().__init__()
        self._stream = stream
        self.setFormatter(formatter)
        self.addFilter(ContextFilter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = self._stream if self._stream is not None else sys.stderr
            stream.write(self.format(record) + "\n")
            stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


def _loggers() -> Iterator[logging.Logger]:
    yield logging.getLogger()
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            yield logger


def _in_tree(name: str, tree: str) -> bool:
    return name == tree or name.startswith(tree + ".")


def configure_logging(
    level: str | int = "INFO",
    fmt: str = "plain",
    stream: TextIO | None = None,
    *,
    also: Iterable[str] = (),
) -> None:
    """Write the ``peerscope`` loggers' records of ``level`` and above as ``fmt`` lines
    (``plain`` or ``json``) to ``stream`` (None: stderr).

    Sets the ``peerscope`` logger's level and gives it a handler, replacing the one an
    earlier call gave (here or on any logger). Its records still propagate: whatever the
    application configured on the root logger sees them too. ``also`` names other logger
    trees to write through the same handler (``"uvicorn"``, ``"asyncio"``), at their own
    levels; the root logger is never touched. ``ValueError`` naming ``level``, ``fmt`` or
    ``also`` for a bad one.
    """
    name = check_level(level, "level")
    form = check_format(fmt, "fmt")
    trees = list(also)
    for tree in trees:
        if not isinstance(tree, str) or not tree or _in_tree(tree, TREE) or _in_tree(TREE, tree):
            raise ValueError(
                f"also: {preview(tree)} is no logger tree beside peerscope's (its records "
                "would be written twice, or not be another library's)"
            )
    handler = _LineHandler(stream, JsonFormatter() if form == "json" else PlainFormatter())
    for logger in _loggers():
        for old in [h for h in logger.handlers if isinstance(h, _LineHandler)]:
            logger.removeHandler(old)
            old.close()
    tree_logger = logging.getLogger(TREE)
    tree_logger.setLevel(name)
    tree_logger.addHandler(handler)
    for tree in trees:
        logging.getLogger(tree).addHandler(handler)


# --- timing -------------------------------------------------------------------------------

P = ParamSpec("P")
R = TypeVar("R")


@overload
def timing(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def timing(
    func: None = None, /, *, logger: logging.Logger | str | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def timing(
    func: Callable[P, R] | None = None, /, *, logger: logging.Logger | str | None = None
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Log each call's duration at DEBUG: ``@timing`` (on the function's module's logger)
    or ``@timing(logger=...)``; plain and ``async`` functions alike.

    The record says ``NAME took 1.234 ms`` (``NAME raised ValueError after 1.234 ms``),
    with ``function`` and ``duration_ms`` as fields. Whether to time is decided at each
    call by the logger's ``isEnabledFor(DEBUG)``, which logging caches: with DEBUG off a
    call costs that look-up and the call, and the clock is never read.
    """

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        chosen = logger if logger is not None else function.__module__
        log = logging.getLogger(chosen) if isinstance(chosen, str) else chosen
        enabled, name = log.isEnabledFor, function.__qualname__

        def told(start: float, error: BaseException | None) -> None:
            elapsed_ms = (perf_counter() - start) * 1000.0
            fields = {"function": name, "duration_ms": elapsed_ms}
            if error is None:
                log.debug("%s took %.3f ms", name, elapsed_ms, extra=fields)
            else:
                what = type(error).__name__
                log.debug("%s raised %s after %.3f ms", name, what, elapsed_ms, extra=fields)

        if inspect.iscoroutinefunction(function):
            coroutine = function  # narrowed: a function whose calls are awaited

            @functools.wraps(function)
            async def timed_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                if not enabled(logging.DEBUG):
                    return await coroutine(*args, **kwargs)
                start = perf_counter()
                try:
                    result = await coroutine(*args, **kwargs)
                except BaseException as error:
                    told(start, error)
                    raise
                told(start, None)
                return result

            return cast(Callable[P, R], timed_async)

        @functools.wraps(function)
        def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            if not enabled(logging.DEBUG):
                return function(*args, **kwargs)
            start = perf_counter()
            try:
                result = function(*args, **kwargs)
            except BaseException as error:
                told(start, error)
                raise
            told(start, None)
            return result

        return timed

    return decorate if func is None else decorate(func)
