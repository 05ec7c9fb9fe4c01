"""Gatekeeper-routed call signalling (issue 11): SignallingServer and CallRelay
over real objects.

A real RasController in routed mode admits the calls from FakeEndpoint ARQs
(so the ACF is checked to point at the gatekeeper), a SetupAdmission decides
on the Setups, and the signalling server runs on a MemoryReactorClock, which
is its clock and its connector: the callee legs it opens are recorded
``connectTCP`` calls, whose factory the tests use to build the leg and connect
it to a StringTransport.  The caller legs come from the server factory the
same way.  The tests write encoded TPKT frames into ``dataReceived`` and read
back what the gatekeeper wrote to each transport.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone, ConnectionLost, ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from gatekeeper import events as ev
from gatekeeper.core.admission import SetupAdmission, SetupSettings
from gatekeeper.h225 import callsignal, codec, q931, ras, tpkt
from gatekeeper.h225.callsignal import SignalMessage
from gatekeeper.h225.q931 import (
    BearerCapability,
    CalledPartyNumber,
    CallingPartyNumber,
    CallState,
    Cause,
    Display,
    NotificationIndicator,
    ProgressIndicator,
    Q931Message,
    UserUser,
)
from gatekeeper.ras.controller import RasController, RasSettings
from gatekeeper.ras.protocol import RasProtocol
from gatekeeper.signalling import h245 as h245_module
from gatekeeper.signalling import protocol as protocol_module
from gatekeeper.signalling.relay import CallRelay, SignallingServer, SignallingSettings
from gatekeeper.testing import VENDOR, FakeDatagramTransport, FakeEndpoint

START = 1_800_000_000
GK_HOST = "192.0.2.1"
GK_SIGNAL = (GK_HOST, 1720)
PROTOCOL = ras.PROTOCOL_IDENTIFIER
CALLER_CRV = 0x2A5B
#: Two H.245 OpenLogicalChannel encodings (as in test_uuie_tshark.py).
FAST_START = [bytes.fromhex("0000000c2013800a04000100c000020a1389"),
              bytes.fromhex("0000010c6013801114000100c000020a138a00c000020a138b")]
SETTINGS = SignallingSettings(setup_timeout=8.0, signal_timeout=30.0, alerting_timeout=180.0)


def phone(n: int) -> FakeEndpoint:
    """An endpoint at 10.0.0.n (signalling 1720, RAS 1719), number 100n."""
    return FakeEndpoint([f"{1000 + n}", f"user{n}"], (f"10.0.0.{n}", 1720),
                        (f"10.0.0.{n}", 1719))


def endpoint_type(kind: str = "terminal") -> dict:
    return ras.endpoint_type_value(kind, VENDOR)


def signal(message_type: int, crv: int, from_destination: bool, body: str, content,
           ies=(), tunnelling: bool = True, **pdu) -> SignalMessage:
    """A call signalling message as a party sends it (its UUIE encoded)."""
    uuie = {"h323-uu-pdu": {"h323-message-body": (body, content), "h245Tunnelling": tunnelling,
                            **pdu}}
    message = Q931Message(message_type, crv, from_destination, list(ies))
    message.set_ie(UserUser(codec.encode_uuie(uuie)))
    return callsignal.parse(q931.encode(message))


def setup_message(call_id: bytes, destination_number: str, crv: int = CALLER_CRV,
                  source: tuple = ("10.0.0.1", 1720), h245: tuple | None = None) -> SignalMessage:
    """A caller's Setup sent to the gatekeeper (as its routed ACF said)."""
    body = {
        "protocolIdentifier": PROTOCOL,
        "sourceAddress": [("h323-ID", "Alice Ünïcödé"), ("dialledDigits", "1001")],
        "sourceInfo": endpoint_type(),
        "destinationAddress": [("dialledDigits", destination_number)],
        "destCallSignalAddress": ras.transport_to_asn(GK_SIGNAL),
        "activeMC": False,
        "conferenceID": call_id,
        "conferenceGoal": ("create", None),
        "callType": ("pointToPoint", None),
        "sourceCallSignalAddress": ras.transport_to_asn(source),
        "callIdentifier": {"guid": call_id},
        "fastStart": list(FAST_START),
        "mediaWaitForConnect": False,
        "canOverlapSend": False,
        "multipleCalls": False,
        "maintainConnection": False,
    }
    if h245 is not None:
        body["h245Address"] = ras.transport_to_asn(h245)
    ies = [BearerCapability(q931.ITC_UNRESTRICTED_DIGITAL, q931.RATE_MULTIRATE, q931.L1_H221_H242,
                            rate_multiplier=6).to_ie(),
           Display("Alice Example").to_ie(),
           CallingPartyNumber("1001", q931.TON_NATIONAL, q931.NPI_ISDN, q931.PRESENTATION_ALLOWED,
                              q931.SCREENING_NETWORK_PROVIDED).to_ie(),
           CalledPartyNumber(destination_number, q931.TON_UNKNOWN, q931.NPI_ISDN).to_ie()]
    return signal(q931.SETUP, crv, False, "setup", body, ies)


def common(call_id: bytes) -> dict:
    return {"protocolIdentifier": PROTOCOL, "callIdentifier": {"guid": call_id}}


def connect_message(call_id: bytes, crv: int, h245: tuple | None = None) -> SignalMessage:
    body = {**common(call_id), "destinationInfo": endpoint_type(), "conferenceID": call_id,
            "fastStart": FAST_START[1:], "multipleCalls": False, "maintainConnection": False}
    if h245 is not None:
        body["h245Address"] = ras.transport_to_asn(h245)
    return signal(q931.CONNECT, crv, True, "connect", body, [Display("Bob").to_ie()])


