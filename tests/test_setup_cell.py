"""The notebooks' first cell, as it runs on Kaggle or Colab: where it finds the installer
(notebooks/setup_junglegpt.py), where that installs the package from, and that every library already
installed keeps its version. pip itself, and the download from GitHub, are replaced by recorders."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import runpy
import subprocess
import urllib.request
from pathlib import Path

import pytest
import torch

from junglegpt import REPO_URL
from junglegpt.notebook_setup import INSTALLER, SETUP_CELL
from junglegpt.paths import REPO_ROOT

THE_INSTALLER = REPO_ROOT / "notebooks" / INSTALLER


def fake_github(monkeypatch) -> list[str]:
    """urlretrieve that hands over this checkout's installer, as GitHub would; returns the URLs asked."""
    asked = []

    def urlretrieve(url, filename=None):
        asked.append(url)
        return str(THE_INSTALLER), None

    monkeypatch.setattr(urllib.request, "urlretrieve", urlretrieve)
    return asked


def run_setup_cell(tmp_path, monkeypatch, kaggle_input: Path, pip_spec: str | None = None,
                   offline_fails: bool = False) -> dict:
    """Run the cell where `junglegpt` is not importable and no clone is around; return what pip was
    asked last, with every call in "calls". `offline_fails`: pip fails when given --no-index."""
    work = tmp_path / "kaggle-working"  # no ../junglegpt beside it: not a clone
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("JUNGLEGPT_KAGGLE_INPUT", str(kaggle_input))
    if pip_spec:
        monkeypatch.setenv("JUNGLEGPT_PIP_SPEC", pip_spec)
    else:
        monkeypatch.delenv("JUNGLEGPT_PIP_SPEC", raising=False)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "junglegpt"
                        else real_find_spec(name, *a))
    asked = {"calls": []}

    def pip(args):
        constraints = Path(args[args.index("-c") + 1]).read_text().splitlines()
        asked["calls"].append(args)
        asked.update(args=args, source=args[-1], constraints=constraints,
                     source_files=sorted(p.name for p in Path(args[-1]).iterdir()) if Path(args[-1]).is_dir() else None)
        return subprocess.CompletedProcess(args, 1 if offline_fails and "--no-index" in args else 0)

    monkeypatch.setattr(subprocess, "run", pip)
    asked["downloaded"] = fake_github(monkeypatch)
    exec(SETUP_CELL, {"__name__": "__main__"})
    return asked


def test_nothing_attached_installs_from_the_repository_keeping_every_installed_library(tmp_path, monkeypatch):
    asked = run_setup_cell(tmp_path, monkeypatch, tmp_path / "no-input")
    assert asked["source"] == f"git+{REPO_URL}"
    assert f"torch=={torch.__version__}" in asked["constraints"]
    names = [line.split("==")[0] for line in asked["constraints"]]
    assert len(names) == len(set(names))  # one version per library, or pip refuses the file
    installed = {d.metadata["Name"].lower() for d in importlib.metadata.distributions() if d.metadata["Name"]}
    assert installed == set(names)


@pytest.mark.parametrize("kind", ["wheel", "source tree"])
def test_a_copy_attached_on_kaggle_is_found_by_name(tmp_path, monkeypatch, kind):
    attached = tmp_path / "kaggle-input" / "my-junglegpt-dataset" / "files"
    attached.mkdir(parents=True)
    if kind == "wheel":
        (attached / "junglegpt-0.1.0-py3-none-any.whl").write_bytes(b"PK")
        asked = run_setup_cell(tmp_path, monkeypatch, tmp_path / "kaggle-input")
        assert asked["source"] == str(attached / "junglegpt-0.1.0-py3-none-any.whl")
        assert asked["args"][asked["args"].index("--find-links") + 1] == str(attached)  # its dependencies' wheels
        assert asked["calls"] == [asked["args"]] and "--no-index" in asked["args"]  # offline: tried alone, enough
    else:
        (attached / "junglegpt").mkdir()
        (attached / "junglegpt" / "__init__.py").write_text("")
        (attached / "pyproject.toml").write_text("[project]\nname = 'junglegpt'\n")
        asked = run_setup_cell(tmp_path, monkeypatch, tmp_path / "kaggle-input")
        assert Path(asked["source"]) != attached  # a copy: Kaggle's input is read-only
        assert asked["source_files"] == ["junglegpt", "pyproject.toml"]


def test_junglegpt_pip_spec_comes_first(tmp_path, monkeypatch):
    attached = tmp_path / "kaggle-input"
    attached.mkdir()
    (attached / "junglegpt-0.1.0-py3-none-any.whl").write_bytes(b"PK")
    asked = run_setup_cell(tmp_path, monkeypatch, attached, pip_spec="git+https://example.org/fork/junglegpt@v2")
    assert asked["source"] == "git+https://example.org/fork/junglegpt@v2"


