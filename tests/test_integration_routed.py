"""Gatekeeper-routed calls through the real ``twistd -n gatekeeper --routed``
(issue 11), with FakeEndpoints over real 127.0.0.1 sockets: RAS over UDP,
call signalling over TCP (gatekeeper.testing's caller and callee legs, run on
a private reactor by gkprocess.ReactorDriver).

A whole call (RRQ, ARQ, Setup -> CallProceeding -> Alerting -> Connect ->
ReleaseComplete, DRQ from both) and its CDR line in cdr.log (connect time,
Q.850 cause), the status port's view of it (``c``, ``cv``, ``s``),
DisconnectCall on a live call, a Setup for no admitted call, a refused call
and SignalTimeout from ``[RoutedMode]`` in the configuration file.
"""

from __future__ import annotations

import socket
import time
from datetime import datetime
from pathlib import Path

import pytest
from twisted.internet import defer

from gatekeeper.h225 import q931, ras
from gatekeeper.testing import CalleeScript, FakeCall, FakeEndpoint, RasClient, setup_message
from gkprocess import GatekeeperProcess, ReactorDriver, StatusSession, free_port

FAST_START = [bytes.fromhex("0000000c2013800a04000100c000020a1389")]
#: CDR fields: number, call id, connect time, disconnect time, duration, cause, reason.
CDR_STRING = "%n|%{CallId}|%{connect-time}|%{disconnect-time}|%d|%c|%{release-reason}"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"


def write_config(workdir: Path, signal_timeout_ms: int | None = None) -> Path:
    routed = "[RoutedMode]\nGKRouted=1\n"
    if signal_timeout_ms is not None:
        routed += f"SignalTimeout={signal_timeout_ms}\n"
    path = workdir / "gatekeeper.ini"
    path.write_text(routed + "[Gatekeeper::Acct]\nFileAcct=required;stop\n"
                    f"[FileAcct]\nCDRString={CDR_STRING}\nTimestampFormat={TIME_FORMAT}\n")
    return path


class Lab:
    """The gatekeeper, a status session, a private reactor, and endpoints."""

    def __init__(self, workdir: Path, signal_timeout_ms: int | None = None) -> None:
        self.workdir = workdir
        self.ras_port = free_port()
        self.signal_port = free_port(socket.SOCK_STREAM)
        self.status_port = free_port(socket.SOCK_STREAM)
        config = write_config(workdir, signal_timeout_ms)
        self.gatekeeper = GatekeeperProcess(
            workdir, "--config", str(config), "--routed", "--call-signal-port",
            str(self.signal_port), "--interface", "127.0.0.1", "--ras-port", str(self.ras_port),
            "--discovery-port", "0", "--status-port", str(self.status_port))
        self.driver = ReactorDriver()
        self.reactor = self.driver.reactor
        self.status: StatusSession | None = None
        self.ras: dict[str, RasClient] = {}

    def start(self) -> "Lab":
        self.gatekeeper.start()
        self.status = StatusSession(self.status_port, trace=0)
        return self

    def stop(self) -> None:
        if self.status is not None:
            self.status.close()
        self.driver.close()
        self.gatekeeper.stop()

    @property
    def gk_signal(self) -> tuple[str, int]:
        return ("127.0.0.1", self.signal_port)

    def run(self, deferred, timeout: float = 15.0):
        return self.driver.run(deferred, timeout)

    def endpoint(self, name: str, number: str, script: CalleeScript | None = None,
                 answer_arq: bool = True) -> FakeEndpoint:
        """A registered endpoint, listening for call signalling; it answers
        calls as ``script`` says (and, with ``answer_arq``, asks admission for
        each before it answers)."""
        endpoint = FakeEndpoint([number, name], ("127.0.0.1", 0), ("127.0.0.1", 0))
        client = RasClient.listen(self.reactor, endpoint, ("127.0.0.1", self.ras_port))
        self.ras[name] = client
        on_setup = (lambda leg: self.answer_arq(endpoint, leg)) if answer_arq else None
        endpoint.listen_signalling(self.reactor, script or CalleeScript(), on_setup=on_setup)
        pdu = self.run(client.request(endpoint.rrq()))
        assert pdu.kind == "registrationConfirm", pdu.kind
        return endpoint

    @defer.inlineCallbacks
    def answer_arq(self, endpoint: FakeEndpoint, leg):
        """The callee's ARQ (answerCall) for the call of a Setup it received."""
        message = leg.setup.message
        pdu = yield self.ras_of(endpoint).request(endpoint.arq(
            ras.aliases_from_asn(message.body.get("destinationAddress")), answer_call=True,
            call_id=leg.call_id, conference_id=message.body["conferenceID"], crv=leg.crv))
        assert pdu.kind == "admissionConfirm", pdu.kind

    def ras_of(self, endpoint: FakeEndpoint) -> RasClient:
        return next(c for c in self.ras.values() if c.endpoint is endpoint)

    def admitted(self, caller: FakeEndpoint, number: str) -> bytes:
        """ARQ for a call to ``number``; the ACF read; the call identifier."""
        call_id = ras.new_guid()
        pdu = self.run(self.ras_of(caller).request(caller.arq([number], call_id=call_id)))
        assert pdu.kind == "admissionConfirm", pdu.kind
        return call_id

    def drq(self, endpoint: FakeEndpoint, call_id: bytes) -> str:
        return self.run(self.ras_of(endpoint).request(endpoint.drq(call_id))).kind

    def cdr_lines(self) -> list[str]:
        path = self.workdir / "cdr.log"
        return path.read_text().splitlines() if path.exists() else []

    def wait_cdrs(self, count: int, timeout: float = 10.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.cdr_lines()) < count and time.monotonic() < deadline:
            self.driver.sleep(0.05)
        return self.cdr_lines()


