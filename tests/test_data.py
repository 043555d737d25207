"""Locating, checking, cleaning and splitting the book."""

from __future__ import annotations

import shutil

import pytest

from junglegpt import data as jb
from junglegpt.paths import KAGGLE_INPUT_ENV

STORIES = [t for t, kind in jb.JUNGLE_BOOK_PARTS if kind == "story"]


@pytest.mark.parametrize("edition", ["pg236.txt", "pg35997.txt"])
def test_clean_book_finds_all_parts_and_drops_the_wrapping(editions, edition):
    raw = editions[edition]
    jb.check_text(raw, jb.JUNGLE_BOOK, edition)
    parts = jb.clean_book(raw)
    assert [(p["title"], p["kind"]) for p in parts] == list(jb.JUNGLE_BOOK_PARTS)
    text = jb.join_parts(parts)
    assert 255_000 < len(text) < 285_000
    for junk in ("[Illustration", "Project Gutenberg", "Transcriber", "CONTENTS", "LIST OF ILLUSTRATIONS", "_"):
        assert junk not in text, junk
    by_title = {p["title"]: p["text"] for p in parts}
    assert "Father Wolf" in by_title["Mowgli's Brothers"]
    assert "Kotick" in by_title["The White Seal"]
    assert by_title["Parade Song of the Camp Animals"].rstrip(".!").endswith("Pack and harness, pad and load")
    for title in STORIES:
        assert len(by_title[title]) > 25_000, title  # a story cut short means a heading matched too early


def test_clean_book_with_and_without_gutenberg_header(editions):
    raw = editions["pg35997.txt"]
    body_only = jb.strip_gutenberg(raw)
    assert jb.clean_book(raw) == jb.clean_book(body_only)


def test_reflow_joins_prose_and_keeps_verse_lines():
    block = "It was seven o'clock\nof a warm evening.\n\n     Now Rann the Kite\n        That Mang the Bat\n"
    assert jb.reflow(block) == "It was seven o'clock of a warm evening.\n\nNow Rann the Kite\n   That Mang the Bat"


@pytest.mark.parametrize("edition", ["pg236.txt", "pg35997.txt"])
def test_split_is_about_ten_percent_from_every_story_without_leakage(editions, edition):
    parts = jb.clean_book(editions[edition])
    split = jb.split_parts(parts)
    train, val = jb.join_parts(split["train"]), jb.join_parts(split["validation"])
    assert 0.08 < len(val) / (len(train) + len(val)) < 0.12
    val_by_title = {p["title"]: p["text"] for p in split["validation"]}
    for title in STORIES:
        assert len(val_by_title[title]) > 1000, f"no validation text from {title}"
    train_paragraphs = set(jb.paragraphs(train))
    assert not [p for p in jb.paragraphs(val) if p in train_paragraphs]
    # Nothing lost, nothing added: the two halves hold exactly the book's paragraphs.
    assert sorted(jb.paragraphs(train) + jb.paragraphs(val)) == sorted(jb.paragraphs(jb.join_parts(parts)))


def test_split_is_deterministic_and_depends_on_the_seed(editions):
    parts = jb.clean_book(editions["pg236.txt"])
    assert jb.split_parts(parts) == jb.split_parts(parts)
    assert jb.split_parts(parts, seed=1) != jb.split_parts(parts, seed=2)


def test_heldout_book_is_never_in_the_split(editions, shared_data):
    heldout = jb.clean_text(jb.read_text(shared_data / "heldout" / "pg37364.txt"))
    split = jb.split_parts(jb.clean_book(editions["pg236.txt"]))
    heldout_paragraphs = {p for p in jb.paragraphs(heldout) if len(p) > 200}
    for half in split.values():
        assert not heldout_paragraphs & set(jb.paragraphs(jb.join_parts(half)))


