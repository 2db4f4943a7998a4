"""``peerscope probe``, run as a user runs it, against a reflector in a child process."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import orjson
import pytest

from peerscope.cli import main
from peerscope.core.dscp import DSCP_NAMES, parse_dscp
from peerscope.probe.twamp import SenderPacket, ntp_from_unix_ns, reply_to

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
    # The TTL the probe reached the reflector with, where it says (this one may not).
    rtts = [
        float(re.fullmatch(rf"seq={seq}(?: ttl=\d+)? rtt=([\d.]+) ms", line).group(1))
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
    # Both directions: nothing lost either way; the reflector's 2 ms path delay is on the
    # way out (it stamps the probe's arrival 2 ms late), and both ends read one clock here.
    path = re.fullmatch(
        r"forward/return loss = 0\.0/0\.0%, one-way delay = ([\d.]+)/([\d.]+) ms"
        r"( \(offset-affected\))?, ttl (\d+|not reported)",
        lines[10],
    )
    assert path is not None, lines[10]
    forward, back = float(path.group(1)), float(path.group(2))
    assert 2.0 <= forward < 10.0
    assert 0.0 <= back < 2.0
    # Each sample's two add up to its RTT; smoothed, they are a weighted mean of the RTTs.
    assert low - 0.002 <= forward + back <= high + 0.002
    assert len(lines) == 11


@pytest.mark.slow
def test_json(reflector_port):
    result = probe(f"127.0.0.1:{reflector_port}", "-c", "3", "-i", "0.02", "--json")
    assert result.returncode == 0, result.stderr
    document = orjson.loads(result.stdout)
    assert [r["seq"] for r in document["results"]] == [0, 1, 2]
    assert all(r["arrival"] == "on_time" and r["rtt_ms"] >= 2.0 for r in document["results"])
    paths = [r["path"] for r in document["results"]]
    # Counted from the first probe of the session: three sent, each received, each answered.
    assert [(p["sent"], p["reached"], p["answered"]) for p in paths] == [
        (1, 1, 1),
        (2, 2, 2),
        (3, 3, 3),
    ]
    assert all(2.0 <= p["forward_ms"] < 10.0 for p in paths)
    summary = document["summary"]
    assert (summary["sent"], summary["received"], summary["loss_percent"]) == (3, 3, 0.0)
    assert summary["min_ms"] <= summary["avg_ms"] <= summary["max_ms"]
    assert summary["grade"] in ("A", "B")
    path = summary["path"]
    assert (path["forward_loss_percent"], path["return_loss_percent"]) == (0.0, 0.0)
    assert summary["stateless_reflector"] is False
    assert 2.0 <= path["forward_delay_ms"] < 10.0
    assert path["delay_clock"] in ("synchronized", "offset-affected")
    assert path["path_changes"] == 0


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
        {
            "seq": seq,
            "rtt_ms": None,
            "arrival": "port_closed",
            "detail": "connection refused",
            "path": None,
        }
        for seq in (0, 1)
    ]
    summary = document["summary"]
    assert (summary["sent"], summary["received"], summary["loss_percent"]) == (2, 0, 100.0)
    assert (summary["refused"], summary["unresolved"]) == (2, 0)
    assert summary["quality_score"] is None
    assert summary["path"] is None  # TCP says nothing of directions


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
        (["127.0.0.1", "--padding", "x"], "peerscope: --padding: invalid int value: 'x'"),
        (
            ["127.0.0.1", "--padding", "1459"],
            "peerscope: --padding: must be an integer within 0..1458 for twamp, got 1459\n",
        ),
        (["127.0.0.1", "--padding", "-1"], "peerscope: --padding: must be an integer within"),
        # STAMP's base packet is 44 octets: its 30 octets of MBZ are not optional.
        (
            ["127.0.0.1", "-m", "stamp", "--padding", "29"],
            "peerscope: --padding: must be an integer within 30..1458 for stamp, got 29\n",
        ),
        (
            ["127.0.0.1:80", "-m", "tcp", "--padding", "27"],
            "peerscope: --padding: only TWAMP and STAMP probes are padded, not tcp\n",
        ),
        (["127.0.0.1", "--dscp", "64"], "peerscope: --dscp: must be 0..63 or a name"),
        (["127.0.0.1", "--dscp", "af44"], "peerscope: --dscp: must be 0..63 or a name"),
        (["127.0.0.1", "--dscp", ""], "peerscope: --dscp: must be 0..63 or a name"),
        # The ICMP and TCP senders do not mark their packets: not a DSCP silently ignored.
        (
            ["127.0.0.1", "-m", "icmp", "--dscp", "ef"],
            "peerscope: --dscp: only TWAMP and STAMP probes are marked, not icmp\n",
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
    assert re.search(r"seq=19 (ttl=\d+ )?rtt=", text), text
    assert "20 probes sent, 20 received, 0.0% loss" in text


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("ef", 46),
        ("EF", 46),
        ("af41", 34),
        ("af11", 10),
        ("af43", 38),
        ("cs5", 40),
        ("cs0", 0),
        ("cs7", 56),
        ("df", 0),
        ("voice-admit", 44),
        ("le", 1),
        ("0", 0),
        ("63", 63),
        (" 46 ", 46),
    ],
)
def test_dscp_names_and_numbers(text, value):
    assert parse_dscp(text) == value


def test_dscp_names_are_the_standard_code_points():
    # RFC 2597's AF table and RFC 2474's class selectors, written out rather than computed.
    assert {
        name: DSCP_NAMES[name]
        for name in (
            "af11",
            "af12",
            "af13",
            "af21",
            "af22",
            "af23",
            "af31",
            "af32",
            "af33",
            "af41",
            "af42",
            "af43",
        )
    } == {
        "af11": 10,
        "af12": 12,
        "af13": 14,
        "af21": 18,
        "af22": 20,
        "af23": 22,
        "af31": 26,
        "af32": 28,
        "af33": 30,
        "af41": 34,
        "af42": 36,
        "af43": 38,
    }
    assert [DSCP_NAMES[f"cs{i}"] for i in range(8)] == [0, 8, 16, 24, 32, 40, 48, 56]
    with pytest.raises(ValueError, match=r"^--dscp: must be 0\.\.63 or a name .* got '6e'$"):
        parse_dscp("6e", "--dscp")


@contextlib.contextmanager
def listening(*, tos: bool = False) -> Iterator[socket.socket]:
    """A plain UDP socket on loopback, standing where a reflector would (it answers nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        if tos:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
        sock.settimeout(5.0)
        yield sock


@pytest.mark.parametrize(
    ("args", "size"),
    [
        ([], 41),  # TWAMP Light: 14 + 27, so the reply is as long as the probe
        (["-m", "stamp"], 44),  # RFC 8762's base packet
        (["--padding", "0"], 14),
        (["--padding", "100"], 114),
        (["-m", "stamp", "--padding", "1458"], 1472),
    ],
)
def test_padding_sets_the_probe_size_on_the_wire(args, size, capsys):
    with listening() as sock:
        port = sock.getsockname()[1]
        status = main(["probe", f"127.0.0.1:{port}", *args, "-c", "1", "-W", "0.1"])
        data = sock.recv(4096)
    assert status == 1  # nothing answers
    assert len(data) == size
    assert data[14:] == bytes(size - 14)  # padding is zeros
    assert "seq=0 timeout" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "dscp"),
    [
        ([], 0),
        (["--dscp", "ef"], 46),
        (["--dscp", "af41"], 34),
        (["-m", "stamp", "--dscp", "cs5"], 40),
        (["--dscp", "7"], 7),
    ],
)
def test_dscp_marks_the_probes_tos_byte(args, dscp):
    with listening(tos=True) as sock:
        port = sock.getsockname()[1]
        main(["probe", f"127.0.0.1:{port}", *args, "-c", "1", "-W", "0.1"])
        _, ancillary, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(1))
    tos = [
        data[0]
        for level, kind, data in ancillary
        if (level, kind) == (socket.IPPROTO_IP, socket.IP_TOS)
    ]
    assert tos == [dscp << 2]  # DSCP is the TOS byte's six high bits; ECN left 0


