"""Alternate gatekeepers with real processes (issue 12): two ``twistd -n
gatekeeper`` on 127.0.0.1, GK1 and GK3, neighbours of each other; GK1's
``[Gatekeeper::Main] AlternateGKs`` names GK3. An endpoint that registers
with GK1 saying supportsAltGK learns GK3 from its RCF and calls an alias on
GK3 through GK1 (LRQ, LCF). GK1 is killed with SIGKILL: the endpoint's
keepalive goes unanswered, it registers with GK3 (its alternate) and goes on
calling."""

from __future__ import annotations

import signal
import socket

import pytest

from gatekeeper.h225 import ras
from gatekeeper.testing import FakeEndpoint, RasClient
from gkprocess import GatekeeperProcess, ReactorDriver, StatusSession, free_port

NAMES = ("GK1", "GK3")


class Pair:
    def __init__(self, workdir) -> None:
        self.ras_ports = {name: free_port() for name in NAMES}
        self.status_ports = {name: free_port(socket.SOCK_STREAM) for name in NAMES}
        self.processes = {}
        for name in NAMES:
            directory = workdir / name
            directory.mkdir()
            config = directory / "gatekeeper.ini"
            config.write_text(self.config_text(name))
            self.processes[name] = GatekeeperProcess(
                directory, "--config", str(config), "--interface", "127.0.0.1",
                "--ras-port", str(self.ras_ports[name]), "--discovery-port", "0",
                "--status-port", str(self.status_ports[name]))
        self.driver = ReactorDriver()
        self.reactor = self.driver.reactor

    def config_text(self, name: str) -> str:
        other = "GK3" if name == "GK1" else "GK1"
        text = f"[Gatekeeper::Main]\nName={name}\n"
        if name == "GK1":
            text += f"AlternateGKs=127.0.0.1;{self.ras_ports['GK3']};true;10;GK3\n"
        text += (f"[RasSrv::Neighbors]\n{other}=GnuGk\n[Neighbor::{other}]\n"
                 f"Host=127.0.0.1:{self.ras_ports[other]}\nSendPrefixes=*\n"
                 "[RasSrv::LRQFeatures]\nNeighborTimeout=2\nSendRetries=1\n")
        return text

    def endpoint(self, gk: str, aliases: list[str]) -> tuple[FakeEndpoint, RasClient]:
        endpoint = FakeEndpoint(aliases, ("127.0.0.1", 0), ("127.0.0.1", 0),
                                supports_alt_gk=True)
        client = RasClient.listen(self.reactor, endpoint, ("127.0.0.1", self.ras_ports[gk]),
                                  timeout=1.0, retries=1)
        endpoint.signal_address = ("127.0.0.1", free_port(socket.SOCK_STREAM))
        pdu = self.driver.run(client.request(endpoint.rrq()), 10)
        assert pdu.kind == "registrationConfirm", pdu.kind
        return endpoint, client

    def arq(self, endpoint: FakeEndpoint, client: RasClient, number: str):
        call_id = ras.new_guid()
        pdu = self.driver.run(client.request(endpoint.arq([number], call_id=call_id)), 10)
        return pdu, call_id

    def registrations(self, gk: str) -> list[str]:
        status = StatusSession(self.status_ports[gk], trace=0)
        try:
            return [line for line in status.command("r") if line.startswith("RCF|")]
        finally:
            status.close()


@pytest.fixture
def pair(tmp_path):
    pair = Pair(tmp_path)
    for process in pair.processes.values():
        process.start()
    try:
        yield pair
    finally:
        pair.driver.close()
        for process in pair.processes.values():
            process.stop()


def test_an_endpoint_fails_over_to_its_alternate_and_keeps_calling(pair):
    carol, _ = pair.endpoint("GK3", ["3003", "carol"])
    alice, alice_ras = pair.endpoint("GK1", ["1001", "alice"])
    # GK1's RCF named GK3 as alternate.
    assert alice.alternates == [(("127.0.0.1", pair.ras_ports["GK3"]), True, 10, "GK3")]
    # A call to carol through GK1 (found on GK3 by LRQ).
    pdu, call_id = pair.arq(alice, alice_ras, "3003")
    assert pdu.kind == "admissionConfirm"
    assert alice.calls[call_id].signal_address == carol.signal_address

    pair.processes["GK1"].process.send_signal(signal.SIGKILL)
    pair.processes["GK1"].process.wait(10)
    # The keepalive gets no answer ...
    with pytest.raises(TimeoutError):
        pair.driver.run(alice_ras.request(alice.rrq(lightweight=True)), 10)
    # ... so alice registers with her alternate, GK3, and calls carol there.
    rcf = pair.driver.run(alice_ras.fail_over(), 10)
    assert rcf.kind == "registrationConfirm"
    assert alice_ras.gatekeeper == ("127.0.0.1", pair.ras_ports["GK3"])
    assert any("alice" in line for line in pair.registrations("GK3"))
    pdu, call_id = pair.arq(alice, alice_ras, "3003")
    assert pdu.kind == "admissionConfirm"
    assert alice.calls[call_id].signal_address == carol.signal_address
    # and her keepalives are answered by GK3 from now on
    keepalive = pair.driver.run(alice_ras.request(alice.rrq(lightweight=True)), 10)
    assert keepalive.kind == "registrationConfirm"


def test_without_supports_alt_gk_no_alternate_is_learned(pair):
    endpoint = FakeEndpoint(["1009"], ("127.0.0.1", free_port(socket.SOCK_STREAM)),
                            ("127.0.0.1", 0))
    client = RasClient.listen(pair.reactor, endpoint, ("127.0.0.1", pair.ras_ports["GK1"]),
                              timeout=2.0)
    pdu = pair.driver.run(client.request(endpoint.rrq()), 10)
    assert pdu.kind == "registrationConfirm" and "alternateGatekeeper" not in pdu.raw
    assert endpoint.alternates == []