def test_attached_wheels_are_tried_alone_first_then_with_the_index(tmp_path, monkeypatch):
    """Internet off: the attached wheels must do (--no-index). On: what they lack comes from the index."""
    wheels = tmp_path / "kaggle-input" / "bundle" / "wheels"
    wheels.mkdir(parents=True)
    (wheels / "pyppmd-1.3.1-cp311-cp311-manylinux_2_17_x86_64.whl").write_bytes(b"PK")
    asked = run_setup_cell(tmp_path, monkeypatch, tmp_path / "kaggle-input", pip_spec=str(tmp_path),
                           offline_fails=True)
    first, second = asked["calls"]
    assert "--no-index" in first and "--no-index" not in second
    assert second[second.index("--find-links") + 1] == str(wheels)


def test_a_pip_spec_that_points_at_nothing_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="JUNGLEGPT_PIP_SPEC is .*does not exist"):
        run_setup_cell(tmp_path, monkeypatch, tmp_path / "no-input", pip_spec=str(tmp_path / "no-such-clone"))


def test_a_failed_install_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("JUNGLEGPT_KAGGLE_INPUT", str(tmp_path / "no-input"))
    monkeypatch.delenv("JUNGLEGPT_PIP_SPEC", raising=False)
    monkeypatch.setattr(subprocess, "run", lambda args: subprocess.CompletedProcess(args, 1))
    fake_github(monkeypatch)
    with pytest.raises(RuntimeError, match="attach the dataset that ./run_all.sh --kaggle writes"):
        exec(SETUP_CELL, {"__name__": "__main__"})


def where_the_cell_finds_its_installer(monkeypatch, cwd: Path, kaggle_input: Path,
                                       installed: bool = False) -> tuple[list, list]:
    """Run the cell with runpy.run_path recorded instead of run: (installers run, URLs downloaded).
    `installed`: whether `junglegpt` can be imported already."""
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("JUNGLEGPT_KAGGLE_INPUT", str(kaggle_input))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "junglegpt" and not installed
                        else real_find_spec(name, *a))
    ran = []
    monkeypatch.setattr(runpy, "run_path", lambda path, *args, **kwargs: ran.append(Path(path).resolve()))
    downloaded = fake_github(monkeypatch)
    exec(SETUP_CELL, {"__name__": "__main__"})
    return ran, downloaded


def test_in_a_clone_the_cell_runs_the_clones_installer(monkeypatch, tmp_path):
    monkeypatch.delenv("JUNGLEGPT_PIP_SPEC", raising=False)
    ran, downloaded = where_the_cell_finds_its_installer(monkeypatch, REPO_ROOT / "notebooks", tmp_path)
    assert ran == [THE_INSTALLER] and downloaded == []


def test_the_cell_runs_the_installer_of_the_clone_pip_installs(monkeypatch, tmp_path):
    clone = tmp_path / "my-fork"
    (clone / "notebooks").mkdir(parents=True)
    (clone / "notebooks" / INSTALLER).write_text("")
    monkeypatch.setenv("JUNGLEGPT_PIP_SPEC", str(clone))
    ran, downloaded = where_the_cell_finds_its_installer(monkeypatch, tmp_path, tmp_path / "no-input")
    assert ran == [(clone / "notebooks" / INSTALLER).resolve()] and downloaded == []


def test_on_kaggle_the_cell_runs_the_installer_attached_with_the_dataset(monkeypatch, tmp_path):
    attached = tmp_path / "input" / "junglegpt-package-and-books"
    attached.mkdir(parents=True)
    (attached / INSTALLER).write_text("")
    monkeypatch.delenv("JUNGLEGPT_PIP_SPEC", raising=False)
    (tmp_path / "working").mkdir()
    ran, downloaded = where_the_cell_finds_its_installer(monkeypatch, tmp_path / "working", tmp_path / "input")
    assert ran == [(attached / INSTALLER).resolve()] and downloaded == []


def test_opened_alone_elsewhere_the_cell_downloads_this_repositorys_installer(monkeypatch, tmp_path):
    monkeypatch.delenv("JUNGLEGPT_PIP_SPEC", raising=False)
    ran, downloaded = where_the_cell_finds_its_installer(monkeypatch, tmp_path, tmp_path / "no-input")
    assert downloaded == [f"{REPO_URL}/raw/main/notebooks/{INSTALLER}"] and ran == [THE_INSTALLER]


def test_where_junglegpt_is_installed_already_the_cell_neither_downloads_nor_installs(monkeypatch, tmp_path):
    """A notebook copied out of the clone (as the browser test serves them), offline: nothing to do."""
    monkeypatch.delenv("JUNGLEGPT_PIP_SPEC", raising=False)
    ran, downloaded = where_the_cell_finds_its_installer(monkeypatch, tmp_path, tmp_path / "no-input",
                                                         installed=True)
    assert ran == [] and downloaded == []


def test_the_installer_installs_from_this_repository():
    assert runpy.run_path(str(THE_INSTALLER), run_name="under_test")["REPO_URL"] == REPO_URL