@contextlib.contextmanager
def stateless_reflector(ttls: list[int]) -> Iterator[int]:
    """A reflector in RFC 8762's stateless mode, as other implementations run it: each
    reply copies the probe's seq. The n-th reply reports ``ttls[n]`` (the last one after),
    acting out a path that changes length."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.05)
        done = threading.Event()

        def answer() -> None:
            replies = 0
            while not done.is_set():
                try:
                    data, address = sock.recvfrom(4096)
                except TimeoutError:
                    continue
                received = ntp_from_unix_ns(time.time_ns())
                probe = SenderPacket.decode(data)
                ttl = ttls[min(replies, len(ttls) - 1)]
                replies += 1
                reply = reply_to(
                    probe,
                    seq=probe.seq,
                    received=received,
                    sent=ntp_from_unix_ns(time.time_ns()),
                    ttl=ttl,
                )
                sock.sendto(reply.encode(), address)

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        try:
            yield sock.getsockname()[1]
        finally:
            done.set()
            thread.join(5)


def test_a_stateless_reflector_leaves_the_direction_unknown_and_a_new_ttl_is_a_path_change(
    capsys,
):
    with stateless_reflector([64, 64, 61]) as port:
        status = main(["probe", f"127.0.0.1:{port}", "-c", "4", "-i", "0.02"])
    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    assert [re.sub(r"rtt=[\d.]+", "rtt=…", line) for line in lines[1:5]] == [
        "seq=0 ttl=64 rtt=… ms",
        "seq=1 ttl=64 rtt=… ms",
        "seq=2 ttl=61 rtt=… ms",
        "seq=3 ttl=61 rtt=… ms",
    ]
    assert re.fullmatch(
        r"direction unknown \(stateless reflector\), one-way delay = [\d.]+/[\d.]+ ms"
        r" \(offset-affected\), ttl 61 \(1 path change, was 64\)",
        lines[-1],
    ), lines[-1]


def test_a_stateless_reflector_in_json(capsys):
    with stateless_reflector([255]) as port:  # 255: the reflector could not read the TTL
        status = main(["probe", f"127.0.0.1:{port}", "-c", "2", "-i", "0.02", "--json"])
    document = orjson.loads(capsys.readouterr().out)
    assert status == 0
    assert [r["path"]["reached"] for r in document["results"]] == [None, None]
    path = document["summary"]["path"]
    assert (path["forward_loss_percent"], path["return_loss_percent"]) == (None, None)
    assert document["summary"]["stateless_reflector"] is True
    assert (path["ttl"], path["path_changes"]) == (None, 0)
    assert path["delay_clock"] == "offset-affected"  # the reply's error estimate: S unset
