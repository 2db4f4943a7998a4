"""Child interpreters a benchmark drives line by line over stdin/stdout."""

from __future__ import annotations

import asyncio
import queue
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class Child:
    """A child interpreter running ``code``, its stdout lines read by a thread."""

    def __init__(self, code: str, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.process = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=ROOT,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=1,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def expect(self, word: str) -> list[str]:
        try:
            line = self.lines.get(timeout=self.timeout_s)
        except queue.Empty:
            raise RuntimeError(f"no {word!r} line from a child in {self.timeout_s} s") from None
        if line is None or not line.startswith(word + " "):
            raise RuntimeError(
                f"expected {word!r} from a child, got {line!r} (exit status {self.process.poll()})"
            )
        return line.split()[1:]

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def close(self, timeout: float = 30.0) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def commands_from_parent() -> asyncio.Queue[str]:
    """In a child, on its running loop: each line its parent sends (``Child.send``), then
    ``quit`` once stdin closes. A thread reads stdin, so the loop never blocks on it."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str] = asyncio.Queue()

    def read() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line.strip())
        loop.call_soon_threadsafe(lines.put_nowait, "quit")

    threading.Thread(target=read, daemon=True).start()
    return lines
