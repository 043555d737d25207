"""The notebooks: committed clean, alike where they should be, and runnable under papermill."""

from __future__ import annotations

import json
import os
import re
import socket
import statistics
import subprocess
import sys

import nbformat
import pytest

from junglegpt import run_all
from junglegpt.io import atomic_write_json, file_sha256
from junglegpt.notebook_setup import SETUP_CELL
from junglegpt.paths import NOTEBOOKS_DIR, OutputDirs
from junglegpt.run_all import SERIES, _done_marker, _marker_content, is_done, plan

from .helpers import git_status, linked_copy, run_all_cli

NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
# The series' notebooks; notebooks/solutions.ipynb (the exercises' worked solutions) is not one of them:
# it has the checks of every notebook here (no outputs, line width) and a shape of its own,
# checked in tests/test_solutions.py.
LESSONS = [p for p in NOTEBOOKS if p.stem in SERIES]


def _read(path):
    return nbformat.read(path, as_version=4)


def test_the_series_exists_in_order():
    names = [p.stem for p in NOTEBOOKS]
    assert names[0] == "01_data_exploration"
    assert [n for n in SERIES if n in names] == [n for n in names if n in SERIES]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    nb = _read(path)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear the outputs"


def test_every_run_to_read_is_committed():
    """The first screen links executed copies; each must exist, so that a reader can open it."""
    import re

    for path in NOTEBOOKS:
        for link in re.findall(r"\]\((\.\./results/[^)]+)\)", _read(path).cells[0].source):
            assert (path.parent / link).resolve().exists(), f"{path.name}: {link} is not committed"


LINE_LIMIT = 88  # a projector, or GitHub's notebook view, without scrolling sideways
CELL_LIMIT = 25  # code lines in a cell of notebooks 01 to 05, the parameters cell aside
MEDIAN_LIMIT = 8  # the median code cell of notebooks 01 to 05, every cell counted


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_line_is_wider_than_a_projector(path):
    wide = [(i, line) for i, cell in enumerate(_read(path).cells)
            for line in cell.source.splitlines() if len(line) > LINE_LIMIT]
    assert wide == [], f"{path.name}: lines over {LINE_LIMIT} characters (cell, line): {wide[:3]}"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem[:2] in {"01", "02", "03", "04", "05"}],
                         ids=lambda p: p.stem)
def test_the_lesson_notebooks_have_cells_sized_for_a_room(path):
    """Cells of one step each: none over 25 lines but the parameters cell; most of them short."""
    code = [c for c in _read(path).cells if c.cell_type == "code"]
    cells = [c for c in code if "parameters" not in c.metadata.get("tags", [])]
    big = [c.source.splitlines()[0] for c in cells if len(c.source.splitlines()) > CELL_LIMIT]
    assert big == [], f"{path.name}: cells over {CELL_LIMIT} lines, starting: {big}"
    median = statistics.median(len(c.source.splitlines()) for c in code)
    assert median <= MEDIAN_LIMIT, f"{path.name}: the median code cell has {median} lines"


BARE_LOOP_LIMIT = 120  # code lines before 03's first backward(): issue 31 (it was 215)


def code_lines_before_first_backward(nb) -> tuple[int, list[str]]:
    """The code lines a reader goes through before the first `.backward()`: the non-blank lines that
    are not only a comment, of the code cells from the first up to and including the one that holds
    it; and those cells' ids."""
    count, ids = 0, []
    for cell in (c for c in nb.cells if c.cell_type == "code"):
        lines = [line.strip() for line in cell.source.splitlines()]
        count += sum(1 for line in lines if line and not line.startswith("#"))
        ids.append(cell.get("id"))
        if ".backward()" in cell.source:
            return count, ids
    raise AssertionError("no code cell calls .backward()")


def test_code_lines_are_counted_up_to_the_first_backward():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("#@title Setup\nimport torch\n\n   # a comment\nx = 1  # counted"),
        nbformat.v4.new_markdown_cell("prose is not code\n.backward() in prose neither"),
        nbformat.v4.new_code_cell("def f():\n    \"\"\"A docstring line counts.\"\"\"\n    return 1"),
        nbformat.v4.new_code_cell("loss.backward()\nstep()"),
        nbformat.v4.new_code_cell("after = 1\nloss.backward()"),
    ])
    assert code_lines_before_first_backward(nb)[0] == 2 + 3 + 2


def test_the_training_notebook_reaches_its_bare_loop_soon_with_the_lesson_first_in_order():
    """03's dozen-line loop within 120 code lines (the setup and parameters cells included), the
    plumbing behind one call (training.prepare_run); before it, in order: the data's blocks, the
    model, its size, one block by hand checked against the model, the first batch's loss."""
    nb = _read(NOTEBOOKS_DIR / "03_train.ipynb")
    count, ids = code_lines_before_first_backward(nb)
    assert count <= BARE_LOOP_LIMIT, f"03 reaches its first backward() after {count} code lines ({ids})"
    lesson = ["03-32", "03-28x", "03-05", "03-18xx", "03-19x", "03-21x", "03-44", "03-bare"]
    assert [i for i in ids if i in lesson] == lesson, ids


