from __future__ import annotations

import os
from pathlib import Path

import pytest

from junglegpt import data as jb
from junglegpt.paths import REPO_ROOT, OutputDirs

from .helpers import clone_of_the_working_tree, run_all_cli


def _shared_data() -> Path:
    configured = os.environ.get(jb.DATA_DIR_ENV)
    path = Path(configured) if configured else REPO_ROOT.parent / "shared" / "data"
    if not (path / "jungle_book" / "pg236.txt").exists():
        pytest.fail(f"the book texts are not at {path}: set {jb.DATA_DIR_ENV} to a folder laid out like shared/data")
    return path.resolve()


# ./run_tests.sh runs the tests in two processes (pytest-xdist, --dist loadgroup). Tests that share
# something expensive or a folder they write to run in one process, in order: every test that reads
# the smoke run (built once per process, so once in all), and the browser's lab beside it; the
# simulated platforms and the Kaggle bundle (each builds a wheel of the working tree).
GROUPS = {"test_browser.py": "smoke", "test_platforms.py": "platforms", "test_kaggle.py": "platforms"}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        group = "smoke" if "smoke_run" in item.fixturenames else GROUPS.get(item.path.name)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    """In a worker of --dist loadgroup, xdist has put each group's name in its tests' ids ("...@smoke"):
    if it has not (a pytest that xdist does not support), two processes would each build the smoke run."""
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


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, shared_data):
    """The whole series in the smoke profile, extras included, once for every test that reads its outputs.

    It runs as a user runs it: in a clone of the repository, with the default --out (the clone
    itself), which must leave every tracked file as it was (`git status` clean). The Hub is
    unreachable here, as in CI: notebook 06 finds no pretrained model and carries on
    (tests/test_extras.py fine-tunes a local checkpoint instead).
    """
    clone = clone_of_the_working_tree(tmp_path_factory.mktemp("smoke") / "junglegpt")
    env = {jb.DATA_DIR_ENV: str(shared_data), "HF_HUB_OFFLINE": "1",  # offline even where there is a network
           "PYTHONPATH": str(clone)}  # the clone's package, whose default --out is the clone
    proc = run_all_cli("--profile", "smoke", "--sizes", "all", "--extras", env=env, cwd=clone)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"output {clone}," in proc.stdout
    return OutputDirs(clone), proc.stdout
