"""A PostgreSQL cluster of a test's own, on its own port, that the test may stop and start.

The machine's shared server (5432) serves everybody else's tests: fault drills never touch
it. A private cluster lives in a temporary directory, is made by ``initdb`` with trust
authentication on 127.0.0.1 only, and runs as the ``postgres`` OS user (we are root).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from tests.support.private_broker import free_port, port_open

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PrivatePostgres:
    """One private cluster: ``start``, ``stop`` (fast shutdown), ``kill`` (immediate).

    Drills skip fsync for speed; ``durable=True`` (benchmarks) keeps the server's defaults, so
    commits cost what they cost in production.
    """

    def __init__(self, *, durable: bool = False) -> None:
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="crm-pg-"))
        self.data = self.base / "data"
        shutil.chown(self.base, "postgres", "postgres")
        self._as_postgres(
            PG_BIN / "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.base}'\n"
                "max_connections = 200\nshared_buffers = 128MB\n"
            )
            if not durable:
                conf.write("fsync = off\nsynchronous_commit = off\n")

    @property
    def host(self) -> str:
        """``host:port``, as ``devstack.Stack(pg_host=...)`` takes it."""
        return f"127.0.0.1:{self.port}"

    @property
    def admin_dsn(self) -> str:
        """The superuser's DSN to the ``postgres`` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args: str | Path, timeout: float = 60) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *map(str, args)],
            check=True,
            capture_output=True,
            timeout=timeout,
            cwd=self.base,
        )

    def _pg_ctl(self, *args: str) -> None:
        self._as_postgres(PG_BIN / "pg_ctl", "-D", str(self.data), *args)

    def start(self, *, timeout: float = 30) -> None:
        """Start the cluster and wait until it accepts connections."""
        self._pg_ctl("-l", str(self.base / "log"), "-w", "-t", str(int(timeout)), "start")

    def stop(self) -> None:
        """Stop with the fast mode: clients are disconnected, in-flight transactions abort."""
        self._pg_ctl("-m", "fast", "-w", "stop")
        self._wait_closed()

    def kill(self) -> None:
        """Stop with the immediate mode: no shutdown checkpoint, as a crash (recovery on start)."""
        self._pg_ctl("-m", "immediate", "-w", "stop")
        self._wait_closed()

    def _wait_closed(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while port_open(self.port):
            if time.monotonic() > deadline:
                raise TimeoutError(f"private PostgreSQL still listens on {self.port}")
            time.sleep(0.1)

    def close(self) -> None:
        """Stop the cluster if it runs and remove its directory."""
        if (self.data / "postmaster.pid").exists():
            try:
                self._pg_ctl("-m", "immediate", "-w", "stop")
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
