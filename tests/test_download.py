"""The download path, against a loopback HTTP server that misbehaves on purpose."""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from junglegpt import data as jb


@pytest.fixture(scope="module")
def server(editions):
    book = editions["pg236.txt"].encode("utf-8")

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, status, body, length=None, content_type="text/plain; charset=utf-8"):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(length if length is not None else len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/good.txt":
                self._send(200, book)
            elif self.path == "/truncated.txt":
                self._send(200, book[: len(book) // 3], length=len(book))
                self.close_connection = True
            elif self.path == "/short.txt":  # a complete response of an incomplete book
                self._send(200, book[: len(book) // 3])
            elif self.path == "/html.txt":
                self._send(200, b"<!DOCTYPE html><html><body>Please log in</body></html>", content_type="text/html")
            elif self.path == "/silent.txt":  # accepts the connection, never answers
                time.sleep(10)
            elif self.path == "/stall.txt":
                self.send_response(200)
                self.send_header("Content-Length", str(len(book)))
                self.end_headers()
                self.wfile.write(book[:1000])
                self.wfile.flush()
                time.sleep(3)
            else:
                self._send(404, b"not found")

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_download_writes_the_checked_text(server, tmp_path, editions):
    dest = jb.download(f"{server}/good.txt", tmp_path / "pg236.txt", jb.JUNGLE_BOOK, timeout=5, retries=1)
    assert dest.read_text(encoding="utf-8") == editions["pg236.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["pg236.txt"]


@pytest.mark.parametrize(
    "path, reason",
    [
        ("/missing.txt", "404"),
        ("/stall.txt", "timed out"),
        ("/truncated.txt", "IncompleteRead|bytes"),
        ("/short.txt", "truncated"),
        ("/html.txt", "HTML page"),
    ],
)
def test_download_failures_leave_nothing_behind(server, tmp_path, path, reason):
    dest = tmp_path / "pg236.txt"
    with pytest.raises(ConnectionError, match=reason):
        jb.download(f"{server}{path}", dest, jb.JUNGLE_BOOK, timeout=1, retries=2)
    assert list(tmp_path.iterdir()) == []


def test_failed_download_keeps_a_good_older_copy(server, tmp_path, editions):
    dest = tmp_path / "pg236.txt"
    dest.write_text(editions["pg236.txt"], encoding="utf-8")
    with pytest.raises(ConnectionError):
        jb.download(f"{server}/truncated.txt", dest, jb.JUNGLE_BOOK, timeout=1, retries=1)
    assert dest.read_text(encoding="utf-8") == editions["pg236.txt"]


def test_find_text_falls_back_to_the_second_url(server, tmp_path, monkeypatch, editions):
    monkeypatch.delenv(jb.DATA_DIR_ENV)
    urls = (f"{server}/html.txt", f"{server}/good.txt")
    path = jb.find_text(jb.JUNGLE_BOOK, tmp_path, urls=urls, timeout=2, retries=1)
    assert path == tmp_path / "pg236.txt"
    assert path.read_text(encoding="utf-8") == editions["pg236.txt"]
    # Found locally next time: no server needed.
    assert jb.find_text(jb.JUNGLE_BOOK, tmp_path, urls=("http://127.0.0.1:9/x",), retries=1) == path


def test_a_network_that_never_answers_is_given_up_on_in_time_with_each_attempt_shown(server, tmp_path, monkeypatch,
                                                                                     capsys):
    monkeypatch.delenv(jb.DATA_DIR_ENV)
    urls = (f"{server}/silent.txt", f"{server}/silent.txt?again")
    start = time.monotonic()
    with pytest.raises(FileNotFoundError, match="could not be downloaded"):
        jb.find_text(jb.JUNGLE_BOOK, tmp_path, urls=urls, timeout=30, retries=3, total_timeout=3)
    assert time.monotonic() - start < 6, "the total time allowed for downloading is respected"
    said = capsys.readouterr().out
    assert f"downloading {server}/silent.txt (attempt 1 of 3) ..." in said and "failed: " in said
    assert list(tmp_path.iterdir()) == []
