"""peerscope.logs: JSON and plain lines as written to a real stream, context fields across
tasks, tracebacks, levels, one handler however often configured, the timing decorator, and
the log settings from each source."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from peerscope import logs
from peerscope.config import Settings, SettingsError
from peerscope.logs import (
    clear_context,
    configure_logging,
    get_context,
    log_context,
    set_context,
    timing,
)

log = logging.getLogger("peerscope.test_logs")


def configured(fmt: str = "json", level: str | int = "DEBUG", **options: Any) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(level, fmt, stream, **options)
    return stream


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


# --- JSON lines ---------------------------------------------------------------------------


def test_a_json_line_holds_time_level_logger_message_context_and_extras():
    stream = configured()
    with log_context(peer_id="eu-1", session_id="match-7", correlation_id="req-42"):
        log.warning("rtt of %s is %d ms", "eu-1", 180, extra={"rtt_ms": 180.5, "hops": [1, 2]})
    (entry,) = records(stream)
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "peerscope.test_logs"
    assert entry["message"] == "rtt of eu-1 is 180 ms"
    assert (entry["peer_id"], entry["session_id"], entry["correlation_id"]) == (
        "eu-1",
        "match-7",
        "req-42",
    )
    assert "party_id" not in entry  # only the fields set
    assert (entry["rtt_ms"], entry["hops"]) == (180.5, [1, 2])
    # The same instant twice: ISO 8601 in UTC (to the millisecond) and epoch seconds.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
    parsed = datetime.fromisoformat(entry["time"].replace("Z", "+00:00"))
    assert parsed.tzinfo == UTC
    assert abs(parsed.timestamp() - entry["timestamp"]) < 0.001


def test_the_context_is_restored_when_the_block_ends_and_nests():
    stream = configured()
    with log_context(peer_id="outer", party_id="lan-party"):
        with log_context(peer_id="inner"):
            log.info("inside")
        log.info("outside the inner block")
    log.info("outside both")
    inside, outer, none = records(stream)
    assert (inside["peer_id"], inside["party_id"]) == ("inner", "lan-party")
    assert (outer["peer_id"], outer["party_id"]) == ("outer", "lan-party")
    assert set(none) & {"peer_id", "party_id"} == set()
    assert get_context() == {}


def test_an_extra_field_wins_over_the_context():
    stream = configured()
    with log_context(peer_id="from-context", session_id="s1"):
        log.info("about another peer", extra={"peer_id": "from-extra"})
    (entry,) = records(stream)
    assert (entry["peer_id"], entry["session_id"]) == ("from-extra", "s1")


async def test_each_asyncio_task_keeps_its_own_context_across_awaits():
    stream = configured()
    both_inside = asyncio.Barrier(2)

    async def handle(peer_id: str, correlation_id: str) -> None:
        with log_context(peer_id=peer_id, correlation_id=correlation_id):
            log.info("before")
            await both_inside.wait()  # the other task has set its own context meanwhile
            await asyncio.sleep(0)
            log.info("after")
        log.info("done")

    with log_context(session_id="match-1"):  # the tasks start with a copy of this
        await asyncio.gather(handle("eu-1", "c-1"), handle("us-1", "c-2"))
    got = [
        (e["message"], e.get("peer_id"), e.get("correlation_id"), e.get("session_id"))
        for e in records(stream)
    ]
    assert sorted(got) == sorted(
        [
            ("before", "eu-1", "c-1", "match-1"),
            ("before", "us-1", "c-2", "match-1"),
            ("after", "eu-1", "c-1", "match-1"),
            ("after", "us-1", "c-2", "match-1"),
            ("done", None, None, "match-1"),
            ("done", None, None, "match-1"),
        ]
    )
    assert get_context() == {}  # nothing leaked out of the tasks


def _fail_deep() -> None:
    try:
        {}["missing"]
    except KeyError as error:
        raise ValueError("probe reply malformed") from error


def test_an_exception_comes_with_its_type_message_and_whole_traceback():
    stream = configured()
    try:
        _fail_deep()
    except ValueError as error:
        caught = error
        log.exception("reply dropped", extra={"peer_id": "eu-1"})
    (entry,) = records(stream)
    assert entry["level"] == "ERROR"
    assert entry["message"] == "reply dropped"
    assert entry["exc_type"] == "ValueError"
    assert entry["exc_message"] == "probe reply malformed"
    # Whole: the cause, both frames, the chain's wording, exactly as Python prints it.
    assert entry["traceback"] == "".join(traceback.format_exception(caught)).rstrip("\n")
    assert "KeyError: 'missing'" in entry["traceback"]
    assert "The above exception was the direct cause" in entry["traceback"]
    assert "_fail_deep" in entry["traceback"]
    assert entry["peer_id"] == "eu-1"


def test_a_value_json_cannot_hold_is_written_as_text_not_lost():
    stream = configured()
    log.info("odd extras", extra={"path": Path("/var/lib/x.db"), "huge": 2**70})
    (entry,) = records(stream)
    assert entry["path"] == "/var/lib/x.db"
    assert entry["huge"] == repr(2**70)
    assert entry["message"] == "odd extras"


def test_an_extra_named_like_a_key_of_the_record_does_not_replace_it():
    stream = configured()
    log.info("hello", extra={"level": "shouting", "logger": "someone"})
    (entry,) = records(stream)
    assert (entry["level"], entry["logger"]) == ("INFO", "peerscope.test_logs")


# --- plain lines --------------------------------------------------------------------------


def test_a_plain_line_is_readable_with_the_context_as_key_value():
    stream = configured("plain")
    with log_context(peer_id="eu-1", session_id="match 7"):
        log.info("peer %s degraded", "eu-1", extra={"not_context": 1})
    (line,) = stream.getvalue().splitlines()
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO peerscope\.test_logs: "
        r'peer eu-1 degraded peer_id=eu-1 session_id="match 7"',
        line,
    ), line


def test_a_plain_line_is_followed_by_the_traceback():
    stream = configured("plain")
    try:
        _fail_deep()
    except ValueError:
        log.exception("reply dropped")
    first, *rest = stream.getvalue().splitlines()
    assert first.endswith(" ERROR peerscope.test_logs: reply dropped")
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "ValueError: probe reply malformed"


# --- levels and the handler ---------------------------------------------------------------


@pytest.mark.parametrize("level", ["warning", "WARNING", " Warning ", logging.WARNING])
def test_records_below_the_level_are_not_written(level: str | int):
    stream = configured("json", level)
    log.debug("no")
    log.info("no either")
    log.warning("yes")
    log.error("this too")
    assert [e["message"] for e in records(stream)] == ["yes", "this too"]
    assert logging.getLogger("peerscope").level == logging.WARNING


def test_configuring_twice_replaces_the_handler_and_never_doubles_lines():
    root_handlers = list(logging.getLogger().handlers)
    first = configured("json")
    second = configured("plain", "INFO")
    log.info("once")
    assert first.getvalue() == ""
    (line,) = second.getvalue().splitlines()
    assert line.endswith("INFO peerscope.test_logs: once")
    assert len(logging.getLogger("peerscope").handlers) == 1
    assert logging.getLogger().handlers == root_handlers  # the root is left alone


def test_other_trees_are_written_only_when_named_and_dropped_when_not():
    stream = configured("json", also=["uvicorn"])
    logging.getLogger("uvicorn.error").warning("from uvicorn")
    logging.getLogger("elsewhere").warning("not ours")
    assert [e["logger"] for e in records(stream)] == ["uvicorn.error"]
    again = configured("json")  # uvicorn no longer named: its handler goes
    logging.getLogger("uvicorn.error").warning("not written")
    assert again.getvalue() == ""
    assert logging.getLogger("uvicorn").handlers == []


def test_records_still_reach_the_application_s_own_handlers(caplog: pytest.LogCaptureFixture):
    stream = configured("json", "INFO")
    with log_context(peer_id="eu-1"):
        log.info("seen twice")
    assert [e["message"] for e in records(stream)] == ["seen twice"]
    assert [r.getMessage() for r in caplog.records if r.name == log.name] == ["seen twice"]


def test_the_context_filter_serves_a_handler_of_the_application_s_own():
    class Keep(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.kept: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.kept.append(record)

    keep = Keep()
    keep.addFilter(logs.ContextFilter())
    logger = logging.getLogger("peerscope.test_logs.own")
    logger.addHandler(keep)
    logger.setLevel(logging.INFO)
    try:
        with log_context(session_id="match-1", correlation_id="req-9"):
            logger.info("hi")
    finally:
        logger.removeHandler(keep)
        logger.setLevel(logging.NOTSET)
    (record,) = keep.kept
    assert (record.session_id, record.correlation_id) == ("match-1", "req-9")  # type: ignore[attr-defined]
    assert not hasattr(record, "peer_id")


def test_without_a_stream_lines_go_to_stderr_as_it_is_when_written(capsys):
    configure_logging("INFO", "json")
    capsys.readouterr()
    log.info("to stderr")
    err = capsys.readouterr().err
    assert orjson.loads(err)["message"] == "to stderr"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            {"level": "verbose"},
            "level: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'verbose'",
        ),
        ({"level": 15}, "level: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 15"),
        ({"fmt": "xml"}, "fmt: must be 'plain' or 'json', got 'xml'"),
        ({"also": [""]}, "also: '' is no logger tree beside peerscope's"),
        ({"also": ["peerscope.store"]}, "also: 'peerscope.store' is no logger tree"),
    ],
)
def test_bad_arguments_are_refused_naming_them(arguments: dict[str, Any], message: str):
    handlers = list(logging.getLogger("peerscope").handlers)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        configure_logging(**arguments)
    assert logging.getLogger("peerscope").handlers == handlers  # nothing changed


# --- the context helpers ------------------------------------------------------------------


def test_set_get_and_clear_context():
    set_context(peer_id="eu-1", party_id="lan")
    assert get_context() == {"peer_id": "eu-1", "party_id": "lan"}
    set_context(peer_id=None)
    assert get_context() == {"party_id": "lan"}
    clear_context()
    assert get_context() == {}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"peer_id": "ok", "user": "x"},
            "user: not a context field; they are peer_id, session_id, correlation_id, party_id",
        ),
        ({"peer_id": 7}, "peer_id: must be a string or None, got 7"),
    ],
)
def test_a_bad_context_field_is_refused_and_sets_nothing(fields: dict[str, Any], message: str):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        set_context(**fields)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"), log_context(**fields):
        pass
    assert get_context() == {}


# --- timing -------------------------------------------------------------------------------


class CountingClock:
    """perf_counter's stand-in: 10.0, 10.25, 10.5, ... and how often it was read."""

    def __init__(self) -> None:
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return 10.0 + 0.25 * (self.reads - 1)


