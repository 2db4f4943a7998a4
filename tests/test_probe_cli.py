"""``peerscope probe``, run as a user runs it, against a reflector in a child process."""

from __future__ import annotations

import os
import pty
import re
import socket
import subprocess
import sys

import orjson
import pytest

from peerscope.cli import main

REFLECTOR = """
import asyncio, sys
from peerscope.probe.reflector import Reflector

async def main():
    reflector = Reflector(network_delay_ms=2.0)
    print(await reflector.start(port=0), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    reflector.stop()

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def reflector_port():
    child = subprocess.Popen(
        [sys.executable, "-c", REFLECTOR], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        yield int(child.stdout.readline())
    finally:
        child.kill()
        child.wait(10)
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()


def probe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "peerscope", "probe", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "160"},
    )


@pytest.mark.slow
def test_lines_and_summary_like_ping(reflector_port):
    result = probe(f"127.0.0.1:{reflector_port}", "--count", "5", "--interval", "0.05")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"PROBE 127.0.0.1:{reflector_port} (twamp): 5 probes, 0.05 s apart"
    rtts = [
        float(re.fullmatch(rf"seq={seq} rtt=([\d.]+) ms", line).group(1))
        for seq, line in enumerate(lines[1:6])
    ]
    assert all(2.0 <= rtt < 10.0 for rtt in rtts), rtts
    assert lines[6] == f"--- 127.0.0.1:{reflector_port} twamp probe statistics ---"
    assert lines[7] == "5 probes sent, 5 received, 0.0% loss"
    figures = re.fullmatch(
        r"rtt min/avg/max/mdev = ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms, "
        r"jitter ([\d.]+) ms",
        lines[8],
    )
    assert figures is not None, lines[8]
    low, average, high = (float(figures.group(i)) for i in (1, 2, 3))
    assert low == min(rtts)
    assert high == max(rtts)
    assert average == pytest.approx(sum(rtts) / 5, abs=0.002)
    assert re.fullmatch(
        r"quality \d+\.\d \((excellent|good), grade [AB]\), MOS 4\.\d\d", lines[9]
    ), lines[9]


@pytest.mark.slow
def test_json(reflector_port):
    result = probe(f"127.0.0.1:{reflector_port}", "-c", "3", "-i", "0.02", "--json")
    assert result.returncode == 0, result.stderr
    document = orjson.loads(result.stdout)
    assert [r["seq"] for r in document["results"]] == [0, 1, 2]
    assert all(r["arrival"] == "on_time" and r["rtt_ms"] >= 2.0 for r in document["results"])
    summary = document["summary"]
    assert (summary["sent"], summary["received"], summary["loss_percent"]) == (3, 3, 0.0)
    assert summary["min_ms"] <= summary["avg_ms"] <= summary["max_ms"]
    assert summary["grade"] in ("A", "B")


@pytest.mark.slow
def test_every_probe_lost_exits_1():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    result = probe(f"127.0.0.1:{port}", "-c", "2", "-i", "0.02", "--timeout", "0.2")
    assert result.returncode == 1, result.stderr
    assert "seq=0 timeout" in result.stdout
    assert "2 probes sent, 0 received, 100.0% loss" in result.stdout
    assert "rtt min" not in result.stdout


@pytest.mark.slow
def test_tcp_connect_time(reflector_port):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        result = probe(f"127.0.0.1:{port}", "-m", "tcp", "-c", "2", "-i", "0.02", "--json")
    assert result.returncode == 0, result.stderr
    assert orjson.loads(result.stdout)["summary"]["received"] == 2


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_a_closed_tcp_port_is_refused_per_probe_and_lost_in_the_summary(capsys):
    # In this process: loopback refuses at once, so a child interpreter would only add its
    # start-up. The timeout is long: a probe printed as refused was not a timeout.
    port = closed_port()
    status = main(["probe", f"127.0.0.1:{port}", "-m", "tcp", "-c", "3", "-i", "0.02", "-W", "60"])
    out = capsys.readouterr().out.splitlines()
    assert status == 1  # nothing answered
    assert out == [
        f"PROBE 127.0.0.1:{port} (tcp): 3 probes, 0.02 s apart",
        "seq=0 refused (port closed)",
        "seq=1 refused (port closed)",
        "seq=2 refused (port closed)",
        f"--- 127.0.0.1:{port} tcp probe statistics ---",
        "3 probes sent, 0 received, 100.0% loss, 3 refused (port closed)",
    ]


def test_a_closed_tcp_port_in_json(capsys):
    port = closed_port()
    status = main(["probe", f"127.0.0.1:{port}", "-m", "tcp", "-c", "2", "-i", "0.02", "--json"])
    document = orjson.loads(capsys.readouterr().out)
    assert status == 1
    assert document["results"] == [
        {"seq": seq, "rtt_ms": None, "arrival": "port_closed", "detail": "connection refused"}
        for seq in (0, 1)
    ]
    summary = document["summary"]
    assert (summary["sent"], summary["received"], summary["loss_percent"]) == (2, 0, 100.0)
    assert (summary["refused"], summary["unresolved"]) == (2, 0)
    assert summary["quality_score"] is None


def test_with_tcp_refused_reachable_a_closed_port_answers(capsys):
    port = closed_port()
    status = main(
        [
            "probe",
            f"127.0.0.1:{port}",
            *("-m", "tcp", "-c", "2", "-i", "0.02", "--json"),
            *("--tcp-refused", "reachable"),
        ]
    )
    document = orjson.loads(capsys.readouterr().out)
    assert status == 0
    assert [(r["seq"], r["arrival"]) for r in document["results"]] == [
        (0, "on_time"),
        (1, "on_time"),
    ]
    assert all(0.0 < r["rtt_ms"] < 1000.0 for r in document["results"])
    summary = document["summary"]
    assert (summary["received"], summary["loss_percent"], summary["refused"]) == (2, 0.0, 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["[::1"], "address: expected [IPv6]"),
        (["db.lan", "-m", "tcp"], "address: TCP probes need a port"),
        (["127.0.0.1", "--count", "0"], "--count: must be within"),
        (["127.0.0.1", "--interval", "-1"], "--interval: must be within"),
        (["127.0.0.1", "--timeout", "nan"], "--timeout: must be within"),
        (["127.0.0.1", "-m", "udp"], "peerscope: --method: invalid choice: 'udp'"),
        (
            ["127.0.0.1:80", "-m", "tcp", "--tcp-refused", "ok"],
            "peerscope: --tcp-refused: invalid choice: 'ok'",
        ),
        # Refused at once, where they showed 100 % loss.
        (["999.1.1.1"], "peerscope: address: '999.1.1.1' is not a valid IPv4 address\n"),
        (["nosuch.invalid", "-c", "1"], "peerscope: address: 'nosuch.invalid' does not resolve: "),
        (
            ["nosuch.invalid:80", "-m", "tcp", "-c", "1"],
            "peerscope: address: 'nosuch.invalid' does not resolve: ",
        ),
    ],
)
def test_bad_arguments_exit_2_naming_what_was_wrong(args, message, capsys):
    # In this process: nothing is probed, so a child interpreter would only add its start-up.
    try:
        status = main(["probe", *args])
    except SystemExit as exit_:  # argparse's own checks (the method's choices)
        status = exit_.code
    assert status == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""  # no PROBE line: nothing was sent
    assert len(captured.err.splitlines()) == 1, captured.err


@pytest.mark.slow
def test_a_long_run_on_a_terminal_draws_a_progress_bar(reflector_port):
    """Run with stdout on a pseudo-terminal, as a user at a shell would."""
    parent, child = pty.openpty()
    try:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "peerscope",
                "probe",
                f"127.0.0.1:{reflector_port}",
                "-c",
                "20",
                "-i",
                "0.01",
            ],
            stdout=child,
            stderr=subprocess.PIPE,
            env={**os.environ, "COLUMNS": "100", "TERM": "xterm"},
        )
        os.close(child)
        child = -1
        output = b""
        while True:
            try:
                chunk = os.read(parent, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
        assert process.wait(30) == 0
        assert process.stderr is not None
        process.stderr.close()
    finally:
        os.close(parent)
        if child >= 0:
            os.close(child)
    text = output.decode(errors="replace")
    assert "probing" in text  # the bar's label, drawn while the run lasted
    assert "seq=19 rtt=" in text
    assert "20 probes sent, 20 received, 0.0% loss" in text
