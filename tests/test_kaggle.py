"""./run_all.sh --kaggle: the folder for the `kaggle` CLI, and how it is sent (a recording fake CLI)."""

from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from junglegpt import data as jb
from junglegpt import kaggle, run_all
from junglegpt.notebook_setup import INSTALLER, SETUP_CELL
from junglegpt.paths import KAGGLE_INPUT_ENV, REPO_ROOT

SECRET = "kaggle-key-that-must-not-leak-5d1e"


def test_the_dataset_metadata_is_what_the_kaggle_cli_requires(kaggle_bundle):
    meta = json.loads((kaggle_bundle["dataset"] / "dataset-metadata.json").read_text())
    owner, slug = meta["id"].split("/")
    assert owner == "jungle-reader" and kaggle.SLUG.match(slug)
    assert 6 <= len(meta["title"]) <= 50
    assert meta["licenses"] and all("name" in licence for licence in meta["licenses"])


def test_the_kernel_runs_on_a_gpu_without_internet_with_the_dataset_attached(kaggle_bundle):
    meta = json.loads((kaggle_bundle["kernel"] / "kernel-metadata.json").read_text())
    dataset_id = json.loads((kaggle_bundle["dataset"] / "dataset-metadata.json").read_text())["id"]
    assert {"id", "title", "code_file", "language", "kernel_type"} <= meta.keys()
    owner, slug = meta["id"].split("/")
    assert owner == "jungle-reader" and kaggle.SLUG.match(slug)
    assert jb.title_slug(meta["title"]) == slug  # Kaggle derives the slug from the title
    assert (meta["language"], meta["kernel_type"]) == ("python", "notebook")
    assert meta["enable_gpu"] is True and meta["enable_internet"] is False
    assert meta["dataset_sources"] == [dataset_id]
    nb = nbformat.read(kaggle_bundle["kernel"] / meta["code_file"], as_version=4)
    nbformat.validate(nb)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert code[0] == SETUP_CELL and "run_all.main" in code[1] and '"full"' in code[1]


def test_the_dataset_holds_the_installer_the_wheel_with_the_notebooks_what_kaggle_lacks_and_every_book(
        kaggle_bundle, monkeypatch):
    installer = (REPO_ROOT / "notebooks" / INSTALLER).read_bytes()
    assert (kaggle_bundle["dataset"] / INSTALLER).read_bytes() == installer  # what the setup cell looks for
    with zipfile.ZipFile(kaggle_bundle["wheel"]) as wheel:
        names = wheel.namelist()
    assert "junglegpt/__init__.py" in names
    in_wheel = sum(n.startswith("junglegpt/notebooks/") and n.endswith(".ipynb") for n in names)
    assert in_wheel == len(list((REPO_ROOT / "notebooks").glob("*.ipynb")))  # the series and the solutions
    wheels = [p.name for p in (kaggle_bundle["dataset"] / "wheels").glob("*.whl")]
    assert kaggle.missing_on_kaggle() == ["pyppmd>=1.1"]  # what platforms/kaggle.txt lacks
    assert any(name.startswith("pyppmd-") for name in wheels)
    monkeypatch.delenv(jb.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv(KAGGLE_INPUT_ENV, str(kaggle_bundle["dataset"]))
    for known in (jb.JUNGLE_BOOK, jb.SECOND_JUNGLE_BOOK, *jb.KIPLING_BOOKS):  # each found, and the right one
        assert jb.find_in_kaggle_input(known).stem == known.slug


def fake_kaggle_cli(tmp_path: Path, monkeypatch, dataset_exists: bool) -> Path:
    """A `kaggle` command on PATH that records its arguments (and whether it saw the key) and succeeds."""
    log = tmp_path / "kaggle-calls.jsonl"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "kaggle"
    script.write_text(f"""#!{sys.executable}
import json, os, sys
with open({str(log)!r}, "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "has_key": bool(os.environ.get("KAGGLE_KEY"))}}) + "\\n")
sys.exit(0 if sys.argv[1:3] != ["datasets", "status"] or {dataset_exists!r} else 1)
""")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


@pytest.mark.parametrize("dataset_exists", [False, True])
def test_with_credentials_both_are_sent_and_the_key_goes_nowhere(tmp_path, monkeypatch, capfd, shared_data,
                                                                 dataset_exists):
    log = fake_kaggle_cli(tmp_path, monkeypatch, dataset_exists)
    monkeypatch.setenv("KAGGLE_USERNAME", "jungle-reader")
    monkeypatch.setenv("KAGGLE_KEY", SECRET)
    folder = tmp_path / "bundle"
    assert run_all.main(["--kaggle", str(folder), "--out", str(tmp_path / "out")]) == 0
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    verbs = [call["argv"][:2] for call in calls]
    sent = ["datasets", "version"] if dataset_exists else ["datasets", "create"]
    assert verbs == [["datasets", "status"], sent, ["kernels", "push"]]
    assert calls[2]["argv"][calls[2]["argv"].index("--accelerator") + 1] == "NvidiaTeslaT4"
    assert all(call["has_key"] for call in calls)  # the CLI reads the key itself ...
    printed = capfd.readouterr()
    assert SECRET not in json.dumps(calls) + printed.out + printed.err  # ... and it is on no command line
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".ipynb"):
            assert SECRET not in path.read_text()
    assert "kaggle kernels output jungle-reader/junglegpt-sweep" in printed.out


def test_without_credentials_it_writes_the_folder_and_prints_the_commands(tmp_path, monkeypatch, capsys, shared_data):
    log = fake_kaggle_cli(tmp_path, monkeypatch, dataset_exists=False)
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle-config"))
    folder = tmp_path / "bundle"
    assert run_all.main(["--kaggle", str(folder)]) == 0
    assert not log.exists()  # nothing sent
    said = capsys.readouterr().out
    assert f"kaggle datasets create -p {folder / 'dataset'}" in said
    assert f"kaggle kernels push -p {folder / 'kernel'} --accelerator NvidiaTeslaT4" in said
    assert "replace YOUR-KAGGLE-USERNAME" in said and "kaggle kernels output" in said
    assert (folder / "dataset" / "dataset-metadata.json").exists()
    assert (folder / "kernel" / "kernel-metadata.json").exists()
