from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from junglegpt.paths import OutputDirs
from junglegpt.run_all import Job, run_job


def run_all_cli(*args, env=None, timeout=1800, cwd=None):
    """`run_all.sh` minus the environment set-up: the runner as a user calls it."""
    return subprocess.run(
        [sys.executable, "-m", "junglegpt.run_all", *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, cwd=cwd,
    )


def clone_of_the_working_tree(dest: Path) -> Path:
    """A git clone of this repository holding the working tree's files, committed or not, and committed
    there, so that its `git status` starts clean (in CI the two are the same)."""
    from junglegpt.paths import REPO_ROOT

    def git(*args, cwd):
        return subprocess.run(["git", "-c", "user.name=tests", "-c", "user.email=tests@localhost", *args],
                              cwd=cwd, check=True, capture_output=True).stdout

    git("clone", "-q", str(REPO_ROOT), str(dest), cwd=REPO_ROOT)
    ours = {n.decode() for n in git("ls-files", "-z", "--cached", "--others", "--exclude-standard",
                                    cwd=REPO_ROOT).split(b"\0") if n and (REPO_ROOT / n.decode()).is_file()}
    for name in git("ls-files", "-z", cwd=dest).split(b"\0"):
        if name and name.decode() not in ours:
            (dest / name.decode()).unlink()
    for name in ours:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, dest / name)
    git("add", "-A", cwd=dest)
    git("commit", "-q", "--allow-empty", "-m", "the working tree", cwd=dest)
    return dest


def linked_copy(src: Path, dest: Path, ignore=None) -> Path:
    """A copy of the folder `src` whose files are hard links: no extra disk, no time copying models.

    Safe because the project never writes into an existing file (every result, model and checkpoint
    is written to a new file, then renamed over the old: junglegpt.io). A test that damages a file
    must replace it too, never write through it, or it damages the original."""
    return Path(shutil.copytree(src, dest, ignore=ignore, copy_function=os.link))


def copy_inputs(smoke: OutputDirs, root: Path) -> OutputDirs:
    """A folder holding what notebooks 01 and 02 make (data/, tokenizer/), copied from the smoke run
    (`smoke_inputs`) while it may still be writing: its temporary files and 07's text are left out."""
    shutil.copytree(smoke.data, root / "data", ignore=shutil.ignore_patterns(".*", "more_data*"))
    shutil.copytree(smoke.tokenizer, root / "tokenizer")
    return OutputDirs(root)


def git_status(repo: Path) -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=repo, check=True,
                          capture_output=True, text=True).stdout


def run_notebook(name: str, out: Path, env: dict | None = None, **parameters) -> tuple[bool, str]:
    """Run one notebook with papermill into `out`; return (succeeded, the tail of its output)."""
    params = {"out_dir": str(out), "profile": "smoke", **parameters}
    ok, _, tail = run_job(Job(name, params, Path(out) / "executed" / f"{name}.ipynb", name, env=env or {}))
    return ok, tail


def executed_text(out: Path, name: str) -> str:
    """Everything an executed notebook printed, as one string."""
    import nbformat

    nb = nbformat.read(Path(out) / "executed" / f"{name}.ipynb", as_version=4)
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", "") or str(output.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)
