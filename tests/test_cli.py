"""The command line, run as a user would run it."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from peerscope.cli import main


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "160"}
    return subprocess.run(
        [sys.executable, "-m", "peerscope.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


@pytest.mark.slow
def test_demo_serves_and_measures_simulated_peers_for_real():
    result = run_cli(
        "demo",
        "--duration",
        "4",
        "--seed",
        "7",
        "--metrics-interval",
        "0.5",
        "--port",
        "0",
        "--reflector-port",
        "0",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    url = re.search(r"dashboard at (http://127\.0\.0\.1:\d+)/", out)
    assert url is not None, out
    assert "simulated on this machine" in out
    assert "measured for real" in out
    # Each marked "sim" (the label simulated=true), the label itself not repeated.
    for name in ("LAN box", "Frankfurt", "Virginia", "Busy Wi-Fi", "Flaky link"):
        assert f"{name} sim " in out
    # The labels, cut short to leave room for the reason (how short depends on the widest
    # cells of the last frame: a slow machine's longer reasons squeeze the column).
    assert "probe_m" in out, out[-4000:]
    assert "simulated=true" not in out
    assert "healthy" in out  # the reason column
    # Virginia's reflector holds each reply 95 ± 6 ms: its measured latency shows that.
    virginia = next(line for line in out.splitlines()[::-1] if "Virginia" in line)
    latency = float(re.search(r"(\d+\.\d+) ms", virginia)[1])  # type: ignore[index]
    assert 85 < latency < 110, virginia
    assert "connected" in out


@pytest.mark.slow
def test_invalid_setting_exits_2_with_the_option_named():
    result = run_cli("demo", "--metrics-interval", "0")
    assert result.returncode == 2
    assert result.stderr == "peerscope: --metrics-interval: Input should be greater than 0\n"


@pytest.mark.slow
def test_version():
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("peerscope ")


# --- one line per mistake, exit status 2 ------------------------------------------------


def refused(argv: list[str]) -> list[str]:
    """The stderr lines of ``peerscope ARGV``, which must exit 2 without serving (in a child
    process: were it to serve, the timeout would end it)."""
    result = run_cli(*argv, timeout=30)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    return result.stderr.splitlines()


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["serve", "--port", "abc"],
            "peerscope: --port: invalid int value: 'abc' (see peerscope serve --help)",
        ),
        (
            ["demo", "--duration", "soon"],
            "peerscope: --duration: invalid float value: 'soon' (see peerscope demo --help)",
        ),
        (
            ["serve", "--db", "history.db", "--no-db"],
            "peerscope: --no-db: not allowed with argument --db (see peerscope serve --help)",
        ),
        (
            ["probe"],
            "peerscope: the following arguments are required: HOST[:PORT] "
            "(see peerscope probe --help)",
        ),
        # (How argparse quotes the choices depends on the Python version.)
        (
            ["launch"],
            "peerscope: command: invalid choice: 'launch' (choose from *serve*, *demo*, "
            "*probe*) (see peerscope --help)",
        ),
    ],
)
def test_a_bad_option_is_one_line_like_every_other_error(argv, line, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    (said,) = capsys.readouterr().err.splitlines()
    assert fnmatch.fnmatchcase(said, line.replace("[", "[[]")), said


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["serve", "--log-level", "nonsense"],
            "peerscope: --log-level: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, "
            "got 'nonsense'",
        ),
        (
            ["demo", "--log-level", "verbose"],
            "peerscope: --log-level: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, "
            "got 'verbose'",
        ),
        (
            ["serve", "--log-format", "xml"],
            "peerscope: --log-format: must be 'plain' or 'json', got 'xml'",
        ),
    ],
)
def test_a_bad_log_option_is_one_line_naming_it(argv, line, capsys):
    """Refused with the settings, before anything is built or listens."""
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", line + "\n")


BLANK = (
    "must not be empty or blank; leave it unset to serve loopback without one, or set "
    "a random string of 16 or more characters"
)


@pytest.mark.slow
@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_an_empty_token_is_refused_not_taken_as_none(host):
    """On loopback it served everything without auth; beyond, it passed the bind check."""
    assert refused(["serve", "--host", host, "--token", "", "--port", "0"]) == [
        f"peerscope: --token: {BLANK}"
    ]


@pytest.mark.slow
def test_an_empty_token_from_the_environment_is_refused(monkeypatch):
    monkeypatch.setenv("PEERSCOPE_TOKEN", "")
    monkeypatch.setenv("PEERSCOPE_HOST", "0.0.0.0")
    assert refused(["serve", "--port", "0"]) == [f"peerscope: PEERSCOPE_TOKEN: {BLANK}"]


@pytest.mark.slow
def test_warnings_come_first_one_line_each(monkeypatch):
    monkeypatch.setenv("PEERSCOPE_METRIC_INTERVAL", "2")
    assert refused(["serve", "--token", "short", "--metrics-interval", "0"]) == [
        "peerscope: warning: PEERSCOPE_METRIC_INTERVAL is not a setting; did you mean "
        "PEERSCOPE_METRICS_INTERVAL?",
        "peerscope: warning: token: 5 characters is short enough to guess; use 16 or more "
        'random ones (python -c "import secrets; print(secrets.token_urlsafe())")',
        "peerscope: --metrics-interval: Input should be greater than 0",
    ]


@pytest.mark.slow
def test_a_toml_syntax_error_is_one_line(tmp_path):
    config = tmp_path / "agent.toml"
    config.write_text("[[peers]]\naddress = 10.0.0.1\n")
    (line,) = refused(["serve", "--config", str(config)])
    assert re.fullmatch(
        rf"peerscope: {re.escape(str(config))}: not valid TOML: .+ "
        r"\(at line 2, column \d+\)",
        line,
    ), line


@pytest.mark.slow
@pytest.mark.parametrize(
    ("variable", "value"),
    [("PEERSCOPE_PEERS", "[127.0.0.1"), ("PEERSCOPE_ALLOWED_HOSTS", '["a", b]')],
)
def test_bad_json_in_a_variable_is_one_line(variable, value, monkeypatch):
    monkeypatch.setenv(variable, value)
    (line,) = refused(["serve", "--port", "0"])
    assert line.startswith(f"peerscope: {variable}: not valid JSON (")
    assert line.endswith("); give a JSON value or comma-separated items")


@pytest.mark.slow
def test_peers_given_twice_are_refused_naming_both(tmp_path):
    config = tmp_path / "agent.toml"
    config.write_text("[[peers]]\naddress = '10.0.0.1'\n")
    assert refused(
        ["serve", "--config", str(config), "--peer", "10.0.0.2", "--peer", "10.0.0.1"]
    ) == ["peerscope: --peer: peers[0] and --peer 10.0.0.1 have the same id 'twamp:10.0.0.1'"]
    assert refused(["serve", "--peer", "10.0.0.3", "--peer", "10.0.0.3"]) == [
        "peerscope: --peer: --peer 10.0.0.3 and --peer 10.0.0.3 have the same id 'twamp:10.0.0.3'"
    ]


@pytest.mark.slow
def test_an_invalid_ip_address_is_refused_at_once(tmp_path):
    assert refused(["serve", "--peer", "10.0.0.999"]) == [
        "peerscope: --peer: '10.0.0.999' is not a valid IPv4 address"
    ]
    config = tmp_path / "agent.toml"
    config.write_text("[[peers]]\naddress = '10.0.0.999'\nmethod = 'icmp'\n")
    assert refused(["serve", "--config", str(config)]) == [
        f"peerscope: {config}: peers[0].address: '10.0.0.999' is not a valid IPv4 address"
    ]


@pytest.mark.slow
def test_a_busy_http_port_is_one_line_and_exit_2():
    """uvicorn printed its own error and exited 3; the demo serves HTTP the same way."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        results = [
            run_cli("serve", "--port", str(port), "--reflector-port", "0"),
            run_cli("demo", "--port", str(port), "--reflector-port", "0", "--duration", "5"),
        ]
    for result in results:
        assert result.returncode == 2, result.stderr
        assert result.stderr.splitlines() == [
            f"peerscope: port: {port} is in use (TCP 127.0.0.1:{port}); set another port "
            "(--port or PEERSCOPE_PORT)"
        ]
        assert "serving on" not in result.stdout


