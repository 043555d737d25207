"""The solutions notebook: a worked solution in code for every exercise of notebooks 01 to 05,
linked from each exercise and its hint, and run here in the smoke profile.

The rule that ties exercises to solutions, mechanically: an exercise is an item of the numbered
list under "## Exercises" in notebook NN (01 to 05), "1. ...", "2. ...", and has the id NN.N. Its
solution is the section of notebooks/solutions.ipynb whose markdown cell starts with
`<a id="exercise-NN-N"></a>` and the heading `### Exercise NN.N · <title>`, followed by at least
one code cell before the next such heading; it stores its numbers as `answers["NN.N"]`, which the
notebook saves in models/exercises/answers.json. The exercise links `solutions.ipynb#exercise-NN-N`
and says what its solution costs on a 2-core CPU; the hints under the questions link it too.

The solutions notebook is not one of the series: run_all never runs it (`SERIES`), it links no
executed copy and has no row in the README (tests/test_executed_copies.py and the README checks
of tests/test_project.py leave it out explicitly), and it has a shape of its own, checked here.
"""

from __future__ import annotations

import json
import math
import re

import pytest

from junglegpt import data as jb
from junglegpt.io import link_or_copy
from junglegpt.notebook_setup import SETUP_CELL
from junglegpt.paths import NOTEBOOKS_DIR, OutputDirs
from junglegpt.run_all import SERIES, plan

from .helpers import copy_inputs, linked_copy, run_notebook
from .test_notebooks import CELL_LIMIT

SOLUTIONS = NOTEBOOKS_DIR / "solutions.ipynb"
LESSONS = [NOTEBOOKS_DIR / f"{name}.ipynb" for name in SERIES if name[:2] in {"01", "02", "03", "04", "05"}]
SECTION = re.compile(r'\A<a id="exercise-(\d\d)-(\d+)"></a>\n### Exercise (\d\d)\.(\d+) · \S')
COST = re.compile(r"about [\d,]+ s on a 2-core CPU", re.IGNORECASE)


def _cells(path) -> list[dict]:
    return [{**cell, "source": "".join(cell["source"])} for cell in json.loads(path.read_text())["cells"]]


def exercises(path) -> dict[str, str]:
    """{"NN.N": the item's text} for the numbered list under the notebook's "## Exercises"."""
    text = next(c["source"] for c in _cells(path) if c["cell_type"] == "markdown" and "## Exercises" in c["source"])
    listed = re.split(r"^## ", text.split("## Exercises", 1)[1], flags=re.MULTILINE)[0]
    items = re.split(r"^(\d+)\. ", listed, flags=re.MULTILINE)[1:]
    return {f"{path.stem[:2]}.{number}": " ".join(body.split()) for number, body in zip(items[::2], items[1::2],
                                                                                        strict=True)}


def hints(path) -> str:
    questions = next(c["source"] for c in _cells(path) if c["source"].startswith("## Questions"))
    return questions.split("**Exercise hints.**", 1)[1]


def solution_sections() -> dict[str, int]:
    """{"NN.N": how many code cells its section holds}, in the notebook's order."""
    sections, current = {}, None
    for cell in _cells(SOLUTIONS):
        if cell["cell_type"] == "markdown":
            match = SECTION.match(cell["source"])
            if match:
                anchor, heading = f"{match[1]}.{match[2]}", f"{match[3]}.{match[4]}"
                assert anchor == heading, f"the anchor of exercise {heading} says {anchor}"
                current = heading
                sections[current] = 0
            elif cell["source"].startswith("## "):
                current = None  # the next notebook's section, or the end
        elif current:
            sections[current] += 1
    return sections


def all_exercises() -> dict[str, str]:
    return {exercise: text for path in LESSONS for exercise, text in exercises(path).items()}


def test_the_rule_reads_a_numbered_list():
    assert len(LESSONS) == 5
    assert all(len(exercises(path)) >= 3 for path in LESSONS)


def test_every_exercise_of_01_to_05_has_a_solution_section_and_every_section_an_exercise():
    sections = solution_sections()
    assert list(sections) == list(all_exercises()), "one section per exercise, in the lessons' order"
    empty = [exercise for exercise, code_cells in sections.items() if not code_cells]
    assert not empty, f"solution sections without code: {empty}"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_each_exercise_links_its_solution_and_states_its_cost(path):
    for exercise, text in exercises(path).items():
        link = f"(solutions.ipynb#exercise-{exercise.replace('.', '-')})"
        assert link in text, f"exercise {exercise} does not link its solution {link}"
        assert COST.search(text), f"exercise {exercise} does not say 'about N s on a 2-core CPU'"
        assert link in hints(path), f"the hints of {path.stem} do not link the solution of {exercise}"


