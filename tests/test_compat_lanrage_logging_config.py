"""LANrage's logging_config over peerscope.logs: the context variables (shared with
peerscope's), the JSON and plain formatters' lines parsed back with their context fields,
configure_logging on the root logger (stdout and a file), timing_decorator, and bad
arguments refused by name."""

from __future__ import annotations

import asyncio
import inspect
import io
import json
import logging
import re
import sys
import time
from collections.abc import Iterator

import pytest

import peerscope.compat.lanrage as lanrage_package
from peerscope import logs
from peerscope.compat.lanrage import logging_config
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

NO_CONTEXT = {"peer_id": None, "party_id": None, "session_id": None, "correlation_id": None}
LANRAGE_KEYS = ["timestamp", "level", "logger", "message", "module", "function", "line"]
FORMATTED_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}$")


@pytest.fixture(autouse=True)
def _no_context() -> Iterator[None]:
    """Context variables outlive a test in its thread: each starts and ends with none."""
    clear_context()
    yield
    clear_context()


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, its handlers and level restored after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def make_record(
    message: str = "Test message", level: int = logging.INFO, **attributes: object
) -> logging.LogRecord:
    record = logging.LogRecord("test.logger", level, "test.py", 42, message, (), None)
    record.__dict__.update(attributes)
    return record


