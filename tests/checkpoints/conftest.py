"""A local file server for the download tests (127.0.0.1, a thread of the test process) that can also
misbehave: send half a file and close, or reset the connection midway. Every test here gets its own
empty cache (`MASKDINO_HOME`) and a mirror that refuses connections unless it sets a server, so
nothing ever touches ~/.cache or the network."""

from __future__ import annotations

import shutil
import socket
import struct
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


class FileServer(ThreadingHTTPServer):
    """Serves `files[name]` at `/<name>`, as `modes[name]` says: "full", "half" (Content-Length of the
    whole file, half the bytes, then a clean close) or "reset" (a quarter, then a TCP reset)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, Path] = {}
        self.modes: dict[str, str] = {}
        self.requests: list[str] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/mirror/"

    def handle_error(self, request, client_address) -> None:
        pass  # the misbehaving modes break their own connections on purpose

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join()


class _Handler(BaseHTTPRequestHandler):
    server: FileServer

    def do_GET(self) -> None:
        name = urllib.parse.unquote(self.path.removeprefix("/mirror/"))
        self.server.requests.append(name)
        path = self.server.files.get(name)
        if path is None:
            self.send_error(404)
            return
        size = path.stat().st_size
        mode = self.server.modes.get(name, "full")
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        with path.open("rb") as f:
            if mode == "full":
                shutil.copyfileobj(f, self.wfile)
                return
            self.wfile.write(f.read(size // 2 if mode == "half" else size // 4))
        self.wfile.flush()
        self.close_connection = True
        if mode == "reset":  # linger 0: close sends RST instead of FIN
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server(monkeypatch) -> Iterator[FileServer]:
    served = FileServer()
    monkeypatch.setenv("MASKDINO_MIRROR", served.url)
    yield served
    served.stop()


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch) -> Path:
    """An empty cache per test, and a mirror nobody listens on (the `server` fixture replaces it)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("MASKDINO_HOME", str(cache))
    monkeypatch.setenv("MASKDINO_MIRROR", f"http://127.0.0.1:{closed_port()}/")
    return cache


def closed_port() -> int:
    """A local port with nothing listening on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