#: Every message relayed once the call is up: (Q.931 type, UUIE body, content, extra IEs).
def relayed_kinds(call_id: bytes) -> list[tuple[int, str, dict | None, list]]:
    return [
        (q931.CALL_PROCEEDING, "callProceeding",
         {**common(call_id), "destinationInfo": endpoint_type("gateway"),
          "fastStart": FAST_START[:1], "multipleCalls": False, "maintainConnection": True}, []),
        (q931.ALERTING, "alerting",
         {**common(call_id), "destinationInfo": endpoint_type(), "multipleCalls": True,
          "maintainConnection": False},
         [ProgressIndicator(q931.PROGRESS_INBAND_AVAILABLE, q931.LOCATION_PRIVATE_REMOTE).to_ie()]),
        (q931.CONNECT, "connect",
         {**common(call_id), "destinationInfo": endpoint_type(), "conferenceID": call_id,
          "multipleCalls": False, "maintainConnection": False}, [Display("Bob").to_ie()]),
        (q931.FACILITY, "facility",
         {**common(call_id), "alternativeAliasAddress": [("dialledDigits", "1003")],
          "conferenceID": call_id, "reason": ("callForwarded", None), "multipleCalls": False,
          "maintainConnection": False}, []),
        (q931.PROGRESS, "progress",
         {**common(call_id), "destinationInfo": endpoint_type("gateway"),
          "fastStart": list(FAST_START), "multipleCalls": False, "maintainConnection": True},
         [ProgressIndicator(q931.PROGRESS_INBAND_AVAILABLE, q931.LOCATION_PUBLIC_REMOTE).to_ie()]),
        (q931.INFORMATION, "information", common(call_id), []),
        (q931.NOTIFY, "notify", {**common(call_id), "connectedAddress": [("h323-ID", "bob")]},
         [NotificationIndicator(0x71).to_ie()]),
        (q931.STATUS, "status", common(call_id),
         [Cause(q931.CAUSE_STATUS_ENQUIRY_RESPONSE, q931.LOCATION_USER).to_ie(),
          CallState(10).to_ie()]),
        (q931.STATUS_ENQUIRY, "statusInquiry", common(call_id), []),
    ]


KIND_NAMES = ["callProceeding", "alerting", "connect", "facility", "progress", "information",
              "notify", "status", "statusInquiry"]


class Party:
    """One end of a call signalling TCP connection as the peer sees it."""

    def __init__(self, protocol: protocol_module.SignallingProtocol,
                 transport: StringTransport) -> None:
        self.protocol = protocol
        self.transport = transport
        self.deframer = tpkt.TpktDeframer()

    def send(self, message: SignalMessage) -> None:
        self.protocol.dataReceived(tpkt.frame(callsignal.serialize(message)))

    def send_bytes(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def received(self) -> list[SignalMessage]:
        """Every message the gatekeeper wrote to this party since the last call."""
        data = self.transport.value()
        self.transport.clear()
        return [callsignal.parse(payload) for payload in self.deframer.feed(data)]

    def one(self) -> SignalMessage:
        messages = self.received()
        assert len(messages) == 1, [m.name for m in messages]
        return messages[0]

    @property
    def closed(self) -> bool:
        """The gatekeeper closed (or aborted) the connection."""
        return self.transport.disconnecting

    def lose(self, failure: Failure | None = None) -> None:
        """The TCP connection is gone (as the reactor reports it)."""
        self.protocol.connectionLost(failure or Failure(ConnectionDone()))


@dataclass
class RoutedCall:
    call_id: bytes
    call: object
    caller: Party
    callee: Party
    relay: CallRelay
    setup: SignalMessage            # the Setup the callee received

    @property
    def callee_crv(self) -> int:
        return self.relay.callee_crv


class Gatekeeper:
    """RAS controller (routed), Setup admission and signalling server on one
    MemoryReactorClock, with endpoints 10.0.0.1-4 registered."""

    def __init__(self, settings: SignallingSettings = SETTINGS,
                 setup: SetupSettings = SetupSettings()) -> None:
        self.reactor = MemoryReactorClock()
        self.reactor.advance(START)
        self.bus = ev.EventBus()
        self.events: list[object] = []
        self.bus.subscribe(self.events.append)
        self.controller = RasController(
            RasSettings(gatekeeper_id="GK", routed=True, signal_address=GK_SIGNAL), self.bus,
            self.reactor)
        self.ras = RasProtocol(self.controller, self.reactor)
        self.ras_transport = FakeDatagramTransport(host=(GK_HOST, 1719))
        self.ras.transport = self.ras_transport
        self.ras.startProtocol()
        self.admission = SetupAdmission(self.controller.admission, setup)
        self.server = SignallingServer(self.admission, self.reactor, self.reactor, settings,
                                       bind_address=GK_HOST)
        self.bus.subscribe(self.server)
        self.phones = {n: phone(n) for n in (1, 2, 3, 4)}
        for endpoint in self.phones.values():
            assert self.ask(endpoint, endpoint.rrq()).kind == "registrationConfirm"
        self._next_port = 50000

    @property
    def calls(self):
        return self.controller.calls

    def ask(self, endpoint: FakeEndpoint, data: bytes) -> ras.RasPdu:
        self.ras.datagramReceived(data, endpoint.ras_address)
        written = self.ras_transport.take()
        assert len(written) == 1, written
        return endpoint.read(written[0][0])

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]

    def admit(self, caller: int, callee: int) -> bytes:
        """The caller's ARQ: a routed ACF pointing at the gatekeeper; the call id."""
        endpoint = self.phones[caller]
        call_id = ras.new_guid()
        pdu = self.ask(endpoint, endpoint.arq([f"{1000 + callee}"], call_id=call_id,
                                              conference_id=call_id, crv=CALLER_CRV))
        assert pdu.kind == "admissionConfirm", pdu.raw
        assert pdu.raw["callModel"][0] == "gatekeeperRouted"
        assert ras.transport_from_asn(pdu.raw["destCallSignalAddress"]) == GK_SIGNAL
        return call_id

    def connect_caller(self, host: str = "10.0.0.1") -> Party:
        """A caller's TCP connection to the call signalling port."""
        self._next_port += 1
        peer = IPv4Address("TCP", host, self._next_port)
        protocol = self.server.buildProtocol(peer)
        transport = StringTransport(hostAddress=IPv4Address("TCP", GK_HOST, 1720),
                                    peerAddress=peer)
        protocol.makeConnection(transport)
        return Party(protocol, transport)

    def accept_callee(self, index: int = -1, local_port: int = 40001) -> Party:
        """The callee accepts the leg the gatekeeper opened (connectTCP ``index``)."""
        host, port, factory, _timeout, _bind = self.reactor.tcpClients[index]
        peer = IPv4Address("TCP", host, port)
        protocol = factory.buildProtocol(peer)
        transport = StringTransport(hostAddress=IPv4Address("TCP", GK_HOST, local_port),
                                    peerAddress=peer)
        protocol.makeConnection(transport)
        return Party(protocol, transport)

    def start_call(self, caller: int = 1, callee: int = 2, local_port: int = 40001,
                   h245: tuple | None = None) -> RoutedCall:
        """ARQ, Setup on a new caller leg, callee leg accepted: the call as relayed."""
        call_id = self.admit(caller, callee)
        caller_party = self.connect_caller(f"10.0.0.{caller}")
        opened = len(self.reactor.tcpClients)
        caller_party.send(setup_message(call_id, f"{1000 + callee}",
                                        source=(f"10.0.0.{caller}", 1720), h245=h245))
        assert caller_party.received() == []
        assert len(self.reactor.tcpClients) == opened + 1
        call = self.calls.find_call_id(call_id)
        relay = self.server.relays[call.number]
        callee_party = self.accept_callee(local_port=local_port)
        return RoutedCall(call_id, call, caller_party, callee_party, relay, callee_party.one())


