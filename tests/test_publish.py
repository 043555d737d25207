"""Notebook 08: the dry run stages a valid card, and the token never lands in any output."""

from __future__ import annotations

import json
import shutil
import types

import pytest

from junglegpt import publish
from junglegpt.modelcard import check_model_card
from junglegpt.paths import OutputDirs
from junglegpt.sizes import SIZES

from .helpers import linked_copy, run_notebook

FAKE_TOKEN = "hf_FakeTokenForTheLeakTest0123456789"


def _files_containing(root, needle: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_the_dry_run_stages_every_size_and_the_collection(smoke_run):
    out, _ = smoke_run
    staged = out.root / "hub"
    assert sorted(p.name for p in staged.glob("junglegpt-*")) == sorted(f"junglegpt-{size}" for size in SIZES)
    for size in SIZES:
        folder = staged / f"junglegpt-{size}"
        metrics = json.loads((folder / "metrics.json").read_text())
        assert check_model_card(folder / "README.md", metrics) == []
        assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= {p.name for p in folder.iterdir()}
        body = (folder / "README.md").read_text().split("---\n", 2)[2]
        assert body.lstrip().startswith("> **A smoke-profile model, not the experiment:**")
    plan = json.loads((staged / "collection.json").read_text())
    assert [item["size"] for item in plan["items"]] == list(SIZES)  # in size order
    assert [item["repo_id"] for item in plan["items"]] == [f"your-name/junglegpt-{size}" for size in SIZES]
    assert all("bits per byte" in item["note"] and len(item["note"]) < 500 for item in plan["items"])


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
    params = {"push": push, "namespace": "someone" if push else "", "allow_quick": True}
    ok, tail = run_notebook("08_publish", root, env={"HF_TOKEN": FAKE_TOKEN, "HF_HUB_OFFLINE": "1"}, **params)
    assert ok != push, tail  # the dry run succeeds; the push fails here, offline
    if push:  # with a message that says so, not a raw connection error
        assert "The Hugging Face Hub is unreachable from here: nothing was uploaded" in tail
    executed = (root / "executed" / "08_publish.ipynb").read_text()
    assert "found in the HF_TOKEN environment variable" in executed
    assert _files_containing(root, FAKE_TOKEN) == []
    assert FAKE_TOKEN not in tail


class RecordingHub:
    """Stands in for huggingface_hub.HfApi: records every call, keeps repositories and one collection
    as the Hub would, refuses duplicates it is not told to accept, and can fail the n-th upload."""

    def __init__(self, fail_upload: int | None = None, error_text: str = "connection reset"):
        self.calls, self.repos, self.uploads, self.collections = [], set(), [], {}
        self.fail_upload, self.error_text = fail_upload, error_text

    def create_repo(self, repo_id, private=None, exist_ok=False):
        self.calls.append(("create_repo", repo_id))
        if repo_id in self.repos and not exist_ok:
            raise ValueError(f"{repo_id} exists")
        self.repos.add(repo_id)

    def upload_folder(self, repo_id, folder_path, commit_message):
        self.calls.append(("upload_folder", repo_id))
        if self.fail_upload is not None and len(self.uploads) + 1 == self.fail_upload:
            self.fail_upload = None
            raise ConnectionError(self.error_text)
        self.uploads.append(repo_id)

    def create_collection(self, title, namespace, description, private, exists_ok=False):
        self.calls.append(("create_collection", title))
        slug = f"{namespace}/{title.lower().replace(' ', '-')}-0123"
        if slug in self.collections and not exists_ok:
            raise ValueError("collection exists")
        collection = self.collections.setdefault(slug, types.SimpleNamespace(slug=slug, items=[]))
        return types.SimpleNamespace(slug=slug, items=list(collection.items))

    def add_collection_item(self, collection_slug, item_id, item_type, note=None, exists_ok=False):
        self.calls.append(("add_collection_item", item_id))
        items = self.collections[collection_slug].items
        if any(i.item_id == item_id for i in items):
            if not exists_ok:
                raise ValueError(f"{item_id} is in the collection already")
            return
        items.append(types.SimpleNamespace(item_id=item_id, item_type=item_type, note=note))


@pytest.fixture
def staged_plan(smoke_run, tmp_path):
    """The eight smoke models, staged in a folder of this test's own (pushing them needs allow_quick)."""
    out, _ = smoke_run
    mine = OutputDirs(tmp_path / "out")
    for size in SIZES:
        linked_copy(out.model(size), mine.model(size), ignore=shutil.ignore_patterns("checkpoint*"))
    return mine, publish.stage(mine, "someone", json.loads(out.results_json.read_text()))


def test_pushing_sends_every_size_then_the_collection_in_size_order(staged_plan):
    out, plan = staged_plan
    hub = RecordingHub()
    slug = publish.push(hub, plan, out.root / "hub" / "push_state.json", allow_quick=True, say=lambda *_: None)
    repos = [f"someone/junglegpt-{size}" for size in SIZES]
    assert [c for c in hub.calls if c[0] == "create_repo"] == [("create_repo", r) for r in repos]
    assert hub.uploads == repos
    assert [i.item_id for i in hub.collections[slug].items] == repos
    assert all(i.item_type == "model" and "bits per byte" in i.note for i in hub.collections[slug].items)


def test_a_push_cut_off_half_way_then_rerun_finishes_without_duplicates(staged_plan):
    out, plan = staged_plan
    hub = RecordingHub(fail_upload=5)
    state = out.root / "hub" / "push_state.json"
    with pytest.raises(RuntimeError, match="run again to finish"):
        publish.push(hub, plan, state, allow_quick=True, say=lambda *_: None)
    assert len(hub.uploads) == 4 and hub.collections == {}
    slug = publish.push(hub, plan, state, allow_quick=True, say=lambda *_: None)
    repos = [f"someone/junglegpt-{size}" for size in SIZES]
    assert hub.uploads == repos  # the first four were not sent again
    assert [i.item_id for i in hub.collections[slug].items] == repos  # once each, in size order
    publish.push(hub, plan, state, allow_quick=True, say=lambda *_: None)  # a third run: nothing new
    assert hub.uploads == repos and len(hub.collections[slug].items) == len(SIZES) and len(hub.collections) == 1


def test_quick_models_are_refused_unless_allowed_and_nothing_is_sent(staged_plan):
    out, plan = staged_plan
    hub = RecordingHub()
    with pytest.raises(publish.QuickModelRefused, match="smoke or quick profile only.*allow_quick=True"):
        publish.push(hub, plan, out.root / "hub" / "push_state.json")
    assert hub.calls == []


def test_a_client_error_that_echoes_the_token_is_blanked_out(staged_plan):
    out, plan = staged_plan
    hub = RecordingHub(fail_upload=1, error_text=f"401 for Authorization: Bearer {FAKE_TOKEN}")
    with pytest.raises(RuntimeError) as caught:
        publish.push(hub, plan, out.root / "hub" / "push_state.json", token=FAKE_TOKEN, allow_quick=True,
                     say=lambda *_: None)
    assert FAKE_TOKEN not in str(caught.value) and "<token>" in str(caught.value)
    assert _files_containing(out.root, FAKE_TOKEN) == []
