"""Hostile round 5 (issue 33): what a careful but unlucky user met in the playground, the publishing
dry run and the Kaggle bundle. Each test failed before its fix. They use a tiny random GPT-2 (a
second to build) placed where notebook 03 would put the 1M model, not the smoke run."""

from __future__ import annotations

import json

import pytest

from junglegpt import kaggle, publish
from junglegpt.generation import ModelShelf, Request
from junglegpt.paths import OutputDirs
from junglegpt.playground import Playground

from .helpers import save_tiny_gpt2

TEXT = "Now Rann the Kite brings home the night that Mang the Bat sets free. Good hunting all! " * 5


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """An OUT whose models/1M holds a one-layer GPT-2 with random weights, its tokenizer and a
    metrics.json like notebook 03's."""
    root = tmp_path_factory.mktemp("tiny-run")
    folder = OutputDirs(root).model("1M")
    vocab_size = save_tiny_gpt2(folder, TEXT, vocab_size=300, context=64)
    (folder / "metrics.json").write_text(json.dumps({
        "model_size": "1M", "run_name": "1M", "n_params": 6000, "best_step": 3, "steps_done": 3, "best_val_loss": 5.0,
        "best_val_bpb": 3.0, "train_loss_at_best": 5.1, "train_bpb_at_best": 3.1, "profile": "smoke",
        "hardware": "CPU test (2 cores)", "epochs_done": 0.1, "train_time_s": 1.0, "train_tokens_per_s": 100.0,
        "stopped_because": "max_steps", "label": "test", "seed": 1894,
        "config": {"vocab_size": vocab_size, "n_layer": 1, "n_embd": 16, "n_head": 2, "n_positions": 64}}))
    return root


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    """A copy of the tiny run that a test may damage."""
    import shutil

    return shutil.copytree(tiny_run, tmp_path / "out")


def _playground(root, size="1M"):
    return Playground(ModelShelf(OutputDirs(root), device="cpu"), Request(size=size, max_new_tokens=3))


def _status(ui) -> str:
    import html
    import re

    return html.unescape(re.sub(r"<[^>]+>", "", ui.status.value))


# -- the playground --------------------------------------------------------------------------------

@pytest.mark.parametrize("tab", ["on_generate", "on_compare", "on_next_tokens"])
def test_the_playground_with_no_trained_model_says_so_and_how_to_train_one(tmp_path, tab):
    """Before: 'unknown model size None', 'Same prompt, same seed, 0 sizes.', and a ValueError
    from matplotlib ('Number of columns must be a positive integer, not 0')."""
    ui = _playground(tmp_path)
    ui.start(getattr(ui, tab), "working")
    ui.wait(30)
    said = _status(ui)
    assert "No trained model" in said and str(OutputDirs(tmp_path).models) in said
    assert "--sizes 1M" in said and "Something went wrong" not in said


def test_a_model_without_its_weights_is_named_with_the_fix(run_copy):
    """Before: 'Something went wrong (OSError: Error no file named model.safetensors …)'."""
    (OutputDirs(run_copy).model("1M") / "model.safetensors").unlink()
    ui = _playground(run_copy)
    ui.start(ui.on_generate, "generating")
    ui.wait(30)
    said = _status(ui)
    assert "The 1M model" in said and "cannot be loaded" in said and "./run_all.sh --sizes 1M" in said
    assert "Something went wrong" not in said


def _shrink_vocabulary(folder, rows: int) -> None:
    """Make the model in `folder` one of `rows` token rows (its config and weights), keeping its tokenizer."""
    from safetensors.torch import load_file, save_file

    config = json.loads((folder / "config.json").read_text())
    old, config["vocab_size"] = config["vocab_size"], rows
    (folder / "config.json").write_text(json.dumps(config))
    weights = load_file(folder / "model.safetensors")
    weights = {k: (v[:rows].clone() if v.shape[:1] == (old,) else v) for k, v in weights.items()}
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})