@pytest.fixture
def gk() -> Gatekeeper:
    return Gatekeeper()


def assert_release(message: SignalMessage, crv: int, from_destination: bool, cause: int) -> None:
    assert message.message_type == q931.RELEASE_COMPLETE
    assert message.body_kind == "releaseComplete"
    assert message.crv == crv
    assert message.q931.from_destination is from_destination
    assert message.cause == cause


def cdr_reasons(gk: Gatekeeper) -> list[str]:
    return [record.release_reason for record in gk.of(ev.CallDetailRecord)]


# -- the Setup -------------------------------------------------------------------------------------


def test_setup_for_admitted_call_opens_leg_to_callee(gk):
    call_id = gk.admit(1, 2)
    caller = gk.connect_caller("10.0.0.1")
    caller.send(setup_message(call_id, "1002"))
    host, port, _factory, _timeout, bind = gk.reactor.tcpClients[-1]
    assert (host, port) == gk.phones[2].signal_address
    assert bind == (GK_HOST, 0)
    assert gk.calls.find_call_id(call_id).number in gk.server.relays


def test_forwarded_setup_has_gatekeeper_crv_and_addresses(gk):
    sent = setup_message(gk_call_id := gk.admit(1, 2), "1002")
    caller = gk.connect_caller("10.0.0.1")
    caller.send(sent)
    callee = gk.accept_callee(local_port=40555)
    setup = callee.one()
    relay = next(iter(gk.server.relays.values()))
    assert setup.message_type == q931.SETUP
    assert setup.crv == relay.callee_crv != CALLER_CRV
    assert setup.q931.from_destination is False
    assert setup.address("destCallSignalAddress") == gk.phones[2].signal_address
    assert setup.address("sourceCallSignalAddress") == (GK_HOST, 40555)
    assert setup.address("sourceCallSignalAddress") != gk.phones[1].signal_address
    assert setup.call_id == gk_call_id
    assert setup.body["fastStart"] == FAST_START
    assert setup.pdu["h245Tunnelling"] is True
    assert setup.body["conferenceID"] == gk_call_id
    assert setup.body["sourceAddress"] == sent.body["sourceAddress"]
    assert setup.body["destinationAddress"] == [("dialledDigits", "1002")]
    others = [ie for ie in setup.q931.ies if ie.id != q931.IE_USER_USER]
    assert others == [ie for ie in sent.q931.ies if ie.id != q931.IE_USER_USER]
    assert [ie.id for ie in others] == [q931.IE_BEARER_CAPABILITY, q931.IE_DISPLAY,
                                        q931.IE_CALLING_PARTY_NUMBER, q931.IE_CALLED_PARTY_NUMBER]


def test_each_call_gets_its_own_callee_crv(gk):
    first = gk.start_call(1, 2)
    second = gk.start_call(3, 4, local_port=40002)
    assert first.setup.crv != second.setup.crv
    assert second.setup.address("destCallSignalAddress") == gk.phones[4].signal_address


