"""The executed copies a notebook links as "Read it already run" are today's notebook, run.

When a notebook's code changes, these tests fail until its copies are made again:
`scripts/regenerate_executed_copies.sh` (CONTRIBUTING says when and how long it takes).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from junglegpt.paths import NOTEBOOKS_DIR, REPO_ROOT
from junglegpt.run_all import SERIES

# The series' notebooks. notebooks/solutions.ipynb links no executed copy and has no row in the README:
# tests/test_solutions.py runs it instead.
NOTEBOOKS = [p for p in sorted(NOTEBOOKS_DIR.glob("*.ipynb")) if p.stem in SERIES]
LINK = re.compile(r"\[([^\]]+)\]\((\.\./results/[^)\s]+/executed/[^)\s]+\.ipynb)\)")
MAX_COPY_BYTES = 1_500_000  # a copy GitHub shows at once, and that keeps the repository small
WITH_PICTURES = ("01", "02", "03", "04", "05")


def _notebook(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _code(nb: dict) -> list[str]:
    """The code cells' sources, without the cell papermill injects for the parameters."""
    return ["".join(cell["source"]) for cell in nb["cells"] if cell["cell_type"] == "code"
            and "injected-parameters" not in cell.get("metadata", {}).get("tags", [])]


def linked_copies(path: Path) -> list[tuple[str, Path]]:
    """(label, executed copy) for each link of the notebook's "Read it already run" line."""
    for cell in _notebook(path)["cells"]:
        text = " ".join("".join(cell["source"]).split())  # a label may be wrapped over lines
        if cell["cell_type"] == "markdown" and "Read it already run" in text:
            return [(label, (path.parent / target).resolve()) for label, target in LINK.findall(text)]
    return []


def _shows_a_picture(cell: dict) -> bool:
    return any("image/png" in output.get("data", {}) for output in cell.get("outputs", []))


def test_links_are_found_in_a_wrapped_line(tmp_path):
    cell = {"cell_type": "markdown", "source": ["**Read it already run**, outputs included: [quick profile,\n",
                                                "2-core CPU, 2026-12-03](../results/quick-cpu/executed/01_x.ipynb)"]}
    path = tmp_path / "notebooks" / "01_x.ipynb"
    path.parent.mkdir()
    path.write_text(json.dumps({"cells": [cell]}), encoding="utf-8")
    assert linked_copies(path) == [("quick profile, 2-core CPU, 2026-12-03",
                                    (tmp_path / "results" / "quick-cpu" / "executed" / "01_x.ipynb").resolve())]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_linked_copy_is_todays_notebook_run_and_says_which_run(path):
    copies = linked_copies(path)
    assert copies, f"{path.name} links no executed copy ('Read it already run')"
    for label, copy in copies:
        assert copy.exists(), f"{path.name} links {copy}, which does not exist"
        executed = _notebook(copy)
        theirs, ours = _code(executed), _code(_notebook(path))
        pairs = enumerate(zip(theirs, ours, strict=False))
        differ = next((i for i, (a, b) in pairs if a != b), min(len(theirs), len(ours)))
        assert theirs == ours, (
            f"{copy.relative_to(REPO_ROOT)} is not today's {path.name}: code cell {differ + 1} differs "
            f"({len(theirs)} code cells against {len(ours)}). Make the copies again "
            "(scripts/regenerate_executed_copies.sh), or link only current ones")
        papermill = executed["metadata"]["papermill"]
        profile, day = papermill["parameters"]["profile"], papermill["end_time"][:10]
        assert f"{profile} profile" in label and day in label, (
            f"{path.name}: the link's label {label!r} should name the run that made it: "
            f"'{profile} profile', its hardware, and {day}")
        assert copy.stat().st_size <= MAX_COPY_BYTES, f"{copy.name} is {copy.stat().st_size:,} bytes"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name[:2] in WITH_PICTURES], ids=lambda p: p.stem)
def test_a_linked_copy_shows_every_picture_its_notebook_always_draws(path):
    """Every cell that always shows a figure (a `plt.show()` that is not inside a condition) shows it
    as an image in the copy: GitHub and Colab draw it without running anything."""
    for _, copy in linked_copies(path):
        cells = [cell for cell in _notebook(copy)["cells"] if cell["cell_type"] == "code"]
        drawing = [cell for cell in cells if re.search(r"^plt\.show\(\)", "".join(cell["source"]), re.MULTILINE)]
        assert drawing, f"{path.name} draws nothing unconditionally"
        blank = ["".join(cell["source"])[:60] for cell in drawing if not _shows_a_picture(cell)]
        assert not blank, f"{copy.relative_to(REPO_ROOT)} lacks the picture of: {blank}"


def test_the_readme_links_the_copies_the_notebooks_link():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{path.stem}` |"))
        in_readme = {(REPO_ROOT / target).resolve() for target in re.findall(r"\((results/[^)]+\.ipynb)\)", row)}
        assert in_readme == {copy for _, copy in linked_copies(path)}, f"README's row for {path.stem}"
