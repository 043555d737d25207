"""Make notebooks ready to commit, after editing them in Jupyter: no outputs, stable ids, one format.

    .venv/bin/python scripts/tidy_notebooks.py            # every notebook in notebooks/
    .venv/bin/python scripts/tidy_notebooks.py --check    # only say which ones need it (exit 1 if any)

The workflow: open a notebook in Jupyter (`.venv/bin/jupyter lab notebooks/`), edit and run it,
save, then run this script and commit. It clears outputs and execution counts, gives every cell
an id (JupyterLab adds random ones to new cells; they are kept), and writes the JSON as the
repository keeps it (one-space indents, UTF-8 as is), so that a diff shows only what changed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def tidy(notebook: dict, prefix: str) -> dict:
    used = {cell.get("id") for cell in notebook["cells"]}
    for number, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cell.get("metadata", {}).pop("execution", None)  # timings JupyterLab records
        if not cell.get("id"):
            candidate = f"{prefix}-{number:02d}"
            while candidate in used:
                candidate += "x"
            cell["id"] = candidate
            used.add(candidate)
    return notebook


def formatted(notebook: dict) -> str:
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: notebooks/*.ipynb)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook needs tidying")
    args = parser.parse_args()
    untidy = []
    for path in args.paths or sorted(NOTEBOOKS.glob("*.ipynb")):
        text = path.read_text(encoding="utf-8")
        tidied = formatted(tidy(json.loads(text), path.stem[:2]))
        if tidied != text:
            untidy.append(path)
            if not args.check:
                path.write_text(tidied, encoding="utf-8")
    verb = "need tidying" if args.check else "tidied"
    print(f"{verb}: {', '.join(p.name for p in untidy)}" if untidy else "all tidy")
    return 1 if args.check and untidy else 0


if __name__ == "__main__":
    sys.exit(main())