def test_the_training_notebooks_parameters_are_those_prepare_run_reads():
    """Every parameter of 03's parameters cell (papermill's, run_all's, 06's and 07's) reaches
    training.prepare_run, which reads them by name from the notebook's globals."""
    from junglegpt.training import NOTEBOOK_PARAMETERS

    nb = _read(NOTEBOOKS_DIR / "03_train.ipynb")
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    names = [m.group(1) for m in re.finditer(r"^(\w+) = ", cell.source, re.MULTILINE)]
    assert names == list(NOTEBOOK_PARAMETERS)


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_notebook_shape(path):
    nb = _read(path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].source == SETUP_CELL, "the first code cell must be junglegpt.notebook_setup.SETUP_CELL"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert "out_dir =" in tagged[0].source and "profile =" in tagged[0].source
    first_screen = nb.cells[0].source  # the title, what you will learn, the result, a run to read
    assert nb.cells[0].cell_type == "markdown" and first_screen.startswith("# ")
    learn = first_screen.split("**You will learn**")[1].strip().split("\n\n")[0].splitlines()
    bullets = [line for line in learn if line.startswith("- ")]  # a long one goes on, indented
    assert 2 <= len(bullets) <= 5 and all(line.startswith(("- ", "  ")) for line in learn), \
        f"{path.name}: what you will learn"
    assert "**Read it already run**" in first_screen
    setup = nb.cells[1]  # then the setup cell, hidden where the platform can hide it
    assert setup.source == SETUP_CELL and setup.source.startswith("#@title")
    assert len(SETUP_CELL.splitlines()) <= 8, "the setup cell shows at most 8 lines"
    assert setup.metadata["jupyter"]["source_hidden"] and setup.metadata["cellView"] == "form"
    assert setup.metadata["_kg_hide-input"]
    about = nb.cells[2].source
    for phrase in ("What this notebook teaches", "What it needs", "How long it takes", "T4", "CPU"):
        assert phrase in about, f"{path.name}: the cell after the setup should say '{phrase}'"
    ending = "\n".join(c.source for c in nb.cells[-5:] if c.cell_type == "markdown")
    assert "## Summary" in ending and "## Exercises" in ending and "## Questions" in ending
    assert "<summary>Answers" in ending, f"{path.name}: the questions' answers, folded, at the end"


def test_smoke_run_writes_the_data_and_figures(smoke_run):
    out, _ = smoke_run
    assert out.train_txt.stat().st_size > 200_000
    assert 20_000 < out.val_txt.stat().st_size < 40_000
    for name in ("01_part_lengths", "01_zipf_heaps", "01_characters_cast"):
        assert (out.figures / f"{name}.png").exists()
    assert (out.dataset / "dataset_dict.json").exists()
    for name in SERIES:
        if (NOTEBOOKS_DIR / f"{name}.ipynb").exists():
            assert list(out.executed.glob(f"{name}*.ipynb")), f"no executed copy of {name}"


def test_executed_notebooks_go_to_out_not_over_the_sources(smoke_run):
    for path in NOTEBOOKS:
        assert all(c.outputs == [] for c in _read(path).cells if c.cell_type == "code")


def test_rerun_skips_finished_work(smoke_run, tmp_path):
    """Rerun on a copy, which also shows that a copied OUT reruns nothing; the smoke run itself is
    only read, by both test processes."""
    out = OutputDirs(linked_copy(smoke_run[0].root, tmp_path / "copy"))
    proc = run_all_cli("--profile", "smoke", "--sizes", "all", "--out", str(out.root))
    assert proc.returncode == 0, proc.stderr
    assert "running" not in proc.stdout
    summary = json.loads((out.executed / "run_summary.json").read_text())
    assert all(n["skipped"] for n in summary["notebooks"])  # each with its times from the run that made it


def test_a_failing_notebook_is_named_with_its_executed_copy(tmp_path, shared_data):
    bad = tmp_path / "bad_data" / "jungle_book"
    bad.mkdir(parents=True)
    (bad / "pg236.txt").write_text("<html><body>503 Service Unavailable</body></html>", encoding="utf-8")
    out = tmp_path / "out"
    proc = run_all_cli("--profile", "smoke", "--out", str(out), env={"JUNGLE_DATA_DIR": str(bad.parent)})
    assert proc.returncode == 1
    assert "01_data_exploration" in proc.stderr
    assert str(out / "executed" / "01_data_exploration.ipynb") in proc.stderr
    assert "HTML page" in proc.stderr
    assert (out / "executed" / "01_data_exploration.ipynb").exists()  # written as it failed
    assert not (out / "data" / "train.txt").exists()


