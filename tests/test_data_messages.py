"""What a user is told about the book files when they are not what they should be (issue 33): each
message names the file, what it is, and what to do."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import re
import subprocess
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
