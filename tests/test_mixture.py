"""The mixture of the network with count models (junglegpt.mixture): it is a distribution (sums to 1
over the whole vocabulary wherever it is asked), it never peeks (a token's score depends only on
the tokens before it), and it is never worse than its best part by more than the mixer's known
overhead. Small vocabularies and texts: these are about the arithmetic, not about Kipling."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from junglegpt import mixture

VOCAB = 40


def toy_text(n: int, seed: int) -> list[int]:
    """Tokens with structure a count model can learn (a noisy cycle) and repeats for the match model."""
    rng = random.Random(seed)
    text: list[int] = []
    while len(text) < n:
        if text and rng.random() < 0.2:  # copy an earlier stretch: the match model's case
            start = rng.randrange(len(text))
            text += text[start : start + rng.randrange(3, 20)]
        else:
            text.append((text[-1] * 7 + 3) % VOCAB if text and rng.random() < 0.6 else rng.randrange(VOCAB))
    return text[:n]


def network(seed: int, n: int) -> np.ndarray:
    """A stand-in network: a fixed random distribution over the vocabulary at every position."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, VOCAB)) * 2
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


PRIME, TEXT = toy_text(600, 1), toy_text(300, 2)
SETTINGS = mixture.Settings(max_order=3, discount=0.7, min_match=2, share=0.02, contexts=True)


@pytest.mark.parametrize("history_length", [0, 1, 5, 200, 899])
def test_the_counts_are_a_distribution_and_prob_agrees_with_it(history_length):
    history = (PRIME + TEXT)[:history_length]
    counts = mixture.TokenCounts(VOCAB, 3, 0.7).prime(PRIME)
    distribution = counts.distribution(history)
    assert distribution.sum() == pytest.approx(1.0, abs=1e-12) and (distribution > 0).all()
    contexts = counts.contexts(history)
    assert [counts.prob(contexts, token)[0] for token in range(VOCAB)] == pytest.approx(distribution, abs=1e-15)


def test_the_match_model_is_a_distribution_where_it_predicts():
    counts = mixture.TokenCounts(VOCAB, 3, 0.7)
    match = mixture.MatchModel(min_match=2)
    history, checked = [], 0
    for token in PRIME:
        contexts = counts.contexts(history)
        if match.predicted() is not None:
            total = sum(mixture.match_prob(match, counts, contexts, x, counts.prob(contexts, x)[0])
                        for x in range(VOCAB))
            assert total == pytest.approx(1.0, abs=1e-12)
            checked += 1
        counts.update(contexts, token)
        match.update(token)
        history.append(token)
    assert checked > 100  # the toy text repeats itself: the match model predicted often


def mixed_probabilities(t: int, settings=SETTINGS) -> np.ndarray:
    """The mixture's probability for every token of the vocabulary at position t of TEXT: the text
    scored once per possible token there (the network's p for it at t from `network`)."""
    p_network = network(3, len(TEXT))
    found = []
    for x in range(VOCAB):
        ids = TEXT[:t] + [x]
        nats = -np.log(p_network[np.arange(t + 1), ids])
        found.append(math.exp(-mixture.score(PRIME, ids, nats, settings, VOCAB).nats[t]))
    return np.array(found)


@pytest.mark.parametrize("t", [0, 7, 150, 299])
def test_the_mixture_sums_to_one_over_the_whole_vocabulary(t):
    assert mixed_probabilities(t).sum() == pytest.approx(1.0, abs=1e-9)


def test_the_mixture_sums_to_one_with_every_setting_of_the_rule():
    for settings in mixture.GRID:
        tiny = mixture.Settings(**{**settings.__dict__, "max_order": 2, "contexts": True})
        assert mixed_probabilities(40, tiny).sum() == pytest.approx(1.0, abs=1e-9)


def test_no_peeking_changing_a_token_changes_no_score_before_it():
    p_network = network(3, len(TEXT))
    nats = -np.log(p_network[np.arange(len(TEXT)), TEXT])
    before = mixture.score(PRIME, TEXT, nats, SETTINGS, VOCAB).nats
    for t in (0, 50, 120, 299):
        changed = list(TEXT)
        changed[t] = (changed[t] + 1) % VOCAB
        changed_nats = nats.copy()
        changed_nats[t] = -math.log(p_network[t, changed[t]])
        after = mixture.score(PRIME, changed, changed_nats, SETTINGS, VOCAB).nats
        assert np.array_equal(after[:t], before[:t]), f"a score before token {t} changed"
        assert after[t] != before[t]


