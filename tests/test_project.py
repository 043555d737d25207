"""Project hygiene: one list of dependencies, lint, and the README's two commands."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib

from junglegpt.paths import REPO_ROOT
from junglegpt.run_all import SERIES


def _environment_yml_pip_deps() -> list[str]:
    lines = (REPO_ROOT / "environment.yml").read_text().splitlines()
    start = lines.index("  - pip:")
    deps = []
    for line in lines[start + 1 :]:
        if not line.startswith("      - "):
            break
        deps.append(line.removeprefix("      - ").strip())
    return deps


def test_environment_yml_lists_the_same_packages_as_pyproject():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    declared = project["dependencies"] + extras["local"] + extras["dev"]
    listed = [d for d in _environment_yml_pip_deps() if d != "-e ."]
    assert sorted(listed) == sorted(declared)
    assert project["optional-dependencies"]["torch-pin"] == ["torch==2.13.0"]


def test_ruff_is_clean():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", str(REPO_ROOT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_readme_gives_the_two_commands_that_ci_runs():
    readme = (REPO_ROOT / "README.md").read_text()
    assert "./run_all.sh" in readme and "./run_tests.sh" in readme
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert "./run_tests.sh" in ci and "JUNGLE_DATA_DIR" in ci


def test_book_texts_are_not_committed():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True).stdout.split()
    assert not [f for f in tracked if f.startswith("data/") and f != "data/README.md"]


def test_the_readme_opens_every_notebook_on_colab_and_kaggle_from_repo_url():
    from junglegpt import REPO_URL
    from junglegpt.notebook_setup import open_in_badges, open_in_links

    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    for path in sorted((REPO_ROOT / "notebooks").glob("*.ipynb")):
        if path.stem not in SERIES:  # notebooks/solutions.ipynb has no row in the README's table
            continue
        assert open_in_badges(path.stem) in readme, f"README: no Colab and Kaggle badges for {path.name}"
        assert all(REPO_URL.removeprefix("https://github.com/") in link for link in open_in_links(path.stem).values())


def test_every_relative_link_in_the_documents_and_notebooks_leads_to_a_file():
    """A link to an executed copy, a figure or a document that was moved or never made is a dead end
    for a reader on GitHub."""
    documents = [REPO_ROOT / "README.md", REPO_ROOT / "CONTRIBUTING.md", *REPO_ROOT.glob("docs/*.md"),
                 *REPO_ROOT.glob("results/*/README.md"), *REPO_ROOT.glob("notebooks/*.ipynb")]
    dead = []
    for document in documents:
        text = document.read_text(encoding="utf-8")
        if document.suffix == ".ipynb":
            text = "\n".join("".join(c["source"]) for c in json.loads(text)["cells"] if c["cell_type"] == "markdown")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a web address or an anchor on the same page
            if not (document.parent / target.split("#")[0]).exists():
                dead.append(f"{document.relative_to(REPO_ROOT)}: {target}")
    assert len(documents) > 10 and dead == []


def test_the_readme_quotes_the_committed_learning_while_reading_run():
    """The front page's numbers for the fair comparison are the committed run's (results/full-cpu)."""
    results = json.loads((REPO_ROOT / "results" / "full-cpu" / "results.json").read_text())
    dynamic = results["dynamic"]
    mixture = {row["text"]: row["bpb"] for row in results["mixture"] if row["network"] == "dynamic"}
    ensemble = {(row["text"], row["kind"]): row["bpb"] for row in dynamic["ensemble"]}
    compressors = {(row["compressor"].split()[0], row["text"]): row for row in dynamic["compressors"]}
    quoted = [ensemble[("heldout", "static")], ensemble[("heldout", "dynamic")], ensemble[("val", "static")],
              compressors[("PPMd", "heldout")]["static_bpb"], compressors[("PPMd", "heldout")]["dynamic_bpb"],
              compressors[("PPMd", "val")]["static_bpb"], compressors[("zpaq", "heldout")]["dynamic_bpb"],
              compressors[("zpaq", "val")]["dynamic_bpb"], mixture["val"], mixture["heldout"]]
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    missing = [f"{value:.3f}" for value in quoted if f"{value:.3f}" not in readme]
    assert not missing, f"README.md does not quote these numbers of results/full-cpu/results.json: {missing}"


def test_the_readme_quotes_the_committed_compressor_run():
    """The front page's file size and seconds for `python -m junglegpt.compress` on the held-out book
    are those benchmarks/compress_speed.py recorded for its default (16 streams, full-profile 1M)."""
    record = json.loads((REPO_ROOT / "benchmarks" / "results" / "compress_full-cpu-1M.json").read_text())
    row = next(r for r in record["rows"] if r["text"] == "heldout")
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    quoted = [f"{row['bpb']:.3f} bits per byte", f"in {round(max(row['compress_s'], row['decompress_s']))} s each way"]
    missing = [text for text in quoted if text not in readme]
    assert row["streams"] == 16 and not missing, f"README.md does not quote the compressor's record: {missing}"


def test_the_readme_quotes_the_committed_byte_stage_run():
    """The front page's held-out figure for the byte stage is benchmarks/byte_mixing.py's, with the
    settings validation chose (full-profile 1M)."""
    record = json.loads((REPO_ROOT / "benchmarks" / "results" / "byte_mixing_full-cpu-1M.json").read_text())
    row = next(r for r in record["rows"] if r["text"] == "heldout")
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert f"the held-out book to {row['byte stage']:.3f} bits per byte" in readme