@pytest.mark.slow
def test_an_address_this_host_does_not_have_is_named():
    result = run_cli(
        "serve", "--host", "192.0.2.1", "--port", "0", "--token", "t" * 32, "--reflector-port", "0"
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "peerscope: host: 192.0.2.1 is not an address of this host (TCP 192.0.2.1:0: Cannot "
        "assign requested address); bind one it has, or 127.0.0.1"
    ]


@pytest.mark.slow
def test_a_privileged_port_is_named():
    # Linux's default (1024); a host that lowered it cannot show this refusal at all.
    start = Path("/proc/sys/net/ipv4/ip_unprivileged_port_start")
    assert int(start.read_text()) > 1, f"{start} makes port 1 unprivileged on this host"
    command = [
        sys.executable,
        "-m",
        "peerscope.cli",
        "serve",
        "--port",
        "1",
        "--reflector-port",
        "0",
    ]
    if os.geteuid() == 0:  # CI runs as root: without the capability that lets root bind it
        setpriv = shutil.which("setpriv")  # util-linux, essential on Debian
        assert setpriv is not None, "setpriv (util-linux) is needed to drop the capability"
        command = [
            setpriv,
            "--inh-caps=-net_bind_service",
            "--bounding-set=-net_bind_service",
            *command,
        ]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "COLUMNS": "160"},
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "peerscope: port: 1 needs privileges (TCP 127.0.0.1:1; ports below 1024 need root or "
        "CAP_NET_BIND_SERVICE); set another port (--port or PEERSCOPE_PORT)"
    ]
