"""Test helper: run the real ``twistd -n gatekeeper`` as a child process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port nothing on 127.0.0.1 uses right now."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class GatekeeperProcess:
    """``twistd -n gatekeeper ARGS`` started from this checkout, in ``workdir``."""

    def __init__(self, workdir: Path, *args: str) -> None:
        self.workdir = Path(workdir)
        self.args = list(args)
        self.log_path = self.workdir / "twistd.log"
        self.process: subprocess.Popen | None = None

    def start(self, ready: str = "serving RAS", timeout: float = 30.0) -> "GatekeeperProcess":
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        command = [sys.executable, "-m", "twisted", "--version"]  # fail early if Twisted is missing
        subprocess.run(command, check=True, capture_output=True, env=env)
        twistd = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [*twistd, "-n", "--pidfile=", "gatekeeper", *self.args],
            cwd=self.workdir, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready in self.log():
                return self
            if self.process.poll() is not None:
                raise AssertionError(f"twistd exited {self.process.returncode}:\n{self.log()}")
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"gatekeeper not ready after {timeout} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def __enter__(self) -> "GatekeeperProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class StatusSession:
    """A plain TCP client of the status port: command output and event lines.

    The session starts at the trace level asked for; at 0 it sees only the
    output of its own commands, so ``command`` can read up to the closing ``;``.
    """

    def __init__(self, port: int, trace: int = 2, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""
        self.seen: list[str] = []      # every line read so far, in order
        self.read_until(lambda line: line == ";", timeout)   # the banner
        self.sock.sendall(f"trace {trace}\r\n".encode())
        self.read_until(lambda line: line == f"Output trace level is {trace}", timeout)

    def _next_line(self, deadline: float) -> str | None:
        while b"\r\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not data:
                return None
            self.buffer += data
        raw, self.buffer = self.buffer.split(b"\r\n", 1)
        line = raw.decode("latin-1")
        self.seen.append(line)
        return line

    def read_until(self, stop, timeout: float = 10.0) -> list[str]:
        """Lines up to and including the first one ``stop(line)`` is true of."""
        deadline = time.monotonic() + timeout
        lines: list[str] = []
        while True:
            line = self._next_line(deadline)
            if line is None:
                raise AssertionError(f"status port: nothing awaited within {timeout} s; read:\n"
                                     + "\n".join(self.seen[-40:]))
            lines.append(line)
            if stop(line):
                return lines

    def matching(self, prefix: str, contains: str = "") -> list[str]:
        """The lines read so far that start with ``prefix`` and contain ``contains``."""
        return [line for line in self.seen if line.startswith(prefix) and contains in line]

    def wait_for_lines(self, prefix: str, count: int = 1, timeout: float = 10.0,
                       contains: str = "") -> list[str]:
        """All lines read so far, and more if need be, that start with ``prefix``
        (and contain ``contains``), once there are at least ``count`` of them."""
        found = len(self.matching(prefix, contains))
        if found < count:
            def enough(line: str) -> bool:
                nonlocal found
                found += line.startswith(prefix) and contains in line
                return found >= count
            self.read_until(enough, timeout)
        return self.matching(prefix, contains)

    def wait_for(self, prefix: str, timeout: float = 10.0, contains: str = "") -> str:
        """The first line, read already or still to come, that starts with
        ``prefix`` (and contains ``contains``)."""
        return self.wait_for_lines(prefix, 1, timeout, contains)[0]

    def command(self, text: str, timeout: float = 10.0) -> list[str]:
        """Run a listing command (``r``, ``c``, ...): its lines, without the final ``;``."""
        self.sock.sendall(text.encode() + b"\r\n")
        return self.read_until(lambda line: line == ";", timeout)[:-1]

    def close(self) -> None:
        self.sock.close()


class ReactorDriver:
    """A private Twisted reactor (not the global one) for integration tests
    that talk to the real gatekeeper with Twisted protocols (FakeEndpoint's
    call signalling side): :meth:`run` iterates it until a Deferred fires.
    :meth:`close` drops every connection and port it still has."""

    def __init__(self) -> None:
        from twisted.internet.selectreactor import SelectReactor

        self.reactor = SelectReactor()
        self.ports: list = []

    def run(self, deferred, timeout: float = 15.0):
        """Iterate until ``deferred`` fires; its result, or its failure raised."""
        from twisted.python.failure import Failure

        result: list = []
        deferred.addBoth(result.append)
        deadline = time.monotonic() + timeout
        while not result:
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing within {timeout} s")
            self.reactor.iterate(0.005)
        if isinstance(result[0], Failure):
            result[0].raiseException()
        return result[0]

    def sleep(self, seconds: float) -> None:
        from twisted.internet import task

        self.run(task.deferLater(self.reactor, seconds, lambda: None), seconds + 10)

    def listen_udp(self, *args, **kwargs):
        port = self.reactor.listenUDP(*args, **kwargs)
        self.ports.append(port)
        return port

    def close(self) -> None:
        for port in self.ports:
            port.stopListening()
        for selectable in self.reactor.removeAll():
            try:
                selectable.connectionLost(None)
            except Exception:
                pass
        for call in self.reactor.getDelayedCalls():
            if call.active():
                call.cancel()
        for _ in range(5):
            self.reactor.iterate(0)