@pytest.fixture
def lab(tmp_path):
    lab = Lab(tmp_path).start()
    try:
        yield lab
    finally:
        lab.stop()


def answered(lab: Lab, script: CalleeScript = CalleeScript(delays=0.05)):
    """alice (1001) calls bob (2002), who answers as ``script`` says: the
    call id, alice's leg, bob's leg once his Setup arrived."""
    bob = lab.endpoint("bob", "2002", script)
    alice = lab.endpoint("alice", "1001")
    call_id = lab.admitted(alice, "2002")
    call = alice.calls[call_id]
    assert call.call_model == "gatekeeperRouted"
    assert call.signal_address == lab.gk_signal      # the ACF names the gatekeeper
    next_leg = bob.callee.next_leg()
    caller = alice.place_call(lab.reactor, call_id, fast_start=FAST_START)
    callee = lab.run(next_leg)
    lab.run(callee.wait_for(q931.SETUP))
    return alice, bob, call_id, caller, callee


def test_routed_call_setup_to_release_with_cdr_and_status(lab):
    alice, bob, call_id, caller, callee = answered(lab)
    connect = lab.run(caller.wait_for(q931.CONNECT))
    assert caller.types() == [q931.CALL_PROCEEDING, q931.ALERTING, q931.CONNECT]
    assert connect.call_id == call_id
    assert caller.problems() == []
    # bob got the call from the gatekeeper, with the gatekeeper as source and
    # himself as destination; alice's address is nowhere in the Setup
    assert callee.problems(call_id=call_id, source=callee.peer,
                           destination=bob.signal_address) == []
    setup = callee.setup.message
    assert callee.peer[1] != alice.signal_address[1]
    assert setup.address("sourceCallSignalAddress") != alice.signal_address
    assert setup.body["fastStart"] == FAST_START
    assert setup.body["conferenceID"] == alice.calls[call_id].conference_id
    assert ras.aliases_from_asn(setup.body["destinationAddress"]) == (ras.parse_alias("2002"),)
    assert [a.value for a in ras.aliases_from_asn(setup.body["sourceAddress"])] == \
        ["1001", "alice"]

    # the status port: one routed call, connected, with both ACFs
    listing = lab.status.command("c")
    assert listing[-1] == "Number of Calls: 1 Active: 1 From Neighbor: 0 From Parent: 0 Proxied: 1"
    spaced = " ".join(f"{b:02x}" for b in call_id)
    assert listing[1].startswith("Call No. 1 | CallID " + spaced + " | ")
    acfs = [line for line in listing if line.startswith("ACF|")]
    assert len(acfs) == 2 and all(line.endswith("|Proxy;") for line in acfs)
    verbose = lab.status.command("cv")
    detail = next(line for line in verbose if line.startswith("# "))
    assert "unconnected" not in detail
    statistics = lab.status.command("s")
    assert any(line.startswith("Current Calls: 1 Active: 1 ") and line.endswith("Proxied: 1")
               for line in statistics), statistics

    lab.driver.sleep(1.1)                 # a duration of at least one second
    caller.release(q931.CAUSE_NORMAL_CALL_CLEARING)
    release = lab.run(callee.wait_for(q931.RELEASE_COMPLETE))
    assert release.cause == q931.CAUSE_NORMAL_CALL_CLEARING
    assert release.crv == callee.crv and release.from_destination is False
    lab.run(callee.lost)
    lab.run(caller.lost)
    assert lab.drq(alice, call_id) in ("disengageConfirm", "disengageReject")
    assert lab.drq(bob, call_id) in ("disengageConfirm", "disengageReject")

    [cdr] = lab.wait_cdrs(1)
    number, cdr_call_id, connected, disconnected, duration, cause, _ = cdr.split("|")
    assert number == "1" and cdr_call_id == spaced
    assert connected != "" and disconnected != ""
    connect_time = datetime.strptime(connected, TIME_FORMAT)
    disconnect_time = datetime.strptime(disconnected, TIME_FORMAT)
    assert 1 <= (disconnect_time - connect_time).total_seconds() <= 10
    assert 1 <= int(duration) <= 10
    assert cause == str(q931.CAUSE_NORMAL_CALL_CLEARING)
    # one CDR although both sent DRQ after the ReleaseComplete; the call is gone
    lab.driver.sleep(0.3)
    assert len(lab.cdr_lines()) == 1
    assert lab.status.command("c")[-1].startswith("Number of Calls: 0 ")
    statistics = lab.status.command("s")
    assert any(line.startswith("Total Calls: 1 Successful: 1 ") and " Proxied: 1 " in line
               for line in statistics), statistics
    assert "Traceback" not in lab.gatekeeper.log()


