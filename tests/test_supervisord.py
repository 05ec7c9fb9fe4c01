"""The real program under supervisord: it is SIGKILLed and comes back.

supervisord (PyPI ``supervisor``, in the test extras) runs with its own
configuration, socket, log and pid file in a temporary directory.  Its
``[program:gatekeeper]`` section is the one shipped in etc/supervisord.conf,
with the command, the working directory, the user and the log file replaced
for the test, and a shorter ``startsecs``.
"""

from __future__ import annotations

import configparser
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gkprocess import ROOT, free_port
from test_integration_status import UdpEndpoint

pytest.importorskip("supervisor", reason="PyPI supervisor is in the test extras")

SHIPPED = ROOT / "etc" / "supervisord.conf"


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1):
    """The first true value of ``predicate()``, or None after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


def status_version(port: int) -> str | None:
    """The answer to ``version`` on the status port, or None if it does not answer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(b"version\r\n")
            data = b""
            while b"Version(" not in data or not data.rstrip().endswith(b";"):
                chunk = client.recv(65536)
                if not chunk:
                    break
                data += chunk
            return data.decode("utf-8", "replace") if b"Version(" in data else None
    except OSError:
        return None


class Supervisor:
    """supervisord -n with its configuration in ``tmp``, running the gatekeeper."""

    def __init__(self, tmp: Path, ras_port: int, status_port: int) -> None:
        self.tmp = tmp
        self.workdir = tmp / "gk"
        self.workdir.mkdir()
        self.config = tmp / "supervisord.conf"
        self.gatekeeper_log = tmp / "gatekeeper.log"
        self.pids: set[int] = set()
        shipped = configparser.RawConfigParser()
        shipped.read(SHIPPED)
        program = dict(shipped["program:gatekeeper"])
        assert "--nodaemon" in program["command"] and "--pidfile=" in program["command"]
        twistd = f'{sys.executable} -c "from twisted.scripts.twistd import run; run()"'
        program.update(
            command=(f"{twistd} --nodaemon --pidfile= gatekeeper --name SupervisedGK "
                     f"--interface 127.0.0.1 --ras-port {ras_port} --discovery-port 0 "
                     f"--status-port {status_port}"),
            directory=str(self.workdir), stdout_logfile=str(self.gatekeeper_log),
            startsecs="1")
        program.pop("user", None)   # the test runs as whoever runs it
        sections = {
            "supervisord": {"nodaemon": "true", "logfile": str(tmp / "supervisord.log"),
                            "pidfile": str(tmp / "supervisord.pid"), "childlogdir": str(tmp),
                            "identifier": "gatekeeper-test", "loglevel": "info"},
            "unix_http_server": {"file": str(tmp / "supervisor.sock"), "chmod": "0700"},
            "rpcinterface:supervisor": {
                "supervisor.rpcinterface_factory": "supervisor.rpcinterface:make_main_rpcinterface"},
            "supervisorctl": {"serverurl": f"unix://{tmp / 'supervisor.sock'}"},
            "program:gatekeeper": program,
        }
        self.config.write_text("".join(
            f"[{name}]\n" + "".join(f"{key}={value}\n" for key, value in items.items()) + "\n"
            for name, items in sections.items()))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.env = env
        self.output = open(tmp / "supervisord.out", "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(self.config)],
            cwd=tmp, env=env, stdout=self.output, stderr=subprocess.STDOUT,
            start_new_session=True)

    def ctl(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(self.config), *args],
            env=self.env, capture_output=True, timeout=30)
        return result.stdout.decode("utf-8", "replace").strip()

    def pid(self) -> int:
        """The gatekeeper's pid as supervisord knows it (0: not running)."""
        text = self.ctl("pid", "gatekeeper")
        pid = int(text) if text.isdigit() else 0
        if pid:
            self.pids.add(pid)
        return pid

    def logs(self) -> str:
        parts = []
        for name in ("supervisord.log", "gatekeeper.log"):
            path = self.tmp / name
            if path.exists():
                parts.append(f"--- {name}\n{path.read_text(errors='replace')}")
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop supervisord (it stops the gatekeeper with SIGTERM); then make
        sure nothing it started is left."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        for pid in self.pids:   # each program runs in its own process group
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.output.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_supervisord_restarts_the_killed_gatekeeper_and_no_cdr_is_lost(tmp_path):
    ras_port, status_port = free_port(), free_port(socket.SOCK_STREAM)
    supervisor = Supervisor(tmp_path, ras_port, status_port)
    try:
        assert wait_for(lambda: status_version(status_port)), supervisor.logs()
        assert wait_for(lambda: "RUNNING" in supervisor.ctl("status", "gatekeeper")), \
            supervisor.logs()
        first = supervisor.pid()
        assert first > 0

        alice = UdpEndpoint(ras_port, ["2001", "alice"], 1720)
        bob = UdpEndpoint(ras_port, ["2002", "bob"], 1721)
        try:
            assert alice.ask(alice.fake.rrq()).kind == "registrationConfirm"
            assert bob.ask(bob.fake.rrq()).kind == "registrationConfirm"
            assert alice.ask(alice.fake.arq(["bob"])).kind == "admissionConfirm"
            call_id = list(alice.fake.calls)[0]
            assert bob.ask(bob.fake.arq(answer_call=True, call_id=call_id)).kind == \
                "admissionConfirm"
            assert alice.ask(alice.fake.drq(call_id)).kind == "disengageConfirm"
            assert bob.ask(bob.fake.drq(call_id)).kind == "disengageConfirm"
        finally:
            alice.close()
            bob.close()

        # The call is over; kill -9 at once, with no chance to flush anything.
        os.kill(first, signal.SIGKILL)
        second = wait_for(lambda: (pid := supervisor.pid()) not in (0, first) and pid)
        assert second, supervisor.logs()
        assert wait_for(lambda: not alive(first), 10)
        answer = wait_for(lambda: status_version(status_port))
        assert answer and "Gatekeeper(gatekeeper) Version(" in answer, supervisor.logs()
        assert "terminated by SIGKILL; not expected" in \
            (tmp_path / "supervisord.log").read_text()
        assert supervisor.gatekeeper_log.read_text().count("serving RAS") == 2

        # The CDR of the call that ended before the kill is on disk, in the
        # program's working directory (FileAcct on the embedded defaults).
        cdr_file = supervisor.workdir / "cdr.log"
        assert cdr_file.exists(), f"no {cdr_file}\n{supervisor.logs()}"
        wanted = " ".join(f"{byte:02x}" for byte in call_id)
        cdrs = [line for line in cdr_file.read_text().splitlines() if line.startswith("CDR|")]
        assert len(cdrs) == 1, cdrs
        assert wanted in cdrs[0].lower()
    finally:
        supervisor.stop()
    assert supervisor.process.returncode == 0
    assert not any(alive(pid) for pid in supervisor.pids)
