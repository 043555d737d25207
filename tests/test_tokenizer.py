"""Notebook 02's tokenizer: loads, round-trips exactly, is fitted on train only, is deterministic."""

from __future__ import annotations

import shutil

import pytest
from transformers import AutoTokenizer

from junglegpt import data as jb
from junglegpt.paths import OutputDirs

from .helpers import run_notebook


@pytest.fixture(scope="module")
def tokenizer(smoke_inputs):
    out = smoke_inputs
    return AutoTokenizer.from_pretrained(out.tokenizer)


def test_tokenizer_loads_with_autotokenizer_and_round_trips(smoke_inputs, tokenizer):
    out = smoke_inputs
    assert len(tokenizer) == 2048
    assert tokenizer.eos_token == tokenizer.bos_token == tokenizer.pad_token == "<|endoftext|>"
    for path in (out.train_txt, out.val_txt):
        text = path.read_text(encoding="utf-8")
        assert tokenizer.decode(tokenizer.encode(text, verbose=False)) == text
    odd = "Ünïcode — “quotes”, emoji 🐍🐯, 中文, tabs\tand  double  spaces\n\n"
    assert tokenizer.decode(tokenizer.encode(odd)) == odd


def test_vocabulary_study_figure_and_table(smoke_inputs):
    out = smoke_inputs
    assert (out.figures / "02_vocab_size_study.png").exists()
    table = (out.data / "tokenizer_study.csv").read_text().splitlines()
    assert table[0].startswith("asked,tokenizer,vocab,train bytes/token")
    assert len(table) >= 8


def test_fitted_on_train_only_and_deterministic(smoke_inputs, tmp_path, shared_data):
    """Swap the validation text for another book: the tokenizer files must not change by one byte."""
    smoke = smoke_inputs
    out = OutputDirs(tmp_path).make()
    shutil.copy(smoke.train_txt, out.train_txt)
    heldout = jb.clean_text(jb.read_text(shared_data / "heldout" / "pg37364.txt"))
    out.val_txt.write_text(heldout[:30_000], encoding="utf-8")
    ok, tail = run_notebook("02_tokenizer", tmp_path)
    assert ok, tail
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (out.tokenizer / name).read_bytes() == (smoke.tokenizer / name).read_bytes(), name


@pytest.mark.parametrize("vocab_size", [100, 10_000_000, "abc", 2048.5, "", -5])
def test_absurd_vocab_sizes_are_refused(vocab_size):
    from junglegpt.sizes import check_vocab_size

    with pytest.raises(ValueError, match="choose a whole number between 257"):
        check_vocab_size(vocab_size)


@pytest.mark.parametrize("vocab_size", [257, "2048", 32_768])
def test_sensible_vocab_sizes_are_taken_as_whole_numbers(vocab_size):
    from junglegpt.sizes import check_vocab_size

    assert check_vocab_size(vocab_size) == int(vocab_size)


def test_notebook_02_refuses_an_absurd_vocab_size_before_fitting_anything(smoke_inputs, tmp_path):
    shutil.copytree(smoke_inputs.data, tmp_path / "data", ignore=shutil.ignore_patterns(".*", "more_data*"))
    ok, tail = run_notebook("02_tokenizer", tmp_path, vocab_size="abc")
    assert not ok
    assert "choose a whole number between 257" in tail
    assert not (tmp_path / "tokenizer").exists()


def test_missing_training_text_names_the_notebook_to_run(tmp_path):
    ok, tail = run_notebook("02_tokenizer", tmp_path)
    assert not ok
    assert "Run 01_data_exploration.ipynb first" in tail