# -- relaying --------------------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(len(KIND_NAMES)), ids=KIND_NAMES)
def test_message_from_callee_reaches_caller_with_caller_crv(gk, index):
    routed = gk.start_call()
    message_type, body, content, ies = relayed_kinds(routed.call_id)[index]
    sent = signal(message_type, routed.callee_crv, True, body, content, ies)
    routed.callee.send(sent)
    got = routed.caller.one()
    assert got.message_type == message_type
    assert got.crv == CALLER_CRV
    assert got.q931.from_destination is True
    assert got.q931.ies == sent.q931.ies
    assert routed.callee.received() == []


@pytest.mark.parametrize("index", range(len(KIND_NAMES)), ids=KIND_NAMES)
def test_message_from_caller_reaches_callee_with_gatekeeper_crv(gk, index):
    routed = gk.start_call()
    message_type, body, content, ies = relayed_kinds(routed.call_id)[index]
    sent = signal(message_type, CALLER_CRV, False, body, content, ies)
    routed.caller.send(sent)
    got = routed.callee.one()
    assert got.message_type == message_type
    assert got.crv == routed.callee_crv
    assert got.q931.from_destination is False
    assert got.q931.ies == sent.q931.ies
    assert routed.caller.received() == []


def test_message_with_wrong_crv_is_not_relayed(gk):
    routed = gk.start_call()
    routed.callee.send(signal(q931.INFORMATION, routed.callee_crv + 7, True, "information",
                              common(routed.call_id)))
    routed.callee.send(signal(q931.INFORMATION, routed.callee_crv, False, "information",
                              common(routed.call_id)))
    assert routed.caller.received() == []
    assert gk.server.stats["foreign call reference"] == 2
    assert not routed.caller.closed and not routed.callee.closed


def test_caller_messages_before_callee_leg_opens_are_held_then_sent(gk):
    call_id = gk.admit(1, 2)
    caller = gk.connect_caller("10.0.0.1")
    caller.send(setup_message(call_id, "1002"))
    caller.send(signal(q931.INFORMATION, CALLER_CRV, False, "information", common(call_id)))
    callee = gk.accept_callee()
    received = callee.received()
    assert [m.message_type for m in received] == [q931.SETUP, q931.INFORMATION]
    assert received[1].crv == received[0].crv


def test_alerting_publishes_call_alerting(gk):
    routed = gk.start_call()
    message_type, body, content, ies = relayed_kinds(routed.call_id)[1]
    routed.callee.send(signal(message_type, routed.callee_crv, True, body, content, ies))
    assert gk.of(ev.CallAlerting) == [ev.CallAlerting(routed.call.number, routed.call_id)]
    assert routed.call.connect_time is None
    assert gk.of(ev.CallConnected) == []


def test_connect_marks_call_connected(gk):
    routed = gk.start_call()
    gk.reactor.advance(5)
    routed.callee.send(connect_message(routed.call_id, routed.callee_crv))
    assert routed.caller.one().message_type == q931.CONNECT
    assert gk.calls.get(routed.call.number).connect_time == START + 5
    assert gk.calls.total_connected == 1
    assert gk.of(ev.CallConnected) == [ev.CallConnected(routed.call.number, routed.call_id,
                                                        START + 5)]
    assert gk.controller.calls.counts(gk.phones[2].endpoint_id).connected == 1
    # A second Connect changes nothing more.
    routed.callee.send(connect_message(routed.call_id, routed.callee_crv))
    assert len(gk.of(ev.CallConnected)) == 1


# -- release ---------------------------------------------------------------------------------------


def test_release_complete_from_callee_ends_call_once(gk):
    routed = gk.start_call()
    routed.callee.send(callsignal.release_complete(routed.callee_crv, True, q931.CAUSE_USER_BUSY,
                                                   routed.call_id))
    assert_release(routed.caller.one(), CALLER_CRV, True, q931.CAUSE_USER_BUSY)
    assert routed.callee.received() == []
    assert routed.caller.closed and routed.callee.closed
    assert cdr_reasons(gk) == ["17"]
    assert gk.calls.get(routed.call.number) is None
    assert gk.server.relays == {}
    routed.caller.lose()
    routed.callee.lose()
    # The caller's DRQ afterwards finds no call: DCF, and no second CDR.
    alice = gk.phones[1]
    assert gk.ask(alice, alice.drq(routed.call_id)).kind == "disengageConfirm"
    assert cdr_reasons(gk) == ["17"]


def test_release_complete_from_caller_ends_call_once(gk):
    routed = gk.start_call()
    routed.callee.send(connect_message(routed.call_id, routed.callee_crv))
    routed.caller.received()
    routed.caller.send(callsignal.release_complete(CALLER_CRV, False,
                                                   q931.CAUSE_NORMAL_CALL_CLEARING,
                                                   routed.call_id))
    assert_release(routed.callee.one(), routed.callee_crv, False, q931.CAUSE_NORMAL_CALL_CLEARING)
    assert routed.caller.received() == []
    assert routed.caller.closed and routed.callee.closed
    records = gk.of(ev.CallDetailRecord)
    assert [r.release_reason for r in records] == ["16"]
    assert records[0].connect_time is not None
    routed.callee.lose()
    routed.caller.lose()
    alice = gk.phones[1]
    assert gk.ask(alice, alice.drq(routed.call_id)).kind == "disengageConfirm"
    assert cdr_reasons(gk) == ["16"]


