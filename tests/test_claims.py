"""Claims a reader can check, checked mechanically: section references lead to a section, the README's
times are the ones its linked run measured, and every drawn diagram is shown somewhere."""

from __future__ import annotations

import json
import re

import pytest

from junglegpt.paths import NOTEBOOKS_DIR, REPO_ROOT

NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
SECTION_REFERENCE = re.compile(r"\b[Ss]ections? (\d+)\b")


def _cells(path):
    return [("".join(cell["source"]), cell["cell_type"]) for cell in json.loads(path.read_text())["cells"]]


def _numbered_sections(path) -> set[int]:
    return {int(m.group(1)) for text, kind in _cells(path) if kind == "markdown"
            for m in re.finditer(r"^## (\d+)\. ", text, re.MULTILINE)}


def test_section_references_are_found_in_the_text():
    text = "as section 4 shows; Section 9 reads the answers; sections 2 and the figure"
    assert [int(m.group(1)) for m in SECTION_REFERENCE.finditer(text)] == [4, 9, 2]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_section_reference_leads_to_a_numbered_section(path):
    sections = _numbered_sections(path)
    assert sections, f"{path.name} has no numbered sections ('## 1. ...')"
    dangling = [f"section {m.group(1)} in {line.strip()!r}" for text, _ in _cells(path)
                for line in text.splitlines() for m in SECTION_REFERENCE.finditer(line)
                if int(m.group(1)) not in sections]
    assert not dangling, f"{path.name} refers to sections it does not have (it has 1 to {max(sections)}): {dangling}"


def _readme_quick_cpu_seconds() -> dict[str, str]:
    """Notebook -> the README table's '2-core CPU, quick' cell."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    header = next(line for line in readme.splitlines() if line.startswith("| notebook |"))
    column = [c.strip() for c in header.strip("|").split("|")].index("2-core CPU, quick")
    cells = {}
    for line in readme.splitlines():
        match = re.match(r"\| `(\d\d_\w+)` \|", line)
        if match:
            cells[match.group(1)] = [c.strip() for c in line.strip("|").split("|")][column]
    return cells


def test_the_readme_quick_cpu_times_are_the_committed_quick_runs():
    """The README's quick-profile column quotes results/quick-cpu/run_summary.json, rounded."""
    def rounded(seconds):  # half up, as a person rounds (Python's round(20.5) is 20)
        return int(seconds + 0.5)

    summary = json.loads((REPO_ROOT / "results" / "quick-cpu" / "run_summary.json").read_text())
    measured = {n["label"]: n["seconds"] for n in summary["notebooks"]}
    cells = _readme_quick_cpu_seconds()
    assert len(cells) == 8
    for notebook, cell in cells.items():
        quoted = [int(s) for s in re.findall(r"\d+", cell.split(" s")[0].replace(",", ""))]
        assert quoted, f"README: no time in seconds for {notebook}: {cell!r}"
        if notebook == "03_train":  # a range over the sizes
            trained = [rounded(s) for label, s in measured.items() if label.startswith("03_train_")]
            assert quoted == [min(trained), max(trained)], f"README's 03 range {quoted} vs the run's {trained}"
        else:
            assert quoted[0] == rounded(measured[notebook]), (
                f"README gives {notebook} {quoted[0]} s; results/quick-cpu/run_summary.json has "
                f"{measured[notebook]:.1f} s")


def test_every_diagram_in_docs_is_shown_somewhere():
    shown = "".join(p.read_text(encoding="utf-8") for p in [*REPO_ROOT.glob("*.md"), *REPO_ROOT.glob("docs/*.md"),
                                                             *NOTEBOOKS])
    unshown = [p.name for p in (REPO_ROOT / "docs" / "diagrams").glob("*.png") if f"diagrams/{p.name}" not in shown]
    assert not unshown, f"drawn but linked from nowhere: {unshown}"


def _cells_in_row(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line)) - 1  # a | inside a cell (even in `code`) must be \|


@pytest.mark.parametrize("path", [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))],
                         ids=lambda p: p.name)
def test_every_table_row_has_its_headers_number_of_cells(path):
    """GitHub splits a row at every unescaped |, and a blank line ends a table: a row after one is text."""
    lines = path.read_text(encoding="utf-8").splitlines()
    broken = []
    for i, line in enumerate(lines):
        if line.startswith("|") and i + 1 < len(lines) and re.match(r"\|[-:| ]+\|$", lines[i + 1]):
            width, row = _cells_in_row(line), i + 2
            while row < len(lines) and lines[row].startswith("|"):
                if _cells_in_row(lines[row]) != width:
                    broken.append(f"line {row + 1}: {_cells_in_row(lines[row])} cells, not {width}")
                row += 1
            after = row
            while after < len(lines) and lines[after] == "":
                after += 1
            if after > row and after < len(lines) and lines[after].startswith("| `"):
                broken.append(f"line {row + 1}: a blank line cuts the table short")
    assert not broken, f"{path.name}: {broken}"
