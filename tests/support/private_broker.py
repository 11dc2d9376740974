"""A RabbitMQ node of a test's own, on its own ports, that the test may stop, kill and restart.

The machine's shared broker (5672) serves everybody else's tests: fault drills never touch it.
A private node has its own name (``crmdrill-<n>@localhost``), ports, data and logs in a
temporary directory, and its own config file (the machine's one pins port 5672); it shares
the machine's erlang cookie, so ``rabbitmqctl -n <node>`` reaches it. The scripts run the node
as the ``rabbitmq`` OS user, so the directory is handed to that user.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType


def free_port() -> int:
    """A TCP port nobody listens on now, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class PrivateBroker:
    """One private RabbitMQ node: ``start``, ``stop`` (clean), ``kill`` (SIGKILL), ``restart``."""

    def __init__(self, name: str | None = None) -> None:
        self.port = free_port()
        self.dist_port = free_port()
        self.nodename = f"{name or f'crmdrill-{self.port}'}@localhost"
        self.base = Path(tempfile.mkdtemp(prefix="crm-broker-"))
        (self.base / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
            # Each node would otherwise bind the same default management/prometheus ports.
            "log.file.level = warning\n"
        )
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "rabbitmq-env.conf").write_text("")
        shutil.chown(self.base, "rabbitmq", "rabbitmq")
        for child in self.base.iterdir():
            shutil.chown(child, "rabbitmq", "rabbitmq")

    @property
    def url(self) -> str:
        """The AMQP URL of the node's default vhost."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def host(self) -> str:
        """``user:password@host:port``, as ``devstack.Stack(amqp_host=...)`` takes it."""
        return f"guest:guest@127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.base / "node.pid"),
        }

    def _ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["rabbitmqctl", "-n", self.nodename, *args],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, *, timeout: float = 60) -> None:
        """Start the node detached and wait until it accepts AMQP connections."""
        subprocess.run(
            ["rabbitmq-server", "-detached"], env=self._env(), check=True, capture_output=True
        )
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.nodename} did not open port {self.port}")
            time.sleep(0.2)
        self._ctl("await_startup", timeout=timeout)

    def stop(self) -> None:
        """Stop the node cleanly (``rabbitmqctl stop``) and wait until its port closes."""
        self._ctl("stop", str(self.base / "node.pid"))
        self._wait_closed()

    def kill(self) -> None:
        """Kill the node's VM with SIGKILL, as a crash or an OOM kill would."""
        pid = int((self.base / "node.pid").read_text().strip())
        os.kill(pid, signal.SIGKILL)
        self._wait_closed()

    def restart(self) -> None:
        """Stop cleanly, then start again with the same data."""
        self.stop()
        self.start()

    def _wait_closed(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while port_open(self.port):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.nodename} still listens on {self.port}")
            time.sleep(0.1)

    def close(self) -> None:
        """Kill the node (its data is thrown away, so a clean stop buys nothing) and remove
        its directory."""
        if (self.base / "node.pid").exists() and port_open(self.port):
            self.kill()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PrivateBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
