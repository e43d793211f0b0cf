"""The serving suite's client (graders/suites/inference.py): a student's server that is missing,
hangs or answers something that is not JSON fails the check with that reason, never an error of
the grader; and the grader's count of speculative acceptances."""
from __future__ import annotations

import http.server
import socketserver
import threading
import time
from pathlib import Path

import pytest

from graders.suites.inference import Server, expected_counts


class _Handle:
    def __init__(self, folder: Path):
        self.folder = folder

    def artifact_path(self, relpath: str) -> Path:
        return self.folder / relpath


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # the hung case: the client has hung up
        pass


def serve(folder: Path, body: bytes, delay_s: float = 0.0):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            time.sleep(delay_s)
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def address_string(self):  # a Unix socket has no client address
            return "unix"

        def log_message(self, *args):
            pass

    server = _UnixHTTPServer(str(folder / "serving.sock"), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_missing_socket_fails_with_that_reason(tmp_path):
    with pytest.raises(AssertionError, match="serving.sock"):
        Server.on_socket(_Handle(tmp_path), timeout_s=2)


def test_answer_that_is_not_json_fails_with_that_reason(tmp_path):
    server = serve(tmp_path, b"<html>not json</html>")
    try:
        client = Server.on_socket(_Handle(tmp_path), timeout_s=5)
        with pytest.raises(AssertionError, match="JSON"):
            client(client.client.models.list)
    finally:
        server.shutdown()


def test_hung_server_fails_after_the_client_timeout(tmp_path):
    server = serve(tmp_path, b'{"object": "list", "data": []}', delay_s=5)
    try:
        client = Server.on_socket(_Handle(tmp_path), timeout_s=0.5)
        start = time.monotonic()
        with pytest.raises(AssertionError, match="0.5"):
            client(client.client.models.list)
        assert time.monotonic() - start < 4
    finally:
        server.shutdown()


def test_good_server_is_read_through_the_openai_client(tmp_path):
    server = serve(tmp_path, b'{"object": "list", "data": [{"id": "m", "object": "model", "created": 0, "owned_by": "x"}]}')
    try:
        client = Server.on_socket(_Handle(tmp_path), timeout_s=5)
        assert [m.id for m in client(client.client.models.list).data] == ["m"]
    finally:
        server.shutdown()


@pytest.mark.parametrize(("k", "wrong", "want"), [
    (3, set(), {"proposed": 9, "accepted": 9}),            # 3 accepted + a bonus token per round
    (3, set(range(12)), {"proposed": 33, "accepted": 0}),  # one correction token per round
    (1, {0, 2, 4, 5, 7, 9, 11}, {"proposed": 7, "accepted": 5}),
    (4, {2, 7}, {"proposed": 12, "accepted": 10}),
])
def test_grader_counts_speculative_acceptances(k, wrong, want):
    assert expected_counts(12, k, wrong) == want
