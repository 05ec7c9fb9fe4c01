"""A virtual queue in the real program, answered by the example ACD.

``twistd -n gatekeeper`` runs with a queue configured; doc/examples/acd.py
runs as its own process against the status port; endpoints talk real RAS
over UDP on 127.0.0.1.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

from gatekeeper.h225 import ras
from gkprocess import ROOT, GatekeeperProcess, free_port
from test_integration_status import UdpEndpoint

CONFIG = """
[Gatekeeper::Main]
Name=QueueGK

[RoutingPolicy]
default=explicit,vqueue,internal

[CTI::Agents]
VirtualQueueAliases=support
RequestTimeout=10
"""


class StatusReader:
    """A plain status-port client collecting lines."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""
        self.sock.sendall(b"trace 1\r\n")

    def wait_for(self, prefix: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while b"\r\n" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\r\n", 1)
                line = raw.decode("latin-1")
                if line.startswith(prefix):
                    return line
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                break
            if not data:
                break
            self.buffer += data
        raise AssertionError(f"no {prefix} line within {timeout} s")

    def close(self) -> None:
        self.sock.close()


def test_queued_call_is_routed_by_the_example_acd_to_the_agent(tmp_path):
    ras_port, status_port = free_port(), free_port(socket.SOCK_STREAM)
    (tmp_path / "gk.ini").write_text(CONFIG)
    process = GatekeeperProcess(tmp_path, "--config", "gk.ini", "--interface", "127.0.0.1",
                                "--ras-port", str(ras_port), "--discovery-port", "0",
                                "--status-port", str(status_port))
    with process:
        agent = UdpEndpoint(ras_port, ["agent1"], 31720)
        caller = UdpEndpoint(ras_port, ["1001", "alice"], 31721)
        acd = None
        reader = StatusReader(status_port)
        try:
            assert agent.ask(agent.fake.rrq()).kind == "registrationConfirm"
            assert caller.ask(caller.fake.rrq()).kind == "registrationConfirm"
            acd = subprocess.Popen(
                [sys.executable, str(ROOT / "doc" / "examples" / "acd.py"), "--port",
                 str(status_port), "agent1"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            assert acd.stdout.readline().startswith("acd: connected")

            rip = caller.ask(caller.fake.arq(["support"], crv=4711))
            assert rip.kind == "requestInProgress"
            request = reader.wait_for("RouteRequest|")
            fields = request.rstrip(";").split("|")
            assert fields[2:5] == [caller.fake.endpoint_id, "4711", "support"]
            assert fields[-1] == "ARQ"

            caller.sock.settimeout(10)
            data, _ = caller.sock.recvfrom(65535)
            acf = caller.fake.read(data)
            assert acf.kind == "admissionConfirm"
            assert ras.transport_from_asn(acf.raw["destCallSignalAddress"]) == ("127.0.0.1",
                                                                                  31720)
            assert acd.stdout.readline().strip() == (
                f"acd: RouteToAlias agent1 {caller.fake.endpoint_id} 4711 {fields[6]}")

            call_id = list(caller.fake.calls)[-1]
            assert caller.ask(caller.fake.drq(call_id)).kind == "disengageConfirm"
            cdr = reader.wait_for("CDR|").rstrip(";").split("|")
            assert cdr[9] == agent.fake.endpoint_id          # the callee: the agent
            assert cdr[8] == "127.0.0.1:31720"
            assert cdr[10] == "agent1:h323_ID"
        finally:
            reader.close()
            if acd is not None:
                acd.kill()
                acd.wait()
            agent.close()
            caller.close()