def test_release_complete_reason_without_cause_ie_gives_table_5_cause(gk):
    routed = gk.start_call()
    body = {**common(routed.call_id), "reason": ("inConf", None)}
    routed.callee.send(signal(q931.RELEASE_COMPLETE, routed.callee_crv, True, "releaseComplete",
                              body))
    got = routed.caller.one()
    assert got.q931.cause is None
    assert got.body["reason"] == ("inConf", None)
    assert cdr_reasons(gk) == [str(q931.CAUSE_USER_BUSY)]


def test_caller_leg_lost_releases_callee_with_cause_41(gk):
    routed = gk.start_call()
    routed.caller.lose(Failure(ConnectionLost()))
    assert_release(routed.callee.one(), routed.callee_crv, False, q931.CAUSE_TEMPORARY_FAILURE)
    assert routed.callee.closed
    assert routed.caller.received() == []
    assert cdr_reasons(gk) == ["41"]


def test_callee_leg_lost_releases_caller_with_cause_41(gk):
    routed = gk.start_call()
    routed.callee.lose(Failure(ConnectionLost()))
    assert_release(routed.caller.one(), CALLER_CRV, True, q931.CAUSE_TEMPORARY_FAILURE)
    assert routed.caller.closed
    assert cdr_reasons(gk) == ["41"]


def test_callee_unreachable_releases_caller_with_cause_3(gk):
    call_id = gk.admit(1, 2)
    caller = gk.connect_caller("10.0.0.1")
    caller.send(setup_message(call_id, "1002"))
    _host, _port, factory, _timeout, _bind = gk.reactor.tcpClients[-1]
    factory.clientConnectionFailed(gk.reactor.connectors[-1], Failure(ConnectionRefusedError()))
    got = caller.one()
    assert_release(got, CALLER_CRV, True, q931.CAUSE_NO_ROUTE_TO_DESTINATION)
    assert got.body["reason"] == ("unreachableDestination", None)
    assert got.call_id == call_id
    assert caller.closed
    assert cdr_reasons(gk) == ["3"]
    assert gk.server.stats["callee unreachable"] == 1


def test_caller_release_before_callee_answers_the_connect_stops_connecting(gk):
    call_id = gk.admit(1, 2)
    caller = gk.connect_caller("10.0.0.1")
    caller.send(setup_message(call_id, "1002"))
    caller.send(callsignal.release_complete(CALLER_CRV, False, q931.CAUSE_NORMAL_CALL_CLEARING,
                                            call_id))
    assert gk.reactor.connectors[-1].stoppedConnecting
    assert caller.closed
    assert cdr_reasons(gk) == ["16"]
    # The connection the reactor had already made is closed at once.
    late = gk.accept_callee()
    assert late.closed
    assert late.received() == []


# -- timers ----------------------------------------------------------------------------------------


def test_no_setup_within_setup_timeout_drops_connection(gk):
    caller = gk.connect_caller("10.0.0.1")
    gk.reactor.advance(SETTINGS.setup_timeout - 0.1)
    assert not caller.closed
    gk.reactor.advance(0.2)
    assert caller.closed
    assert gk.server.stats["no setup"] == 1
    assert gk.reactor.getDelayedCalls() == []


def test_setup_in_time_cancels_setup_timer(gk):
    routed = gk.start_call()
    gk.reactor.advance(SETTINGS.setup_timeout + 1)
    assert not routed.caller.closed
    assert gk.server.stats["no setup"] == 0


def test_no_alerting_within_signal_timeout_releases_cause_18(gk):
    routed = gk.start_call()
    gk.reactor.advance(SETTINGS.signal_timeout - 1)
    assert routed.caller.received() == []
    gk.reactor.advance(2)
    assert_release(routed.caller.one(), CALLER_CRV, True, q931.CAUSE_NO_USER_RESPONDING)
    assert_release(routed.callee.one(), routed.callee_crv, False, q931.CAUSE_NO_USER_RESPONDING)
    assert routed.caller.closed and routed.callee.closed
    assert cdr_reasons(gk) == ["18"]
    assert gk.server.stats["timeouts"] == 1


def test_alerting_then_no_connect_within_alerting_timeout_releases_cause_19(gk):
    routed = gk.start_call()
    gk.reactor.advance(SETTINGS.signal_timeout - 1)
    message_type, body, content, ies = relayed_kinds(routed.call_id)[1]
    routed.callee.send(signal(message_type, routed.callee_crv, True, body, content, ies))
    routed.caller.received()
    gk.reactor.advance(SETTINGS.alerting_timeout - 1)     # past SignalTimeout: no longer counts
    assert routed.caller.received() == [] and not routed.caller.closed
    gk.reactor.advance(2)
    assert_release(routed.caller.one(), CALLER_CRV, True, q931.CAUSE_NO_ANSWER)
    assert_release(routed.callee.one(), routed.callee_crv, False, q931.CAUSE_NO_ANSWER)
    assert cdr_reasons(gk) == ["19"]


def test_connected_call_has_no_timer(gk):
    routed = gk.start_call()
    routed.callee.send(connect_message(routed.call_id, routed.callee_crv))
    gk.reactor.advance(SETTINGS.alerting_timeout + SETTINGS.signal_timeout + 10)
    assert not routed.caller.closed and not routed.callee.closed
    assert cdr_reasons(gk) == []


# -- bad input -------------------------------------------------------------------------------------


