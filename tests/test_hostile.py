"""The hostile cases of issue 23, each a careless user or a busy workshop: an attached run on Kaggle,
a changed book, a runner killed with kill -9, a damaged lock or model, and bad settings.

Each test failed on the code before the fix; the README's troubleshooting table lists the cases.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from junglegpt import paths, run_all, runs
from junglegpt.io import atomic_directory, atomic_write_bytes, atomic_write_json, atomic_write_text
from junglegpt.paths import OutputDirs
from junglegpt.run_all import Job, _done_marker, _marker_content, plan, stale_reason
from junglegpt.sizes import SIZES

from .helpers import executed_text, linked_copy, run_notebook

# ---------------------------------------------------------------------------------------------
# 1. An earlier run attached on Kaggle is a read-only input, never a place to write
# ---------------------------------------------------------------------------------------------


def _read_only_run(root: Path) -> Path:
    """An earlier run's folder as Kaggle mounts it: files, read-only."""
    earlier = OutputDirs(root)
    for path, text in ((earlier.train_txt, "Mowgli"), (earlier.val_txt, "Kaa"),
                       (earlier.tokenizer / "tokenizer.json", "{}"), (earlier.model("1M") / "metrics.json", "{}")):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for path in sorted(earlier.root.rglob("*"), reverse=True):
        path.chmod(0o555 if path.is_dir() else 0o444)
    return earlier.root