def captured(logger_name: str, formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    """A logger writing to a string through ``formatter``, as LANrage's tests set one up."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = get_logger(logger_name)
    logger.handlers = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger, stream


@pytest.fixture
def json_lines() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    logger, stream = captured("lanrage.json", StructuredFormatter())
    yield logger, stream
    logger.handlers = []
    logger.propagate = True


def parsed(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


# --- context --------------------------------------------------------------------------------


def test_set_context_sets_what_is_given_and_keeps_the_rest():
    set_context(
        peer_id_val="peer123",
        party_id_val="party456",
        session_id_val="session789",
        correlation_id_val="corr000",
    )
    assert get_context() == {
        "peer_id": "peer123",
        "party_id": "party456",
        "session_id": "session789",
        "correlation_id": "corr000",
    }
    set_context(peer_id_val="peer999")  # None leaves the others as they are
    assert get_context() == {
        "peer_id": "peer999",
        "party_id": "party456",
        "session_id": "session789",
        "correlation_id": "corr000",
    }
    clear_context()
    assert get_context() == NO_CONTEXT


def test_the_context_variables_are_peerscopes():
    assert [var.get() for var in (peer_id, party_id, session_id, correlation_id)] == [None] * 4
    token = peer_id.set("eu-1")  # LANrage code may set the variable itself
    assert logs.get_context() == {"peer_id": "eu-1"}
    peer_id.reset(token)
    with logs.log_context(session_id="match-7", party_id="p-3"):
        assert get_context() == {**NO_CONTEXT, "session_id": "match-7", "party_id": "p-3"}
    assert get_context() == NO_CONTEXT
    set_context(correlation_id_val="req-9")
    assert logs.get_context() == {"correlation_id": "req-9"}


def test_set_context_refuses_a_value_that_is_no_string_and_sets_nothing():
    with pytest.raises(ValueError, match=r"^session_id_val: must be a string or None, got 7"):
        set_context(peer_id_val="peer123", session_id_val=7)  # type: ignore[arg-type]
    assert get_context() == NO_CONTEXT


async def test_each_asyncio_task_keeps_its_own_context(json_lines):
    logger, stream = json_lines
    set_context(party_id_val="party-1")

    async def handle(peer: str) -> None:
        set_context(peer_id_val=peer)
        await asyncio.sleep(0)
        logger.info("handled %s", peer)

    await asyncio.gather(handle("a"), handle("b"))
    logger.info("after")
    lines = {entry["message"]: entry for entry in parsed(stream)}
    assert lines["handled a"]["peer_id"] == "a"
    assert lines["handled b"]["peer_id"] == "b"
    assert lines["handled a"]["party_id"] == lines["handled b"]["party_id"] == "party-1"
    assert "peer_id" not in lines["after"]  # the tasks' settings stayed in the tasks


# --- the JSON formatter ---------------------------------------------------------------------


def test_structured_formatter_writes_lanrage_keys_first():
    record = make_record()
    entry = json.loads(StructuredFormatter().format(record))
    assert list(entry)[:7] == LANRAGE_KEYS
    assert entry["level"] == "INFO"
    assert entry["logger"] == "test.logger"
    assert entry["message"] == "Test message"
    assert entry["module"] == "test"
    assert entry["function"] is None  # a record made by hand has no function
    assert entry["line"] == 42
    assert FORMATTED_TIME.match(entry["timestamp"])
    assert entry["time"].endswith("Z")  # peerscope's ISO time beside LANrage's
    assert set(entry) == {*LANRAGE_KEYS, "time"}  # no context set: no context keys


def test_structured_formatter_writes_the_context_timing_and_extra_data():
    set_context(peer_id_val="peer123", session_id_val="session789", correlation_id_val="corr000")
    record = make_record(
        "Operation completed",
        logging.DEBUG,
        duration_ms=123.45,
        extra_data={"bytes": 512, "message": "not the message"},
        room="lobby",
    )
    entry = json.loads(StructuredFormatter().format(record))
    assert entry["peer_id"] == "peer123"
    assert entry["session_id"] == "session789"
    assert entry["correlation_id"] == "corr000"
    assert "party_id" not in entry
    assert entry["duration_ms"] == 123.45
    assert entry["bytes"] == 512  # extra_data's keys are merged in
    assert entry["message"] == "Operation completed"  # but never replace one
    assert entry["room"] == "lobby"  # other extra= fields, as peerscope writes them
    assert "extra_data" not in entry


def test_json_lines_parse_back_with_their_context_and_exception(json_lines):
    logger, stream = json_lines
    set_context(peer_id_val="peer123", correlation_id_val="corr999")
    logger.info("Message 1")
    logger.warning("Message 2", extra={"peer_id": "given"})  # the call's own wins
    try:
        {}["missing"]
    except KeyError:
        logger.exception("lookup failed")
    first, second, third = parsed(stream)
    assert (first["peer_id"], first["correlation_id"]) == ("peer123", "corr999")
    assert first["function"] == "test_json_lines_parse_back_with_their_context_and_exception"
    assert first["module"] == "test_compat_lanrage_logging_config"
    assert (second["peer_id"], second["correlation_id"]) == ("given", "corr999")
    assert third["level"] == "ERROR"
    assert third["exception"].startswith("Traceback (most recent call last):")
    assert third["exception"].endswith("KeyError: 'missing'")
    assert (third["exc_type"], third["exc_message"]) == ("KeyError", "'missing'")
    assert "traceback" not in third  # written once, under LANrage's key


def test_no_context_keys_when_none_is_set(json_lines):
    logger, stream = json_lines
    set_context(peer_id_val="")  # an empty value is no value, as in LANrage
    logger.info("Message without context")
    (entry,) = parsed(stream)
    assert not {"peer_id", "party_id", "session_id", "correlation_id"} & set(entry)


# --- the plain formatter --------------------------------------------------------------------


def test_plain_formatter_writes_lanrage_line():
    assert PlainFormatter().format(make_record()) == (
        f"{'INFO':8} {'test.logger':30} Test message (test.py:42)"
    )
    set_context(peer_id_val="peer123", party_id_val="party456", session_id_val="session789")
    set_context(correlation_id_val="corr000")
    timed = make_record("Operation completed", logging.DEBUG, duration_ms=123.45)
    assert PlainFormatter().format(timed) == (
        f"{'DEBUG':8} {'test.logger':30} "
        "[peer=peer123, party=party456, session=session789, corr_id=corr000] "
        "Operation completed (test.py:42) [took 123.45ms]"
    )


def test_plain_lines_carry_the_context_and_the_traceback():
    logger, stream = captured("lanrage.plain", PlainFormatter())
    try:
        set_context(peer_id_val="peer123", correlation_id_val="corr999")
        logger.info("Message 1")
        try:
            raise RuntimeError("tunnel down")
        except RuntimeError:
            logger.exception("Message 2")
    finally:
        logger.handlers = []
        logger.propagate = True
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith(f"{'INFO':8} {'lanrage.plain':30} [peer=peer123, corr_id=corr999]")
    assert (
        lines[0].split("] ", 1)[1].startswith("Message 1 (test_compat_lanrage_logging_config.py:")
    )
    assert "[peer=peer123, corr_id=corr999] Message 2" in lines[1]
    assert lines[2] == "Traceback (most recent call last):"
    assert lines[-1] == "RuntimeError: tunnel down"


# --- configure_logging and get_logger -------------------------------------------------------


def test_configure_logging_writes_json_lines_to_stdout_and_a_file(root_logger, tmp_path, capsys):
    path = tmp_path / "lanrage.log"
    assert (
        configure_logging(json_format=True, level=logging.INFO, log_file=str(path)) is root_logger
    )
    assert root_logger.level == logging.INFO
    assert len(root_logger.handlers) == 2

    set_context(peer_id_val="peer123", session_id_val="s-1")
    app = logging.getLogger("lanrage.app")
    app.debug("dropped: below INFO")
    app.info("tunnel up", extra={"extra_data": {"mtu": 1420}})
    for handler in root_logger.handlers:
        handler.flush()

    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    written = [json.loads(line) for line in path.read_text().splitlines()]
    assert printed == written
    (entry,) = printed
    assert (entry["logger"], entry["message"], entry["mtu"]) == ("lanrage.app", "tunnel up", 1420)
    assert (entry["peer_id"], entry["session_id"]) == ("peer123", "s-1")


def test_configure_logging_replaces_the_root_handlers(root_logger, capsys):
    configure_logging(level="debug")
    first = root_logger.handlers[0]
    configure_logging(level="WARNING")
    assert len(root_logger.handlers) == 1  # replaced, not added to
    assert root_logger.handlers[0] is not first
    assert root_logger.level == logging.WARNING
    logging.getLogger("lanrage.app").warning("relay %s", "slow")
    logging.getLogger("lanrage.app").info("not written")
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    assert out[0].startswith(f"{'WARNING':8} {'lanrage.app':30} relay slow (")


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"json_format": "yes"}, r"^json_format: must be True or False, got 'yes'"),
        ({"level": 5}, r"^level: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 5"),
        ({"level": "loud"}, r"^level: must be one of .*got 'loud'"),
        ({"log_file": 3}, r"^log_file: must be a path or None, got 3"),
        ({"log_file": "/no/such/dir/x.log"}, r"^log_file: cannot open '/no/such/dir/x.log': "),
    ],
)
def test_configure_logging_refuses_bad_arguments_and_keeps_the_set_up(
    root_logger, arguments, error
):
    before = list(root_logger.handlers)
    level = root_logger.level
    with pytest.raises(ValueError, match=error):
        configure_logging(**arguments)
    assert root_logger.handlers == before
    assert root_logger.level == level


def test_get_logger_is_the_named_logger():
    assert get_logger("test.module") is logging.getLogger("test.module")
    assert get_logger("test.module").name == "test.module"
    with pytest.raises(ValueError, match=r"^name: must be a logger name \(a string\), got None"):
        get_logger(None)  # type: ignore[arg-type]


# --- timing_decorator -----------------------------------------------------------------------


def timing_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == __name__ and hasattr(r, "duration_ms")]


def test_timing_decorator_logs_the_duration_at_debug(caplog):
    caplog.set_level(logging.DEBUG, logger=__name__)

    @timing_decorator(name="test_operation")
    def slow(seconds: float) -> str:
        """Sleeps."""
        time.sleep(seconds)
        return "result"

    began = time.perf_counter()
    assert slow(0.02) == "result"
    outer_ms = (time.perf_counter() - began) * 1000
    (record,) = timing_records(caplog)
    assert record.levelno == logging.DEBUG
    assert record.getMessage().startswith("test_operation took ")
    assert record.function == "test_operation"  # type: ignore[attr-defined]
    assert 20.0 <= record.duration_ms <= outer_ms  # type: ignore[attr-defined]
    # The decorated function still looks like itself.
    assert (slow.__name__, slow.__doc__) == ("slow", "Sleeps.")
    assert inspect.unwrap(slow) is slow.__wrapped__  # type: ignore[attr-defined]


async def test_timing_decorator_times_a_coroutine_function_to_its_result(caplog):
    caplog.set_level(logging.DEBUG, logger=__name__)

    @timing_decorator()
    async def fetch() -> str:
        await asyncio.sleep(0.01)
        return "async_result"

    assert inspect.iscoroutinefunction(fetch)
    assert await fetch() == "async_result"
    (record,) = timing_records(caplog)
    assert record.getMessage().startswith("fetch took ")  # the function's name by default
    assert record.duration_ms >= 10.0  # type: ignore[attr-defined]


def test_timing_decorator_tells_an_error_and_still_raises_it(caplog):
    caplog.set_level(logging.DEBUG, logger=__name__)

    @timing_decorator(name="parse")
    def parse() -> None:
        raise ValueError("bad frame")

    with pytest.raises(ValueError, match="bad frame"):
        parse()
    (record,) = timing_records(caplog)
    assert record.getMessage().startswith("parse raised ValueError after ")


def test_timing_decorator_with_debug_off_only_calls(caplog):
    caplog.set_level(logging.INFO, logger=__name__)

    @timing_decorator(name="quiet")
    def add(a: int, b: int) -> int:
        return a + b

    assert add(2, b=3) == 5
    assert timing_records(caplog) == []


def test_timing_records_go_through_lanrage_formatters(json_lines):
    logger, stream = json_lines

    def work() -> int:
        return 7

    work.__module__ = logger.name  # the record goes to the function's module's logger
    assert timing_decorator(name="timed_op")(work)() == 7
    (entry,) = parsed(stream)
    assert entry["function"] == "timed_op"
    assert entry["message"].startswith("timed_op took ")
    assert isinstance(entry["duration_ms"], float)


def test_timing_decorator_refuses_bad_arguments():
    with pytest.raises(ValueError, match=r"^name: must be 1-256 printable characters, got ''"):
        timing_decorator(name="")
    with pytest.raises(ValueError, match=r"^name: must be 1-256 printable characters, got 5"):
        timing_decorator(name=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^func: must be a function, got 'x'"):
        timing_decorator()("x")  # type: ignore[type-var]


# --- where the names are --------------------------------------------------------------------


def test_every_name_is_importable_from_the_package_too():
    for name in logging_config.__all__:
        assert getattr(lanrage_package, name) is getattr(logging_config, name)
    assert configure_logging.__module__ == "peerscope.compat.lanrage.logging_config"
    assert sys.modules["peerscope.compat.lanrage.logging_config"] is logging_config