def test_callee_release_reaches_the_caller_with_its_cause(lab):
    alice, bob, call_id, caller, callee = answered(lab)
    lab.run(caller.wait_for(q931.CONNECT))
    callee.release(q931.CAUSE_NORMAL_UNSPECIFIED)
    release = lab.run(caller.wait_for(q931.RELEASE_COMPLETE))
    assert release.cause == q931.CAUSE_NORMAL_UNSPECIFIED
    assert release.crv == alice.calls[call_id].crv and release.from_destination is True
    lab.run(caller.lost)
    [cdr] = lab.wait_cdrs(1)
    assert cdr.split("|")[5] == str(q931.CAUSE_NORMAL_UNSPECIFIED)


def test_disconnect_call_sends_release_complete_to_both_endpoints(lab):
    alice, bob, call_id, caller, callee = answered(lab)
    lab.run(caller.wait_for(q931.CONNECT))
    caller_crv = alice.calls[call_id].crv
    number = lab.status.command("c")[1].split(" | ")[0].removeprefix("Call No. ")
    lab.status.sock.sendall(f"DisconnectCall {number}\r\n".encode())
    to_caller = lab.run(caller.wait_for(q931.RELEASE_COMPLETE), timeout=5)
    to_callee = lab.run(callee.wait_for(q931.RELEASE_COMPLETE), timeout=5)
    assert to_caller.crv == caller_crv and to_caller.from_destination is True
    assert to_callee.crv == callee.crv and to_callee.from_destination is False
    assert to_caller.call_id == call_id and to_callee.call_id == call_id
    lab.run(caller.lost)
    lab.run(callee.lost)
    assert not caller.released_by_me and not callee.released_by_me
    # and, as GnuGk does, a DRQ to each endpoint (answered with DCF)
    lab.driver.sleep(0.2)
    for name in ("alice", "bob"):
        drqs = [p for p in lab.ras[name].gatekeeper_requests if p.kind == "disengageRequest"]
        assert len(drqs) == 1, (name, drqs)
    [cdr] = lab.wait_cdrs(1)
    assert cdr.split("|")[2] != ""            # it had connected
    assert lab.status.command("c")[-1].startswith("Number of Calls: 0 ")


def test_setup_for_no_admitted_call_gets_release_complete(lab):
    bob = lab.endpoint("bob", "2002", CalleeScript())
    alice = lab.endpoint("alice", "1001")
    call_id = ras.new_guid()
    alice.arq(["2002"], call_id=call_id)      # built, never sent: no ACF, no call
    call = alice.calls[call_id]
    call.signal_address = lab.gk_signal
    leg = alice.place_call(lab.reactor, call_id)
    release = lab.run(leg.wait_for(q931.RELEASE_COMPLETE))
    assert release.crv == call.crv and release.from_destination is True
    assert release.call_id == call_id
    assert release.cause is not None
    lab.run(leg.lost)
    assert leg.types() == [q931.RELEASE_COMPLETE]
    assert bob.callee.legs == []              # nobody was called
    assert lab.cdr_lines() == []


def test_refused_call_gets_the_callees_cause(lab):
    alice, bob, call_id, caller, callee = answered(
        lab, CalleeScript(refuse=q931.CAUSE_USER_BUSY, refuse_reason="inConf"))
    release = lab.run(caller.wait_for(q931.RELEASE_COMPLETE))
    assert release.cause == q931.CAUSE_USER_BUSY
    lab.run(caller.lost)
    [cdr] = lab.wait_cdrs(1)
    fields = cdr.split("|")
    assert fields[2] == "" and fields[5] == str(q931.CAUSE_USER_BUSY)   # never connected