@pytest.fixture
def perf_clock(monkeypatch: pytest.MonkeyPatch) -> CountingClock:
    fake = CountingClock()
    monkeypatch.setattr(logs, "perf_counter", fake)
    return fake


@timing
def add(a: int, b: int) -> int:
    return a + b


@timing(logger="peerscope.test_logs.timed")
async def fetch(value: str) -> str:
    await asyncio.sleep(0)
    return value.upper()


@timing(logger=log)
def broken() -> None:
    raise ValueError("no")


@pytest.fixture
def module_logger() -> Iterator[logging.Logger]:
    """This module's logger (``@timing``'s default for ``add``), its level and its tree's
    handlers (``also=["tests"]``) put back after."""
    logger, tree = logging.getLogger(__name__), logging.getLogger("tests")
    handlers = list(tree.handlers)
    yield logger
    logger.setLevel(logging.NOTSET)
    tree.handlers[:] = handlers


def test_timing_logs_a_call_at_debug_with_its_duration(
    perf_clock: CountingClock, module_logger: logging.Logger
):
    stream = configured("json", "DEBUG", also=["tests"])
    module_logger.setLevel(logging.DEBUG)
    assert add(2, 3) == 5
    (entry,) = records(stream)
    assert entry["level"] == "DEBUG"
    assert entry["logger"] == __name__  # the function's module
    assert entry["message"] == "add took 250.000 ms"
    assert (entry["function"], entry["duration_ms"]) == ("add", 250.0)
    assert perf_clock.reads == 2


