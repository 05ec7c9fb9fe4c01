"""Three real ``twistd -n gatekeeper`` processes on 127.0.0.1 as a mesh of
neighbours (issue 12): each has the two others in [RasSrv::Neighbors] with
SendPrefixes=*.  A FakeEndpoint registered on GK1 asks for an alias
registered on GK3: ACF with GK3's endpoint's address (direct mode); in
routed mode a whole call GK1 -> GK3 connects.  Then GK2 is killed with
SIGKILL, and calls from GK1 to GK3 still work at once: the LCF from GK3 wins
without waiting for the dead neighbour (equal ranks: the first LCF wins)."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import pytest
from twisted.internet import defer

from gatekeeper.h225 import q931, ras
from gatekeeper.testing import CalleeScript, FakeEndpoint, RasClient
from gkprocess import GatekeeperProcess, ReactorDriver, StatusSession, free_port

NAMES = ("GK1", "GK2", "GK3")


class Mesh:
    """Three gatekeepers, each the neighbour of the two others."""

    def __init__(self, workdir: Path, routed: bool) -> None:
        self.routed = routed
        self.ras_ports = {name: free_port() for name in NAMES}
        self.status_ports = {name: free_port(socket.SOCK_STREAM) for name in NAMES}
        self.signal_ports = {name: free_port(socket.SOCK_STREAM) for name in NAMES}
        self.processes: dict[str, GatekeeperProcess] = {}
        for name in NAMES:
            directory = workdir / name
            directory.mkdir()
            config = directory / "gatekeeper.ini"
            config.write_text(self.config_text(name))
            args = ["--config", str(config), "--interface", "127.0.0.1",
                    "--ras-port", str(self.ras_ports[name]), "--discovery-port", "0",
                    "--status-port", str(self.status_ports[name])]
            if routed:
                args += ["--routed", "--call-signal-port", str(self.signal_ports[name])]
            self.processes[name] = GatekeeperProcess(directory, *args)
        self.driver = ReactorDriver()
        self.reactor = self.driver.reactor
        self.clients: list[RasClient] = []

    def config_text(self, name: str) -> str:
        others = [other for other in NAMES if other != name]
        text = f"[Gatekeeper::Main]\nName={name}\n[RasSrv::Neighbors]\n"
        text += "".join(f"{other}=GnuGk\n" for other in others)
        for other in others:
            text += (f"[Neighbor::{other}]\nHost=127.0.0.1:{self.ras_ports[other]}\n"
                     "SendPrefixes=*\n")
        text += "[RasSrv::LRQFeatures]\nNeighborTimeout=2\nSendRetries=1\n"
        if self.routed:
            text += "[RoutedMode]\nGKRouted=1\nAcceptNeighborsCalls=1\n"
        return text

    def start(self) -> "Mesh":
        for process in self.processes.values():
            process.start()
        return self

    def stop(self) -> None:
        self.driver.close()
        for process in self.processes.values():
            process.stop()

    def run(self, deferred, timeout: float = 15.0):
        return self.driver.run(deferred, timeout)

    def endpoint(self, gk: str, aliases: list[str], script: CalleeScript | None = None
                 ) -> tuple[FakeEndpoint, RasClient]:
        endpoint = FakeEndpoint(aliases, ("127.0.0.1", 0), ("127.0.0.1", 0))
        client = RasClient.listen(self.reactor, endpoint, ("127.0.0.1", self.ras_ports[gk]),
                                  timeout=8.0)
        self.clients.append(client)
        endpoint.listen_signalling(self.reactor, script or CalleeScript(delays=0.05),
                                   on_setup=lambda leg: self.answer_arq(endpoint, client, leg))
        pdu = self.run(client.request(endpoint.rrq()))
        assert pdu.kind == "registrationConfirm", pdu.kind
        return endpoint, client

    @defer.inlineCallbacks
    def answer_arq(self, endpoint: FakeEndpoint, client: RasClient, leg):
        message = leg.setup.message
        pdu = yield client.request(endpoint.arq(
            ras.aliases_from_asn(message.body.get("destinationAddress")), answer_call=True,
            call_id=leg.call_id, conference_id=message.body["conferenceID"], crv=leg.crv))
        assert pdu.kind == "admissionConfirm", pdu.kind

    def admit(self, endpoint: FakeEndpoint, client: RasClient, number: str):
        call_id = ras.new_guid()
        started = time.monotonic()
        pdu = self.run(client.request(endpoint.arq([number], call_id=call_id)))
        return pdu, call_id, time.monotonic() - started


@pytest.fixture
def direct(tmp_path):
    mesh = Mesh(tmp_path, routed=False).start()
    try:
        yield mesh
    finally:
        mesh.stop()


@pytest.fixture
def routed(tmp_path):
    mesh = Mesh(tmp_path, routed=True).start()
    try:
        yield mesh
    finally:
        mesh.stop()


def test_direct_mode_an_arq_on_gk1_finds_an_alias_registered_on_gk3(direct):
    carol, _ = direct.endpoint("GK3", ["3003", "carol"])
    alice, alice_ras = direct.endpoint("GK1", ["1001", "alice"])
    pdu, call_id, _ = direct.admit(alice, alice_ras, "3003")
    assert pdu.kind == "admissionConfirm", pdu
    assert alice.calls[call_id].signal_address == carol.signal_address
    assert alice.calls[call_id].call_model == "direct"
    # an alias nobody has: every neighbour rejects, ARJ
    pdu, _, _ = direct.admit(alice, alice_ras, "9999")
    assert (pdu.kind, pdu.reason) == ("admissionReject", "calledPartyNotRegistered")
    # GK1's status port lists its neighbours
    status = StatusSession(direct.status_ports["GK1"], trace=0)
    try:
        lines = status.command("pn")
    finally:
        status.close()
    assert lines == ["Neighbors",
                     f"GK2\tGnuGk\t127.0.0.1:{direct.ras_ports['GK2']}\t*\t*",
                     f"GK3\tGnuGk\t127.0.0.1:{direct.ras_ports['GK3']}\t*\t*",
                     "Number of Neighbors: 2"]


def call_connects(mesh: Mesh, alice: FakeEndpoint, alice_ras: RasClient,
                  carol: FakeEndpoint) -> float:
    """alice (GK1) calls 3003 (carol, GK3): the call connects end to end;
    the seconds the ARQ took."""
    pdu, call_id, took = mesh.admit(alice, alice_ras, "3003")
    assert pdu.kind == "admissionConfirm", pdu
    assert alice.calls[call_id].signal_address == ("127.0.0.1", mesh.signal_ports["GK1"])
    next_leg = carol.callee.next_leg()
    caller = alice.place_call(mesh.reactor, call_id)
    callee = mesh.run(next_leg)
    setup = mesh.run(callee.wait_for(q931.SETUP))
    # carol's Setup comes from GK3's relay, which got it from GK1's
    assert ras.aliases_from_asn(setup.message.body["destinationAddress"]) == \
        (ras.parse_alias("3003"),)
    mesh.run(caller.wait_for(q931.CONNECT))
    assert caller.problems() == []
    return took


def test_routed_mode_a_call_from_gk1_to_gk3_connects_and_survives_losing_gk2(routed):
    carol, _ = routed.endpoint("GK3", ["3003", "carol"])
    alice, alice_ras = routed.endpoint("GK1", ["1001", "alice"])
    call_connects(routed, alice, alice_ras, carol)

    routed.processes["GK2"].stop(signal.SIGKILL)
    assert routed.processes["GK2"].process.returncode == -signal.SIGKILL
    took = call_connects(routed, alice, alice_ras, carol)
    # GK3's LCF wins at once: no waiting for the dead GK2 (NeighborTimeout=2)
    assert took < 1.5, took


def test_direct_mode_calls_between_gk1_and_gk3_work_after_gk2_is_killed(direct):
    carol, _ = direct.endpoint("GK3", ["3003", "carol"])
    alice, alice_ras = direct.endpoint("GK1", ["1001", "alice"])
    direct.processes["GK2"].stop(signal.SIGKILL)
    for _ in range(3):
        pdu, call_id, took = direct.admit(alice, alice_ras, "3003")
        assert pdu.kind == "admissionConfirm", pdu
        assert alice.calls[call_id].signal_address == carol.signal_address
        assert took < 1.5, took
    # and the other way round
    pdu, call_id, _ = direct.admit(carol, direct.clients[0], "1001")
    assert pdu.kind == "admissionConfirm"
    assert carol.calls[call_id].signal_address == alice.signal_address