def test_signal_timeout_from_the_config_file_releases_an_unanswered_call(tmp_path):
    lab = Lab(tmp_path, signal_timeout_ms=1000).start()
    try:
        began = time.monotonic()
        alice, bob, call_id, caller, callee = answered(lab, CalleeScript(answers=()))
        to_caller = lab.run(caller.wait_for(q931.RELEASE_COMPLETE), timeout=10)
        waited = time.monotonic() - began
        to_callee = lab.run(callee.wait_for(q931.RELEASE_COMPLETE), timeout=5)
        assert 0.8 <= waited <= 5.0, waited
        assert to_caller.cause == q931.CAUSE_NO_USER_RESPONDING
        assert to_callee.cause == q931.CAUSE_NO_USER_RESPONDING
        assert caller.types() == [q931.RELEASE_COMPLETE]
        [cdr] = lab.wait_cdrs(1)
        assert cdr.split("|")[5] == str(q931.CAUSE_NO_USER_RESPONDING)
    finally:
        lab.stop()


def test_two_calls_at_once_keep_their_own_call_references(lab):
    bob = lab.endpoint("bob", "2002", CalleeScript(delays=0.02))
    alice = lab.endpoint("alice", "1001")
    legs = []
    for _ in range(2):
        call_id = lab.admitted(alice, "2002")
        legs.append((call_id, alice.place_call(lab.reactor, call_id)))
    for call_id, leg in legs:
        lab.run(leg.wait_for(q931.CONNECT))
        assert leg.problems() == []
    lab.driver.sleep(0.1)
    assert len(bob.callee.legs) == 2
    assert {leg.call_id for leg in bob.callee.legs} == {call_id for call_id, _ in legs}
    for callee in bob.callee.legs:
        assert callee.problems() == []
    assert lab.status.command("c")[-1].endswith("Active: 2 From Neighbor: 0 From Parent: 0 "
                                                "Proxied: 2")
    for _, leg in legs:
        leg.release()
    assert len(lab.wait_cdrs(2)) == 2


# --- [RoutedMode] AcceptUnregisteredCalls: a virtual queue on the Setup --------------------

#: CDR fields here: number, call id, connect time, caller endpoint id and
#: address, callee endpoint id and address, destination aliases, cause.
QUEUE_CDR = ("%n|%{CallId}|%{connect-time}|%{caller-epid}|%{caller-ip}:%{caller-port}|"
             "%{callee-epid}|%{callee-ip}:%{callee-port}|%{dest-info}|%c")


def queue_lab(workdir: Path, routed: str = "") -> Lab:
    """A Lab whose gatekeeper admits Setups without ARQ and has virtual
    queue 800, reached after explicit and internal routing; ``routed``:
    more [RoutedMode] lines."""
    lab = Lab(workdir)
    (workdir / "gatekeeper.ini").write_text(
        "[RoutedMode]\nGKRouted=1\nAcceptUnregisteredCalls=1\n" + routed +
        "[RoutingPolicy]\ndefault=explicit,internal,vqueue\n"
        "[CTI::Agents]\nVirtualQueueAliases=800\nRequestTimeout=10\n"
        "[Gatekeeper::Acct]\nFileAcct=required;stop\n"
        f"[FileAcct]\nCDRString={QUEUE_CDR}\nTimestampFormat={TIME_FORMAT}\n")
    return lab.start()


@pytest.fixture
def qlab(tmp_path):
    lab = queue_lab(tmp_path)
    events = StatusSession(lab.status_port, trace=1)
    lab.events = events
    try:
        yield lab
    finally:
        events.close()
        lab.stop()


def unregistered_call(lab: Lab, number: str, crv: int):
    """A caller that never registered (no RRQ, no ARQ: gatekeeper.testing's
    FakeEndpoint only builds the Setup) opens TCP to the gatekeeper's call
    signalling port and sends a Setup for ``number``, addressed to the
    gatekeeper, with no sourceCallSignalAddress: the caller, its call id and
    its leg."""
    caller = FakeEndpoint(["1001", "stranger"], ("127.0.0.1", 0))
    call_id = ras.new_guid()
    caller.calls[call_id] = FakeCall(call_id, call_id, crv, destination=(ras.parse_alias(number),),
                                     signal_address=lab.gk_signal)
    setup = setup_message(crv, call_id, call_id, (ras.parse_alias(number),), caller.aliases,
                          None, lab.gk_signal, fast_start=FAST_START)
    leg = caller.place_call(lab.reactor, call_id, setup=setup)
    lab.run(leg.opened)
    return caller, call_id, leg


def route_request(lab: Lab, timeout: float = 10.0) -> list[str]:
    """The first RouteRequest line the trace-1 session sees, split at ``|``
    (the private reactor runs meanwhile, so that the Setup goes out)."""
    deadline = time.monotonic() + timeout
    while True:
        lab.driver.sleep(0.02)
        try:
            line = lab.events.wait_for("RouteRequest|", timeout=0.05)
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
    assert line.endswith(";"), line
    return line[:-1].split("|")


