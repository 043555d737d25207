"""Notebooks 06 (fine-tuning) and 07 (more data), the decontamination they rely on, and shared results.json."""

from __future__ import annotations

import json
import shutil

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel

from junglegpt import data as jb
from junglegpt import training
from junglegpt.decontaminate import count_shared_spans, decontaminate, reference_from
from junglegpt.io import read_json, update_json
from junglegpt.modelcard import check_model_card
from junglegpt.paths import OutputDirs
from junglegpt.run_all import plan

from .helpers import executed_text, run_notebook

# --------------------------------------------------------------------------------------------
# Decontamination
# --------------------------------------------------------------------------------------------

VAL = ("Now Rann the Kite brings home the night that Mang the Bat sets free. The herds are shut in byre and hut, "
       "for loosed till dawn are we.\n\nThis is the hour of pride and power, talon and tush and claw.")


def _char_encode(text: str) -> list[int]:
    return [ord(c) for c in text]  # one token per character: spans of 13 tokens are 13 characters


def test_a_reprinted_passage_is_removed_and_the_rest_kept():
    reference = reference_from([VAL], _char_encode, n_tokens=60, n_chars=50)
    book = ("An unrelated paragraph about the Grand Trunk Road and a lama.\n\n"
            "NOW RANN THE KITE brings home the night\nthat Mang the Bat sets free.\n\n"  # other case and line breaks
            "Another unrelated paragraph, long enough to be checked properly by the rule.")
    kept, report = decontaminate("A book", book, reference)
    assert "Rann" not in kept and "Grand Trunk" in kept and "Another unrelated" in kept
    assert report.paragraphs == 3 and report.removed_paragraphs == 1
    assert report.removed_chars == len(book.split("\n\n")[1])
    assert count_shared_spans(kept, [VAL]) == 0
    assert count_shared_spans(book, [VAL]) > 0  # the independent check sees what was removed


def test_spans_just_under_the_thresholds_are_kept():
    reference = reference_from([VAL], _char_encode, n_tokens=13, n_chars=50)
    phrase = VAL[:12]  # 12 characters = 12 tokens with this encoder: under both thresholds
    kept, report = decontaminate("A book", f"Quite different words, then {phrase}, then more.", reference)
    assert report.removed_paragraphs == 0
    kept, report = decontaminate("A book", f"Quite different words, then {VAL[:13]}, then more.", reference)
    assert report.removed_paragraphs == 1  # 13 tokens: removed by the token rule alone


def test_the_token_rule_ignores_runs_of_spaces():
    reference = reference_from(["*       *       *       *       *"], _char_encode, n_tokens=13, n_chars=50)
    _, report = decontaminate("A book", "*       *       *       *       *", reference)
    assert report.removed_paragraphs == 0  # collapsed, the separator is 9 characters long


# --------------------------------------------------------------------------------------------
# results.json is shared by 04, 06 and 07
# --------------------------------------------------------------------------------------------


def test_update_json_keeps_the_other_notebooks_sections(tmp_path):
    path = tmp_path / "results.json"
    update_json(path, {"sizes": [1], "baselines": [2]})
    update_json(path, {"finetune": {"models": []}})
    update_json(path, {"sizes": [3], "baselines": [4]})  # notebook 04 runs again
    assert read_json(path) == {"sizes": [3], "baselines": [4], "finetune": {"models": []}}


def test_extras_run_only_when_asked(tmp_path):
    out = OutputDirs(tmp_path)
    assert not {j.notebook for j in plan(out, "smoke", ["1M"])} & {"06_finetune", "07_more_data"}
    names = [j.notebook for j in plan(out, "smoke", ["1M"], extras=True)]
    assert names.index("05_generate") < names.index("06_finetune") < names.index("07_more_data")
    assert names.index("07_more_data") < names.index("08_publish")


# --------------------------------------------------------------------------------------------
# Notebook 07 in the smoke run
# --------------------------------------------------------------------------------------------