@pytest.mark.parametrize(
    "make_bad, message",
    [
        (lambda raw: "<!DOCTYPE html><html><body>Sorry</body></html>", "HTML page"),
        (lambda raw: "", "empty"),
        (lambda raw: raw[: len(raw) // 2], "truncated"),
        (lambda raw: raw[:-60_000], "truncated"),
    ],
)
def test_check_text_refuses_bad_copies(editions, make_bad, message):
    with pytest.raises(jb.BookTextError, match=message):
        jb.check_text(make_bad(editions["pg236.txt"]), jb.JUNGLE_BOOK, "test")


@pytest.mark.parametrize("other, calls_itself", [
    ("kipling/pg35555.txt", "KIM / Rudyard Kipling"),
    ("kipling/pg15529.txt", "THE RECALL / I am the land of their fathers."),  # reprints the Jungle Book's songs
    ("heldout/pg37364.txt", "THE / SECOND JUNGLE BOOK"),
])
def test_another_book_is_named_not_called_truncated(shared_data, other, calls_itself):
    text = jb.read_text(shared_data / other)
    with pytest.raises(jb.BookTextError, match=f"pg236.txt is not The Jungle Book: .* calls itself '{calls_itself}'"):
        jb.check_text(text, jb.JUNGLE_BOOK, "pg236.txt")


def test_a_complete_copy_without_the_licence_is_accepted(editions):
    for name, text in editions.items():
        body = jb.strip_gutenberg(text)
        assert len(body) < 280_000 or name == "pg35997.txt"  # what the old length check refused
        assert jb.check_text(body, jb.JUNGLE_BOOK, name) == body


def test_text_in_another_encoding_is_refused_naming_it(tmp_path, editions):
    windows = tmp_path / "pg236.txt"
    windows.write_bytes(editions["pg236.txt"].encode("cp1252", errors="replace"))
    with pytest.raises(jb.BookTextError, match=r"is not UTF-8 text .* probably Windows-1252.*iconv -f CP1252"):
        jb.read_text(windows)
    stray = tmp_path / "stray.txt"
    start = editions["pg236.txt"][:5000].encode("utf-8")
    stray.write_bytes(start + b"\xff" + b"more text")
    with pytest.raises(jb.BookTextError, match=rf"byte 0xff at position {len(start):,}\); it is probably Latin-1"):
        jb.read_text(stray)


def test_doubled_carriage_returns_give_the_same_split(tmp_path, editions):
    odd = tmp_path / "pg236.txt"
    odd.write_bytes(editions["pg236.txt"].replace("\n", "\r\r\n").encode("utf-8"))
    assert jb.read_text(odd) == editions["pg236.txt"]


def test_find_text_prefers_data_dir_then_raw(tmp_path, shared_data, monkeypatch, editions):
    raw_dir = tmp_path / "raw"
    assert jb.find_text(jb.JUNGLE_BOOK, raw_dir) == shared_data / "jungle_book" / "pg236.txt"
    monkeypatch.delenv(jb.DATA_DIR_ENV)
    raw_dir.mkdir()
    (raw_dir / "pg236.txt").write_text(editions["pg236.txt"], encoding="utf-8")
    assert jb.find_text(jb.JUNGLE_BOOK, raw_dir) == raw_dir / "pg236.txt"


def test_find_text_refuses_a_bad_local_copy(tmp_path, monkeypatch):
    monkeypatch.delenv(jb.DATA_DIR_ENV)
    (tmp_path / "pg236.txt").write_text("<html>Forbidden</html>", encoding="utf-8")
    with pytest.raises(jb.BookTextError, match="Delete it"):
        jb.find_text(jb.JUNGLE_BOOK, tmp_path)


def test_offline_with_nothing_local_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv(jb.DATA_DIR_ENV)
    unreachable = ("http://127.0.0.1:9/pg236.txt",)  # the discard port: connection refused
    with pytest.raises(FileNotFoundError) as err:
        jb.find_text(jb.JUNGLE_BOOK, tmp_path, urls=unreachable, timeout=2, retries=1)
    assert str(tmp_path / "pg236.txt") in str(err.value)
    assert jb.DATA_DIR_ENV in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_held_out_book_stops_notebook_01_before_any_split(tmp_path, shared_data):
    from .helpers import run_notebook

    only_the_book = tmp_path / "texts" / "jungle_book"
    only_the_book.mkdir(parents=True)
    shutil.copy(shared_data / "jungle_book" / "pg236.txt", only_the_book / "pg236.txt")
    out = tmp_path / "out"
    offline = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}  # refused at once
    ok, tail = run_notebook("01_data_exploration", out, env={jb.DATA_DIR_ENV: str(only_the_book.parent), **offline})
    assert not ok
    assert "The Second Jungle Book (Project Gutenberg #37364) is not on this machine" in tail
    assert not (out / "data" / "train.txt").exists()


def test_books_attached_on_kaggle_are_found_by_content_whatever_their_names(tmp_path, shared_data, monkeypatch):
    monkeypatch.delenv(jb.DATA_DIR_ENV)
    attached = tmp_path / "kaggle-input"
    (attached / "kipling-texts" / "books").mkdir(parents=True)
    book = attached / "kipling-texts" / "books" / "The Jungle Book.txt"
    second = attached / "kipling-texts" / "book-2.txt"
    shutil.copy(shared_data / "jungle_book" / "pg236.txt", book)
    shutil.copy(shared_data / "heldout" / "pg37364.txt", second)
    (attached / "a-note.txt").write_text("Mowgli, Bagheera and Baloo: not a book.", encoding="utf-8")
    monkeypatch.setenv(KAGGLE_INPUT_ENV, str(attached))
    offline = ("http://127.0.0.1:9/pg.txt",)  # nothing is downloaded: both are found first
    assert jb.find_text(jb.JUNGLE_BOOK, tmp_path / "raw", urls=offline, retries=1) == book
    assert jb.find_text(jb.SECOND_JUNGLE_BOOK, tmp_path / "raw", urls=offline, retries=1) == second
    monkeypatch.setenv(KAGGLE_INPUT_ENV, str(tmp_path / "nothing-attached"))
    with pytest.raises(FileNotFoundError, match="any .txt file under .*nothing-attached"):
        jb.find_text(jb.JUNGLE_BOOK, tmp_path / "raw", urls=offline, timeout=2, retries=1)


def test_on_kaggle_without_the_book_the_message_names_what_was_refused_and_how_to_attach_it(
        tmp_path, shared_data, monkeypatch):
    """Internet off, and what is attached is another book, a truncated copy and a web page."""
    monkeypatch.delenv(jb.DATA_DIR_ENV)
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    attached = tmp_path / "kaggle-input" / "my-upload"
    attached.mkdir(parents=True)
    shutil.copy(shared_data / "heldout" / "pg37364.txt", attached / "jungle.txt")  # the Second Jungle Book
    whole = (shared_data / "jungle_book" / "pg236.txt").read_text(encoding="utf-8")
    (attached / "pg236.txt").write_text(whole[: len(whole) // 3], encoding="utf-8")  # truncated
    (attached / "pg236.html").write_text("<html><body>The Jungle Book</body></html>", encoding="utf-8")
    monkeypatch.setenv(KAGGLE_INPUT_ENV, str(tmp_path / "kaggle-input"))
    with pytest.raises(FileNotFoundError) as caught:
        jb.find_text(jb.JUNGLE_BOOK, tmp_path / "raw", urls=("http://127.0.0.1:9/pg.txt",), timeout=2, retries=1)
    message = str(caught.value)
    assert f"refused {attached / 'jungle.txt'}" in message and f"refused {attached / 'pg236.txt'}" in message
    assert f"refused {attached / 'pg236.html'}: a web page" in message
    assert "Add Input > Datasets" in message and "./run_all.sh --kaggle" in message and "Add Input > Upload" in message
