"""The byte stage (junglegpt.bytemix): a token's path of decisions is exact, and the byte models
mixed into it peek at nothing, learn what the tokens miss, and cost little where they know nothing."""

from __future__ import annotations

import numpy as np
import pytest

from junglegpt import bytemix

from .helpers import save_tiny_gpt2

TEXT = ("Deep in the jungle, Mowgli ran with the wolves. Baloo taught him the Law of the Jungle, "
        "and Bagheera — the black panther — watched over him. “Good hunting!” said Kaa.\n")
SMALL = bytemix.Settings(table_bits=16)  # the tests' texts are short: small tables build at once


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("tiny")
    save_tiny_gpt2(folder, TEXT * 3, vocab_size=320, context=64)
    return AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def trie(tokenizer):
    return bytemix.TokenTrie.from_tokenizer(tokenizer)


def test_spellings_spell_the_text_and_special_tokens_have_none(tokenizer, trie):
    ids = tokenizer.encode(TEXT)
    assert b"".join(trie.spellings[i] for i in ids) == TEXT.encode("utf-8")
    assert trie.spellings[tokenizer.eos_token_id] is None
    with pytest.raises(ValueError, match="special"):
        trie.path(tokenizer.eos_token_id)


def test_a_tokens_path_multiplies_to_its_probability(trie):
    """The decisions' probabilities along each token's path multiply to the token's probability
    (among spelled tokens), for every token of the vocabulary: the decomposition loses nothing,
    and so the paths' probabilities sum to 1 over the vocabulary."""
    rng = np.random.default_rng(0)
    vocab = len(trie.spellings)
    spelled = trie.order
    for _ in range(3):
        probs = rng.dirichlet(np.full(vocab, 0.3))
        tokens = [int(t) for t in spelled]
        kind, p1, bit, certain, counts, _ = trie.decisions(np.repeat(probs[None], len(tokens), 0), tokens)
        assert ((0 <= p1) & (p1 <= 1)).all()
        taken = np.where(bit == 1, p1, 1 - p1)
        assert (taken[certain] == 1.0).all(), "a certain decision must be certain of the token's own bit"
        ends = np.cumsum(counts)
        products = np.array([taken[end - n : end].prod() for end, n in zip(ends, counts, strict=True)])
        # cumulative sums lose a few digits on the rarest tokens: absolute 1e-15 covers that
        np.testing.assert_allclose(products, probs[tokens] / probs[spelled].sum(), rtol=1e-9, atol=1e-15)
        assert products.sum() == pytest.approx(1.0, abs=1e-9)
        assert set(np.unique(kind)) <= {bytemix.BIT, bytemix.STOP}


def test_a_path_spells_its_token(trie):
    """The BIT decisions of a token's path are its bytes, highest bit first; a STOP decision comes
    exactly where the prefix is itself a token that longer ones extend."""
    for token in trie.order:
        kind, lo, mid, hi, bit = trie.path(int(token))
        spelling = trie.spellings[token]
        bits = "".join(str(b) for b in bit[kind == bytemix.BIT])
        assert bits == "".join(f"{byte:08b}" for byte in spelling)
        stops = [j for j in range(1, len(spelling) + 1)
                 if spelling[:j] in trie._sorted and any(s.startswith(spelling[:j]) and len(s) > j
                                                         for s in trie._sorted)]
        assert (kind == bytemix.STOP).sum() == len(stops)
        assert bit[kind == bytemix.STOP].tolist() == [int(j < len(spelling)) for j in stops]


def test_continuations_are_the_bytes_that_longer_tokens_add(trie):
    allowed = trie.continuations()
    for i, spelling in enumerate(trie._sorted):
        expected = {s[len(spelling)] for s in trie._sorted if s.startswith(spelling) and len(s) > len(spelling)}
        assert set(np.flatnonzero(allowed[i])) == expected


def _decisions(trie, ids, probs_of):
    """What benchmarks/byte_mixing.py records for one stream: every token's decisions, in order."""
    per_token = [trie.decisions(probs_of(position, token)[None], [token]) for position, token in enumerate(ids)]
    kind, p1, bit, certain, counts, lo = (np.concatenate([d[c] for d in per_token]) for c in range(6))
    return dict(kinds=kind, p1s=p1, bits=bit, certain=certain, token_counts=counts, stop_rows=lo)


