"""The README's configuration table lists every setting with its real default, and every
``peerscope.…`` name the docs and docstrings mention exists."""

from __future__ import annotations

import dataclasses
import importlib
import re
from pathlib import Path

import pytest

from peerscope import QualityConfig, Settings, StatusRules
from peerscope.alert_settings import AlertSettings

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOTTED = re.compile(r"\bpeerscope(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
# Dotted names that are no Python: files named after the package, ASGI scope extensions,
# logger names.
NOT_PYTHON = {
    "peerscope.alerts",
    "peerscope.db",
    "peerscope.js",
    "peerscope.toml",
    "peerscope.frame_writer",
    "peerscope.transport",
}


def documented_defaults() -> dict[str, str]:
    rows = re.findall(r"^\| `([a-z_.]+)` \| `([^`]*)` \|", README.read_text(), re.MULTILINE)
    return dict(rows)


def actual_defaults() -> dict[str, object]:
    # The fields' own defaults: Settings() would read PEERSCOPE_* variables (conftest sets one).
    found: dict[str, object] = {}
    for name, field in Settings.model_fields.items():
        if name in ("quality", "status", "alerts"):
            continue
        found[name] = field.get_default(call_default_factory=True)
    for prefix, group in (("quality", QualityConfig()), ("status", StatusRules())):
        for field in dataclasses.fields(group):
            found[f"{prefix}.{field.name}"] = getattr(group, field.name)
    for name, field in AlertSettings.model_fields.items():
        found[f"alerts.{name}"] = field.get_default(call_default_factory=True)
    return found


def same(documented: str, actual: object) -> bool:
    if actual is None:
        return documented == ""
    if isinstance(actual, bool):
        return documented == str(actual).lower()
    if isinstance(actual, int | float):
        return float(documented) == float(actual)
    return documented == str(actual)


def test_every_setting_is_documented_with_its_default():
    documented = documented_defaults()
    actual = actual_defaults()
    assert sorted(documented) == sorted(actual)
    wrong = {
        name: (documented[name], value)
        for name, value in actual.items()
        if not same(documented[name], value)
    }
    assert wrong == {}


def test_readme_opens_with_the_two_commands():
    opening = "\n".join(README.read_text().splitlines()[:15])
    assert "make demo" in opening
    assert "make test" in opening


@pytest.mark.slow
def test_readme_tour_example_runs_and_prints_real_figures():
    import subprocess
    import sys

    block = re.search(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    assert block is not None
    result = subprocess.run(
        [sys.executable, "-c", block.group(1)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    score, _, server = result.stdout.partition(" ")
    # 25.5 ms, no jitter yet, 1 of 2 probes lost: 50 % loss scores 0 whatever the latency
    assert float(score) == 0.0
    assert "'total_messages': 1," in server
    assert "'active_connections': 1," in server


def resolves(name: str) -> bool:
    """Whether ``name`` is a module of the package, or an attribute reached from one."""
    parts = name.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for part in parts[split:]:
            if not hasattr(found, part):
                return False
            found = getattr(found, part)
        return True
    return False


def test_every_module_and_name_the_docs_mention_exists():
    # A module renamed without its mentions leaves readers a path that fails to import.
    texts = [
        README,
        *sorted((ROOT / "docs").glob("*.md")),
        *sorted((ROOT / "src" / "peerscope").rglob("*.py")),
    ]
    mentioned = {
        (name, path.relative_to(ROOT).as_posix())
        for path in texts
        for name in DOTTED.findall(path.read_text())
    }
    assert len({name for name, _ in mentioned}) > 50  # the pattern finds what it should
    missing = sorted(
        (name, where) for name, where in mentioned if name not in NOT_PYTHON and not resolves(name)
    )
    assert missing == []
