"""Notebook 05 and its helpers: headless output, same seed same text, bad input, the widget callbacks."""

from __future__ import annotations

import json

import pytest

from junglegpt.generation import GenerationInputError, ModelShelf, Request, generate, next_tokens, prepare
from junglegpt.paths import OutputDirs
from junglegpt.playground import Playground
from junglegpt.sizes import SIZES


@pytest.fixture(scope="module")
def shelf(smoke_run):
    return ModelShelf(smoke_run[0], device="cpu")


def test_headless_run_writes_a_generation_for_every_size(smoke_run):
    out, _ = smoke_run
    generations = json.loads((out.root / "generations.json").read_text())["generations"]
    assert [g["size"] for g in generations] == list(SIZES)
    for g in generations:
        assert g["text"].startswith("Deep in the jungle, Mowgli")
        assert g["tokens_per_s"] > 0 and {"temperature", "top_p", "top_k", "seed"} <= set(g)


def test_same_seed_same_text_and_another_seed_differs(shelf):
    request = Request(size="1M", max_new_tokens=15, seed=7)
    assert generate(shelf, request)["text"] == generate(shelf, request)["text"]
    texts = {generate(shelf, Request(size="1M", max_new_tokens=15, seed=s))["text"] for s in range(4)}
    assert len(texts) > 1


def test_empty_prompt_starts_from_end_of_text(shelf):
    result = generate(shelf, Request(prompt="", size="1M", max_new_tokens=5))
    assert result["new_tokens"] == 5 and "empty" in result["notes"][0]


def test_prompt_longer_than_the_context_is_cut_from_the_left(shelf):
    _, tokenizer = shelf.get("1M")
    long_prompt = "Mowgli ran. " * 200
    prepared = prepare(Request(prompt=long_prompt, size="1M", max_new_tokens=56), tokenizer, 256)
    assert prepared.input_ids.shape[1] == 200
    assert "cut off" in prepared.notes[0]
    assert tokenizer.decode(prepared.input_ids[0]) in long_prompt


def test_unicode_and_emoji_prompts_work(shelf):
    result = generate(shelf, Request(prompt="Ünïcödé 🐯🐍 — “jungle”", size="1M", max_new_tokens=5))
    assert result["text"].startswith("Ünïcödé 🐯🐍 — “jungle”")


def test_temperature_zero_or_below_is_greedy(shelf):
    results = [generate(shelf, Request(size="1M", max_new_tokens=8, temperature=t, seed=s))
               for t, s in [(0, 1), (-1, 2)]]
    assert results[0]["text"] == results[1]["text"]
    assert "greedy" in results[0]["notes"][0]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"temperature": 50}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": -1}, "top_k"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"max_new_tokens": 400}, "no room"),
    ],
)
def test_bad_settings_are_explained(shelf, change, message):
    with pytest.raises(GenerationInputError, match=message):
        generate(shelf, Request(size="1M", **change))


def test_untrained_size_names_the_notebook(tmp_path):
    empty = ModelShelf(OutputDirs(tmp_path))
    with pytest.raises(GenerationInputError, match="03_train.ipynb"):
        generate(empty, Request(size="15M"))


def test_playground_callbacks(shelf):
    ui = Playground(shelf, Request(size="1M", max_new_tokens=5))
    ui.widget()  # builds without a frontend
    result = ui.on_generate()
    assert result["size"] == "1M" and "Deep in the jungle" in ui.output.value
    assert "tokens/s" in ui.status.value

    ui.top_p.value = 0.05
    ui.temperature.value = 0.0
    assert "greedy" in ui.on_generate()["notes"][0]

    ui.max_new_tokens.value = 3
    assert [r["size"] for r in ui.on_compare()] == shelf.available()
    assert "100M" in ui.comparison.value

    tables = ui.on_next_tokens()
    assert set(tables) == set(SIZES) and all(len(t) == 10 for t in tables.values())
    assert all(0 < p <= 1 for _, p in tables["1M"])
    first_choice = tables["1M"][0][0]
    ui.next_choices.children[0].click()  # runs in the background, like every button
    ui.wait()
    assert ui.prompt.value == "Deep in the jungle, Mowgli" + first_choice

    ui.prompt.value = ""
    assert ui.on_generate() is not None  # an empty prompt is explained, not an error
    assert "empty" in ui.status.value


