"""What a benchmark found, judged against its target, and the JSON file that keeps it.

Every benchmark's ``run`` returns ``Result`` objects; the runner (``benchmarks.runner``) adds
where and when they were taken (``Record``) and writes one file per result,
``benchmarks/results/<name>.json``, from which ``benchmarks.summary`` builds the table in
docs/BENCHMARKS.md. Reading a file back (``load``) checks every field, so the table is never
built from a file that was hand-edited into nonsense.
"""

from __future__ import annotations

import json
import math
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from benchmarks.timing import down, up

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


class Verdict(StrEnum):
    MET = "met"
    MISSED = "missed"
    # Missed, but the floor measured in the same run (the least any code can do for the job on
    # this machine) misses the target too: no change to peerscope can meet it here.
    FLOOR_BOUND = "floor-bound"
    # A --quick run: small counts, noisy figures, some targets' sizes not measured at all.
    NOT_JUDGED = "not judged"

    @property
    def label(self) -> str:
        """The word printed on a benchmark's verdict line."""
        return {
            "met": "MET",
            "missed": "MISSED",
            "floor-bound": "MISSED, FLOOR-BOUND",
            "not judged": "not judged (--quick)",
        }[self.value]

    @property
    def fails(self) -> bool:
        """Whether this verdict makes the run exit non-zero (see docs/BENCHMARKS.md)."""
        return self is Verdict.MISSED


@dataclass(frozen=True)
class Target:
    limit: float
    on: Literal["figure", "ratio"] = "figure"
    at_least: bool = False  # higher is better (frames per second)

    def met_by(self, value: float) -> bool:
        return value >= self.limit if self.at_least else value <= self.limit

    def text(self, unit: str) -> str:
        sign = "≥" if self.at_least else "≤"
        return f"{sign} {self.limit:g}×" if self.on == "ratio" else f"{sign} {self.limit:g} {unit}"


@dataclass(frozen=True)
class Reference:
    """What the figure is set against, measured in the same run, in the figure's unit."""

    name: str
    figure: float
    floor: bool  # the bare job done without peerscope (not a peer library doing it)


@dataclass(frozen=True)
class Result:
    """One target's figure. ``figure`` is None when the run did not measure the target's
    case (``--quick`` skips the large sizes); ``ratio`` is figure against ``reference``
    (or, where the benchmark judges on several ratios, the least favourable of them)."""

    name: str
    title: str
    unit: str
    digits: int  # decimals shown, rounded against peerscope
    target: Target
    figure: float | None
    quick: bool
    reference: Reference | None = None
    ratio: float | None = None
    detail: str = ""

    @property
    def judged(self) -> float | None:
        return self.ratio if self.target.on == "ratio" else self.figure

    @property
    def verdict(self) -> Verdict:
        value = self.judged
        if self.quick or value is None:
            return Verdict.NOT_JUDGED
        if self.target.met_by(value):
            return Verdict.MET
        floor = self.reference if self.reference is not None and self.reference.floor else None
        if (
            floor is not None
            and self.target.on == "figure"
            and not self.target.met_by(floor.figure)
        ):
            return Verdict.FLOOR_BOUND
        return Verdict.MISSED

    @property
    def met(self) -> bool:
        return self.verdict is Verdict.MET

    def figure_text(self) -> str:
        """The figure rounded against peerscope: a cost up, a rate it should reach down."""
        if self.figure is None:
            return "not measured"
        rounded = down if self.target.at_least else up
        return f"{rounded(self.figure, self.digits)} {self.unit}"

    def ratio_text(self) -> str:
        """``1.203× the floor, bare writes (57.92 ms)``: the reference's figure rounded down,
        the ratio up (both against peerscope)."""
        if self.reference is None or self.ratio is None:
            return ""
        floor = "the floor, " if self.reference.floor else ""
        return (
            f"{up(self.ratio, 3)}× {floor}{self.reference.name} "
            f"({down(self.reference.figure, self.digits)} {self.unit})"
        )


@dataclass(frozen=True)
class Record:
    """A result with where, when and how it was taken."""

    result: Result
    commit: str
    machine: str
    date: str  # ISO 8601, UTC, to the second
    command: str


