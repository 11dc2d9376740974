"""A TCP proxy of the test suite's own for network faults (``tc netem`` does not work here).

Sits between a client and a server on 127.0.0.1 and, on command, delays every chunk, drops
traffic (a black hole: bytes are read and discarded, connections stay open) or resets every
connection (RST, and new ones are reset at once). Runs its own event loop in a thread, so
sync and async tests use it alike.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from dataclasses import dataclass
from typing import Literal

from tests.support.private_broker import free_port

Mode = Literal["pass", "delay", "drop", "reset"]


@dataclass
class FaultState:
    """What the proxy does now to traffic."""

    mode: Mode = "pass"
    delay_seconds: float = 0.0


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        # SO_LINGER 0: close sends an RST instead of a FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """Forwards 127.0.0.1:``port`` to ``target_port``; ``delay``, ``drop``, ``reset``, ``heal``."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.state = FaultState()
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._server: asyncio.Server | None = None

    def start(self) -> FaultProxy:
        """Start listening; returns self."""
        self._thread.start()
        self._ready.wait(10)
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def serve() -> None:
            self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
            self._ready.set()

        self._loop.run_until_complete(serve())
        self._loop.run_forever()

    def _resetting(self) -> bool:
        """Whether connections are being reset now (read afresh: other calls change it)."""
        return self.state.mode == "reset"

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._resetting():
            _reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            _reset(writer)
            return
        if self._resetting():
            # A reset came while the upstream connection was being opened: this connection
            # was not among the open ones it reset, so it goes now.
            _reset(writer)
            up_writer.close()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            state = self.state
            if state.mode == "drop":
                continue
            if state.mode == "delay":
                await asyncio.sleep(state.delay_seconds)
            writer.write(data)
            await writer.drain()
        writer.close()

    def _call(self, mode: Mode, delay_seconds: float = 0.0) -> None:
        def apply() -> None:
            self.state = FaultState(mode, delay_seconds)
            if mode == "reset":
                for writer in list(self._writers):
                    _reset(writer)
                self._writers.clear()

        self._loop.call_soon_threadsafe(apply)

    def delay(self, seconds: float) -> None:
        """Hold every chunk for ``seconds`` before forwarding it."""
        self._call("delay", seconds)

    def drop(self) -> None:
        """Swallow every byte both ways; connections stay open (a partition)."""
        self._call("drop")

    def reset(self) -> None:
        """Reset every open connection and each new one."""
        self._call("reset")

    def heal(self) -> None:
        """Forward normally again."""
        self._call("pass")

    def stop(self) -> None:
        """Close the listener and every connection, and end the thread."""

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
