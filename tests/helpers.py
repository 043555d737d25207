from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from junglegpt.run_all import Job, run_job


def run_all_cli(*args, env=None, timeout=1800):
    """`run_all.sh` minus the environment set-up: the runner as a user calls it."""
    return subprocess.run(
        [sys.executable, "-m", "junglegpt.run_all", *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )


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