@pytest.mark.parametrize("profile, saves", [("smoke", False), ("quick", True)])
def test_papermill_saves_the_executed_copy_after_every_cell_but_in_the_smoke_profile(tmp_path, monkeypatch,
                                                                                      profile, saves):
    commands = []

    class Finished:  # a papermill that ends at once
        pid, returncode = -1, 0

        def __init__(self, cmd, **kwargs):
            commands.append(cmd)

        def communicate(self):
            return "", None

    monkeypatch.setattr(run_all.subprocess, "Popen", Finished)
    run_all.run_job(run_all.Job("01_data_exploration", {"profile": profile}, tmp_path / "01.ipynb", "01"))
    assert ("--no-request-save-on-cell-execute" in commands[0]) != saves
    assert commands[0][commands[0].index("-m", 3):][:2] == ["-m", "junglegpt.papermill_cli"]


def test_papermill_starts_without_the_grammar_that_no_notebook_needs():
    code = "import sys, junglegpt.papermill_cli, nbformat; print(sys.modules.get('rfc3987_syntax'))"
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert printed.strip() == "None"


def test_bad_arguments_are_refused_with_the_valid_choices(tmp_path):
    proc = run_all_cli("--sizes", "1M,5M", "--out", str(tmp_path))
    assert proc.returncode == 2
    assert "5M" in proc.stderr and "1M, 3M, 7M, 15M, 22M, 37M, 59M, 100M" in proc.stderr
    proc = run_all_cli("--profile", "fast", "--out", str(tmp_path))
    assert proc.returncode == 2 and "smoke, quick, full" in proc.stderr


def test_a_finished_run_goes_stale_when_its_inputs_change(tmp_path):
    out = OutputDirs(tmp_path)
    metrics = out.model("1M") / "metrics.json"
    metrics.parent.mkdir(parents=True)
    metrics.write_text('{"profile": "smoke"}')
    job = next(j for j in plan(out, "smoke", ["1M"]) if j.notebook == "04_evaluate")
    job.executed.parent.mkdir(parents=True)
    job.executed.write_text("{}")
    atomic_write_json(_done_marker(out, job.label), _marker_content(job, out))
    assert is_done(out, job)
    metrics.write_text('{"profile": "smoke", "retrained": true}')  # 03 ran again for 1M
    assert not is_done(out, job)


def test_a_failed_training_stops_the_series_and_says_how_to_resume(tmp_path, monkeypatch, capsys):

    ran = []

    def fake_run_job(job):
        ran.append(job.label)
        if job.label == "03_train_3M":
            return False, 0.1, "RuntimeError: the 3M training failed (simulated)"
        return True, 0.1, ""

    monkeypatch.setattr(run_all, "run_job", fake_run_job)
    assert run_all.main(["--profile", "smoke", "--sizes", "1M,3M,7M", "--out", str(tmp_path)]) == 1
    assert ran == ["01_data_exploration", "02_tokenizer", "03_train_1M", "03_train_3M", "03_train_7M"]
    said = capsys.readouterr().err
    assert "03_train_3M: see the executed notebook" in said and "(simulated)" in said
    assert "Not run, since they need what failed: 04_evaluate, 05_generate, 08_publish." in said
    assert "run the same command again" in said


def test_a_trained_size_goes_stale_when_the_training_text_or_tokenizer_changes(tmp_path, monkeypatch):
    from junglegpt import runs

    monkeypatch.setattr(runs, "model_problem", lambda folder: None)  # no real model here: see test_hostile
    monkeypatch.setattr(runs, "metrics_problem", lambda metrics: None)  # nor its numbers: test_hostile_round4
    out = OutputDirs(tmp_path).make()
    out.train_txt.write_text("Mowgli's Brothers", encoding="utf-8")
    (out.tokenizer / "tokenizer.json").parent.mkdir(parents=True, exist_ok=True)
    (out.tokenizer / "tokenizer.json").write_text('{"vocab": 2048}', encoding="utf-8")
    atomic_write_json(out.model("1M") / "metrics.json", {
        "profile": "smoke", "train_sha256": file_sha256(out.train_txt),
        "tokenizer_sha256": file_sha256(out.tokenizer / "tokenizer.json")})
    job = next(j for j in plan(out, "smoke", ["1M"]) if j.notebook == "03_train")
    job.executed.parent.mkdir(parents=True)
    job.executed.write_text("{}")
    assert is_done(out, job)
    assert not is_done(out, next(j for j in plan(out, "quick", ["1M"]) if j.notebook == "03_train"))
    (out.tokenizer / "tokenizer.json").write_text('{"vocab": 4096}', encoding="utf-8")  # 02 rerun
    assert not is_done(out, job)
    atomic_write_json(out.model("1M") / "metrics.json", {
        "profile": "smoke", "train_sha256": file_sha256(out.train_txt),
        "tokenizer_sha256": file_sha256(out.tokenizer / "tokenizer.json")})
    assert is_done(out, job)
    out.train_txt.write_text("Kaa's Hunting", encoding="utf-8")  # 01 rerun with another split
    assert not is_done(out, job)


