from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from junglegpt import data as jb
from junglegpt.io import atomic_write_json, read_json
from junglegpt.paths import REPO_ROOT, OutputDirs

from .helpers import clone_of_the_working_tree


def _shared_data() -> Path:
    configured = os.environ.get(jb.DATA_DIR_ENV)
    path = Path(configured) if configured else REPO_ROOT.parent / "shared" / "data"
    if not (path / "jungle_book" / "pg236.txt").exists():
        pytest.fail(f"the book texts are not at {path}: set {jb.DATA_DIR_ENV} to a folder laid out like shared/data")
    return path.resolve()


# ./run_tests.sh runs the tests in two processes (pytest-xdist, --dist loadgroup). The smoke run is
# built once for both, in the background of the first process to start (it is the longest chain of
# work in the run). The tests lower their priority, but where Linux groups CPU time by session
# (autogroups) that does not reach notebook kernels: each starts in a session of its own. Tests
# that do not need it run meanwhile; those that do come last, in the order its parts are ready:
# `smoke_inputs` (data and tokenizer, after notebook 02), `smoke_1m` (the 1M model), `smoke_run`
# (all of it). Tests that share a module-scoped server, or build a wheel of the working tree, stay
# in one process, in order.
GROUPS = {"test_browser.py": "browser", "test_platforms.py": "platforms", "test_kaggle.py": "platforms"}
SMOKE_READERS = ("smoke_inputs", "smoke_1m", "smoke_run")  # in the order they are ready
SMOKE_NEEDED = False  # whether any selected test reads the smoke run
TEST_NICENESS = 10  # how much lower the tests' priority is than the smoke run's


def _smoke_stage(item) -> int:
    """0: reads nothing of the smoke run; else 1 + the index of the last part it reads."""
    if item.path.name == "test_browser.py":
        return len(SMOKE_READERS)
    return max((1 + i for i, name in enumerate(SMOKE_READERS) if name in item.fixturenames), default=0)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        if GROUPS.get(item.path.name):
            item.add_marker(pytest.mark.xdist_group(GROUPS[item.path.name]))
    # Stable sorts, each file's order kept: the simulated platforms first (the longest group), the
    # smoke run's readers last, in the order its parts are ready (run_tests.sh keeps this order:
    # --no-loadscope-reorder).
    items.sort(key=lambda item: (GROUPS.get(item.path.name) != "platforms", _smoke_stage(item)))


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    """Whether the smoke run is needed, now that -k and -m have deselected; and in a worker of --dist
    loadgroup, a check that xdist has put each group's name in its tests' ids ("...@browser"): if it
    has not (a pytest that xdist does not support), a module's server would start twice."""
    global SMOKE_NEEDED
    # The browser tests read the smoke run, unless the playground is pointed at another run (the
    # screenshot from trained models, tests/test_browser.py's PLAYGROUND_RUN_ENV).
    playground_elsewhere = bool(os.environ.get("JUNGLEGPT_PLAYGROUND_RUN"))
    SMOKE_NEEDED = any(_smoke_stage(item) for item in session.items
                       if not (playground_elsewhere and item.path.name == "test_browser.py"))
    if getattr(session.config.option, "loadgroup", False) and os.environ.get("PYTEST_XDIST_WORKER"):
        ungrouped = [item.nodeid for item in session.items
                     if item.get_closest_marker("xdist_group") and "@" not in item.nodeid]
        if ungrouped:
            raise pytest.UsageError(f"pytest-xdist's groups did not form (pytest {pytest.__version__}): "
                                    f"{ungrouped[0]} has no @group. Install the pytest pyproject.toml asks for.")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _shared_data()


@pytest.fixture(autouse=True)
def _data_dir_env(monkeypatch, shared_data):
    """Every test sees the shared texts through JUNGLE_DATA_DIR, as CI sets it."""
    monkeypatch.setenv(jb.DATA_DIR_ENV, str(shared_data))


@pytest.fixture(scope="session")
def editions(shared_data) -> dict[str, str]:
    return {name: jb.read_text(shared_data / "jungle_book" / name) for name in ("pg236.txt", "pg35997.txt")}


# While working on one part, reuse a smoke run that an earlier test run built (its `smoke-run`
# folder, kept in pytest's temporary folders) instead of building another: it is not rebuilt, so
# it reflects the tree it was built from. CI never sets it.
REUSE_SMOKE_ENV = "JUNGLEGPT_REUSE_SMOKE_RUN"


def _smoke_folder(tmp_path_factory) -> Path:
    """Where the smoke run is built: shared by the processes of one xdist run (their base temp
    folders' parent), or this run's own temp folder; or the finished one that REUSE_SMOKE_ENV names."""
    if os.environ.get(REUSE_SMOKE_ENV):
        reused = Path(os.environ[REUSE_SMOKE_ENV])
        if not (reused / "result.json").exists():
            pytest.fail(f"{REUSE_SMOKE_ENV}={reused} is not a finished smoke run (no result.json in it)")
        return reused
    base = tmp_path_factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "smoke-run"