def test_unregistered_setup_to_a_virtual_queue_is_routed_by_route_to_alias(qlab):
    lab = qlab
    bob = lab.endpoint("bob", "2002", CalleeScript(delays=0.05))
    next_leg = bob.callee.next_leg()
    caller, call_id, leg = unregistered_call(lab, "800", crv=321)
    local = leg.transport.getHost()
    fields = route_request(lab)
    assert fields[0] == "RouteRequest"
    assert fields[1] == f"127.0.0.1:{local.port}"         # the connection's peer
    assert fields[2:5] == ["unregistered", "321", "800"]
    assert fields[5] == "1001"                            # the caller's first alias
    assert fields[6] == "-".join(f"{b:02x}" for b in call_id)
    assert fields[-1] == "Setup"
    assert fields[-2] == f"127.0.0.1:{local.port}"        # where the Setup came from
    assert leg.received == [] and bob.callee.legs == []  # held until answered
    assert lab.status.command("c")[-1].startswith("Number of Calls: 0 ")

    lab.status.sock.sendall(b"RouteToAlias 2002 unregistered 321\r\n")
    callee = lab.run(next_leg)
    setup = lab.run(callee.wait_for(q931.SETUP)).message
    assert setup.call_id == call_id
    assert ras.aliases_from_asn(setup.body["destinationAddress"]) == (ras.parse_alias("2002"),)
    assert setup.body["fastStart"] == FAST_START
    assert setup.address("destCallSignalAddress") == bob.signal_address
    # bob answers: his answerCall ARQ is confirmed (Lab.answer_arq asserts
    # the ACF), then Alerting and Connect reach the caller.
    connect = lab.run(leg.wait_for(q931.CONNECT))
    assert connect.call_id == call_id and connect.crv == 321 and connect.from_destination
    assert q931.ALERTING in leg.types()
    assert leg.problems() == [] and callee.problems(call_id=call_id) == []
    bob_arqs = [pdu for pdu in bob.answers if pdu.kind == "admissionConfirm"]
    assert len(bob_arqs) == 1
    listing = lab.status.command("c")
    assert listing[-1] == ("Number of Calls: 1 Active: 1 From Neighbor: 0 From Parent: 0 "
                           "Proxied: 1"), listing
    # the caller's line: its address, no endpoint id, the Setup's CRV
    spaced = "-".join(f"{b:02x}" for b in call_id)
    assert (f"ACF|127.0.0.1:{local.port}||321|2002:dialedDigits|"
            f"1001:dialedDigits=stranger:h323_ID|false|{spaced}|Proxy;") in listing, listing
    assert any(line.startswith(f"ACF|127.0.0.1:{bob.signal_address[1]}|{bob.endpoint_id}|")
               and f"|true|{spaced}|" in line for line in listing), listing

    leg.release(q931.CAUSE_NORMAL_CALL_CLEARING)
    release = lab.run(callee.wait_for(q931.RELEASE_COMPLETE))
    assert release.cause == q931.CAUSE_NORMAL_CALL_CLEARING
    lab.run(callee.lost)
    [cdr] = lab.wait_cdrs(1)
    (number, cdr_call_id, connected, caller_epid, caller_address, callee_epid, callee_address,
     dest_info, cause) = cdr.split("|")
    assert cdr_call_id == " ".join(f"{b:02x}" for b in call_id)
    assert connected != ""
    assert caller_epid == "" and caller_address == f"127.0.0.1:{local.port}"
    assert callee_epid == bob.endpoint_id
    assert callee_address == f"127.0.0.1:{bob.signal_address[1]}"
    assert "2002:dialedDigits" in dest_info, dest_info
    assert cause == str(q931.CAUSE_NORMAL_CALL_CLEARING)
    assert lab.status.command("c")[-1].startswith("Number of Calls: 0 ")
    assert "Traceback" not in lab.gatekeeper.log()


def test_unregistered_setup_to_a_virtual_queue_route_reject(qlab):
    lab = qlab
    bob = lab.endpoint("bob", "2002")
    caller, call_id, leg = unregistered_call(lab, "800", crv=654)
    fields = route_request(lab)
    assert fields[2:5] == ["unregistered", "654", "800"] and fields[-1] == "Setup"
    lab.status.sock.sendall(b"RouteReject unregistered 654\r\n")
    release = lab.run(leg.wait_for(q931.RELEASE_COMPLETE))
    # RouteReject's default reason, calledPartyNotRegistered: H.225.0 Table 5
    # ReleaseCompleteReason calledPartyNotRegistered, Q.850 cause 20
    assert release.crv == 654 and release.from_destination is True
    assert release.call_id == call_id
    assert release.cause == q931.CAUSE_SUBSCRIBER_ABSENT
    assert release.message.body["reason"] == ("calledPartyNotRegistered", None)
    lab.run(leg.lost)
    assert leg.types() == [q931.RELEASE_COMPLETE]
    assert bob.callee.legs == []
    assert lab.status.command("c")[-1].startswith("Number of Calls: 0 ")
    lab.driver.sleep(0.2)
    assert lab.cdr_lines() == []


