"""The real program: ``twistd -n gatekeeper`` answering real endpoints' datagrams.

The ooh323c flows of tests/data/vectors/ are replayed from UDP sockets on
127.0.0.1, as the endpoints sent them, with only what the gatekeeper itself
assigned put back in (the endpointIdentifier from our RCF, our name).
"""

from __future__ import annotations

import socket

import pytest

from gatekeeper.h225 import codec, ras
from gkprocess import GatekeeperProcess, free_port
from test_vectors import OOH, load


class Endpoint:
    """A UDP socket standing in for one ooh323c endpoint."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5)
        self.gk = ("127.0.0.1", port)
        self.endpoint_id: str | None = None

    def exchange(self, message: tuple) -> tuple:
        self.sock.sendto(codec.encode_ras(message), self.gk)
        data, _ = self.sock.recvfrom(65535)
        return codec.decode_ras(data)

    def close(self) -> None:
        self.sock.close()


def vector(name: str, endpoint: Endpoint | None = None, gk_name: str | None = None) -> tuple:
    kind, value = codec.decode_ras(load(OOH / f"{name}.hex"))
    if endpoint is not None and endpoint.endpoint_id and "endpointIdentifier" in value:
        value["endpointIdentifier"] = endpoint.endpoint_id
    if gk_name and "gatekeeperIdentifier" in value:
        value["gatekeeperIdentifier"] = gk_name
    return kind, value


@pytest.fixture
def gatekeeper(tmp_path):
    port = free_port()
    process = GatekeeperProcess(tmp_path, "--name", "TestGK", "--interface", "127.0.0.1",
                                "--ras-port", str(port), "--discovery-port", "0", "--ttl", "300",
                                "--status-port", "0")
    with process:
        yield port, process


def test_ooh323c_call_flow_through_the_real_gatekeeper(gatekeeper):
    port, process = gatekeeper
    bob, alice = Endpoint(port), Endpoint(port)
    try:
        # GCF before RCF, for both endpoints
        kind, gcf = bob.exchange(vector("ep_gk2_01_GRQ_bob"))
        assert kind == "gatekeeperConfirm"
        assert gcf["gatekeeperIdentifier"] == "TestGK"
        assert ras.transport_from_asn(gcf["rasAddress"]) == ("127.0.0.1", port)
        kind, rcf = bob.exchange(vector("ep_gk2_02_RRQ_bob", gk_name="TestGK"))
        assert kind == "registrationConfirm"
        bob.endpoint_id = rcf["endpointIdentifier"]
        assert rcf["timeToLive"] == 300
        assert [ras.alias_from_asn(a) for a in rcf["terminalAlias"]] == [
            ras.dialled_digits("2002"), ras.h323_id("bob")]
        assert alice.exchange(vector("ep_gk2_03_GRQ_alice"))[0] == "gatekeeperConfirm"
        kind, rcf = alice.exchange(vector("ep_gk2_04_RRQ_alice", gk_name="TestGK"))
        assert kind == "registrationConfirm"
        alice.endpoint_id = rcf["endpointIdentifier"]
        assert alice.endpoint_id != bob.endpoint_id

        # alice calls bob: the ACF points at bob's signalling address
        kind, acf = alice.exchange(vector("ep_gk2_05_ARQ-call_alice", alice, "TestGK"))
        assert kind == "admissionConfirm"
        bob_rrq = codec.decode_ras(load(OOH / "ep_gk2_02_RRQ_bob.hex"))[1]
        assert acf["destCallSignalAddress"] == bob_rrq["callSignalAddress"][0]
        assert acf["callModel"] == ("direct", None)
        # bob answers the same call
        kind, acf = bob.exchange(vector("ep_gk2_06_ARQ-answer_bob", bob, "TestGK"))
        assert kind == "admissionConfirm"

        # both hang up, then leave
        assert alice.exchange(vector("ep_gk2_07_DRQ_alice", alice))[0] == "disengageConfirm"
        assert bob.exchange(vector("ep_gk2_08_DRQ_bob", bob))[0] == "disengageConfirm"
        assert alice.exchange(vector("ep_gk2_09_URQ_alice", alice))[0] == "unregistrationConfirm"
        assert bob.exchange(vector("ep_gk2_10_URQ_bob", bob))[0] == "unregistrationConfirm"
        # the same URQ again is a retransmission: the same answer
        assert bob.exchange(vector("ep_gk2_10_URQ_bob", bob))[0] == "unregistrationConfirm"
        # a new URQ finds bob gone
        kind, value = vector("ep_gk2_10_URQ_bob", bob)
        value["requestSeqNum"] += 1
        kind, urj = bob.exchange((kind, value))
        assert kind == "unregistrationReject"
        assert urj["rejectReason"] == ("notCurrentlyRegistered", None)
    finally:
        bob.close()
        alice.close()


def test_unknown_callee_gets_called_party_not_registered(gatekeeper):
    port, _ = gatekeeper
    alice = Endpoint(port)
    try:
        kind, rcf = alice.exchange(vector("ep_gk2_04_RRQ_alice", gk_name="TestGK"))
        alice.endpoint_id = rcf["endpointIdentifier"]
        kind, arj = alice.exchange(vector("ep_gk2_05_ARQ-call_alice", alice, "TestGK"))
        assert kind == "admissionReject"
        assert arj["rejectReason"] == ("calledPartyNotRegistered", None)
    finally:
        alice.close()


def test_garbage_does_not_stop_the_next_registration(gatekeeper):
    port, process = gatekeeper
    alice = Endpoint(port)
    try:
        for junk in (b"", b"\xff" * 10, load(OOH / "ep_gk2_04_RRQ_alice.hex")[:20], b"\x00" * 9000):
            alice.sock.sendto(junk, alice.gk)
        kind, _ = alice.exchange(vector("ep_gk2_04_RRQ_alice", gk_name="TestGK"))
        assert kind == "registrationConfirm"
        assert "malformed RAS datagram" in process.log()
    finally:
        alice.close()


def test_grq_multicast_to_224_0_1_41_is_answered_by_unicast(tmp_path):
    from gatekeeper.testing import FakeEndpoint

    ras_port, discovery_port = free_port(), free_port()
    with GatekeeperProcess(tmp_path, "--name", "McastGK", "--interface", "127.0.0.1",
                           "--ras-port", str(ras_port), "--discovery-port", str(discovery_port),
                           "--status-port", "0"):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(5)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            endpoint = FakeEndpoint(["mc"], ("127.0.0.1", 1720), sock.getsockname())
            sock.sendto(endpoint.grq(), ("224.0.1.41", discovery_port))
            data, sender = sock.recvfrom(65535)
        finally:
            sock.close()
    kind, gcf = codec.decode_ras(data)
    assert kind == "gatekeeperConfirm" and gcf["gatekeeperIdentifier"] == "McastGK"
    assert sender == ("127.0.0.1", ras_port)   # the answer comes from the RAS socket
    assert ras.transport_from_asn(gcf["rasAddress"]) == ("127.0.0.1", ras_port)