@pytest.mark.parametrize("change, message", [
    ({"temperature": float("nan")}, "temperature=nan: give a finite number"),
    ({"temperature": "warm"}, "temperature='warm' is not a number"),
    ({"seed": 2**70}, "seed=1180591620717411303424: choose a whole number from 0"),
    ({"seed": -1}, "choose a whole number from 0"),
    ({"max_new_tokens": 2.5}, "max_new_tokens=2.5: give a whole number"),
])
def test_odd_numbers_are_explained_not_crashed_on(shelf, change, message):
    with pytest.raises(GenerationInputError, match=message):
        generate(shelf, Request(size="1M", **change))


def test_numbers_typed_as_text_and_sizes_in_lower_case_work(shelf):
    typed = generate(shelf, Request(size="1m", max_new_tokens="6", temperature="0.8", seed="7"))
    same = generate(shelf, Request(size="1M", max_new_tokens=6, temperature=0.8, seed=7))
    assert typed["text"] == same["text"]


def test_a_size_that_does_not_exist_is_not_called_untrained(shelf):
    with pytest.raises(GenerationInputError, match="unknown model size '2M': choose one of 1M, 3M"):
        generate(shelf, Request(size="2M"))


def test_next_tokens_refuses_more_than_the_vocabulary(shelf):
    with pytest.raises(GenerationInputError, match="k=5000: choose a whole number from 1 to 2,048"):
        next_tokens(shelf, "1M", "Mowgli", k=5000)


def test_stop_ends_a_generation_at_the_next_token(shelf):
    import threading

    stop, pieces = threading.Event(), []

    def on_text(text):
        pieces.append(text)
        if len(pieces) == 3:
            stop.set()  # what the Stop button does

    result = generate(shelf, Request(size="1M", max_new_tokens=150, temperature=1.0, top_k=0, top_p=1.0),
                      on_text=on_text, stop=stop)
    assert result["stopped"] and result["new_tokens"] < 10
    assert not generate(shelf, Request(size="1M", max_new_tokens=5), stop=threading.Event())["stopped"]


def test_the_playground_disables_its_controls_while_busy_and_shows_errors_in_plain_words(shelf):
    import threading

    ui = Playground(shelf, Request(size="1M", max_new_tokens=5))
    ui.widget()
    release = threading.Event()
    ui.start(lambda: release.wait(10), "waiting")
    assert ui.busy and ui.generate_button.disabled and ui.prompt.disabled and not ui.stop_button.disabled
    assert ui.start(ui.on_generate, "generating") is None and "Busy" in ui.status.value  # one task at a time
    release.set()
    ui.wait(10)
    assert not ui.busy and not ui.generate_button.disabled and ui.stop_button.disabled

    def broken():
        raise RuntimeError("the model file is unreadable")

    ui.start(broken, "loading")
    ui.wait(10)
    assert "Something went wrong (RuntimeError: the model file is unreadable)" in ui.status.value
    assert not ui.generate_button.disabled  # and it still works
    ui.generate_button.click()
    ui.wait(30)
    assert "tokens/s" in ui.status.value


def test_the_stop_button_stops_the_playground(shelf):
    ui = Playground(shelf, Request(size="1M", max_new_tokens=200, temperature=1.0, top_k=0, top_p=1.0))
    ui.widget()
    real_generate = generate

    def generate_then_press_stop(*args, on_text=None, **kwargs):
        def on_text_and_stop(text):
            on_text(text)
            ui.stop_button.click()

        return real_generate(*args, on_text=on_text_and_stop, **kwargs)

    import junglegpt.playground as playground

    playground.generate, saved = generate_then_press_stop, playground.generate
    try:
        ui.generate_button.click()
        ui.wait(30)
    finally:
        playground.generate = saved
    assert ui.status.value.count("Stopped.") == 1 and not ui.busy