def test_more_data_is_decontaminated_and_trained(smoke_run):
    out, _ = smoke_run
    section = read_json(out.results_json)["more_data"]
    corpus = section["corpus"]
    assert corpus["books"] == len(jb.KIPLING_BOOKS) and corpus["missing_books"] == []
    assert corpus["shared_spans_after"] == 0
    by_book = {row["book"]: row for row in section["decontamination"]["by_book"]}
    # Songs from Books reprints Jungle Book songs that are in the validation text: that is the leak.
    assert by_book["Songs from Books"]["removed_chars"] > 5_000
    assert corpus["removed_chars"] < 0.01 * corpus["chars_before"]
    corpus_text = (out.data / "more_data_train.txt").read_text(encoding="utf-8")
    assert corpus_text.startswith(out.train_txt.read_text(encoding="utf-8").rstrip("\n"))
    assert count_shared_spans(corpus_text, [out.val_txt.read_text(encoding="utf-8")]) == 0

    runs = {(r["size"], r["data"]): r for r in section["runs"]}
    assert set(runs) == {(s, d) for s in ("3M", "15M") for d in ("book", "book + corpus")}
    for size in ("3M", "15M"):
        assert runs[(size, "book + corpus")]["train_tokens"] > 20 * runs[(size, "book")]["train_tokens"]
        metrics = read_json(out.model(f"more-data/{size}") / "metrics.json")
        assert metrics["train_file"] == "more_data_train.txt" and metrics["model_size"] == size
        assert metrics["best_val_bpb"] == runs[(size, "book + corpus")]["val_bpb"]
    assert (out.figures / "07_more_data.png").exists()


def test_finetune_offline_says_so_and_carries_on(smoke_run):
    out, _ = smoke_run
    section = read_json(out.results_json)["finetune"]
    assert section["models"] == [] and section["not_available"] == ["distilgpt2", "gpt2"]
    assert "cannot be reached" in executed_text(out.root, "06_finetune")
    assert (out.figures / "06_finetune_vs_scratch.png").exists()


# --------------------------------------------------------------------------------------------
# Notebook 06 with a small pretrained checkpoint made here (the Hub is out of reach)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finetuned(smoke_run, shared_data, tmp_path_factory):
    """A copy of the smoke run, and notebook 06 fine-tuning a tiny GPT-2 saved with save_pretrained."""
    out, _ = smoke_run
    root = tmp_path_factory.mktemp("finetune")
    for folder in ("data", "tokenizer"):
        shutil.copytree(out.root / folder, root / folder, ignore=shutil.ignore_patterns("raw"))
    shutil.copy(out.results_json, root / "results.json")
    # "Pretrained": a tiny GPT-2 with a tokenizer of its own; the weights are random, which is all
    # the plumbing needs. A quite different vocabulary size checks that 06 uses the model's tokenizer.
    tokenizer = AutoTokenizer.from_pretrained(out.tokenizer)
    pretrained = root / "tiny-gpt2"
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=256, n_embd=32, n_layer=2, n_head=2,
                        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
    GPT2LMHeadModel(config).save_pretrained(pretrained)
    tokenizer.save_pretrained(pretrained)
    # A module fixture runs before the per-test JUNGLE_DATA_DIR is set (conftest.py): pass it along.
    env = {jb.DATA_DIR_ENV: str(shared_data), "HF_HUB_OFFLINE": "1"}
    ok, tail = run_notebook("06_finetune", root, env=env, pretrained=f"{pretrained},gpt2")
    assert ok, tail
    return OutputDirs(root), pretrained


def test_finetuning_starts_from_the_pretrained_weights(finetuned):
    out, pretrained = finetuned
    section = read_json(out.results_json)["finetune"]
    assert section["not_available"] == ["gpt2"]
    (row,) = section["models"]
    metrics = read_json(out.model("finetuned/tiny-gpt2") / "metrics.json")
    assert metrics["init_from"] == str(pretrained) and metrics["model_size"] is None
    # 03 scores the model before its first step: that is the pretrained model's score, measured by 06.
    assert metrics["history"][0]["step"] == 0
    assert metrics["history"][0]["val_bpb"] == pytest.approx(row["zero_shot_val_bpb"], rel=1e-4)
    assert row["val_bpb"] == pytest.approx(metrics["best_val_bpb"], rel=1e-4)
    assert "sizes" in read_json(out.results_json)  # notebook 04's section is still there


def test_a_finetuned_model_is_a_standard_folder_with_a_valid_card(finetuned):
    out, pretrained = finetuned
    folder = out.model("finetuned/tiny-gpt2")
    metrics = read_json(folder / "metrics.json")
    assert check_model_card(folder / "README.md", metrics) == []
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert "fine-tuned" in card and str(pretrained) in card
    model = AutoModelForCausalLM.from_pretrained(folder)
    before = AutoModelForCausalLM.from_pretrained(pretrained)
    assert model.config.n_embd == before.config.n_embd == 32
    changed = [k for k, v in model.state_dict().items() if not v.equal(before.state_dict()[k])]
    assert changed, "fine-tuning did not change any weight"


def test_finetune_figure_and_executed_training(finetuned):
    out, _ = finetuned
    assert (out.figures / "06_finetune_vs_scratch.png").exists()
    assert (out.executed / "03_train_finetuned_tiny-gpt2.ipynb").exists()
    label = json.loads(out.results_json.read_text())["finetune"]["label"]
    assert label == f"smoke, CPU, {training.auto_precision_label()}"