# --- TransferCall on a live routed call ------------------------------------------------------


def test_transfer_call_sends_the_caller_facility_call_forwarded(lab):
    carol = lab.endpoint("carol", "3003")
    alice, bob, call_id, caller, callee = answered(lab)
    lab.run(caller.wait_for(q931.CONNECT))
    lab.status.sock.sendall(b"TransferCall alice 3003\r\n")
    reply = lab.status.read_until(lambda line: line.startswith(("Transferring", "Error")))[-1]
    assert reply == "Transferring call number 1: the caller is asked to call 3003", reply
    facility = lab.run(caller.wait_for(q931.FACILITY), timeout=5)
    assert facility.crv == alice.calls[call_id].crv and facility.from_destination is True
    assert facility.call_id == call_id
    body = facility.message.body
    assert body["reason"] == ("callForwarded", None)
    assert ras.aliases_from_asn(body["alternativeAliasAddress"]) == (ras.parse_alias("3003"),)
    assert body["conferenceID"] == alice.calls[call_id].conference_id
    lab.driver.sleep(0.2)
    assert q931.FACILITY not in callee.types()           # only the caller is asked
    assert carol.callee.legs == []                       # nobody called carol for her
    # the call stays up until the caller releases it
    listing = lab.status.command("c")
    assert listing[-1].startswith("Number of Calls: 1 Active: 1 "), listing
    caller.release(q931.CAUSE_NORMAL_CALL_CLEARING)
    lab.run(callee.wait_for(q931.RELEASE_COMPLETE))
    lab.run(caller.lost)
    [cdr] = lab.wait_cdrs(1)
    assert cdr.split("|")[2] != ""                       # it had connected
    assert lab.status.command("c")[-1].startswith("Number of Calls: 0 ")


def test_held_unregistered_setup_gets_the_gatekeepers_call_proceeding(tmp_path):
    """GenerateCallProceeding=1: the Setup waiting in the virtual queue is
    answered at once with the gatekeeper's CallProceeding; once routed, bob's
    own CallProceeding is not a second one for the caller."""
    lab = queue_lab(tmp_path, "GenerateCallProceeding=1\n")
    lab.events = StatusSession(lab.status_port, trace=1)
    try:
        bob = lab.endpoint("bob", "2002", CalleeScript(delays=0.05))
        caller, call_id, leg = unregistered_call(lab, "800", crv=987)
        proceeding = lab.run(leg.wait_for(q931.CALL_PROCEEDING), timeout=5)
        assert proceeding.crv == 987 and proceeding.from_destination is True
        assert route_request(lab)[2:5] == ["unregistered", "987", "800"]
        assert bob.callee.legs == []                     # still waiting for its route
        lab.status.sock.sendall(b"RouteToAlias 2002 unregistered 987\r\n")
        lab.run(leg.wait_for(q931.CONNECT))
        callee = bob.callee.legs[0]
        assert callee.sent[0] == q931.CALL_PROCEEDING        # bob did send his own
        assert leg.types() == [q931.CALL_PROCEEDING, q931.ALERTING, q931.CONNECT]
        assert leg.problems() == []
        leg.release()
        assert len(lab.wait_cdrs(1)) == 1
    finally:
        lab.events.close()
        lab.stop()


def route_requests(lab: Lab, count: int, timeout: float = 10.0) -> list[list[str]]:
    """The first ``count`` RouteRequest lines, split at ``|`` (the reactor runs meanwhile)."""
    deadline = time.monotonic() + timeout
    while len(lab.events.matching("RouteRequest|")) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"fewer than {count} RouteRequests: {lab.events.seen[-10:]}")
        lab.driver.sleep(0.02)
        try:
            lab.events.wait_for_lines("RouteRequest|", count, timeout=0.05)
        except AssertionError:
            pass
    return [line.rstrip(";").split("|") for line in lab.events.matching("RouteRequest|")]