async def test_timing_an_async_function_times_the_await(perf_clock: CountingClock):
    stream = configured("json", "DEBUG")
    assert await fetch("eu") == "EU"
    (entry,) = records(stream)
    assert entry["logger"] == "peerscope.test_logs.timed"
    assert (entry["function"], entry["duration_ms"]) == ("fetch", 250.0)


def test_timing_says_when_the_call_raised(perf_clock: CountingClock):
    stream = configured("json", "DEBUG")
    with pytest.raises(ValueError, match="no"):
        broken()
    (entry,) = records(stream)
    assert entry["message"] == "broken raised ValueError after 250.000 ms"


async def test_timing_with_debug_off_never_reads_the_clock(
    perf_clock: CountingClock, module_logger: logging.Logger
):
    stream = configured("json", "INFO", also=["tests"])
    module_logger.setLevel(logging.INFO)
    assert add(1, 1) == 2
    assert await fetch("x") == "X"
    with pytest.raises(ValueError, match=r"^no$"):
        broken()
    assert perf_clock.reads == 0
    assert stream.getvalue() == ""
    # Decided at each call: DEBUG turned on later is seen at the next call.
    module_logger.setLevel(logging.DEBUG)
    assert add(1, 2) == 3
    assert perf_clock.reads == 2
    assert [e["message"] for e in records(stream)] == ["add took 250.000 ms"]


