"""docs/BENCHMARKS.md: how every benchmark's figure is taken, the current figures only in the
generated table, and every reference into the page landing on a section that exists."""

from __future__ import annotations

import re

from benchmarks.__main__ import MODULES
from benchmarks.results import RESULTS, ROOT, load_all
from benchmarks.summary import DOC, END, START
from benchmarks.timing import down, up

SECTION = re.compile(r"^## (\d+)\. (bench_\w+): ", re.MULTILINE)
# What a reader needs to trust a figure, in every benchmark's section.
FIELDS = ("Measured", "Workload", "Compared with", "Target", "Run alone", "Reading the figure")
# Where other files point into the page: a heading's anchor, or a numbered section.
ANCHOR = re.compile(r"BENCHMARKS\.md#([\w-]+)")
NUMBERED = re.compile(r"BENCHMARKS(?:\.md)?,?\s+section\s+(\d+)")


def hand_written() -> str:
    """The page without its generated block."""
    text = DOC.read_text(encoding="utf-8")
    return text[: text.index(START)] + text[text.index(END) :]


def sections() -> dict[str, tuple[int, str]]:
    """Module name -> (section number, the section's text up to the next heading)."""
    text = DOC.read_text(encoding="utf-8")
    found: dict[str, tuple[int, str]] = {}
    for match in SECTION.finditer(text):
        following = text.find("\n## ", match.end())
        body = text[match.end() : following if following >= 0 else len(text)]
        assert match[2] not in found, f"{match[2]}: two sections"
        found[match[2]] = (int(match[1]), body)
    return found


def slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_benchmark_has_a_numbered_section_saying_how_its_figure_is_taken() -> None:
    found = sections()
    modules = {module.__name__.rsplit(".", 1)[-1] for module in MODULES}
    assert set(found) == modules
    assert sorted(number for number, _ in found.values()) == list(range(1, len(modules) + 1))
    for name, (_, body) in found.items():
        missing = [field for field in FIELDS if f"\n- **{field}" not in body]
        assert missing == [], name
        assert f"**Run alone:** `python -m benchmarks.{name}`" in body, name
    # Every results file (one per target) is explained by its module's section.
    records = load_all(RESULTS)
    assert records
    for record in records:
        name = record.result.name
        assert any(name == module or name.startswith(f"{module}_") for module in found), name


def test_the_current_figures_are_only_in_the_generated_table() -> None:
    # A figure copied into hand-written text is stale after the next run; the table is
    # regenerated with it.
    text = hand_written()
    records = load_all(RESULTS)
    assert records
    for record in records:
        result = record.result
        unit = re.split(r"[ /]", result.unit)[0]
        shown = [f"{result.figure_text().split()[0]} {unit}"]
        if result.reference is not None and result.ratio is not None:
            shown.append(f"{down(result.reference.figure, result.digits)} {unit}")
            shown.append(f"{up(result.ratio, 3)}×")
        for figure in shown:
            assert not re.search(rf"(?<![\d.]){re.escape(figure)}", text), (result.name, figure)


def test_references_into_the_page_land_on_a_section_that_exists() -> None:
    text = DOC.read_text(encoding="utf-8")
    anchors = {slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}
    numbers = {number for number, _ in sections().values()}
    files = [
        ROOT / "README.md",
        ROOT / "CONTRIBUTING.md",
        *sorted((ROOT / "docs").glob("*.md")),
        *sorted((ROOT / "src").rglob("*.py")),
        *sorted((ROOT / "benchmarks").glob("*.py")),
    ]
    references = 0
    for path in files:
        source = path.read_text(encoding="utf-8")
        where = path.relative_to(ROOT).as_posix()
        for anchor in ANCHOR.findall(source):
            references += 1
            assert anchor in anchors, (where, anchor)
        for number in NUMBERED.findall(source):
            references += 1
            assert int(number) in numbers, (where, number)
    assert references >= 3  # the patterns find the references the docs hold today
