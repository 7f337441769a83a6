"""The real Gutenberg download code, against a local HTTP server standing in for the site."""

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from corpora import CATALOGUE, UserError, load_corpus
from corpora import download as dl

from .conftest import CORPORA

BY_EBOOK = {d.ebook: CORPORA / "pkd" / d.file for d in CATALOGUE["pkd"].documents}


class FakeGutenberg(BaseHTTPRequestHandler):
    requests: ClassVar[list[tuple[str, str]]] = []
    fail_first: ClassVar[set[str]] = set()

    def do_GET(self) -> None:
        type(self).requests.append((self.path, self.headers.get("User-Agent", "")))
        if self.path in type(self).fail_first:
            type(self).fail_first.discard(self.path)
            self.send_response(503)
            self.end_headers()
            return
        parts = self.path.strip("/").split("/")  # cache/epub/N/pgN.txt
        path = BY_EBOOK.get(int(parts[2])) if len(parts) == 4 and parts[2].isdigit() else None
        if path is None:
            self.send_response(404)
            self.end_headers()
            return
        body = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def mirror(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeGutenberg]]:
    FakeGutenberg.requests = []
    FakeGutenberg.fail_first = set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGutenberg)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("ASSISTANT_GUTENBERG_MIRROR", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.delenv("ASSISTANT_CORPORA")
    monkeypatch.setattr(dl, "RETRIES", 2)
    yield FakeGutenberg
    server.shutdown()


def test_download_retries_records_checksums_then_uses_the_cache(mirror: type[FakeGutenberg], isolated_home: Path):
    first = f"/cache/epub/{CATALOGUE['pkd'].documents[0].ebook}/pg{CATALOGUE['pkd'].documents[0].ebook}.txt"
    mirror.fail_first = {first}
    corpus = load_corpus("pkd")
    assert corpus.source == "download"
    assert len(corpus.documents) == 13
    assert [p for p, _ in mirror.requests].count(first) == 2  # one 503, one retry
    assert all(ua.startswith("ghostwriter/") for _, ua in mirror.requests)
    cache = isolated_home / "corpora" / "pkd"
    sums = json.loads((cache / "checksums.json").read_text())
    assert sums["the-gun.txt"] == dl.sha256((CORPORA / "pkd" / "the-gun.txt").read_bytes())
    assert corpus.checksum == load_corpus("pkd").checksum  # same text as the shared copy would give

    mirror.requests.clear()
    again = load_corpus("pkd")
    assert mirror.requests == []
    assert again.source == str(cache)

    (cache / "the-gun.txt").write_bytes(b"damaged")
    load_corpus("pkd")
    assert len(mirror.requests) == 13  # a damaged cache is fetched again
    assert (cache / "the-gun.txt").read_bytes() == (CORPORA / "pkd" / "the-gun.txt").read_bytes()


def test_missing_page_is_a_one_line_error(mirror: type[FakeGutenberg]):
    with pytest.raises(UserError, match="answered HTTP 404"):
        dl.fetch(f"{os.environ['ASSISTANT_GUTENBERG_MIRROR']}/cache/epub/1/pg1.txt")
    assert [path for path, _ in mirror.requests] == ["/cache/epub/1/pg1.txt"]  # a 404 is not retried


def test_unreachable_host_says_how_to_work_offline(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(dl, "RETRIES", 0)
    with pytest.raises(UserError, match="ASSISTANT_CORPORA"):
        dl.fetch("http://127.0.0.1:9/nothing", backoff=0)