def _costs(trie, ids, probs_of, prime=b"", settings=SMALL, streams=None):
    """The byte stage's costs, and the decisions; `streams`: each token's stream (one stream if None)."""
    decisions = _decisions(trie, ids, probs_of)
    token_stream = np.zeros(len(ids), np.int64) if streams is None else np.asarray(streams)
    costs = bytemix.mix(token_stream=token_stream, continuations=trie.continuations(), prime=prime,
                        n_streams=int(token_stream.max()) + 1, settings=settings, **decisions)
    return costs, decisions


def _as_decisions(decisions) -> float:
    """The token distribution's own bits, decision by decision."""
    p1, bit, certain = decisions["p1s"], decisions["bits"], decisions["certain"]
    return float(-np.log2(np.where(bit == 1, p1, 1 - p1)[~certain]).sum())


def test_no_decision_is_priced_with_what_comes_after_it(tokenizer, trie):
    ids = tokenizer.encode(TEXT * 2)
    uniform = np.ones(len(trie.spellings))

    def probs_of(position, token):
        return uniform / uniform.sum()

    changed = list(ids)
    k = len(ids) // 2
    changed[k] = next(int(t) for t in trie.order if t != ids[k])
    before, decisions = _costs(trie, ids, probs_of)
    after, _ = _costs(trie, changed, probs_of)
    first = int(decisions["token_counts"][:k].sum())  # the decisions before token k
    np.testing.assert_array_equal(before[:first], after[:first])
    assert not np.array_equal(before[first:], after[first:])


def test_certain_decisions_cost_nothing_and_the_rest_something(tokenizer, trie):
    ids = tokenizer.encode(TEXT)
    costs, decisions = _costs(trie, ids, lambda position, token: np.ones(len(trie.spellings)) / len(trie.spellings))
    assert (costs[decisions["certain"]] == 0).all()
    assert np.isfinite(costs).all() and (costs[~decisions["certain"]] > 0).all()


def test_the_byte_models_learn_what_the_token_distribution_does_not_know(tokenizer, trie):
    """A text that repeats, under a token distribution that knows nothing (uniform): the byte
    models and the match model pick the repeats up, and the byte stage pays far less."""
    ids = tokenizer.encode(TEXT * 6)
    costs, decisions = _costs(trie, ids, lambda position, token: np.ones(len(trie.spellings)) / len(trie.spellings))
    assert costs.sum() < 0.5 * _as_decisions(decisions)


def test_where_the_token_distribution_is_the_truth_the_byte_stage_neither_gains_nor_loses(trie):
    """Tokens drawn one by one, each from a fresh random distribution that the byte stage is given:
    nothing (no context, no repeat) can predict them better than that distribution, so the byte
    stage must not pay much more (the mixer's overhead) and cannot pay less, unless it peeks."""
    rng = np.random.default_rng(1)
    spelled = trie.order
    distributions, ids = [], []
    for _ in range(1500):
        probs = np.zeros(len(trie.spellings))
        probs[spelled] = rng.dirichlet(np.full(len(spelled), 0.5))
        distributions.append(probs)
        ids.append(int(rng.choice(len(probs), p=probs)))
    costs, decisions = _costs(trie, ids, lambda position, token: distributions[position])
    ratio = costs.sum() / _as_decisions(decisions)
    assert 0.98 < ratio < 1.03, ratio


def test_the_settings_validation_chose_are_the_defaults():
    """benchmarks/byte_mixing.py's grid chose these on the validation text (its results file)."""
    import json

    from junglegpt.paths import REPO_ROOT

    chosen = json.loads((REPO_ROOT / "benchmarks/results/byte_mixing_full-cpu-1M.json").read_text())["chosen"]
    defaults = bytemix.Settings()
    assert {name: getattr(defaults, name) for name in chosen} == chosen


