"""The compressor's predictor (junglegpt.streams): the network's cached steps compute what transformers
computes, the shared counts give `mixture.TokenCounts`' distribution, every step's mixture is a
distribution, nothing is scored after learning from it, and read in one stream it scores a text as
`mixture.score` does. These use a tiny random GPT-2 (a second to build)."""

from __future__ import annotations

import math
import os
import time

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from junglegpt import compress, dynamic, mixture, streams

from .helpers import save_tiny_gpt2

TEXT = ("Then Kaa came, the rock python, and he said to Mowgli: Good hunting, little brother, and the "
        "wolves of the Seeonee pack howled the Law of the Jungle under the moon. ") * 8
SETTINGS = mixture.Settings(max_order=3, discount=0.7, mixer_lr=0.2, share=0.01)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny") / "model"
    save_tiny_gpt2(folder, TEXT, vocab_size=300, context=256)
    model = AutoModelForCausalLM.from_pretrained(folder).float().eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return model, tokenizer, tokenizer.encode(TEXT)


def _run(model, start_id, ids, n_streams, lr, settings, prime, record=None, overlap=True):
    """The predictor over `ids`; every step's distributions appended to `record` as (stream, row)."""
    layout = streams.Layout.for_text(len(ids), n_streams, chunk=16)
    by_stream, done = layout.stream_ids(ids), [0] * layout.streams

    def code(probs, active):
        if record is not None:
            record.extend((s, row.copy()) for s, row in zip(active, probs, strict=True))
        out = []
        for s in active:
            out.append(by_stream[s][done[s]])
            done[s] += 1
        return out

    predictor = streams.Predictor(model, start_id, layout, lr, settings, prime)
    with compress._fixed_threads():  # the compressor's torch threads: the network's process has as many
        assert predictor.run(code, overlap) == ids  # the streams put back together in the text's order
    return predictor


def test_cached_steps_compute_what_transformers_computes(tiny):
    model, _, ids = tiny
    x = torch.tensor([ids[:40], ids[40:80], ids[80:120]])
    with torch.no_grad():
        expected = model(input_ids=x).logits  # (3, 40, vocabulary)
    steps = streams.NetworkSteps(model, batch=3)
    got = [steps(x[:, :25], 0)]  # fill the cache with 25 positions, then one at a time
    got += [steps(x[:, p : p + 1], p) for p in range(25, 40)]
    torch.testing.assert_close(torch.stack(got[1:], 1), expected[:, 25:40], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got[0], expected[:, 24], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("n_tokens, wanted", [(1000, 7), (1000, 64), (17, 4), (0, 3), (640, 5)])
def test_streams_cover_the_text_once_in_order(n_tokens, wanted):
    layout = streams.Layout.for_text(n_tokens, wanted, chunk=128)
    parts = layout.stream_ids(list(range(n_tokens)))
    assert [t for part in parts for t in part] == list(range(n_tokens))
    assert len(parts) == layout.streams <= max(1, wanted)
    assert all(len(p) == layout.length for p in parts[:-1]) and len(parts[-1]) <= layout.length
    assert layout.streams == 1 or layout.length >= 128  # a stream holds at least a chunk


def test_shared_counts_give_the_reference_distribution(tiny):
    _, _, ids = tiny
    shared = streams.SharedCounts(300, SETTINGS, ids[:500])
    histories = [ids[:k] for k in (0, 1, 2, 3, 50, 499)] + [[299, 298, 297]]
    got = shared.distributions(histories)
    for history, row in zip(histories, got, strict=True):
        np.testing.assert_allclose(row, shared.counts.distribution(history), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got.sum(1), 1.0, rtol=1e-12)
    shared.update(ids[:10], 299)  # a new token: its order-0 count grows
    assert shared.distributions([ids[:10]])[0][299] == pytest.approx(shared.counts.distribution(ids[:10])[299])


def test_shared_counts_give_each_lower_order_as_the_tables_up_to_it_do(tiny):
    """The product's counts after one and two tokens of context: the blend of the orders up to k,
    computed by `mixture.TokenCounts` over the same tables cut at order k."""
    _, _, ids = tiny
    shared = streams.SharedCounts(300, SETTINGS, ids[:500])
    histories = [ids[:k] for k in (0, 1, 2, 3, 50, 499)] + [[299, 298, 297], [ids[0], 299]]
    got = shared.distributions(histories, lower=(1, 2))
    np.testing.assert_array_equal(got[0], shared.distributions(histories))
    for k, rows in zip((1, 2), got[1:], strict=True):
        cut = mixture.TokenCounts(300, k, SETTINGS.discount)
        cut.tables = shared.counts.tables[: k + 1]
        for history, row in zip(histories, rows, strict=True):
            np.testing.assert_allclose(row, cut.distribution(history), rtol=1e-12, atol=1e-15)
    assert not np.allclose(got[1], got[0])  # the longer contexts do change something


def test_the_product_is_a_distribution_that_learns_towards_the_token():
    rng = np.random.default_rng(0)
    parts = rng.dirichlet(np.full(50, 0.3), size=(3, 4))  # (parts, rows, vocabulary)
    logs = np.log(parts)
    product = mixture.Product([1.0, 0.0, 0.0], lr=0.01)
    p = product.distributions(logs)
    np.testing.assert_allclose(p, parts[0], rtol=1e-12)  # one part at weight 1: that part
    np.testing.assert_allclose(product.expected(p, logs), np.einsum("rv,jrv->rj", parts[0], logs))
    product.weights = np.array([0.5, 0.7, -0.2])
    p = product.distributions(logs)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-12)
    # the compressor's split: the last parts' share computed ahead gives the same distributions
    np.testing.assert_allclose(product.distributions(logs[:1], product.known_scores(logs[1:])), p, rtol=1e-12)
    token = int(logs[1, 0].argmax())  # the token part 1 likes best
    before = p[0, token]
    product.learn(logs[:, :1, token].T, product.expected(p, logs)[:1])
    assert product.distributions(logs)[0, token] > before  # the step lowered its code length


