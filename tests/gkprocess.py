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
