"""Issue 33, round 4: run names that leave OUT/models, bare NaN in JSON, evaluations on a token,
an empty profile, a prompt holding <|endoftext|>, a truncated tokenizer, a NaN in metrics.json,
and Ctrl-C while the runner starts."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from junglegpt import run_all, runs, training
from junglegpt.generation import Request, prepare
from junglegpt.io import atomic_write_json, read_json, update_json
from junglegpt.paths import REPO_ROOT, OutputDirs

from .helpers import run_all_cli


def strict_json(text: str):
    """json.loads as JavaScript, jq and most non-Python readers read it: NaN and Infinity refused."""
    def refuse(name):
        raise ValueError(f"{name} is not JSON")
    return json.loads(text, parse_constant=refuse)


def small_tokenizer(folder: Path) -> Path:
    """A byte-level BPE tokenizer with <|endoftext|>, saved as notebook 02 saves one (a second's work)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(["Mowgli and Baloo ran through the jungle with Bagheera. " * 20], trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                        pad_token="<|endoftext|>", clean_up_tokenization_spaces=False)
    tokenizer.save_pretrained(folder)
    return folder


# 4. A run name is a folder inside OUT/models, nothing else.

@pytest.mark.parametrize("name", ["../../escaped", "/tmp/anywhere", "finetuned/../../x", "", ".", "a//b", ".."])
def test_a_run_name_that_leaves_out_models_is_refused(tmp_path, name):
    with pytest.raises(ValueError, match="run_name") as err:
        OutputDirs(tmp_path).model(name)
    assert "OUT/models" in str(err.value)
    assert not (tmp_path.parent / "escaped").exists()


@pytest.mark.parametrize("name", ["15M", "finetuned/gpt2", "more-data/15M", "finetuned/distilgpt2"])
def test_legitimate_run_names_stay_inside_out_models(tmp_path, name):
    out = OutputDirs(tmp_path)
    assert out.model(name) == out.models / name


def test_run_training_refuses_an_escaping_run_name_before_running_03(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "execute", lambda *a, **k: pytest.fail("03 ran with a run name outside OUT/models"))
    with pytest.raises(ValueError, match="run_name"):
        runs.run_training(OutputDirs(tmp_path), "../../escaped", profile="smoke")
