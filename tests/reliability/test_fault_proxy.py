"""The suite's TCP fault proxy does what drills rely on: forward, delay, drop, reset, heal."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.fault_proxy import FaultProxy


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    """A proxy in front of an echo server on 127.0.0.1."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    faults = FaultProxy(server.server_address[1]).start()
    yield faults
    faults.stop()
    server.shutdown()
    server.server_close()


def _echo(port: int, payload: bytes = b"ping", timeout: float = 2.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        return sock.recv(65536)


def test_forwards_then_delays_then_heals(proxy: FaultProxy) -> None:
    assert _echo(proxy.port) == b"ping"

    proxy.delay(0.3)
    time.sleep(0.05)
    started = time.monotonic()
    assert _echo(proxy.port) == b"ping"
    assert time.monotonic() - started >= 0.6  # held once each way

    proxy.heal()
    time.sleep(0.05)
    started = time.monotonic()
    assert _echo(proxy.port) == b"ping"
    assert time.monotonic() - started < 0.3


def test_drop_swallows_traffic_and_reset_breaks_connections(proxy: FaultProxy) -> None:
    proxy.drop()
    time.sleep(0.05)
    with pytest.raises(TimeoutError):
        _echo(proxy.port, timeout=0.5)

    with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as open_before:
        proxy.reset()
        time.sleep(0.1)
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            open_before.sendall(b"x")
            if not open_before.recv(10):
                raise ConnectionResetError("closed")
    with pytest.raises((ConnectionResetError, BrokenPipeError)):
        if not _echo(proxy.port):
            raise ConnectionResetError("closed")

    proxy.heal()
    time.sleep(0.05)
    assert _echo(proxy.port) == b"ping"