@pytest.fixture
def attached(tmp_path, monkeypatch):
    earlier = _read_only_run(tmp_path / "input" / "earlier-run" / "junglegpt")
    monkeypatch.setenv(paths.KAGGLE_INPUT_ENV, str(tmp_path / "input"))
    monkeypatch.setenv(paths.KAGGLE_WORKING_ENV, str(tmp_path / "working"))
    yield earlier
    for path in [earlier, *earlier.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # so that pytest can clean up


def _unchanged(earlier: Path) -> bool:
    return ((earlier / "tokenizer" / "tokenizer.json").read_text() == "{}"
            and sorted(p.name for p in (earlier / "tokenizer").iterdir()) == ["tokenizer.json"]
            and sorted(p.name for p in (earlier / "models" / "1M").iterdir()) == ["metrics.json"]
            and (earlier / "data" / "train.txt").read_text() == "Mowgli")


def test_attached_runs_are_linked_only_on_kaggle_and_only_into_the_default_folder(attached, tmp_path, monkeypatch,
                                                                                  capsys):
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    elsewhere = paths.resolve_out_dir(tmp_path / "working" / "junglegpt")  # a leftover /kaggle/input, not Kaggle
    assert not elsewhere.train_txt.exists() and not elsewhere.model("1M").exists()
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    chosen = paths.resolve_out_dir(tmp_path / "my-out")  # on Kaggle, but a folder of the user's choosing
    assert not chosen.model("1M").exists()
    default = paths.resolve_out_dir(tmp_path / "working" / "junglegpt")  # Kaggle's default folder
    assert default.model("1M").is_symlink() and default.tokenizer.is_symlink()
    said = capsys.readouterr().out
    assert f"linked models/1M -> {attached / 'models' / '1M'}" in said and "read only" in said


def test_remaking_a_linked_tokenizer_or_split_replaces_the_link_and_leaves_the_attached_run_alone(attached, tmp_path,
                                                                                                 monkeypatch):
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    out = paths.resolve_out_dir(tmp_path / "working" / "junglegpt")
    for _ in range(2):  # notebook 02 with another vocab_size, twice: no '.tokenizer.old' link trap
        with atomic_directory(out.tokenizer) as tmp:
            (tmp / "tokenizer.json").write_text('{"vocab": 4096}')
        assert not out.tokenizer.is_symlink() and (out.tokenizer / "tokenizer.json").read_text() == '{"vocab": 4096}'
    assert not list(out.root.glob(".tokenizer.*"))
    atomic_write_text(out.train_txt, "another split")  # notebook 01 again
    assert not out.train_txt.is_symlink() and out.train_txt.read_text() == "another split"
    assert _unchanged(attached)


def test_a_leftover_old_link_from_a_killed_rename_does_not_trap_the_next_run(tmp_path):
    target = tmp_path / "attached"
    target.mkdir()
    (tmp_path / ".tokenizer.old").symlink_to(target, target_is_directory=True)
    with atomic_directory(tmp_path / "tokenizer") as tmp:
        (tmp / "tokenizer.json").write_text("{}")
    assert not (tmp_path / ".tokenizer.old").exists() and target.is_dir()


def test_a_linked_size_that_is_retrained_gets_a_folder_of_its_own(attached, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    out = paths.resolve_out_dir(tmp_path / "working" / "junglegpt")
    assert paths.replace_link(out.model("1M"), "retraining 1M, since force=True")
    said = capsys.readouterr().out
    assert f"was linked from {attached / 'models' / '1M'}; retraining 1M, since force=True" in said
    assert not out.model("1M").exists()
    assert not paths.replace_link(out.model("1M"), "why")  # not a link: nothing to do
    assert _unchanged(attached)


def test_notebook_03_retrains_a_linked_size_in_a_folder_of_its_own(smoke_run, tmp_path, monkeypatch):
    earlier = tmp_path / "input" / "earlier" / "junglegpt"
    other_sizes = [s for s in SIZES if s != "1M"]  # a copy (its files are made read-only): 1M alone
    shutil.copytree(smoke_run[0].root, earlier, ignore=shutil.ignore_patterns(
        "executed", "notebooks", "*.ipynb", ".git", "results", "hub", "more-data", *other_sizes))
    for path in sorted([earlier, *earlier.rglob("*")], reverse=True):
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        work = tmp_path / "working"
        env = {paths.KAGGLE_INPUT_ENV: str(tmp_path / "input"), paths.KAGGLE_WORKING_ENV: str(work),
               "KAGGLE_KERNEL_RUN_TYPE": "Interactive"}
        out = work / "junglegpt"
        ok, tail = run_notebook("03_train", out, env=env, model_size="1M", force=True)
        assert ok, tail
        said = executed_text(out, "03_train")
        assert "was linked from" in said and "since force=True" in said
        assert not (out / "models" / "1M").is_symlink() and (out / "models" / "1M" / "model.safetensors").exists()
        assert not (earlier / "models" / "1M" / "training").exists()
    finally:
        for path in [earlier, *earlier.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)


# ---------------------------------------------------------------------------------------------
# 2. Inputs decide what is stale
# ---------------------------------------------------------------------------------------------


def _finished(out: OutputDirs, notebook: str, profile: str = "smoke") -> Job:
    job = next(j for j in plan(out, profile, ["1M"]) if j.notebook == notebook)
    job.executed.parent.mkdir(parents=True, exist_ok=True)
    job.executed.write_text("{}")
    atomic_write_json(_done_marker(out, job.label), _marker_content(job, out))
    return job


def test_a_changed_book_reruns_notebook_01_and_says_which_input_changed(tmp_path, monkeypatch, shared_data):
    books = tmp_path / "books"
    shutil.copytree(shared_data, books, ignore=shutil.ignore_patterns("kipling"))
    monkeypatch.setenv("JUNGLE_DATA_DIR", str(books))
    out = OutputDirs(tmp_path / "out")
    job = _finished(out, "01_data_exploration")
    assert stale_reason(out, job) is None
    with (books / "jungle_book" / "pg236.txt").open("a", encoding="utf-8") as f:
        f.write("\nA paragraph added by hand.\n")
    assert stale_reason(out, job) == "The Jungle Book changed since it ran"


def test_a_copied_out_folder_reruns_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "tokenizer_problem", lambda folder: None)  # as if 02's tokenizer were there
    out = OutputDirs(tmp_path / "first").make()
    out.train_txt.write_text("Mowgli", encoding="utf-8")
    job = _finished(out, "02_tokenizer")
    assert stale_reason(out, job) is None
    shutil.copytree(out.root, tmp_path / "moved")
    moved = OutputDirs(tmp_path / "moved")
    assert stale_reason(moved, next(j for j in plan(moved, "smoke", ["1M"]) if j.notebook == "02_tokenizer")) is None
    moved.train_txt.write_text("Kaa", encoding="utf-8")
    assert stale_reason(moved, next(j for j in plan(moved, "smoke", ["1M"]) if j.notebook == "02_tokenizer")) \
        == "data/train.txt changed since it ran"


def test_the_runner_says_why_a_notebook_runs_again(tmp_path, monkeypatch, capsys):
    out = OutputDirs(tmp_path).make()
    out.train_txt.write_text("Mowgli", encoding="utf-8")
    _finished(out, "02_tokenizer")
    out.train_txt.write_text("Kaa", encoding="utf-8")
    ran = []
    monkeypatch.setattr(run_all, "run_job", lambda job: ran.append(job.label) or (False, 0.1, "stop here"))
    monkeypatch.setattr(run_all, "SERIES", ("02_tokenizer",))
    run_all.main(["--profile", "smoke", "--sizes", "1M", "--out", str(tmp_path)])
    assert ran == ["02_tokenizer"]
    assert "02_tokenizer           running (data/train.txt changed since it ran)" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# 3. One run owns OUT, and its children die with it
# ---------------------------------------------------------------------------------------------

SLEEPER = {"cells": [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": [
    "import json, os, sys, time\n",
    "open(sys.argv[0] if False else os.environ['PIDS_FILE'], 'w').write(json.dumps([os.getpid(), os.getppid()]))\n",
    "time.sleep(300)\n"]}],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4, "nbformat_minor": 5}