def test_two_unregistered_callers_with_one_crv_are_routed_apart_by_call_id(qlab):
    """Two callers, both CRV 5, wait in queue 800: RouteToAlias with the
    second's call id routes that one (to carol); without one, the one left
    (to bob). Each callee gets the Setup of its own call."""
    lab = qlab
    bob = lab.endpoint("bob", "2002", CalleeScript(delays=0.05))
    carol = lab.endpoint("carol", "3003", CalleeScript(delays=0.05))
    _, first_id, first = unregistered_call(lab, "800", crv=5)
    _, second_id, second = unregistered_call(lab, "800", crv=5)
    requests = route_requests(lab, 2)
    assert [r[2:5] for r in requests] == [["unregistered", "5", "800"]] * 2
    by_call = {r[6]: r for r in requests}
    second_text = "-".join(f"{b:02x}" for b in second_id)
    assert set(by_call) == {second_text, "-".join(f"{b:02x}" for b in first_id)}
    lab.status.sock.sendall(f"RouteToAlias 3003 unregistered 5 {second_text}\r\n".encode())
    lab.run(second.wait_for(q931.CONNECT))
    assert first.received == []                          # the other one still waits
    lab.status.sock.sendall(b"RouteToAlias 2002 unregistered 5\r\n")
    lab.run(first.wait_for(q931.CONNECT))
    assert [leg.call_id for leg in carol.callee.legs] == [second_id]
    assert [leg.call_id for leg in bob.callee.legs] == [first_id]
    assert first.problems() == [] and second.problems() == []
    assert lab.status.command("c")[-1].startswith("Number of Calls: 2 Active: 2 ")
    first.release()
    second.release()
    cdrs = lab.wait_cdrs(2)
    callees = {line.split("|")[1]: line.split("|")[5] for line in cdrs}
    assert callees == {" ".join(f"{b:02x}" for b in first_id): bob.endpoint_id,
                       " ".join(f"{b:02x}" for b in second_id): carol.endpoint_id}


def test_what_a_held_caller_sends_follows_the_forwarded_setup(qlab):
    lab = qlab
    bob = lab.endpoint("bob", "2002", CalleeScript(delays=0.05))
    next_leg = bob.callee.next_leg()
    _, call_id, leg = unregistered_call(lab, "800", crv=7)
    route_request(lab)
    leg.information()
    leg.information()
    lab.driver.sleep(0.1)
    assert bob.callee.legs == []
    lab.status.sock.sendall(b"RouteToAlias 2002 unregistered 7\r\n")
    callee = lab.run(next_leg)
    lab.run(leg.wait_for(q931.CONNECT))
    assert callee.types()[:3] == [q931.SETUP, q931.INFORMATION, q931.INFORMATION]
    assert callee.problems(call_id=call_id) == []        # one CRV, the callee leg's own
    leg.release()
    lab.run(callee.wait_for(q931.RELEASE_COMPLETE))


def test_caller_that_left_while_held_gets_no_callee_leg(qlab):
    """The caller hangs up while its Setup waits in the queue; a
    RouteToAlias after that opens no leg to the callee: the call admitted
    then ends at once with the caller's cause (16), unconnected."""
    lab = qlab
    bob = lab.endpoint("bob", "2002", CalleeScript(delays=0.05))
    _, call_id, leg = unregistered_call(lab, "800", crv=6)
    route_request(lab)
    leg.release(q931.CAUSE_NORMAL_CALL_CLEARING)
    lab.run(leg.lost)
    lab.driver.sleep(0.2)
    lab.status.sock.sendall(b"RouteToAlias 2002 unregistered 6\r\n")
    [cdr] = lab.wait_cdrs(1)
    fields = cdr.split("|")
    assert fields[1] == " ".join(f"{b:02x}" for b in call_id)
    assert fields[2] == "" and fields[3] == "" and fields[8] == str(q931.CAUSE_NORMAL_CALL_CLEARING)
    lab.driver.sleep(0.2)
    assert bob.callee.legs == []
    assert lab.status.command("c")[-1].startswith("Number of Calls: 0 ")
    assert "Traceback" not in lab.gatekeeper.log()


def test_reload_turns_accept_unregistered_calls_on_and_off(tmp_path):
    """``Reload`` on the status port reads [RoutedMode] AcceptUnregisteredCalls
    again: a Setup with no ARQ is refused (callerNotRegistered), admitted
    after the key is set, refused again once it is cleared."""
    lab = Lab(tmp_path).start()
    config = tmp_path / "gatekeeper.ini"
    original = config.read_text()

    def reload(text: str) -> None:
        config.write_text(text)
        lab.status.sock.sendall(b"Reload\r\n")
        lab.status.read_until(lambda line: line.startswith(("Full Config reloaded", "Reload failed")))
        assert lab.status.seen[-1] == "Full Config reloaded.", lab.status.seen[-5:]

    def refused(crv: int) -> None:
        _, call_id, leg = unregistered_call(lab, "2002", crv=crv)
        release = lab.run(leg.wait_for(q931.RELEASE_COMPLETE))
        assert release.crv == crv and release.call_id == call_id
        assert release.message.body["reason"] == ("callerNotRegistered", None)
        assert release.cause == q931.CAUSE_NORMAL_UNSPECIFIED
        lab.run(leg.lost)

    try:
        bob = lab.endpoint("bob", "2002", CalleeScript(delays=0.02))
        refused(41)
        reload(original.replace("GKRouted=1\n", "GKRouted=1\nAcceptUnregisteredCalls=1\n"))
        _, call_id, leg = unregistered_call(lab, "2002", crv=42)
        lab.run(leg.wait_for(q931.CONNECT))
        assert [callee.call_id for callee in bob.callee.legs] == [call_id]
        leg.release()
        assert len(lab.wait_cdrs(1)) == 1
        reload(original)
        refused(43)
        assert len(bob.callee.legs) == 1 and len(lab.cdr_lines()) == 1
        assert "Traceback" not in lab.gatekeeper.log()
    finally:
        lab.stop()