def test_the_solutions_notebook_has_the_series_first_cells_and_short_cells():
    cells = _cells(SOLUTIONS)
    assert cells[0]["cell_type"] == "markdown" and cells[0]["source"].startswith("# ")
    assert "**You will learn**" in cells[0]["source"]
    setup = cells[1]
    assert setup["source"] == SETUP_CELL and setup["metadata"]["jupyter"]["source_hidden"]
    tagged = [c for c in cells if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1 and "out_dir =" in tagged[0]["source"] and "profile =" in tagged[0]["source"]
    code = [c for c in cells if c["cell_type"] == "code"]
    big = [c["source"].splitlines()[0] for c in code if len(c["source"].splitlines()) > CELL_LIMIT]
    assert not big, f"cells over {CELL_LIMIT} lines: {big}"
    after_code = [cells[i + 1]["source"][:60] for i in range(2, len(cells) - 1)
                  if cells[i]["cell_type"] == cells[i + 1]["cell_type"] == "code"
                  and cells[i] is not tagged[0]]  # the imports follow the parameters, as in 01 to 08
    assert not after_code, f"a code cell with no prose before it: {after_code}"


def test_the_solutions_are_not_part_of_the_series(tmp_path):
    assert SOLUTIONS.exists() and "solutions" not in SERIES
    assert all(job.notebook != "solutions" for job in plan(OutputDirs(tmp_path), "smoke", ["1M"], extras=True))
    others = {p.stem for p in NOTEBOOKS_DIR.glob("*.ipynb")} - set(SERIES)
    assert others == {"solutions"}, f"a notebook that is neither in the series nor the solutions: {others}"


def _numbers(value, where=""):
    """Every number in an answer, with where it is: bools are not numbers, None (NaN saved) is."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _numbers(inner, f"{where}/{key}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _numbers(inner, f"{where}/{i}")
    elif value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        yield where, value


@pytest.fixture(scope="module")
def solved(smoke_1m, tmp_path_factory, shared_data):
    """The solutions notebook run in the smoke profile on a copy of the smoke run's inputs and 1M model
    (the model linked, never written to; the other sizes may still be training)."""
    out = copy_inputs(smoke_1m, tmp_path_factory.mktemp("solutions"))
    linked_copy(smoke_1m.model("1M"), out.model("1M"))
    cache = smoke_1m.models / "precision_cache.json"  # the precision "auto" measured, if it did
    if cache.exists():
        link_or_copy(cache, out.models / cache.name)
    # module-scoped: the per-test JUNGLE_DATA_DIR (conftest) is not set yet, so it is passed here
    ok, tail = run_notebook("solutions", out.root, env={"HF_HUB_OFFLINE": "1", jb.DATA_DIR_ENV: str(shared_data)})
    assert ok, tail
    return out, json.loads((out.model("exercises") / "answers.json").read_text())


def test_every_solution_runs_in_the_smoke_profile_and_saves_finite_numbers(solved):
    _, answers = solved
    assert list(answers) == list(all_exercises())
    for exercise, answer in answers.items():
        assert answer, f"exercise {exercise} saved no answer"
        numbers = list(_numbers(answer))
        bad = [(where, value) for where, value in numbers if value is None or not math.isfinite(value)]
        assert not bad, f"exercise {exercise}: numbers that are not finite: {bad[:3]}"
        skipped = isinstance(answer, dict) and "skipped" in answer  # 03.5 on a CPU without bf16
        assert numbers or skipped, f"exercise {exercise} saved no number"


def test_what_the_book_decides_holds_in_the_smoke_run_too(solved):
    """Claims that depend on the texts and the tokenizers alone (the same in every profile), not on
    training, which the smoke profile barely does."""
    _, answers = solved
    unseen = answers["01.1"]
    assert unseen["0.2"]["distinct"] > unseen["0.1"]["distinct"]
    assert unseen["0.2"]["train words"] < unseen["0.1"]["train words"]
    vocab = answers["02.1"]
    assert vocab["512"]["bytes per token"] < vocab["2048"]["bytes per token"]
    assert answers["02.3"]["round_trip"] is True
    alone = [row for row in answers["02.3"]["rows"] if row["characters"] == 1]  # é, an emoji
    assert alone and all(row["tokens"] == row["bytes"] > 1 for row in alone)  # a token a byte
    once = [answers["04.1"][n]["n-grams seen once"] for n in ("3", "4", "5", "6")]
    assert once == sorted(once)
    gzip, lzma = answers["04.3"]["gzip"], answers["04.3"]["lzma"]
    assert abs(gzip["after its last 32 KB only"] - gzip["after the training text"]) < 0.05  # its window
    assert lzma["after the training text"] < lzma["after its last 32 KB only"] - 0.1  # all of it
    assert answers["05.2"]["second"]["text"] != answers["05.2"]["greedy"]["text"]


def test_the_solutions_train_into_their_own_folder_and_leave_the_run_alone(solved, smoke_1m):
    out, _ = solved
    assert sorted(p.name for p in out.models.iterdir() if p.is_dir()) == ["1M", "exercises"]
    assert (out.model("1M") / "model.safetensors").stat().st_ino == \
        (smoke_1m.model("1M") / "model.safetensors").stat().st_ino, "the smoke run's 1M was replaced"
    assert (out.model("exercises") / "baseline" / "metrics.json").exists()