RUNNER = """
import sys
from pathlib import Path
from junglegpt import run_all
run_all.NOTEBOOKS_DIR = Path(sys.argv[1])
run_all.run_job(run_all.Job("sleeper", {}, Path(sys.argv[2]), "sleeper"))
"""


def _running(pid: int) -> bool:
    """Alive and not a zombie: the runner's own test of it."""
    from junglegpt.run_all import _still_running

    return _still_running(pid)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_kill_9_of_the_runner_ends_papermill_and_its_kernel(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    (notebooks / "sleeper.ipynb").write_text(json.dumps(SLEEPER))
    pids_file = tmp_path / "pids.json"
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, str(notebooks), str(tmp_path / "executed.ipynb")],
                              env={**os.environ, "PIDS_FILE": str(pids_file)})
    deadline = time.monotonic() + 120
    while not pids_file.exists() or not pids_file.read_text():
        assert time.monotonic() < deadline and runner.poll() is None, "the kernel never started"
        time.sleep(0.2)
    kernel, papermill = json.loads(pids_file.read_text())
    assert _running(kernel) and _running(papermill)
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    deadline = time.monotonic() + 20
    while (_running(kernel) or _running(papermill)) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = [name for name, pid in (("papermill", papermill), ("kernel", kernel)) if _running(pid)]
    for pid in (kernel, papermill):
        if _running(pid):
            os.kill(pid, signal.SIGKILL)
    assert not alive, f"still running after the runner was killed: {alive}"


@pytest.mark.parametrize("content", ["", "not json", "[1, 2]"])
def test_an_empty_or_damaged_lock_says_what_it_is_within_seconds(tmp_path, monkeypatch, capsys, content):
    monkeypatch.setattr(run_all, "run_job", lambda job: pytest.fail("nothing may run"))
    (tmp_path / run_all.LOCK_NAME).write_text(content)
    started = time.monotonic()
    assert run_all.main(["--profile", "smoke", "--sizes", "1M", "--out", str(tmp_path)]) == 2
    assert time.monotonic() - started < 10
    said = capsys.readouterr().err
    assert "is empty or unreadable" in said and "delete that file" in said


# ---------------------------------------------------------------------------------------------
# 4. A finished size is one that loads
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def smoke_copy(smoke_run, tmp_path) -> OutputDirs:
    """A copy of the smoke run's outputs, to damage or to fail in without touching the shared run."""
    return OutputDirs(linked_copy(smoke_run[0].root, tmp_path / "copy", ignore=shutil.ignore_patterns(
        "executed", "notebooks", ".git", "results", "junglegpt", "tests", "hub")))


