"""Notebook 08: the dry run stages a valid card, and the token never lands in any output."""

from __future__ import annotations

import json
import shutil

import pytest

from junglegpt.modelcard import check_model_card

from .helpers import run_notebook

FAKE_TOKEN = "hf_FakeTokenForTheLeakTest0123456789"


def _files_containing(root, needle: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_dry_run_stages_a_checked_folder(smoke_run):
    out, _ = smoke_run
    staged = out.root / "hub"
    folders = list(staged.glob("junglegpt-*"))
    assert len(folders) == 1
    best = min(json.loads(out.results_json.read_text())["sizes"], key=lambda r: r["val_bpb"])["size"]
    assert folders[0].name == f"junglegpt-{best}"
    metrics = json.loads((folders[0] / "metrics.json").read_text())
    assert check_model_card(folders[0] / "README.md", metrics) == []
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= {p.name for p in folders[0].iterdir()}


def test_check_model_card_catches_a_wrong_number(smoke_run, tmp_path):
    out, _ = smoke_run
    folder = next((out.root / "hub").glob("junglegpt-*"))
    metrics = json.loads((folder / "metrics.json").read_text())
    assert check_model_card(folder / "README.md", {**metrics, "best_val_bpb": metrics["best_val_bpb"] + 0.5})


@pytest.mark.parametrize("push", [False, True])
def test_the_token_never_lands_in_an_output(smoke_run, tmp_path, push):
    out, _ = smoke_run
    root = tmp_path / "out"
    (root / "models").mkdir(parents=True)
    shutil.copytree(out.model("1M"), root / "models" / "1M")
    params = {"model_size": "1M", "push": push, "repo_id": "someone/junglegpt-1M" if push else ""}
    ok, tail = run_notebook("08_publish", root, env={"HF_TOKEN": FAKE_TOKEN, "HF_HUB_OFFLINE": "1"}, **params)
    assert ok != push, tail  # the dry run succeeds; the push fails here, offline
    if push:  # with a message that says so, not a raw connection error
        assert "The Hugging Face Hub is unreachable from here: nothing was uploaded" in tail
    executed = (root / "executed" / "08_publish.ipynb").read_text()
    assert "found in the HF_TOKEN environment variable" in executed
    assert _files_containing(root, FAKE_TOKEN) == []
    assert FAKE_TOKEN not in tail
