"""Two real ``twistd -n gatekeeper`` processes on 127.0.0.1 (issue 12): the
child has ``[Endpoint] Gatekeeper=`` the parent, registers there as a gateway
for prefix 9, the parent routes 9... to it, the child's ``parent`` policy
asks the parent for an alias only the parent has (direct mode: the ACF names
the parent-side endpoint), ``GK`` on the child shows the parent, and after a
SIGKILL and restart of the parent on the same port the child registers again."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import pytest

from gatekeeper.h225 import ras
from gatekeeper.testing import FakeEndpoint, RasClient
from gkprocess import GatekeeperProcess, ReactorDriver, StatusSession, free_port


class Pair:
    def __init__(self, workdir: Path) -> None:
        self.ras = {"parent": free_port(), "child": free_port()}
        self.status = {name: free_port(socket.SOCK_STREAM) for name in self.ras}
        texts = {
            "parent": "[Gatekeeper::Main]\nName=ParentGK\nTimeToLive=6\n",
            "child": ("[Gatekeeper::Main]\nName=ChildGK\n[Endpoint]\n"
                      f"Gatekeeper=127.0.0.1:{self.ras['parent']}\nType=Gateway\nPrefix=9\n"
                      "TimeToLive=6\nRRQRetryInterval=1\n"),
        }
        self.processes = {}
        for name, text in texts.items():
            directory = workdir / name
            directory.mkdir()
            (directory / "gatekeeper.ini").write_text(text)
            self.processes[name] = GatekeeperProcess(
                directory, "--config", str(directory / "gatekeeper.ini"),
                "--interface", "127.0.0.1", "--ras-port", str(self.ras[name]),
                "--discovery-port", "0", "--status-port", str(self.status[name]))
        self.driver = ReactorDriver()

    def endpoint(self, gk: str, aliases: list[str]) -> tuple[FakeEndpoint, RasClient]:
        endpoint = FakeEndpoint(aliases, ("127.0.0.1", free_port(socket.SOCK_STREAM)),
                                ("127.0.0.1", 0))
        client = RasClient.listen(self.driver.reactor, endpoint, ("127.0.0.1", self.ras[gk]),
                                  timeout=8.0)
        pdu = self.driver.run(client.request(endpoint.rrq()))
        assert pdu.kind == "registrationConfirm", pdu.kind
        return endpoint, client

    def command(self, gk: str, text: str) -> list[str]:
        status = StatusSession(self.status[gk], trace=0)
        try:
            return status.command(text)
        finally:
            status.close()

    def wait_registered(self, timeout: float = 15.0) -> list[str]:
        """Until the child's GK shows the parent; its lines."""
        deadline = time.monotonic() + timeout
        lines: list[str] = []
        while time.monotonic() < deadline:
            lines = self.command("child", "GK")
            if lines and lines[0].startswith(f"127.0.0.1:{self.ras['parent']}\t"):
                return lines
            time.sleep(0.2)
        raise AssertionError(f"child not registered at the parent: {lines}\n"
                             f"{self.processes['child'].log()}")


@pytest.fixture
def pair(tmp_path):
    pair = Pair(tmp_path)
    pair.processes["parent"].start()
    pair.processes["child"].start()
    try:
        yield pair
    finally:
        pair.driver.close()
        for process in pair.processes.values():
            process.stop()


def test_child_registers_at_parent_routes_both_ways_and_survives_parent_restart(pair):
    lines = pair.wait_registered()
    endpoint_id = lines[0].split("\t")[1]
    assert endpoint_id
    # the parent lists the child as a registered gateway with its alias
    listed = pair.command("parent", "r")
    assert any("ChildGK" in line and endpoint_id in line for line in listed), listed

    # an endpoint at the parent calls 9...: the parent routes to the child gateway
    bob, bob_ras = pair.endpoint("parent", ["2002", "bob"])
    call_id = ras.new_guid()
    pdu = pair.driver.run(bob_ras.request(bob.arq(["9123"], call_id=call_id)))
    assert pdu.kind == "admissionConfirm", pdu
    # direct mode: the child's RRQ names its host with port 1720
    assert bob.calls[call_id].signal_address == ("127.0.0.1", 1720)

    # an endpoint at the child calls bob, known only at the parent
    alice, alice_ras = pair.endpoint("child", ["1001", "alice"])
    call_id = ras.new_guid()
    pdu = pair.driver.run(alice_ras.request(alice.arq(["bob"], call_id=call_id)))
    assert pdu.kind == "admissionConfirm", pdu
    assert alice.calls[call_id].signal_address == bob.signal_address
    # nobody has 7777: the parent rejects, the chain ends in ARJ
    pdu = pair.driver.run(alice_ras.request(alice.arq(["7777"])))
    assert pdu.kind == "admissionReject", pdu

    # the parent dies and comes back on the same port: the child registers again
    pair.processes["parent"].stop(signal.SIGKILL)
    pair.processes["parent"].start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        listed = pair.command("parent", "r")
        if any("ChildGK" in line for line in listed):
            break
        time.sleep(0.3)
    else:
        raise AssertionError(f"child not registered again: {listed} {pair.command('child', 'GK')}\n"
                             f"{pair.processes['child'].log()}\n{pair.processes['parent'].log()}")
    assert pair.wait_registered()[0].startswith(f"127.0.0.1:{pair.ras['parent']}\t")