def _damage(folder: Path, how: str) -> None:
    """Damage a model of `smoke_copy`: its files are hard links, so each is replaced, never written
    into (writing into one would damage the shared smoke run too)."""
    weights = folder / "model.safetensors"
    if how == "truncated":
        atomic_write_bytes(weights, weights.read_bytes()[: weights.stat().st_size // 2])
    elif how == "tokenizer deleted":
        (folder / "tokenizer.json").unlink()
    elif how == "another size's weights":
        atomic_write_bytes(weights, (folder.parent / "3M" / "model.safetensors").read_bytes())


@pytest.mark.parametrize("how", ["truncated", "tokenizer deleted", "another size's weights"])
def test_a_damaged_model_is_not_finished_and_names_the_size_and_the_fix(smoke_copy, how):
    out = smoke_copy
    assert run_all.size_stale_reason(out, "1M", "smoke") is None
    _damage(out.model("1M"), how)
    assert run_all.size_stale_reason(out, "1M", "smoke").startswith("its saved model is damaged")
    signature = {k: json.loads((out.model("1M") / "metrics.json").read_text())[k] for k in ("profile", "seed")}
    finished, why = runs.finished_before(out.model("1M"), signature)
    assert not finished and "damaged" in why
    with pytest.raises(RuntimeError, match=r"(?s)models/1M.*Retrain it: ./run_all.sh --sizes 1M"):
        runs.ensure_trained(out, "smoke")


def test_notebook_03_retrains_a_damaged_size_and_says_why(smoke_copy):
    out = smoke_copy
    _damage(out.model("1M"), "truncated")
    ok, tail = run_notebook("03_train", out.root, model_size="1M")
    assert ok, tail
    assert "starting from scratch (its saved model is damaged" in executed_text(out.root, "03_train")
    assert runs.model_problem(out.model("1M")) is None


# ---------------------------------------------------------------------------------------------
# 5. Every setting is checked before any cell uses it
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("setting, message", [
    ({"top_p": 0}, "top_p=0.0: must be in (0, 1]"),
    ({"temperature": "hot"}, "temperature='hot' is not a number"),
])
def test_notebook_05_refuses_a_bad_setting_in_one_line_before_any_sampling(smoke_copy, setting, message):
    ok, tail = run_notebook("05_generate", smoke_copy.root, interactive=False, **setting)
    assert not ok and "GenerationInputError" in tail and message in tail
    assert "IndexError" not in tail and "nan" not in tail


@pytest.mark.parametrize("prompt, note", [("", "The prompt is empty"),  # 98 KB: a command-line argument holds 128 KB
                                          ("Mowgli " * 14_000, "the start was cut off")],
                         ids=["empty", "98 KB"])
def test_notebook_05_takes_an_empty_or_huge_prompt_with_a_note(smoke_copy, prompt, note):
    # five new tokens: the prompt is what is tested, and a full context costs a forward pass a token
    ok, tail = run_notebook("05_generate", smoke_copy.root, interactive=False, prompt=prompt, max_new_tokens=5)
    assert ok, tail
    assert note in executed_text(smoke_copy.root, "05_generate")


def test_notebook_03_refuses_a_negative_seed_in_plain_words(smoke_copy):
    ok, tail = run_notebook("03_train", smoke_copy.root, model_size="1M", seed=-1)
    assert not ok and "seed=-1: choose a whole number from 0 to 2**32 - 1" in tail


def test_a_relative_data_folder_means_the_one_seen_from_where_the_runner_started(
        tmp_path, monkeypatch, shared_data):
    seen = []
    monkeypatch.setattr(run_all, "run_job", lambda job: seen.append(os.environ["JUNGLE_DATA_DIR"]) or (True, 0.0, ""))
    monkeypatch.setattr(run_all, "SERIES", ("01_data_exploration",))
    monkeypatch.chdir(shared_data.parent)
    monkeypatch.setenv("JUNGLE_DATA_DIR", shared_data.name)
    assert run_all.main(["--profile", "smoke", "--out", str(tmp_path)]) == 0
    assert seen == [str(shared_data.resolve())]


def test_all_in_a_list_of_sizes_means_all(tmp_path, monkeypatch):
    ran = []
    monkeypatch.setattr(run_all, "run_job", lambda job: ran.append(job.label) or (True, 0.0, ""))
    monkeypatch.setattr(run_all, "SERIES", ("03_train",))
    assert run_all.main(["--profile", "smoke", "--sizes", "all,1M", "--out", str(tmp_path)]) == 0
    assert len(ran) == 8