def test_a_tokenizer_with_more_tokens_than_the_model_is_named_not_an_index_error(run_copy):
    """A tokenizer from a run with a bigger vocab_size copied beside the model: before, every click
    ended in 'IndexError: index out of range in self'."""
    folder = OutputDirs(run_copy).model("1M")
    _shrink_vocabulary(folder, 200)  # the tokenizer has 300
    ui = _playground(run_copy)
    for tab in (ui.on_generate, ui.on_next_tokens):
        ui.start(tab, "working")
        ui.wait(30)
        said = _status(ui)
        assert "300 tokens" in said and "200" in said and "./run_all.sh --sizes 1M" in said, said
        assert "IndexError" not in said


def test_a_tokenizer_from_another_run_is_not_a_finished_model(run_copy):
    """04, 05 and 08 ask runs.model_problem whether a size loads: a tokenizer with more tokens than the
    model has rows passed, and each of them then stopped on an IndexError."""
    from junglegpt import runs

    folder = OutputDirs(run_copy).model("1M")
    assert runs.model_problem(folder) is None
    _shrink_vocabulary(folder, 200)  # the tokenizer has 300
    assert "a tokenizer of 300 tokens for a model of 200" in runs.model_problem(folder)


def test_the_playground_still_generates_with_a_sound_model(run_copy):
    ui = _playground(run_copy)
    assert ui.on_generate()["new_tokens"] >= 1


# -- publishing ------------------------------------------------------------------------------------

def test_a_token_with_a_trailing_newline_never_shows_in_an_error(monkeypatch):
    """A token pasted with its newline: the HTTP library refuses the header and quotes it
    (h11: "Illegal header value b'Bearer hf_…\\n'"), which the old scrubbing (the exact token, newline
    included) let through."""
    secret = "hf_abcdefghijSECRET"
    monkeypatch.setenv("HF_TOKEN", secret + "\n")
    monkeypatch.setattr("junglegpt.environment.on_kaggle", lambda: False)
    monkeypatch.setattr("junglegpt.environment.on_colab", lambda: False)
    token, _ = publish.find_token()
    assert token == secret  # the newline is no part of a token
    for message in (f"Illegal header value b'Bearer {secret}\\n'", f"bad token {secret}", f"{secret!r}"):
        assert secret not in str(publish._scrubbed(ValueError(message), secret + "\n"))
        assert secret not in str(publish._scrubbed(ValueError(message), secret))


def test_a_blank_token_is_no_token_and_does_not_blank_every_space(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "  \n")
    monkeypatch.setattr("junglegpt.environment.on_kaggle", lambda: False)
    monkeypatch.setattr("junglegpt.environment.on_colab", lambda: False)
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    assert publish.find_token()[0] is None
    assert "<token>" not in str(publish._scrubbed(ValueError("a plain message"), " "))


@pytest.mark.parametrize("namespace", ["my name", "me/other", "../x", "-me", "a" * 97])
def test_a_namespace_the_hub_cannot_take_is_refused_before_anything_else(namespace, monkeypatch):
    """Before: passed as it was; offline it said 'unreachable', online the Hub refused it after the
    check that everything was ready."""
    monkeypatch.setattr("junglegpt.pretrained.hub_reachable", lambda: True)
    plan = {"items": [{"size": "1M", "profile": "full"}]}
    with pytest.raises(ValueError, match="namespace=") as err:
        publish.check_ready(plan, namespace, "hf_x", allow_quick=False, staged=None)
    assert "letters, digits" in str(err.value)


def test_a_size_whose_metrics_lack_a_number_is_named_with_the_fix(run_copy):
    """A diverged run's metrics.json holds null (NaN is written as null): before, staging ended in
    "TypeError: type NoneType doesn't define __round__ method" from the model card."""
    path = OutputDirs(run_copy).model("1M") / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics["best_val_bpb"] = None
    path.write_text(json.dumps(metrics))
    with pytest.raises(ValueError) as err:
        publish.stage(OutputDirs(run_copy), "your-name")
    assert "1M" in str(err.value) and "best_val_bpb" in str(err.value) and "--sizes 1M" in str(err.value)


