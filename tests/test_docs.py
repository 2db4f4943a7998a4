"""The README's configuration table lists every setting with its real default."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from peerscope import QualityConfig, Settings, StatusRules

README = Path(__file__).resolve().parent.parent / "README.md"


def documented_defaults() -> dict[str, str]:
    rows = re.findall(r"^\| `([a-z_.]+)` \| `([^`]*)` \|", README.read_text(), re.MULTILINE)
    return dict(rows)


def actual_defaults() -> dict[str, object]:
    # The fields' own defaults: Settings() would read PEERSCOPE_* variables (conftest sets one).
    found: dict[str, object] = {}
    for name, field in Settings.model_fields.items():
        if name in ("quality", "status"):
            continue
        found[name] = field.get_default(call_default_factory=True)
    for prefix, group in (("quality", QualityConfig()), ("status", StatusRules())):
        for field in dataclasses.fields(group):
            found[f"{prefix}.{field.name}"] = getattr(group, field.name)
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
    wrong = {name: (documented[name], value) for name, value in actual.items()
             if not same(documented[name], value)}
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
    result = subprocess.run([sys.executable, "-c", block.group(1)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    score, _, server = result.stdout.partition(" ")
    # 25.5 ms, no jitter yet, 1 of 2 probes lost (50 %): 0.4*83 + 0 + 0.25*100 = 58.2
    assert float(score) == 58.2
    assert "'total_messages': 1," in server
    assert "'active_connections': 1," in server
