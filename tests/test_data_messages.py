"""What a user is told about the data folder and the book files when they are not what they should be
(issue 33): each message names the file or folder, what it is, and what to do; nothing is downloaded
when what is on the disk already explains the problem."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import re
import subprocess
import time
import zipfile

import pytest

from junglegpt import data as jb
from junglegpt.paths import KAGGLE_INPUT_ENV

REFUSED = ("http://127.0.0.1:9/pg.txt",)  # the discard port: a connection refused at once


@pytest.fixture(autouse=True)
def _nothing_attached(tmp_path, monkeypatch):
    monkeypatch.setenv(KAGGLE_INPUT_ENV, str(tmp_path / "no-kaggle-input"))


@pytest.fixture(scope="module")
def book_start(editions) -> str:
    return editions["pg236.txt"][:20_000]


def _zip(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("pg236.txt", text)
    return buffer.getvalue()


def _epub(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip")
        archive.writestr("OEBPS/book.html", f"<html><body>{text}</body></html>")
    return buffer.getvalue()


@pytest.mark.parametrize("encode, says, fix", [
    (lambda t: gzip.compress(t.encode()), "is gzip-compressed", "gzip -dc "),
    (lambda t: bz2.compress(t.encode()), "is bzip2-compressed", "bzip2 -dc "),
    (lambda t: lzma.compress(t.encode()), "is xz-compressed", "xz -dc "),
    (lambda t: b"\x28\xb5\x2f\xfd" + os.urandom(2000), "is zstd-compressed", "zstd -dc "),
    (_zip, "is a zip archive", "unzip -p "),
    (_epub, "is an EPUB e-book", "Plain Text UTF-8"),
    (lambda t: t.encode("utf-16"), r"is UTF-16 text \(with a byte-order mark\)", "iconv -f UTF-16 -t UTF-8 "),
    (lambda t: b"\xfe\xff" + t.encode("utf-16-be"), r"is UTF-16 text \(with a byte-order mark\)",
     "iconv -f UTF-16 -t UTF-8 "),
    (lambda t: t.encode("utf-16-le"), r"is UTF-16 text \(little-endian", "iconv -f UTF-16LE -t UTF-8 "),
    (lambda t: t.encode("utf-16-be"), r"is UTF-16 text \(big-endian", "iconv -f UTF-16BE -t UTF-8 "),
    (lambda t: t.encode("utf-32"), "is UTF-32 text", "iconv -f UTF-32 -t UTF-8 "),
    (lambda t: t.encode()[:5000] + b"\x00" * 64 + t.encode()[5000:], "holds 64 NUL bytes", "not plain text"),
])
def test_compressed_and_utf16_books_are_named_with_the_command_that_fixes_them(tmp_path, book_start, encode,
                                                                              says, fix):
    """Before: 'not UTF-8 ... probably Latin-1, iconv -f LATIN1', which turns them into garbage."""
    path = tmp_path / "pg236.txt"
    path.write_bytes(encode(book_start))
    with pytest.raises(jb.BookTextError) as caught:
        jb.read_text(path)
    message = str(caught.value)
    assert message.startswith(f"{path} ")
    assert re.search(says, message), message
    assert fix in message, message
    assert "Latin-1" not in message and "\n" not in message


def test_the_fix_for_a_compressed_book_gives_back_the_text_and_keeps_the_original(tmp_path, book_start):
    path = tmp_path / "pg236.txt"
    path.write_bytes(gzip.compress(book_start.encode()))
    with pytest.raises(jb.BookTextError) as caught:
        jb.read_text(path)
    command = re.search(r"`([^`]+)`", str(caught.value)).group(1)
    subprocess.run(command, shell=True, check=True, cwd=tmp_path)
    fixed = tmp_path / "pg236.plain.txt"
    assert fixed.name in str(caught.value)
    assert jb.read_text(fixed) == book_start
    assert path.exists()  # nothing lost


def test_a_utf8_byte_order_mark_is_accepted(tmp_path, book_start):
    path = tmp_path / "pg236.txt"
    path.write_bytes(b"\xef\xbb\xbf" + book_start.encode())
    assert jb.read_text(path) == book_start


def test_a_compressed_book_in_the_data_folder_is_named_without_trying_to_download(tmp_path, monkeypatch, capsys,
                                                                                  shared_data):
    books = tmp_path / "books" / "jungle_book"
    books.mkdir(parents=True)
    (books / "pg236.txt").write_bytes(gzip.compress((shared_data / "jungle_book" / "pg236.txt").read_bytes()))
    monkeypatch.setenv(jb.DATA_DIR_ENV, str(books.parent))
    with pytest.raises(jb.BookTextError, match="is gzip-compressed"):
        jb.find_text(jb.JUNGLE_BOOK, tmp_path / "raw", urls=REFUSED, timeout=2, retries=1)
    assert "downloading" not in capsys.readouterr().out


# --- the data folder itself -------------------------------------------------------------------


@pytest.mark.parametrize("make, says", [
    (lambda p: None, "which does not exist"),
    (lambda p: p.write_text("books"), "which is a file, not a folder"),
    (lambda p: p.symlink_to(p), "which is a link that loops"),
    (lambda p: p.symlink_to(p.parent / "gone"), "which is a link to .*gone, which does not exist"),
])
def test_a_data_folder_that_is_not_one_is_said_at_once_naming_the_variable(tmp_path, monkeypatch, capsys, make,
                                                                           says):
    """Before: six seconds of download attempts, then 'not on this machine'."""
    data_dir = tmp_path / "boks"
    make(data_dir)
    monkeypatch.setenv(jb.DATA_DIR_ENV, str(data_dir))
    start = time.monotonic()
    with pytest.raises(jb.DataFolderError, match=f"^{jb.DATA_DIR_ENV} is set to {data_dir}, {says}") as caught:
        jb.find_text(jb.JUNGLE_BOOK, tmp_path / "raw", urls=REFUSED, timeout=2, retries=3)
    assert time.monotonic() - start < 1
    assert "downloading" not in capsys.readouterr().out
    assert "unset it" in str(caught.value) and "jungle_book/pg236.txt" in str(caught.value)


def test_a_relative_data_folder_that_does_not_exist_says_where_it_was_looked_for(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(jb.DATA_DIR_ENV, "shared/data")
    with pytest.raises(jb.DataFolderError, match=f"set to shared/data \\(that is, {tmp_path}/shared/data\\)"):
        jb.find_text(jb.JUNGLE_BOOK, tmp_path / "raw", urls=REFUSED, timeout=2, retries=1)


def test_the_runner_is_not_stopped_by_a_missing_data_folder_the_notebook_says_it(tmp_path, monkeypatch):
    """run_all asks local_copy whether the book changed: it answers 'no copy', and notebook 01 says why."""
    monkeypatch.setenv(jb.DATA_DIR_ENV, str(tmp_path / "nope"))
    assert jb.local_copy(jb.JUNGLE_BOOK, tmp_path / "raw") is None


# --- what is where the book should be ----------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    folder = tmp_path / "books"
    (folder / "jungle_book").mkdir(parents=True)
    monkeypatch.setenv(jb.DATA_DIR_ENV, str(folder))
    return folder


@pytest.mark.parametrize("make, found", [
    (lambda p: p.mkdir(), "a folder, not a file"),
    (lambda p: p.symlink_to(p), "a link that loops"),
    (lambda p: p.symlink_to(p.parent / "pg236-old.txt"), "a link to .*pg236-old.txt, which does not exist"),
    (lambda p: os.mkfifo(p), "not a regular file"),
])
def test_something_else_where_the_book_should_be_is_named_without_downloading(data_dir, tmp_path, capsys, make,
                                                                              found):
    expected = data_dir / "jungle_book" / "pg236.txt"
    make(expected)
    start = time.monotonic()
    with pytest.raises(FileNotFoundError) as caught:
        jb.find_text(jb.JUNGLE_BOOK, tmp_path / "raw", urls=REFUSED, timeout=2, retries=3)
    assert time.monotonic() - start < 1
    assert "downloading" not in capsys.readouterr().out
    message = str(caught.value)
    assert message.startswith("The Jungle Book (Project Gutenberg #236) is not on this machine")
    assert re.search(f"{expected}: {found}", message), message


def test_only_the_1910_edition_is_used_and_said(data_dir, tmp_path, shared_data, capsys):
    (data_dir / "jungle_book" / "pg35997.txt").symlink_to(shared_data / "jungle_book" / "pg35997.txt")
    path = jb.find_text(jb.JUNGLE_BOOK, tmp_path / "raw", urls=REFUSED, timeout=2, retries=1)
    assert path == data_dir / "jungle_book" / "pg35997.txt"
    said = capsys.readouterr().out
    assert "downloading" not in said
    assert f"{data_dir / 'jungle_book' / 'pg236.txt'} is not there: using {path}, the 1910 edition" in said
    assert len(jb.clean_book(jb.read_text(path))) == 14
    assert jb.local_copy(jb.JUNGLE_BOOK, tmp_path / "raw") == path  # what run_all watches for changes


def test_the_current_edition_is_preferred_to_the_1910_one_anywhere(data_dir, tmp_path, shared_data):
    (data_dir / "jungle_book" / "pg35997.txt").symlink_to(shared_data / "jungle_book" / "pg35997.txt")
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "pg236.txt").symlink_to(shared_data / "jungle_book" / "pg236.txt")
    assert jb.find_text(jb.JUNGLE_BOOK, raw, urls=REFUSED, retries=1) == raw / "pg236.txt"


def test_not_found_says_which_folders_were_searched_what_is_there_and_what_was_expected(data_dir, tmp_path):
    (data_dir / "jungle_book" / "pg236.txt").write_text("x")
    (data_dir / "kipling").mkdir()
    (data_dir / "pg37364.txt.gz").write_bytes(b"\x1f\x8b")
    with pytest.raises(FileNotFoundError) as caught:
        jb.find_text(jb.SECOND_JUNGLE_BOOK, tmp_path / "raw", urls=REFUSED, timeout=2, retries=1)
    message = str(caught.value)
    assert f"{data_dir / 'heldout' / 'pg37364.txt'}: nothing there ({data_dir / 'heldout'} does not exist)" in message
    assert f"{data_dir / 'pg37364.txt'}: nothing there" in message
    assert f"{tmp_path / 'raw' / 'pg37364.txt'}: nothing there ({tmp_path / 'raw'} does not exist)" in message
    assert f"{data_dir} holds: jungle_book/, kipling/, pg37364.txt.gz (compressed)" in message


# --- MANIFEST.tsv -------------------------------------------------------------------------------


@pytest.mark.parametrize("content, says", [
    (b"\x1f\x8b\x08\x00binary\xff\xfe", r"MANIFEST.tsv is not UTF-8 text \(byte 0x8b on line 1\)"),
    (b"file\tgutenberg_id\njungle_book/pg236.txt\t236\n", r"MANIFEST.tsv line 1 names the columns \['file', "
                                                           r"'gutenberg_id'\], without `path`"),
    (b"path,gutenberg_id\njungle_book/pg236.txt,236\n", r"MANIFEST.tsv line 1 .* \(separated by commas"),
    (b"path\tgutenberg_id\nheldout/pg37364.txt\t37364\njungle_book/pg236.txt\n",
     r"MANIFEST.tsv line 3 has 1 column: `path` and `gutenberg_id` are columns 1 and 2"),
    (b"path\tgutenberg_id\n\t236\n", r"MANIFEST.tsv line 2 lists #236 without a path"),
    (b"path\tgutenberg_id\njungle_book/pg236.txt\t236\n\nheldout/pg37364.txt\n",  # after the book's line
     r"MANIFEST.tsv line 4 has 1 column"),
])
def test_a_damaged_manifest_is_named_with_its_line_and_what_it_should_hold(data_dir, tmp_path, content, says):
    """Before: a bare UnicodeDecodeError, KeyError: 'path' or TypeError."""
    (data_dir / "MANIFEST.tsv").write_bytes(content)
    with pytest.raises(jb.DataFolderError, match=f"^{data_dir}/{says}") as caught:
        jb.find_text(jb.JUNGLE_BOOK, tmp_path / "raw", urls=REFUSED, timeout=2, retries=1)
    assert "delete it" in str(caught.value)


def test_a_manifest_with_a_byte_order_mark_is_read(data_dir, tmp_path, shared_data):
    (data_dir / "elsewhere").mkdir()
    (data_dir / "elsewhere" / "jb.txt").symlink_to(shared_data / "jungle_book" / "pg236.txt")
    (data_dir / "MANIFEST.tsv").write_bytes(b"\xef\xbb\xbfpath\tgutenberg_id\nelsewhere/jb.txt\t236\n")
    assert jb.find_text(jb.JUNGLE_BOOK, tmp_path / "raw", urls=REFUSED, retries=1) == data_dir / "elsewhere/jb.txt"


def test_the_shared_manifest_is_read_as_before(shared_data):
    assert jb.find_text(jb.SECOND_JUNGLE_BOOK) == shared_data / "heldout" / "pg37364.txt"
