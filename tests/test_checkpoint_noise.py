"""A checkpoint of a model with tied weights is saved without a warning the learner cannot act on."""

from __future__ import annotations

import logging

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from junglegpt import training


def _tiny_accelerated_model():
    from accelerate import Accelerator

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=16, n_embd=8, n_layer=1, n_head=2))
    assert model.lm_head.weight is model.transformer.wte.weight  # tied, as in every size
    accelerator = Accelerator(cpu=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model, optimizer = accelerator.prepare(model, optimizer)
    return accelerator, model


def test_the_tied_head_note_is_dropped_and_other_shared_tensors_still_reported(tmp_path, capsys, caplog):
    accelerator, model = _tiny_accelerated_model()
    with caplog.at_level(logging.WARNING):
        path = training.save_checkpoint(accelerator, tmp_path, 1, {"step": 1})
    said = capsys.readouterr()
    assert "Removed shared tensor" not in said.out + said.err + caplog.text
    assert (path / "trainer_state.json").exists()
    # The filter is narrow: the same note about another tensor gets through.
    other = logging.getLogger("accelerate.utils.other")
    with caplog.at_level(logging.WARNING):
        other.warning("Removed shared tensor {'decoder.weight'} while saving.")
    assert "decoder.weight" in caplog.text
