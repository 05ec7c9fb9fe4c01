"""Alternate gatekeepers with real processes (issue 12): two ``twistd -n
gatekeeper`` on 127.0.0.1, GK1 and GK3, neighbours of each other; GK1's
``[Gatekeeper::Main] AlternateGKs`` names GK3. An endpoint that registers
with GK1 saying supportsAltGK learns GK3 from its RCF and calls an alias on
GK3 through GK1 (LRQ, LCF). GK1 is killed with SIGKILL: the endpoint's
keepalive goes unanswered, it registers with GK3 (its alternate) and goes on
calling.

With ``SendTo`` (GK1 copies every registration to GK2, named as alternate
with needToRegister=false) the endpoint does not register again: after
SIGKILL of GK1 its ARQ, with GK1's endpoint identifier, is admitted by GK2
at once for a callee GK2 knows only from GK1's copies.  With ``RedirectGK=
Endpoints > 1`` GK1 refuses a second endpoint with RRJ resourceUnavailable
naming GK2 (the status port prints the RRJ line), and it registers there."""

from __future__ import annotations

import signal
import socket
import time

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


# -- SendTo and RedirectGK with real processes ----------------------------------------


class Cluster:
    """Two real gatekeepers, GK1 and GK2, each started with its own extra
    ``[Gatekeeper::Main]`` lines (``{GK1}``/``{GK2}`` stand for their RAS ports)."""

    def __init__(self, workdir, extra: dict[str, str]) -> None:
        self.names = ("GK1", "GK2")
        self.ras_ports = {name: free_port() for name in self.names}
        self.status_ports = {name: free_port(socket.SOCK_STREAM) for name in self.names}
        self.processes = {}
        for name in self.names:
            directory = workdir / name
            directory.mkdir()
            path = directory / "gatekeeper.ini"
            path.write_text(f"[Gatekeeper::Main]\nName={name}\n"
                            + extra[name].format(**self.ras_ports))
            self.processes[name] = GatekeeperProcess(
                directory, "--config", str(path), "--interface", "127.0.0.1",
                "--ras-port", str(self.ras_ports[name]), "--discovery-port", "0",
                "--status-port", str(self.status_ports[name]))
        self.driver = ReactorDriver()
        self.reactor = self.driver.reactor

    def address(self, name: str) -> tuple[str, int]:
        return ("127.0.0.1", self.ras_ports[name])

    def endpoint(self, gk: str, aliases: list[str]) -> tuple[FakeEndpoint, RasClient]:
        endpoint = FakeEndpoint(aliases, ("127.0.0.1", free_port(socket.SOCK_STREAM)),
                                ("127.0.0.1", 0), supports_alt_gk=True)
        client = RasClient.listen(self.reactor, endpoint, self.address(gk), timeout=1.0)
        return endpoint, client

    def ask(self, client: RasClient, data: bytes) -> ras.RasPdu:
        return self.driver.run(client.request(data), 10)

    def registrations(self, gk: str) -> list[str]:
        status = StatusSession(self.status_ports[gk], trace=0)
        try:
            return [line for line in status.command("r") if line.startswith("RCF|")]
        finally:
            status.close()

    def wait_registered(self, gk: str, endpoint_ids: list[str], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            listing = self.registrations(gk)
            if all(any(line.endswith(f"|{i};") or f"|{i}|" in line or line.endswith(i)
                       for line in listing) for i in endpoint_ids):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{gk} does not list {endpoint_ids}: {listing}")
            time.sleep(0.1)


def cluster_fixture(extra: dict[str, str]):
    @pytest.fixture
    def fixture(tmp_path):
        cluster = Cluster(tmp_path, extra)
        for process in cluster.processes.values():
            process.start()
        try:
            yield cluster
        finally:
            cluster.driver.close()
            for process in cluster.processes.values():
                process.stop()
    return fixture


forwarding = cluster_fixture({
    "GK1": "SendTo=127.0.0.1:{GK2}\nAlternateGKs=127.0.0.1;{GK2};false;10;GK2\n",
    "GK2": "AlternateGKs=127.0.0.1;{GK1};false;10;GK1\n",
})


def test_an_endpoint_fails_over_to_an_alternate_that_knows_it_and_calls_at_once(forwarding):
    gk1, gk2 = forwarding.address("GK1"), forwarding.address("GK2")
    carol, carol_ras = forwarding.endpoint("GK1", ["3003", "carol"])
    alice, alice_ras = forwarding.endpoint("GK1", ["1001", "alice"])
    for endpoint, client in ((carol, carol_ras), (alice, alice_ras)):
        assert forwarding.ask(client, endpoint.rrq()).kind == "registrationConfirm"
    assert alice.alternates == [(gk2, False, 10, "GK2")]
    # GK1 copied both registrations to GK2, under GK1's identifiers
    forwarding.wait_registered("GK2", [alice.endpoint_id, carol.endpoint_id])

    forwarding.processes["GK1"].process.send_signal(signal.SIGKILL)
    forwarding.processes["GK1"].process.wait(10)
    with pytest.raises(TimeoutError):
        forwarding.ask(alice_ras, alice.rrq(lightweight=True))
    # needToRegister is false: alice asks GK2 at once, with GK1's identifier
    address, need_to_register, _priority, _gkid = alice.alternates[0]
    assert not need_to_register
    alice_ras.gatekeeper = address
    call_id = ras.new_guid()
    acf = forwarding.ask(alice_ras, alice.arq(["3003"], call_id=call_id))
    assert acf.kind == "admissionConfirm", acf.raw
    assert alice.calls[call_id].signal_address == carol.signal_address
    # her keepalives are GK2's from now on
    assert forwarding.ask(alice_ras, alice.rrq(lightweight=True)).kind == "registrationConfirm"
    assert gk1 != gk2


redirecting = cluster_fixture({
    "GK1": "RedirectGK=Endpoints > 1\nAlternateGKs=127.0.0.1;{GK2};true;10;GK2\n",
    "GK2": "",
})


def test_past_the_endpoint_limit_an_endpoint_is_sent_to_the_alternate(redirecting):
    status = StatusSession(redirecting.status_ports["GK1"], trace=2)
    try:
        first, first_ras = redirecting.endpoint("GK1", ["1001"])
        assert redirecting.ask(first_ras, first.rrq()).kind == "registrationConfirm"
        second, second_ras = redirecting.endpoint("GK1", ["1002", "bob"])
        rrj = redirecting.ask(second_ras, second.rrq())
        assert (rrj.kind, rrj.reason) == ("registrationReject", "resourceUnavailable")
        info = rrj.raw["altGKInfo"]
        assert info["altGKisPermanent"] is False
        [alternate] = info["alternateGatekeeper"]
        assert ras.transport_from_asn(alternate["rasAddress"]) == redirecting.address("GK2")
        assert alternate["needToRegister"] is True
        line = status.wait_for("RRJ|")
        assert line == "RRJ|127.0.0.1|1002:dialedDigits=bob:h323_ID|terminal|resourceUnavailable;"
    finally:
        status.close()
    # it registers where it was sent
    second_ras.gatekeeper = redirecting.address("GK2")
    second.gatekeeper_id = "GK2"
    assert redirecting.ask(second_ras, second.rrq()).kind == "registrationConfirm"
    assert any("bob" in line for line in redirecting.registrations("GK2"))
    assert not any("bob" in line for line in redirecting.registrations("GK1"))