def _finish_smoke(folder: Path, clone: Path, proc: subprocess.Popen) -> None:
    """Wait for the smoke run; record how it went in result.json, written last."""
    try:
        stdout, stderr = proc.communicate(timeout=3000)
        result = {"returncode": proc.returncode, "stdout": stdout, "stderr": stderr}
    except Exception as err:  # noqa: BLE001 - whatever it was, the waiting tests must hear of it
        proc.kill()
        result = {"returncode": -1, "stdout": "", "stderr": f"{type(err).__name__}: {err}"}
    atomic_write_json(folder / "result.json", {"clone": str(clone), **result})


@pytest.fixture(scope="session", autouse=True)
def _smoke_build_started(tmp_path_factory, shared_data):
    """Start the smoke run at once, in the background, in whichever process claims it first; then
    lower this process's priority (and so its tests'), so that the smoke run is not slowed by them."""
    if not SMOKE_NEEDED or os.environ.get(REUSE_SMOKE_ENV):
        yield
        return
    folder = _smoke_folder(tmp_path_factory)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(folder / "claimed", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:  # another process builds it
        os.nice(TEST_NICENESS)
        yield
        return
    clone = clone_of_the_working_tree(folder / "junglegpt")
    # The environment as it is now, before any test changes it: offline even where there is a
    # network, and the clone's package, whose default --out is the clone.
    env = {**os.environ, jb.DATA_DIR_ENV: str(shared_data), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(clone)}
    # Two sizes at a time: once the tests are left waiting for it, it has both cores to use.
    proc = subprocess.Popen([sys.executable, "-m", "junglegpt.run_all", "--profile", "smoke", "--sizes", "all",
                             "--extras", "--parallel", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=clone)
    os.nice(TEST_NICENESS)  # after starting it: the run keeps the usual priority
    waiter = threading.Thread(target=_finish_smoke, args=(folder, clone, proc), daemon=True)
    waiter.start()
    yield
    waiter.join()  # a process must not leave before the run it started has finished


def _smoke_ready(tmp_path_factory, made: str | None) -> tuple[OutputDirs, str]:
    """The smoke run's output folder once the file `made` (relative to it) exists, or once all of
    the run has finished (None); and the runner's output so far."""
    folder = _smoke_folder(tmp_path_factory)
    result_file, clone = folder / "result.json", OutputDirs(folder / "junglegpt")
    deadline = time.monotonic() + 3600
    while not result_file.exists():
        if made is not None and (clone.root / made).exists():
            return clone, ""
        if time.monotonic() > deadline:
            pytest.fail(f"the smoke run did not finish within an hour ({result_file} is missing)")
        time.sleep(1)
    result = read_json(result_file)
    assert result["returncode"] == 0, result["stdout"] + result["stderr"]
    assert f"output {result['clone']}," in result["stdout"]
    return OutputDirs(result["clone"]), result["stdout"]


@pytest.fixture(scope="session")
def kaggle_bundle(tmp_path_factory, shared_data) -> dict:
    """What ./run_all.sh --kaggle writes (the dataset: installer, wheel, dependency wheels, books; the
    kernel), for this Python, once for test_kaggle.py and the simulated Kaggle of test_platforms.py
    (one process: their group). Read it; never write in it."""
    from junglegpt import kaggle

    with pytest.MonkeyPatch.context() as patch:  # session fixtures run before the per-test one
        patch.setenv(jb.DATA_DIR_ENV, str(shared_data))
        return kaggle.write_bundle(tmp_path_factory.mktemp("kaggle-bundle"), user="jungle-reader",
                                   python_versions=(f"{sys.version_info.major}.{sys.version_info.minor}",))


@pytest.fixture(scope="session")
def smoke_inputs(tmp_path_factory) -> OutputDirs:
    """The smoke run's data/ and tokenizer/, as soon as notebooks 01 and 02 have made them. The run goes
    on writing elsewhere (and adds 07's text to data/): copy these with `helpers.copy_inputs`."""
    return _smoke_ready(tmp_path_factory, "executed/.done/02_tokenizer.json")[0]  # run_all's mark


@pytest.fixture(scope="session")
def smoke_1m(tmp_path_factory) -> OutputDirs:
    """The smoke run's outputs as soon as its 1M model is trained: read models/1M, data/ and tokenizer/."""
    # 03 writes the model's folder whole (made aside, then renamed), metrics.json included. (run_all
    # marks no size done: a size's metrics.json says whether it is.)
    return _smoke_ready(tmp_path_factory, "models/1M/metrics.json")[0]


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, shared_data):
    """The whole series in the smoke profile, extras included, once for every test that reads its outputs.

    It runs as a user runs it: in a clone of the repository, with the default --out (the clone
    itself), which must leave every tracked file as it was (`git status` clean). The Hub is
    unreachable here, as in CI: notebook 06 finds no pretrained model and carries on
    (tests/test_extras.py fine-tunes a local checkpoint instead). Tests read it and never write in it
    (they copy what they change), since both processes read it at once.
    """
    return _smoke_ready(tmp_path_factory, None)