@pytest.mark.parametrize("lr", [0.0, 0.5])
def test_every_step_is_a_distribution_over_the_vocabulary(tiny, lr):
    model, tokenizer, ids = tiny
    record = []
    _run(model, tokenizer.eos_token_id, ids, 4, lr, SETTINGS, ids[:100], record)
    rows = np.stack([row for _, row in record])
    assert rows.shape == (len(ids), model.config.vocab_size)
    assert (rows > 0).all()
    np.testing.assert_allclose(rows.sum(1), 1.0, rtol=1e-9)


@pytest.mark.parametrize("lr", [0.0, 0.5])
def test_no_peeking_a_changed_token_changes_nothing_scored_before_it(tiny, lr):
    """Token k changed: every distribution the predictor gave before coding token k is the same,
    in every stream (the counts and the network are shared by all streams)."""
    model, tokenizer, ids = tiny
    k = len(ids) // 2 + 5
    changed = [*ids[:k], (ids[k] + 1) % 300, *ids[k + 1 :]]
    first, second = [], []
    _run(model, tokenizer.eos_token_id, ids, 3, lr, SETTINGS, ids[:50], first)
    _run(model, tokenizer.eos_token_id, changed, 3, lr, SETTINGS, ids[:50], second)
    length = streams.Layout.for_text(len(ids), 3, chunk=16).length
    stream, offset = divmod(k, length)
    # the steps before token k's: all steps at earlier offsets, and earlier streams at its offset
    before = sum(1 for s, _ in first[: offset * 3]) + stream
    for (s1, a), (s2, b) in zip(first[:before], second[:before], strict=True):
        assert s1 == s2 and np.array_equal(a, b)
    later = [i for i in range(before, len(first)) if not np.array_equal(first[i][1], second[i][1])]
    assert later and later[0] > before  # token k itself is scored as before; what follows it changes