@pytest.mark.parametrize("on_setup", [None, "internal"], ids=["default-chain", "onsetup-internal"])
def test_unregistered_setup_naming_an_unregistered_callee_address(tmp_path, on_setup):
    """A Setup with no ARQ whose destCallSignalAddress is an endpoint's that
    is not registered either (carol, 5555): GnuGk's default chain (explicit
    first) sends the call there; with [RoutingPolicy::OnSetup]
    default=internal only registered destinations are reached, so it is
    refused with calledPartyNotRegistered, cause 20."""
    lab = Lab(tmp_path)
    config = tmp_path / "gatekeeper.ini"
    text = config.read_text().replace("GKRouted=1\n", "GKRouted=1\nAcceptUnregisteredCalls=1\n")
    if on_setup:
        text += f"[RoutingPolicy::OnSetup]\ndefault={on_setup}\n"
    config.write_text(text)
    lab.start()
    try:
        carol = FakeEndpoint(["5555"], ("127.0.0.1", 0))
        carol.listen_signalling(lab.reactor, CalleeScript(delays=0.02))
        caller = FakeEndpoint(["1001"], ("127.0.0.1", 0))
        call_id = ras.new_guid()
        caller.calls[call_id] = FakeCall(call_id, call_id, 9, signal_address=lab.gk_signal)
        setup = setup_message(9, call_id, call_id, (ras.parse_alias("5555"),), caller.aliases,
                              None, carol.signal_address)
        leg = caller.place_call(lab.reactor, call_id, setup=setup)
        if on_setup:
            release = lab.run(leg.wait_for(q931.RELEASE_COMPLETE))
            assert release.cause == q931.CAUSE_SUBSCRIBER_ABSENT
            assert release.message.body["reason"] == ("calledPartyNotRegistered", None)
            lab.run(leg.lost)
            assert carol.callee.legs == [] and lab.cdr_lines() == []
            return
        lab.run(leg.wait_for(q931.CONNECT))
        [callee] = carol.callee.legs
        assert callee.setup.message.address("destCallSignalAddress") == carol.signal_address
        local = leg.transport.getHost()
        assert callee.peer != (local.host, local.port)          # from the gatekeeper's leg
        listing = lab.status.command("c")
        assert listing[-1].startswith("Number of Calls: 1 Active: 1 "), listing
        leg.release()
        lab.run(callee.wait_for(q931.RELEASE_COMPLETE))
        [cdr] = lab.wait_cdrs(1)
        assert cdr.split("|")[1] == " ".join(f"{b:02x}" for b in call_id)
        assert cdr.split("|")[2] != ""                          # connected
    finally:
        lab.stop()


def test_accounting_of_a_call_admitted_on_its_setup(tmp_path):
    """[StatusAcct] start, connect and stop run for a call with no ARQ (the
    accounting start is not skipped for want of an ACF): each names the
    caller's connection and the callee; the file CDR has no caller endpoint
    id and the caller's dialled-digits alias as Calling-Station-Id."""
    lab = Lab(tmp_path)
    (tmp_path / "gatekeeper.ini").write_text(
        "[RoutedMode]\nGKRouted=1\nAcceptUnregisteredCalls=1\n"
        "[Gatekeeper::Acct]\nStatusAcct=required;start,connect,stop\nFileAcct=required;stop\n"
        "[FileAcct]\nCDRString=%n|%{caller-epid}|%{caller-ip}:%{caller-port}|"
        "%{Calling-Station-Id}|%{src-info}|%{callee-epid}\n")
    lab.start()
    lab.events = StatusSession(lab.status_port, trace=1)
    try:
        bob = lab.endpoint("bob", "2002", CalleeScript(delays=0.02))
        _, call_id, leg = unregistered_call(lab, "2002", crv=3)
        host = leg.transport.getHost()
        caller = f"{host.host}:{host.port}"
        lab.run(leg.wait_for(q931.CONNECT))
        leg.release()
        assert lab.wait_cdrs(1) == [
            f"1||{caller}|1001|1001:dialedDigits=stranger:h323_ID|{bob.endpoint_id}"]
        dashed = "-".join(f"{b:02x}" for b in call_id)
        callee = f"127.0.0.1:{bob.signal_address[1]}"
        lines = lab.events.wait_for_lines("CALL|", 3)
        assert lines == [f"CALL|{event}|{caller}|{callee}|{dashed}"
                         for event in ("Start", "Connect", "Stop")], lines
    finally:
        lab.events.close()
        lab.stop()
