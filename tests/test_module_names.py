"""Module names a reader can tell apart: the file name says which module is meant."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "peerscope"


def module_stems() -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for path in PACKAGE.rglob("*.py"):
        if path.stem not in ("__init__", "__main__"):
            found[path.stem].append(path.relative_to(PACKAGE).as_posix())
    return found


def test_no_two_modules_share_a_name():
    stems = module_stems()
    assert len(stems) > 40  # the walk found the package
    assert {stem: paths for stem, paths in stems.items() if len(paths) > 1} == {}


def test_no_module_name_is_another_one_in_the_plural():
    stems = module_stems()
    assert sorted((stem, stem + "s") for stem in stems if stem + "s" in stems) == []