def test_garbage_tpkt_releases_that_call_only(gk):
    bad = gk.start_call(1, 2)
    good = gk.start_call(3, 4, local_port=40002)
    bad.caller.send_bytes(b"\x05\x00\x00\x10garbage!garbage!")
    assert_release(bad.caller.one(), CALLER_CRV, True, q931.CAUSE_INVALID_MESSAGE)
    assert_release(bad.callee.one(), bad.callee_crv, False, q931.CAUSE_INVALID_MESSAGE)
    assert bad.caller.closed and bad.callee.closed
    assert gk.server.stats["malformed"] == 1
    assert cdr_reasons(gk) == [str(q931.CAUSE_INVALID_MESSAGE)]
    assert gk.of(ev.CallDetailRecord)[0].call_number == bad.call.number
    # More bytes on the broken leg are ignored.
    bad.caller.send_bytes(b"more garbage")
    assert bad.caller.received() == [] and gk.server.stats["malformed"] == 1
    # The other call carries on.
    assert not good.caller.closed and not good.callee.closed
    good.callee.send(connect_message(good.call_id, good.callee_crv))
    assert good.caller.one().message_type == q931.CONNECT
    assert gk.calls.get(good.call.number).connected


def test_undecodable_uuie_releases_call(gk):
    routed = gk.start_call()
    other = gk.start_call(3, 4, local_port=40002)
    message = Q931Message(q931.ALERTING, routed.callee_crv, True,
                          [UserUser(b"\xff\xfe\x00garbage").to_ie()])
    routed.callee.send_bytes(tpkt.frame(q931.encode(message)))
    assert_release(routed.caller.one(), CALLER_CRV, True, q931.CAUSE_INVALID_IE_CONTENTS)
    assert_release(routed.callee.one(), routed.callee_crv, False, q931.CAUSE_INVALID_IE_CONTENTS)
    assert routed.caller.closed and routed.callee.closed
    assert gk.server.stats["malformed"] == 1
    assert cdr_reasons(gk) == [str(q931.CAUSE_INVALID_IE_CONTENTS)]
    assert not other.caller.closed and gk.calls.get(other.call.number) is other.call


def test_setup_for_no_admitted_call_is_refused(gk):
    caller = gk.connect_caller("10.0.0.1")
    unknown = ras.new_guid()
    caller.send(setup_message(unknown, "1002"))
    got = caller.one()
    assert_release(got, CALLER_CRV, True, q931.CAUSE_NORMAL_UNSPECIFIED)
    assert got.body["reason"] == ("callerNotRegistered", None)
    assert caller.closed
    assert gk.reactor.tcpClients == []
    assert gk.server.stats["setups rejected"] == 1


def test_setup_from_another_host_is_refused(gk):
    call_id = gk.admit(1, 2)
    intruder = gk.connect_caller("10.0.0.66")
    intruder.send(setup_message(call_id, "1002", source=("10.0.0.66", 1720)))
    got = intruder.one()
    assert got.message_type == q931.RELEASE_COMPLETE
    assert got.body["reason"] == ("securityDenied", None)
    assert intruder.closed
    assert gk.reactor.tcpClients == []
    # The real caller may still send its Setup.
    caller = gk.connect_caller("10.0.0.1")
    caller.send(setup_message(call_id, "1002"))
    assert len(gk.reactor.tcpClients) == 1
    assert cdr_reasons(gk) == []


def test_second_setup_for_relayed_call_is_refused(gk):
    routed = gk.start_call()
    again = gk.connect_caller("10.0.0.1")
    again.send(setup_message(routed.call_id, "1002"))
    got = again.one()
    assert got.message_type == q931.RELEASE_COMPLETE
    assert got.cause == q931.CAUSE_CALL_REJECTED
    assert again.closed
    assert not routed.caller.closed
    assert len(gk.reactor.tcpClients) == 1


def test_first_message_not_setup_closes_connection(gk):
    call_id = gk.admit(1, 2)
    caller = gk.connect_caller("10.0.0.1")
    caller.send(signal(q931.INFORMATION, CALLER_CRV, False, "information", common(call_id)))
    got = caller.one()
    assert_release(got, CALLER_CRV, True, q931.CAUSE_MESSAGE_NOT_COMPATIBLE_WITH_STATE)
    assert caller.closed
    assert gk.reactor.tcpClients == []
    assert gk.server.stats["no setup"] == 1


def test_first_message_release_complete_closes_without_answer(gk):
    caller = gk.connect_caller("10.0.0.1")
    caller.send(callsignal.release_complete(5, False, q931.CAUSE_NORMAL_CALL_CLEARING))
    assert caller.received() == []
    assert caller.closed


def test_garbage_before_setup_closes_connection(gk):
    caller = gk.connect_caller("10.0.0.1")
    caller.send_bytes(b"GET / HTTP/1.0\r\n\r\n")
    assert caller.closed
    assert gk.server.stats["malformed"] == 1
    assert gk.reactor.getDelayedCalls() == []


# -- calls ended elsewhere -------------------------------------------------------------------------


def test_call_ended_by_drq_releases_both_legs(gk):
    routed = gk.start_call()
    routed.callee.send(connect_message(routed.call_id, routed.callee_crv))
    routed.caller.received()
    alice = gk.phones[1]
    assert gk.ask(alice, alice.drq(routed.call_id)).kind == "disengageConfirm"
    assert_release(routed.caller.one(), CALLER_CRV, True, q931.CAUSE_NORMAL_CALL_CLEARING)
    assert_release(routed.callee.one(), routed.callee_crv, False,
                   q931.CAUSE_NORMAL_CALL_CLEARING)
    assert routed.caller.closed and routed.callee.closed
    assert cdr_reasons(gk) == ["normalDrop"]
    assert gk.server.relays == {}
    # The legs going away afterwards add nothing.
    routed.caller.lose()
    routed.callee.lose()
    assert len(gk.of(ev.CallDetailRecord)) == 1