def test_timing_keeps_the_function_s_name_and_signature():
    assert add.__name__ == "add"
    assert add.__wrapped__(4, 5) == 9  # type: ignore[attr-defined]
    assert asyncio.iscoroutinefunction(fetch)


# --- settings -----------------------------------------------------------------------------


def test_log_settings_default_to_info_and_plain(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("PEERSCOPE_LOG_LEVEL", raising=False)
    monkeypatch.delenv("PEERSCOPE_LOG_FORMAT", raising=False)
    settings = Settings()
    assert (settings.log_level, settings.log_format) == ("INFO", "plain")


def test_log_settings_from_the_environment_in_any_case(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PEERSCOPE_LOG_LEVEL", "debug")
    monkeypatch.setenv("PEERSCOPE_LOG_FORMAT", "JSON")
    settings = Settings.load()
    assert (settings.log_level, settings.log_format) == ("DEBUG", "json")


def test_log_settings_from_a_toml_file_under_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    config = tmp_path / "peerscope.toml"
    config.write_text('log_level = "error"\nlog_format = "json"\n')
    assert Settings.load(config).log_level == "ERROR"
    monkeypatch.setenv("PEERSCOPE_LOG_LEVEL", "warning")  # a variable beats the file
    settings = Settings.load(config)
    assert (settings.log_level, settings.log_format) == ("WARNING", "json")


@pytest.mark.parametrize(
    ("source", "line"),
    [
        (
            "env",
            "PEERSCOPE_LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'loud'",
        ),
        (
            "toml",
            "{config}: log_level: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'loud'",
        ),
    ],
)
def test_a_bad_log_level_names_where_it_came_from(
    source: str, line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    config = tmp_path / "peerscope.toml"
    config.write_text('log_level = "loud"\n' if source == "toml" else "")
    if source == "env":
        monkeypatch.setenv("PEERSCOPE_LOG_LEVEL", "loud")
    with pytest.raises(SettingsError) as refused:
        Settings.load(config)
    assert str(refused.value) == line.format(config=config)


def test_a_bad_log_format_names_the_field():
    with pytest.raises(SettingsError, match=r"^log_format: must be 'plain' or 'json', got 'xml'$"):
        Settings.load(log_format="xml")