def commit() -> str:
    """The checked-out commit, ``+dirty`` when tracked files differ from it (the results and
    the generated summary aside: a run rewrites those itself)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        changed = git(
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ".",
            ":!benchmarks/results",
            ":!docs/BENCHMARKS.md",
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if changed else "")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_json(record: Record) -> dict[str, Any]:
    result = record.result
    reference = result.reference
    return {
        "name": result.name,
        "title": result.title,
        "figure": result.figure,
        "unit": result.unit,
        "digits": result.digits,
        "target": {
            "limit": result.target.limit,
            "on": result.target.on,
            "at_least": result.target.at_least,
        },
        "reference": None
        if reference is None
        else {"name": reference.name, "figure": reference.figure, "floor": reference.floor},
        "ratio": result.ratio,
        "verdict": result.verdict.value,
        "met": result.met,
        "detail": result.detail,
        "quick": result.quick,
        "commit": record.commit,
        "machine": record.machine,
        "date": record.date,
        "command": record.command,
    }


def write(record: Record, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{record.result.name}.json"
    path.write_text(
        json.dumps(to_json(record), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return path


class _Fields:
    """Typed reads of one JSON object; every error names the field (``target.limit: ...``)."""

    def __init__(self, data: object, prefix: str = "") -> None:
        if not isinstance(data, dict):
            raise ValueError(f"{prefix.rstrip('.') or 'file'}: must be a JSON object")
        self._data: dict[str, object] = data
        self._prefix = prefix

    def _get(self, key: str) -> object:
        if key not in self._data:
            raise ValueError(f"{self._prefix}{key}: missing")
        return self._data[key]

    def _wrong(self, key: str, expected: str) -> ValueError:
        return ValueError(f"{self._prefix}{key}: must be {expected}, got {self._data[key]!r}")

    def text(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str):
            raise self._wrong(key, "a string")
        return value

    def flag(self, key: str) -> bool:
        value = self._get(key)
        if not isinstance(value, bool):
            raise self._wrong(key, "true or false")
        return value

    def number(self, key: str) -> float:
        value = self._get(key)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise self._wrong(key, "a finite number")
        return float(value)

    def optional_number(self, key: str) -> float | None:
        return None if self._get(key) is None else self.number(key)

    def integer(self, key: str) -> int:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self._wrong(key, "an integer >= 0")
        return value

    def nested(self, key: str) -> _Fields | None:
        value = self._get(key)
        return None if value is None else _Fields(value, f"{self._prefix}{key}.")


def from_json(data: object) -> Record:
    fields = _Fields(data)
    target = fields.nested("target")
    if target is None:
        raise ValueError("target: must be a JSON object, got None")
    on = target.text("on")
    if on not in ("figure", "ratio"):
        raise ValueError(f"target.on: must be 'figure' or 'ratio', got {on!r}")
    reference = fields.nested("reference")
    result = Result(
        name=fields.text("name"),
        title=fields.text("title"),
        unit=fields.text("unit"),
        digits=fields.integer("digits"),
        target=Target(
            target.number("limit"), "ratio" if on == "ratio" else "figure", target.flag("at_least")
        ),
        figure=fields.optional_number("figure"),
        quick=fields.flag("quick"),
        reference=None
        if reference is None
        else Reference(reference.text("name"), reference.number("figure"), reference.flag("floor")),
        ratio=fields.optional_number("ratio"),
        detail=fields.text("detail"),
    )
    # The stored verdict is for readers of the file; the figures decide it.
    if fields.text("verdict") != result.verdict.value or fields.flag("met") != result.met:
        raise ValueError(
            f"verdict: the file says {fields.text('verdict')!r}, its figures "
            f"give {result.verdict.value!r}"
        )
    return Record(
        result,
        commit=fields.text("commit"),
        machine=fields.text("machine"),
        date=fields.text("date"),
        command=fields.text("command"),
    )


def load(path: Path) -> Record:
    """One results file; a ValueError names the file and the field."""
    try:
        record = from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, OSError) as error:  # json.JSONDecodeError is a ValueError
        raise ValueError(f"{path}: {error}") from None
    if record.result.name != path.stem:
        raise ValueError(
            f"{path}: name: must be the file's name {path.stem!r}, got {record.result.name!r}"
        )
    return record


def load_all(directory: Path) -> list[Record]:
    """Every results file in ``directory`` (none if it does not exist), by name."""
    return [load(path) for path in sorted(directory.glob("*.json"))]