@pytest.mark.parametrize("share", [0.0, 0.002, 0.02])
@pytest.mark.parametrize("contexts", [False, True])
def test_never_worse_than_its_best_part_by_more_than_the_mixers_overhead(share, contexts):
    """A useless network (uniform over the vocabulary): the mixture's second layer, a Bayesian mixture
    with fixed share of the blend and of each part alone, loses at most ln(4) nats (learning which of
    the four to trust) plus ln(1 / (1 - share)) per token (the weight it keeps spreading) to the best
    of them: the fixed-share bound of Herbster & Warmuth (1998)."""
    settings = mixture.Settings(max_order=3, discount=0.7, min_match=2, share=share, contexts=contexts)
    text = toy_text(2000, 5)
    uniform = np.full(len(text), math.log(VOCAB))
    scored = mixture.score(PRIME, text, uniform, settings, VOCAB)
    best = min(nats.sum() for nats in scored.part_nats.values())  # the parts and the blend
    overhead = math.log(4) + len(text) * -math.log(1 - share)
    assert scored.nats.sum() <= best + overhead + 1e-9
    assert scored.nats.sum() < scored.part_nats["network"].sum() - 0.2 * len(text)  # it did learn to ignore it


def test_the_blend_beats_both_parts_where_they_fail_on_different_tokens():
    """Two parts that are each right half the time, on different tokens: the blend learns to keep
    both, and codes the text in fewer nats than either alone (the best part alone could not)."""
    text = toy_text(2000, 6)
    rng = np.random.default_rng(0)
    sure = rng.random(len(text)) < 0.5
    good, poor = math.log(1 / 0.6), math.log(VOCAB * 4)  # 0.6 on the right token, or far less
    network_nats = np.where(sure, good, poor)
    settings = mixture.Settings(max_order=0, discount=0.7, min_match=50, mixer_lr=0.3)
    scored = mixture.score(PRIME, text, network_nats, settings, VOCAB, parts=("network", "counts"))
    parts = {name: scored.part_nats[name].sum() for name in ("network", "counts")}
    assert scored.part_nats["blend"].sum() < min(parts.values()) - 0.05 * len(text)


def test_the_counts_learn_a_new_name_after_one_sighting():
    """What the mixture is for: a token never seen in the priming text is expensive once, cheap after."""
    new = VOCAB - 1
    prime = [t for t in PRIME if t != new]
    text = [1, 2, 3, new, 5, 6, 1, 2, 3, new]
    scored = mixture.score(prime, text, None, SETTINGS, VOCAB, parts=("counts", "match"))
    assert scored.nats[9] < scored.nats[3] / 2


def test_settings_out_of_range_are_refused_by_name():
    with pytest.raises(ValueError, match=r"discount = 1.5 .*share = 1"):
        mixture.Settings(discount=1.5, share=1)
    with pytest.raises(ValueError, match="one finite number per token"):
        mixture.score(PRIME, TEXT, [0.1] * 3, SETTINGS, VOCAB)
    with pytest.raises(ValueError, match="unknown parts"):
        mixture.score(PRIME, TEXT, None, SETTINGS, VOCAB, parts=("counts", "zpaq"))


def test_a_primed_copy_is_reused_but_never_carries_one_scores_learning_into_the_next():
    """Priming is done once per text and copied: each score must still start from the priming
    text alone, with its own discount, exactly as if it had primed itself."""
    rng = random.Random(7)
    prime = [rng.randrange(40) for _ in range(600)]
    ids = [rng.randrange(40) for _ in range(200)]
    nats = np.full(len(ids), math.log(40))
    mixture._PRIMED.clear()
    by_discount = {}
    for discount in (0.5, 0.8, 0.5):
        settings = mixture.Settings(discount=discount)
        scored = mixture.score(prime, ids, nats, settings, vocab_size=40)
        mixture._PRIMED.clear()  # primed afresh: what the copy must equal
        fresh = mixture.score(prime, ids, nats, settings, vocab_size=40)
        assert np.array_equal(scored.nats, fresh.nats)
        by_discount.setdefault(discount, scored.nats)
        assert np.array_equal(by_discount[discount], scored.nats)
    assert not np.array_equal(by_discount[0.5], by_discount[0.8])
    settings = mixture.Settings(discount=0.8)
    counts, _ = mixture.primed(prime, 40, settings)
    assert counts.discount == 0.8
    assert counts.tables == mixture.TokenCounts(40, settings.max_order, 0.8).prime(prime).tables
