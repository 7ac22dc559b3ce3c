"""A fault-injecting, optionally throttling TCP proxy for tests and benchmarks, on loopback only.

Sits between a node and the hub: ``FaultProxy(target_port, ...)`` listens on 127.0.0.1 and forwards.
Faults are drawn from a seeded ``random.Random`` per connection, so a failing run can be replayed:

* ``drop_rate``: close the client connection before forwarding anything (connection reset);
* ``cut_rate``: forward the request, then cut the response after half of its first chunk;
* ``delay_s``: extra latency on every chunk (one-way);
* ``bandwidth_bps``: a bit rate each direction (a 64 kbit/s link is ``64_000``).

``set_down(True)`` refuses every new connection (a full outage) until set back. Counters tell what was done.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from dataclasses import dataclass


@dataclass
class ProxyStats:
    connections: int = 0
    dropped: int = 0
    cut: int = 0
    bytes_up: int = 0  # client -> target
    bytes_down: int = 0  # target -> client


class FaultProxy:
    def __init__(
        self,
        target_port: int,
        *,
        target_host: str = "127.0.0.1",
        seed: int = 0,
        drop_rate: float = 0.0,
        cut_rate: float = 0.0,
        delay_s: float = 0.0,
        bandwidth_bps: int | None = None,
    ) -> None:
        self.target = (target_host, target_port)
        self.rng = random.Random(seed)
        self.drop_rate = drop_rate
        self.cut_rate = cut_rate
        self.delay_s = delay_s
        self.bandwidth_bps = bandwidth_bps
        self.stats = ProxyStats()
        self._down = False
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="faultproxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._sock.close()

    def set_down(self, down: bool) -> None:
        self._down = down

    def configure(self, **kwargs: float | int | None) -> None:
        with self._lock:
            for key, value in kwargs.items():
                if not hasattr(self, key):
                    raise AttributeError(key)
                setattr(self, key, value)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self.stats.connections += 1
                drop = self._down or self.rng.random() < self.drop_rate
                cut = not drop and self.rng.random() < self.cut_rate
            if drop:
                self.stats.dropped += 1
                _reset(client)
                continue
            threading.Thread(target=self._handle, args=(client, cut), daemon=True).start()

    def _handle(self, client: socket.socket, cut: bool) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=30)
        except OSError:
            _reset(client)
            return
        done = threading.Event()
        up = threading.Thread(target=self._pipe, args=(client, upstream, "up", False, done), daemon=True)
        up.start()
        self._pipe(upstream, client, "down", cut, done)
        done.set()
        for s in (client, upstream):
            with contextlib.suppress(OSError):
                s.close()

    def _pipe(self, src: socket.socket, dst: socket.socket, direction: str, cut: bool, done: threading.Event) -> None:
        try:
            while not done.is_set():
                data = src.recv(4096)
                if not data:
                    with contextlib.suppress(OSError):
                        dst.shutdown(socket.SHUT_WR)
                    return
                if cut:
                    half = data[: max(1, len(data) // 2)]
                    self._send(dst, half, direction)
                    with self._lock:
                        self.stats.cut += 1
                    _reset(dst)
                    _reset(src)
                    return
                self._send(dst, data, direction)
        except OSError:
            return

    def _send(self, dst: socket.socket, data: bytes, direction: str) -> None:
        if self.delay_s:
            time.sleep(self.delay_s)
        bps = self.bandwidth_bps  # read once: it may be reconfigured while this transfer runs
        if bps:
            # Pace in small slices so a slow link looks slow to both ends, not bursty.
            step = max(64, bps // 8 // 20)
            for i in range(0, len(data), step):
                piece = data[i : i + step]
                time.sleep(len(piece) * 8 / bps)  # serialisation delay, then delivery
                self._count(direction, len(piece))
                dst.sendall(piece)
        else:
            self._count(direction, len(data))
            dst.sendall(data)

    def _count(self, direction: str, n: int) -> None:
        # Counted before the bytes go on: once the far end has answered, the bytes that caused the answer
        # are in the stats (counting after sendall raced with a client reading the stats on the answer).
        with self._lock:
            if direction == "up":
                self.stats.bytes_up += n
            else:
                self.stats.bytes_down += n


def _reset(sock: socket.socket) -> None:
    """Break the connection as a failing link would: wake any thread blocked on it (shutdown), and close
    with linger 0 so the last close sends RST rather than a clean FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