def test_one_stream_frozen_scores_the_text_as_the_mixture_does(tiny):
    """Read in one stream with the network frozen, the predictor's first stage (the blend) costs
    what mixture.score says for the same network, counts and settings: notebook 04's number. The
    second stage (mixing in the product) never costs more than the blend by more than the safety
    net's bound: ln(3) nats, and ln(1 / (1 - share)) a token."""
    model, tokenizer, ids = tiny
    prime, text = ids[:150], ids[150:]
    predictor = _run(model, tokenizer.eos_token_id, text, 1, 0.0, SETTINGS, prime)
    network = torch.cat(dynamic.token_nats(model, torch.tensor(text), tokenizer.eos_token_id, 0.0)).numpy()
    reference = mixture.score(prime, text, network, SETTINGS, 300, parts=("network", "counts"))
    np.testing.assert_allclose(predictor.nats["network"], network, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(predictor.nats["counts"], reference.part_nats["counts"], rtol=1e-9)
    np.testing.assert_allclose(predictor.nats["blend"], reference.nats, rtol=1e-4, atol=1e-4)
    bound = math.log(3) - len(text) * math.log(1 - SETTINGS.share)
    assert sum(predictor.nats["mixture"]) <= sum(predictor.nats["blend"]) + bound


@pytest.mark.parametrize("late", [None, "_network_side", "_learn_tokens"])
@pytest.mark.parametrize("settings", [SETTINGS, None])
def test_the_network_in_its_own_process_changes_no_number(tiny, settings, late, monkeypatch):
    """The network's side of each step runs beside the counts' side, in a process of its own:
    every distribution is the one the steps give one after the other, bit for bit (the
    decompressor must see the compressor's), whichever side finishes first (`late`: that side
    waits a moment at every step, so that the other one runs first; a side reading what the
    other writes would then see it changed)."""
    model, tokenizer, ids = tiny
    side_by_side, in_order = [], []
    if late:
        on_time = getattr(streams.Predictor, late)

        def waits_first(self, *args):
            time.sleep(0.002)
            return on_time(self, *args)

        monkeypatch.setattr(streams.Predictor, late, waits_first)
    _run(model, tokenizer.eos_token_id, ids, 3, 0.3, settings, ids[:50], side_by_side)
    monkeypatch.undo()
    _run(model, tokenizer.eos_token_id, ids, 3, 0.3, settings, ids[:50], in_order, overlap=False)
    assert len(side_by_side) == len(in_order) == len(ids)
    for (s1, a), (s2, b) in zip(side_by_side, in_order, strict=True):
        assert s1 == s2 and np.array_equal(a, b)


def test_where_there_is_no_fork_the_steps_run_in_order(tiny, monkeypatch):
    """Off Linux the network's side runs in this process, one step after the other: no process,
    the same distributions."""
    model, tokenizer, ids = tiny
    here, forked = [], []
    monkeypatch.setattr(streams, "FORK", False)
    monkeypatch.setattr(streams, "_NetworkProcess", None)  # would fail if it were used
    _run(model, tokenizer.eos_token_id, ids[:200], 2, 0.3, SETTINGS, ids[:50], here)
    monkeypatch.undo()
    _run(model, tokenizer.eos_token_id, ids[:200], 2, 0.3, SETTINGS, ids[:50], forked)
    assert len(here) == len(forked) == 200
    assert all(s1 == s2 and np.array_equal(a, b) for (s1, a), (s2, b) in zip(here, forked, strict=True))


def test_a_failure_in_the_network_process_is_raised_by_the_coder(tiny, monkeypatch):
    model, tokenizer, ids = tiny

    def breaks(self, *args):
        raise ValueError("a broken step")

    monkeypatch.setattr(streams.Predictor, "_network_side", breaks)
    with pytest.raises(streams.NetworkProcessError, match="network process failed: ValueError: a broken step"):
        _run(model, tokenizer.eos_token_id, ids, 2, 0.3, SETTINGS, ids[:50])


def test_a_network_process_that_dies_is_a_message_in_the_coder(tiny, monkeypatch):
    model, tokenizer, ids = tiny

    def dies(self, *args):
        os._exit(1)  # as if killed: no reply, the pipe closes

    monkeypatch.setattr(streams.Predictor, "_network_side", dies)
    with pytest.raises(streams.NetworkProcessError, match="ended without answering"):
        _run(model, tokenizer.eos_token_id, ids, 2, 0.3, SETTINGS, ids[:50])


def test_learning_while_reading_lowers_the_cost_of_a_repeated_text(tiny):
    model, tokenizer, ids = tiny
    text = ids[:120] * 4
    frozen = _run(model, tokenizer.eos_token_id, text, 2, 0.0, None, [])
    learning = _run(model, tokenizer.eos_token_id, text, 2, 0.5, None, [])
    assert sum(learning.nats["mixture"]) < sum(frozen.nats["mixture"]) - 10