@pytest.mark.parametrize("make_out, message", [
    (lambda tmp: "", "--out is empty"),
    (lambda tmp: str(tmp / "a-file"), "is a file, not a folder"),
    (lambda tmp: str(tmp / "a-file" / "below"), "is a file, not a folder"),
])
def test_an_unusable_out_folder_is_refused_before_anything_runs(tmp_path, capsys, make_out, message):

    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(SystemExit) as exit_info:
        run_all.main(["--profile", "smoke", "--out", make_out(tmp_path)])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_read_only_out_folder_is_refused_with_a_message(tmp_path, monkeypatch, capsys):

    def read_only(self, *args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(run_all.Path, "mkdir", read_only)
    with pytest.raises(SystemExit):
        run_all.main(["--profile", "smoke", "--out", str(tmp_path / "out")])
    assert "cannot write there (Read-only file system)" in capsys.readouterr().err


def test_ctrl_c_says_how_to_resume_and_from_which_step(tmp_path, monkeypatch, capsys):

    def fake_run_job(job):
        if job.label == "03_train_3M":
            (tmp_path / "models" / "3M" / "training" / "step_000040").mkdir(parents=True)
            raise KeyboardInterrupt
        return True, 0.1, ""

    monkeypatch.setattr(run_all, "run_job", fake_run_job)
    assert run_all.main(["--profile", "smoke", "--sizes", "1M,3M", "--out", str(tmp_path)]) == 130
    said = capsys.readouterr().err
    assert "Interrupted. Rerun the same command to resume (3M from step 40)" in said
    assert "Traceback" not in said


def _lock(out, pid):
    from junglegpt.run_all import LOCK_NAME

    holder = {"pid": pid, "host": socket.gethostname(), "started": "2026-11-26 01:00:00"}
    return atomic_write_json(out / LOCK_NAME, holder)


def test_a_second_run_on_the_same_out_is_refused(tmp_path, monkeypatch, capsys):

    monkeypatch.setattr(run_all, "run_job", lambda job: pytest.fail("nothing may run"))
    lock = _lock(tmp_path, os.getppid())  # a live process: the run in progress
    assert run_all.main(["--profile", "smoke", "--sizes", "1M", "--out", str(tmp_path)]) == 2
    said = capsys.readouterr().err
    assert f"another run (pid {os.getppid()}, started at 2026-11-26 01:00:00) is using {tmp_path}" in said
    assert lock.exists(), "the other run's lock is left alone"


def test_a_stale_lock_is_taken_over_and_the_lock_is_released_even_on_a_crash(tmp_path, monkeypatch, capsys):

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that no longer runs: a run killed with kill -9 left this lock
    lock = _lock(tmp_path, gone.pid)

    def crash(job):
        assert lock.exists() and json.loads(lock.read_text())["pid"] == os.getpid()
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(run_all, "run_job", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_all.main(["--profile", "smoke", "--sizes", "1M", "--out", str(tmp_path)])
    assert f"taking over a lock left in {tmp_path} by pid {gone.pid}" in capsys.readouterr().out
    assert not lock.exists()


def test_a_default_run_changes_no_tracked_file(smoke_run):
    """The smoke series ran in a clone with the default --out: its data, figures and models are
    ignored, and the reference results and figures in results/ are untouched."""
    out, _ = smoke_run
    assert (out.figures / "04_bpb_vs_size.png").exists() and (out.model("1M") / "metrics.json").exists()
    assert git_status(out.root) == ""


@pytest.mark.parametrize("parallel, expected", [(None, 1), ("3", 3)])
def test_parallel_trains_that_many_sizes_at_once(tmp_path, monkeypatch, parallel, expected):
    import threading
    import time


    running, most = set(), [0]
    lock = threading.Lock()

    def fake_run_job(job):
        with lock:
            running.add(job.label)
            most[0] = max(most[0], len(running))
        time.sleep(0.2 if job.notebook == "03_train" else 0)
        with lock:
            running.discard(job.label)
        return True, 0.1, ""

    monkeypatch.setattr(run_all, "run_job", fake_run_job)
    monkeypatch.setattr(run_all, "_gpu_count", lambda: 0)
    args = ["--profile", "smoke", "--sizes", "1M,3M,7M", "--out", str(tmp_path)]
    assert run_all.main(args + (["--parallel", parallel] if parallel else [])) == 0
    assert most[0] == expected