@pytest.mark.parametrize("n_streams", [1, 3])
def test_each_decision_is_priced_before_its_own_bit_is_known(tokenizer, trie, n_streams):
    """Flip one decision's bit: every earlier cost stays, and the decision's two costs are the two
    sides of one probability. A model that learned from a bit before pricing it, or looked at the
    next one, fails this (the costs before a changed token, above, cannot see it). With streams
    read side by side, as the compressor reads them, each stream's state stays its own."""
    ids = tokenizer.encode(TEXT * 2)
    decisions = _decisions(trie, ids, lambda position, token: np.ones(len(trie.spellings)) / len(trie.spellings))
    streams = np.arange(len(ids)) % n_streams

    def costs_with(bits):
        return bytemix.mix(token_stream=streams, continuations=trie.continuations(), prime=TEXT.encode(),
                           n_streams=n_streams, settings=SMALL, **{**decisions, "bits": bits})

    costs = costs_with(decisions["bits"])
    uncertain = np.flatnonzero(~decisions["certain"])
    stops = uncertain[decisions["kinds"][uncertain] == bytemix.STOP]
    for d in [*np.random.default_rng(0).choice(uncertain, 20, replace=False), *stops[:5]]:
        flipped = decisions["bits"].copy()
        flipped[d] ^= 1
        other = costs_with(flipped)
        np.testing.assert_array_equal(costs[:d], other[:d])
        assert 2.0 ** -costs[d] + 2.0 ** -other[d] == pytest.approx(1.0, abs=1e-12)


def test_bad_input_is_refused_with_what_was_wanted(trie):
    with pytest.raises(ValueError, match="spelled alike"):
        bytemix.TokenTrie([b"a", b"a", b"ab", None])
    uniform = np.ones(len(trie.spellings)) / len(trie.spellings)
    decisions = _decisions(trie, [int(trie.order[5])] * 3, lambda position, token: uniform)
    good = dict(token_stream=np.zeros(3, np.int64), continuations=trie.continuations(), prime=b"", n_streams=1,
                settings=SMALL, **decisions)
    bytemix.mix(**good)
    for change, wanted in [({"token_counts": decisions["token_counts"] + 1}, "add up"),
                           ({"token_stream": np.array([0, 1, 0])}, "streams numbered"),
                           ({"p1s": np.full(len(decisions["p1s"]), np.nan)}, "numbers"),
                           ({"settings": bytemix.Settings(table_bits=16, min_match=9)}, "match of 1 to 8")]:
        with pytest.raises(ValueError, match=wanted):
            bytemix.mix(**{**good, **change})


def test_a_run_without_mass_is_even_odds_not_nan(trie):
    probs = np.zeros(len(trie.spellings))
    token = int(trie.order[-1])
    probs[token] = 1.0  # every other run is empty
    _, p1, bit, certain, _, _ = trie.decisions(probs[None], [int(trie.order[0])])
    assert np.isfinite(p1).all()


def test_compiled_and_plain_python_give_the_same_costs(tokenizer, trie):
    """With numba the loop is compiled; without it, the module's own code runs as Python. Both must
    price alike: the module is loaded a second time with numba hidden, and both price one text."""
    import importlib.util
    import sys

    pytest.importorskip("numba")
    spec = importlib.util.spec_from_file_location("bytemix_as_python", bytemix.__file__)
    plain = importlib.util.module_from_spec(spec)
    hidden = sys.modules.get("numba")
    sys.modules["numba"] = None  # `from numba import njit` fails: the module's fallback runs
    sys.modules[spec.name] = plain  # where its dataclass looks itself up
    try:
        spec.loader.exec_module(plain)
    finally:
        sys.modules["numba"] = hidden
        del sys.modules[spec.name]
    assert not hasattr(plain._mix_all, "py_func"), "the second copy should be plain Python"
    ids = tokenizer.encode(TEXT)
    decisions = _decisions(trie, ids, lambda position, token: np.ones(len(trie.spellings)) / len(trie.spellings))
    common = dict(token_stream=np.zeros(len(ids), np.int64), continuations=trie.continuations(),
                  prime=TEXT.encode()[:60], n_streams=1, **decisions)
    compiled = bytemix.mix(settings=SMALL, **common)
    as_python = plain.mix(settings=plain.Settings(table_bits=16), **common)
    np.testing.assert_allclose(compiled, as_python, rtol=1e-9, atol=1e-12)
