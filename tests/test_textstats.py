from __future__ import annotations

from junglegpt import textstats as ts


def test_distinct_and_repetition():
    assert ts.distinct_n("a b c d", 1) == 1.0
    assert ts.distinct_n("the the the the", 1) == 0.25
    assert ts.repetition_rate("a b c a b c a b c", n=3) == 4 / 7
    assert ts.repetition_rate("one two three four", n=3) == 0.0


def test_longest_copied_span_against_brute_force():
    source = "It was seven o'clock of a very warm evening in the Seeonee hills"
    text = "Once, at seven o'clock of a cold evening in the Seeonee hills, he woke."
    brute = max((text[i:j] for i in range(len(text)) for j in range(i + 1, len(text) + 1) if text[i:j] in source),
                key=len)
    assert ts.longest_copied_span(text, source) == brute == " evening in the Seeonee hills"


def test_ngram_overlap():
    source = set(ts.ngrams(ts.words("a b c d e f g h i j"), 8))
    assert ts.ngram_overlap("a b c d e f g h i", source) == 1.0
    assert ts.ngram_overlap("a b c d e f g x i", source) == 0.0