def test_a_sound_run_is_staged(run_copy):
    plan = publish.stage(OutputDirs(run_copy), "your-name")
    assert [item["repo_id"] for item in plan["items"]] == ["your-name/junglegpt-1M"]


def test_a_file_where_hub_should_be_is_named(run_copy):
    (run_copy / "hub").write_text("notes")
    with pytest.raises(NotADirectoryError, match="is a file"):
        publish.stage(OutputDirs(run_copy), "your-name")
    assert (run_copy / "hub").read_text() == "notes"


# -- the Kaggle bundle -----------------------------------------------------------------------------

def _no_wheel(dest):
    raise AssertionError("the folder should have been refused before building anything")


@pytest.mark.parametrize("part", ["dataset", "kernel"])
def test_the_kaggle_bundle_never_deletes_a_folder_it_did_not_write(tmp_path, monkeypatch, part):
    """`./run_all.sh --kaggle ~` deleted ~/dataset and ~/kernel, whatever they held, without a word."""
    monkeypatch.setattr(kaggle, "build_wheel", _no_wheel)
    (tmp_path / part).mkdir()
    (tmp_path / part / "thesis.tex").write_text("two years of work")
    with pytest.raises(kaggle.BundleFolderError, match="thesis.tex"):
        kaggle.write_bundle(tmp_path)
    assert (tmp_path / part / "thesis.tex").read_text() == "two years of work"
    assert kaggle.main(tmp_path) == 2


def test_the_kaggle_bundle_replaces_its_own_earlier_bundle(tmp_path, monkeypatch):
    """An earlier bundle (even one cut short) is the command's own: it is replaced."""
    (tmp_path / "dataset" / "books").mkdir(parents=True)
    (tmp_path / "dataset" / "junglegpt-0.1-py3-none-any.whl").write_text("old")
    (tmp_path / "kernel").mkdir()
    (tmp_path / "kernel" / "kernel-metadata.json").write_text("{}")
    kaggle.check_bundle_folder(tmp_path)  # no error


@pytest.mark.parametrize("how", ["a file", "a file above"])
def test_a_kaggle_folder_that_cannot_be_a_folder_is_one_line(tmp_path, monkeypatch, capsys, how):
    """Before: NotADirectoryError or FileExistsError from pathlib, as a traceback."""
    monkeypatch.setattr(kaggle, "build_wheel", _no_wheel)
    target = tmp_path / "bundle"
    target.write_text("x")
    folder = target if how == "a file" else target / "inside"
    assert kaggle.main(folder) == 2
    err = capsys.readouterr().err
    assert str(target) in err and "is a file" in err and len(err.strip().splitlines()) == 1


def test_a_bundle_without_the_books_is_a_message_not_a_traceback(tmp_path, monkeypatch, capsys):
    """Offline with no books: before, a FileNotFoundError traceback around data's (good) message."""
    monkeypatch.setattr(kaggle, "build_wheel", lambda dest: dest / "junglegpt-0.1-py3-none-any.whl")
    monkeypatch.setattr(kaggle, "download_dependency_wheels", lambda dest, versions: [])

    def not_here(known, *args, **kwargs):
        raise FileNotFoundError(f"{known.title} is not on this machine and could not be downloaded")

    monkeypatch.setattr(kaggle.data, "find_text", not_here)
    assert kaggle.main(tmp_path / "bundle") == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_a_read_only_hub_folder_is_one_line_naming_it(run_copy, monkeypatch):
    """Before: a PermissionError traceback naming a temporary folder inside it."""
    import tempfile

    def refused(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted", str(run_copy / "hub" / ".junglegpt-1M.x.tmp"))

    monkeypatch.setattr(tempfile, "mkdtemp", refused)  # what `chattr +i OUT/hub` does, without root
    with pytest.raises(PermissionError, match=r"cannot write in .*hub \(Operation not permitted\): make it writable"):
        publish.stage(OutputDirs(run_copy), "your-name")
