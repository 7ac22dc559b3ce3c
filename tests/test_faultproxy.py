"""The test-support proxy must itself do what it claims, or the chaos tests prove nothing."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from tests.support.faultproxy import FaultProxy


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"x" * 8000
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def origin() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_passes_traffic_and_counts_bytes(origin: int) -> None:
    with FaultProxy(origin) as proxy:
        r = requests.get(proxy.url, timeout=5)
    assert r.status_code == 200 and len(r.content) == 8000
    assert proxy.stats.bytes_down >= 8000 and proxy.stats.bytes_up > 0


def test_drop_and_outage_refuse_connections(origin: int) -> None:
    with FaultProxy(origin, drop_rate=1.0) as proxy:
        with pytest.raises(requests.ConnectionError):
            requests.get(proxy.url, timeout=5)
        assert proxy.stats.dropped == 1
        proxy.configure(drop_rate=0.0)
        proxy.set_down(True)
        with pytest.raises(requests.ConnectionError):
            requests.get(proxy.url, timeout=5)


def test_cut_delivers_a_partial_response(origin: int) -> None:
    # The client either sees the connection break or gets less than the whole body; never all of it.
    with FaultProxy(origin, cut_rate=1.0) as proxy:
        try:
            r = requests.get(proxy.url, timeout=5)
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
            got = -1
        else:
            got = len(r.content)
        assert got < 8000
        assert proxy.stats.cut == 1


def test_bandwidth_limit_slows_transfer(origin: int) -> None:
    # 8,000 bytes at 320 kbit/s take at least 0.2 s; unthrottled loopback takes milliseconds.
    with FaultProxy(origin, bandwidth_bps=320_000) as proxy:
        start = time.monotonic()
        r = requests.get(proxy.url, timeout=10)
        elapsed = time.monotonic() - start
    assert len(r.content) == 8000
    assert elapsed >= 0.19