def test_call_ended_by_controller_with_cause_sends_that_cause(gk):
    routed = gk.start_call()
    gk.controller.end_call(routed.call, str(q931.CAUSE_USER_BUSY))
    assert_release(routed.caller.one(), CALLER_CRV, True, q931.CAUSE_USER_BUSY)
    assert_release(routed.callee.one(), routed.callee_crv, False, q931.CAUSE_USER_BUSY)
    assert len(gk.of(ev.CallDetailRecord)) == 1
    # The Setup admission forgot the call: nothing refers to it any more.
    assert routed.call.number not in gk.admission._relayed


def test_cdr_of_another_call_leaves_relay_alone(gk):
    routed = gk.start_call()
    other = gk.admit(3, 4)
    gk.controller.end_call(gk.calls.find_call_id(other), "normalDrop")
    assert routed.caller.received() == [] and routed.callee.received() == []
    assert not routed.caller.closed


# -- flow control ----------------------------------------------------------------------------------


def test_peer_that_stops_reading_is_dropped(gk):
    routed = gk.start_call()
    routed.caller.protocol.pauseProducing()
    information = signal(q931.INFORMATION, routed.callee_crv, True, "information",
                         common(routed.call_id))
    size = len(tpkt.frame(callsignal.serialize(information)))
    for _ in range(protocol_module.SEND_LIMIT // size + 2):
        routed.callee.send(information)
        if routed.caller.closed:
            break
    assert routed.caller.closed
    assert routed.caller.transport.disconnected          # aborted, not a graceful close
    assert len(routed.caller.transport.value()) <= protocol_module.SEND_LIMIT + size
    messages = routed.callee.received()
    assert [m.message_type for m in messages] == [q931.RELEASE_COMPLETE]
    assert routed.callee.closed
    assert len(gk.of(ev.CallDetailRecord)) == 1


def test_peer_that_reads_again_is_kept(gk):
    routed = gk.start_call()
    information = signal(q931.INFORMATION, routed.callee_crv, True, "information",
                         common(routed.call_id))
    size = len(tpkt.frame(callsignal.serialize(information)))
    half = protocol_module.SEND_LIMIT // size // 2 + 1
    for _ in range(3):
        routed.caller.protocol.pauseProducing()
        for _ in range(half):
            routed.callee.send(information)
        routed.caller.protocol.resumeProducing()
    assert not routed.caller.closed
    assert len(routed.caller.received()) == 3 * half


# -- H.245 routed ----------------------------------------------------------------------------------


def h245_gatekeeper() -> Gatekeeper:
    return Gatekeeper(SignallingSettings(setup_timeout=8.0, signal_timeout=30.0,
                                         alerting_timeout=180.0, h245_routed=True))


def test_h245_routed_connect_announces_gatekeeper_address():
    gk = h245_gatekeeper()
    routed = gk.start_call()
    assert gk.reactor.tcpServers == []          # the Setup has no h245Address
    callee_h245 = ("10.0.0.2", 40002)
    routed.callee.send(connect_message(routed.call_id, routed.callee_crv, h245=callee_h245))
    got = routed.caller.one()
    port, _factory, _backlog, interface = gk.reactor.tcpServers[-1]
    assert (port, interface) == (0, GK_HOST)
    announced = got.address("h245Address")
    assert announced is not None and announced[0] == GK_HOST
    assert announced != callee_h245
    # The rest of the Connect is the callee's.
    assert got.body["fastStart"] == FAST_START[1:]
    assert got.q931.display == "Bob"


def test_h245_relay_passes_frames_both_ways():
    gk = h245_gatekeeper()
    routed = gk.start_call()
    routed.callee.send(connect_message(routed.call_id, routed.callee_crv, h245=("10.0.0.2", 40002)))
    routed.caller.received()
    _port, accept, _backlog, _interface = gk.reactor.tcpServers[-1]
    near = accept.buildProtocol(IPv4Address("TCP", "10.0.0.1", 50123))
    near_transport = StringTransport(hostAddress=IPv4Address("TCP", GK_HOST, 41000),
                                     peerAddress=IPv4Address("TCP", "10.0.0.1", 50123))
    near.makeConnection(near_transport)
    assert accept.buildProtocol(IPv4Address("TCP", "10.0.0.1", 50124)) is None  # one only
    host, port, connect, _timeout, bind = gk.reactor.tcpClients[-1]
    assert (host, port) == ("10.0.0.2", 40002)
    assert bind == (GK_HOST, 0)
    # The caller speaks before the far side is connected: held, then passed on.
    early = tpkt.frame(b"\x02\x70\x01\x06\x00\x08\x81\x75")
    near.dataReceived(early[:3])
    near.dataReceived(early[3:])
    far = connect.buildProtocol(IPv4Address("TCP", host, port))
    far_transport = StringTransport(hostAddress=IPv4Address("TCP", GK_HOST, 41001),
                                    peerAddress=IPv4Address("TCP", host, port))
    far.makeConnection(far_transport)
    assert far_transport.value() == early
    far_transport.clear()
    answer = tpkt.frame(b"\x22\x80\x01\x06")
    far.dataReceived(answer)
    assert near_transport.value() == answer
    near.dataReceived(early + early)
    assert far_transport.value() == early + early
    # Ending the call closes the H.245 relay too.
    routed.caller.send(callsignal.release_complete(CALLER_CRV, False,
                                                   q931.CAUSE_NORMAL_CALL_CLEARING,
                                                   routed.call_id))
    assert near_transport.disconnecting and far_transport.disconnecting


def test_h245_relay_bad_tpkt_closes_it():
    gk = h245_gatekeeper()
    routed = gk.start_call()
    routed.callee.send(connect_message(routed.call_id, routed.callee_crv, h245=("10.0.0.2", 40002)))
    _port, accept, _backlog, _interface = gk.reactor.tcpServers[-1]
    near = accept.buildProtocol(IPv4Address("TCP", "10.0.0.1", 50123))
    near_transport = StringTransport()
    near.makeConnection(near_transport)
    near.dataReceived(b"\x07garbage")
    assert near_transport.disconnecting
    assert gk.server.stats["h245 relay failed"] == 1


def test_h245_relay_nobody_connects_stops_listening():
    gk = h245_gatekeeper()
    routed = gk.start_call()
    routed.callee.send(connect_message(routed.call_id, routed.callee_crv, h245=("10.0.0.2", 40002)))
    relay = routed.relay.h245[0]
    assert not relay.closed
    gk.reactor.advance(h245_module.ACCEPT_TIMEOUT + 1)
    assert relay.closed and relay.port is None
    # The call itself is not affected.
    assert not routed.caller.closed


def test_h245_not_routed_keeps_callee_address(gk):
    routed = gk.start_call()
    routed.callee.send(connect_message(routed.call_id, routed.callee_crv, h245=("10.0.0.2", 40002)))
    assert routed.caller.one().address("h245Address") == ("10.0.0.2", 40002)
    assert gk.reactor.tcpServers == []


# -- stopping --------------------------------------------------------------------------------------


def test_stop_releases_relays_and_waiting_connections(gk):
    routed = gk.start_call()
    waiting = gk.connect_caller("10.0.0.3")
    gk.server.stop()
    assert_release(routed.caller.one(), CALLER_CRV, True, q931.CAUSE_NORMAL_UNSPECIFIED)
    assert routed.callee.closed and waiting.closed
    assert gk.reactor.getDelayedCalls() == []
    late = gk.connect_caller("10.0.0.1")
    late.send(setup_message(gk.admit(1, 2), "1002"))
    assert late.one().body["reason"] == ("gatekeeperResources", None)


# -- regressions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["0", "128", "00017000"])
def test_call_ended_with_numeric_reason_out_of_cause_range_still_releases(gk, reason):
    routed = gk.start_call()
    gk.controller.end_call(routed.call, reason)
    assert_release(routed.caller.one(), CALLER_CRV, True, q931.CAUSE_NORMAL_CALL_CLEARING)
    assert_release(routed.callee.one(), routed.callee_crv, False,
                   q931.CAUSE_NORMAL_CALL_CLEARING)
    assert routed.caller.closed and routed.callee.closed
    assert gk.bus.failures == 0


def test_one_octet_call_reference_of_a_party_is_relayed_with_two(gk):
    routed = gk.start_call()
    message_type, body, content, ies = relayed_kinds(routed.call_id)[1]
    alerting = signal(message_type, routed.callee_crv, True, body, content, ies)
    alerting.q931.call_reference_length = 1
    routed.callee.send(alerting)
    got = routed.caller.one()
    assert got.message_type == q931.ALERTING
    assert got.crv == CALLER_CRV
    assert got.q931.call_reference_length == 2
    assert not routed.caller.closed


def test_one_octet_crv_setup_is_forwarded_with_two(gk):
    call_id = gk.admit(1, 2)
    caller = gk.connect_caller("10.0.0.1")
    setup = setup_message(call_id, "1002", crv=0x55)
    setup.q931.call_reference_length = 1
    caller.send(setup)
    callee = gk.accept_callee()
    forwarded = callee.one()
    assert forwarded.message_type == q931.SETUP
    assert forwarded.q931.call_reference_length == 2
    callee.send(connect_message(call_id, forwarded.crv))
    got = caller.one()
    assert got.message_type == q931.CONNECT and got.crv == 0x55
    assert got.q931.call_reference_length == 1   # the caller gets its own CRV as it sent it


def test_setup_asking_for_another_alias_is_forwarded_for_the_admitted_destination(gk):
    call_id = gk.admit(1, 2)
    caller = gk.connect_caller("10.0.0.1")
    setup = setup_message(call_id, "1002")
    setup.body["destinationAddress"] = [("h323-ID", "user2")]
    setup.touch()
    setup.q931.remove_ie(q931.IE_CALLED_PARTY_NUMBER)
    caller.send(setup)
    forwarded = gk.accept_callee().one()
    assert forwarded.body["destinationAddress"] == [("dialledDigits", "1002")]
    assert forwarded.q931.called_party_number.digits == "1002"


def test_peer_that_stops_reading_releases_with_temporary_failure(gk):
    routed = gk.start_call()
    routed.caller.protocol.pauseProducing()
    information = signal(q931.INFORMATION, routed.callee_crv, True, "information",
                         common(routed.call_id))
    while not routed.caller.closed:
        routed.callee.send(information)
    assert_release(routed.callee.one(), routed.callee_crv, False, q931.CAUSE_TEMPORARY_FAILURE)
    assert cdr_reasons(gk) == [str(q931.CAUSE_TEMPORARY_FAILURE)]
    assert gk.server.stats["malformed"] == 0
    assert gk.server.stats["peer not reading"] == 1
