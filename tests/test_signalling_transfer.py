"""TransferCall, SendProceeding and GenerateCallProceeding on routed calls
(issue 11), over the relay harness of test_signalling_relay.py.

TransferCall (GnuGk's FacilityForward): the party asked gets a Facility with
reason callForwarded naming the new destination, on its own leg with that
leg's call reference; it then releases the call (the other party gets the
ReleaseComplete through the gatekeeper) and places the new call itself.
SendProceeding / GenerateCallProceeding: the caller's Setup is answered by
the gatekeeper's own CallProceeding (a provisional response as to H.245
tunnelling); the callee's own CallProceeding is then not passed on, or,
when it carries fast start elements or an H.245 address, passed on as a
Facility with reason forwardedElements.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from gatekeeper import events as ev
from gatekeeper.control import GatekeeperControl
from gatekeeper.h225 import q931, ras
from gatekeeper.signalling.relay import SignallingSettings
from gatekeeper.status.protocol import StatusFactory
from test_signalling_relay import (FAST_START, SETTINGS, Gatekeeper, RoutedCall, assert_release,
                                   common, connect_message, endpoint_type, setup_message, signal)

ANSWER = {"mc": False, "undefinedNode": False}


def connected(gk: Gatekeeper):
    routed = gk.start_call(1, 2)
    routed.callee.send(connect_message(routed.call_id, routed.callee_crv))
    assert routed.caller.one().message_type == q931.CONNECT
    assert routed.relay.state == "connected"
    return routed


def proceeding(call_id: bytes, crv: int, **extra) -> object:
    return signal(q931.CALL_PROCEEDING, crv, True, "callProceeding",
                  {**common(call_id), "destinationInfo": endpoint_type(), "multipleCalls": False,
                   "maintainConnection": False, **extra})


class Status:
    """A status client of a StatusFactory over a control built on the harness."""

    def __init__(self, gk: Gatekeeper, routed: bool = True) -> None:
        server = gk.server if routed else None
        control = GatekeeperControl(
            gk.controller.registry, gk.controller.calls, gk.controller, None,
            signalling=lambda: server, config_ini=lambda: None,
            edit_config=lambda ini: (False, "no"), reload=lambda source: None,
            shutdown=lambda: False, gatekeeper_name=lambda: "GK", start_time=lambda: 0.0)
        self.factory = StatusFactory(control, gk.reactor)
        self.session = self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 1))
        self.session.makeConnection(self.transport)
        self.transport.clear()

    def say(self, line: str) -> str:
        self.session.dataReceived(line.encode() + b"\r\n")
        data = self.transport.value().decode()
        self.transport.clear()
        return data


# -- the relay's transfer --------------------------------------------------------------


def test_transfer_caller_sends_facility_callforwarded_on_callers_leg():
    gk = Gatekeeper()
    routed = connected(gk)
    assert gk.server.transfer(routed.call, "caller", (ras.Alias("dialledDigits", "1003"),)) is None
    facility = routed.caller.one()
    assert facility.message_type == q931.FACILITY
    assert facility.body_kind == "facility"
    assert facility.crv == routed.relay.caller_crv
    assert facility.q931.from_destination is True
    assert facility.body["reason"] == ("callForwarded", None)
    assert facility.body["alternativeAliasAddress"] == [("dialledDigits", "1003")]
    assert facility.call_id == routed.call_id
    assert facility.body["conferenceID"] == routed.call.conference_id
    assert routed.callee.received() == []
    assert gk.server.stats["transfers"] == 1


def test_transfer_callee_uses_the_gatekeepers_crv_on_the_callee_leg():
    gk = Gatekeeper()
    routed = connected(gk)
    assert gk.server.transfer(routed.call, "callee", (ras.Alias("h323-ID", "carol"),)) is None
    facility = routed.callee.one()
    assert facility.crv == routed.callee_crv
    assert facility.q931.from_destination is False
    assert facility.body["alternativeAliasAddress"] == [("h323-ID", "carol")]
    assert routed.caller.received() == []


def test_transferred_party_releasing_ends_the_call_once_with_its_cause():
    gk = Gatekeeper()
    routed = connected(gk)
    gk.server.transfer(routed.call, "caller", (ras.Alias("dialledDigits", "1003"),))
    routed.caller.received()
    release = signal(q931.RELEASE_COMPLETE, routed.relay.caller_crv, False, "releaseComplete",
                     {**common(routed.call_id), "reason": ("facilityCallDeflection", None)})
    routed.caller.send(release)
    forwarded = routed.callee.one()
    assert forwarded.message_type == q931.RELEASE_COMPLETE
    assert forwarded.crv == routed.callee_crv
    assert routed.caller.closed and routed.callee.closed
    records = gk.of(ev.CallDetailRecord)
    assert len(records) == 1 and records[0].connect_time is not None
    # the caller is free to place the new call: a fresh ARQ is admitted
    assert gk.calls.find_call_id(routed.call_id) is None
    gk.admit(1, 3)


def test_transfer_refused_before_connect_and_after_release():
    gk = Gatekeeper()
    routed = gk.start_call(1, 2)
    error = gk.server.transfer(routed.call, "caller", (ras.Alias("dialledDigits", "1003"),))
    assert error == f"Error: call number {routed.call.number} is not established"
    assert routed.caller.received() == []
    routed.callee.send(connect_message(routed.call_id, routed.callee_crv))
    routed.caller.received()
    routed.relay.release(q931.CAUSE_NORMAL_CALL_CLEARING, "gatekeeper")
    error = gk.server.transfer(routed.call, "caller", (ras.Alias("dialledDigits", "1003"),))
    assert error == (f"Error: call number {routed.call.number} is not signalled through this "
                     "gatekeeper")


# -- the status commands -----------------------------------------------------------------


def test_transfercall_by_source_alias_asks_that_party():
    gk = Gatekeeper()
    routed = connected(gk)
    status = Status(gk)
    # 1002 is the callee of the call: it is the one asked to call 1004
    assert status.say("TransferCall 1002 1004") == (
        f"Transferring call number {routed.call.number}: the called party is asked to call "
        "1004\r\n")
    facility = routed.callee.one()
    assert facility.body["alternativeAliasAddress"] == [("dialledDigits", "1004")]
    assert routed.caller.received() == []
    assert status.say("tc user1 user4") == (
        f"Transferring call number {routed.call.number}: the caller is asked to call user4\r\n")
    assert routed.caller.one().body["alternativeAliasAddress"] == [("h323-ID", "user4")]


def test_transfercall_by_call_id_party_and_method():
    gk = Gatekeeper()
    routed = connected(gk)
    status = Status(gk)
    dashed = ras.guid_dashed(routed.call_id)
    assert status.say(f"TransferCall {dashed} CALLER 1003 FacilityForward").startswith(
        "Transferring call number")
    assert routed.caller.one().body["alternativeAliasAddress"] == [("dialledDigits", "1003")]
    assert status.say(f"TransferCall {dashed} called 1003").startswith("Transferring")
    assert routed.callee.one().message_type == q931.FACILITY
    assert status.say(f"TransferCall {dashed} CALLER 1003 Reroute") == (
        "Error: transfer method Reroute is not supported (FacilityForward is)\r\n")
    assert status.say(f"TransferCall {dashed} nobody 1003").startswith("Syntax Error: TransferCall")
    assert status.say("TransferCall 00-11-22-33-44-55-66-77-88-99-aa-bb-cc-dd-ee-ff caller 1") == (
        "Can't find call ID 00-11-22-33-44-55-66-77-88-99-aa-bb-cc-dd-ee-ff\r\n")
    assert routed.caller.received() == [] and routed.callee.received() == []


def test_transfercall_errors():
    gk = Gatekeeper()
    routed = gk.start_call(1, 2)
    status = Status(gk)
    assert status.say("TransferCall 1001 1003") == (
        f"Error: call number {routed.call.number} is not established\r\n")
    assert status.say("TransferCall 1004 1003") == "Error: no call of 1004 found\r\n"
    assert status.say("TransferCall nobody 1003") == "Error: no call of nobody found\r\n"
    direct = Status(gk, routed=False)
    assert direct.say("TransferCall 1001 1003") == (
        "Error: TransferCall needs gatekeeper-routed call signalling (--routed or [RoutedMode] "
        "GKRouted=1)\r\n")
    assert routed.caller.received() == []


def test_sendproceeding_answers_the_callers_setup_once():
    gk = Gatekeeper()
    routed = gk.start_call(1, 2)
    status = Status(gk)
    dashed = ras.guid_dashed(routed.call_id)
    assert status.say(f"SendProceeding {dashed}") == (
        f"CallProceeding sent for call number {routed.call.number}\r\n")
    sent = routed.caller.one()
    assert sent.message_type == q931.CALL_PROCEEDING
    assert sent.crv == routed.relay.caller_crv and sent.q931.from_destination is True
    assert sent.call_id == routed.call_id
    assert "provisionalRespToH245Tunnelling" in sent.pdu
    assert sent.pdu["h245Tunnelling"] is True        # echoes the caller's Setup
    assert status.say(f"SendProceeding {dashed}") == (
        f"Error: the caller of call number {routed.call.number} has had its answer to the "
        "Setup already\r\n")
    assert routed.caller.received() == []
    assert Status(gk, routed=False).say(f"SendProceeding {dashed}").startswith(
        "Error: SendProceeding needs gatekeeper-routed")
    assert status.say("SendProceeding") == "Syntax Error: SendProceeding CALLID\r\n"


def test_sendproceeding_refused_once_the_callee_answered():
    gk = Gatekeeper()
    routed = gk.start_call(1, 2)
    routed.callee.send(proceeding(routed.call_id, routed.callee_crv))
    assert routed.caller.one().message_type == q931.CALL_PROCEEDING
    assert gk.server.send_proceeding(routed.call).startswith("Error: the caller of call number")
    assert routed.caller.received() == []


# -- GenerateCallProceeding and the callee's own CallProceeding ----------------------------


def generating() -> Gatekeeper:
    return Gatekeeper(SignallingSettings(setup_timeout=SETTINGS.setup_timeout,
                                         signal_timeout=SETTINGS.signal_timeout,
                                         alerting_timeout=SETTINGS.alerting_timeout,
                                         generate_call_proceeding=True))


def start_generated(gk: Gatekeeper) -> RoutedCall:
    """A call whose Setup the gatekeeper answered at once; the callee leg up."""
    call_id = gk.admit(1, 2)
    caller = gk.connect_caller("10.0.0.1")
    caller.send(setup_message(call_id, "1002"))
    sent = caller.one()          # before the callee's leg is even open
    assert sent.message_type == q931.CALL_PROCEEDING
    assert sent.call_id == call_id
    assert "provisionalRespToH245Tunnelling" in sent.pdu
    call = gk.calls.find_call_id(call_id)
    relay = gk.server.relays[call.number]
    callee = gk.accept_callee()
    return RoutedCall(call_id, call, caller, callee, relay, callee.one())


def test_generate_call_proceeding_answers_setup_at_once():
    gk = generating()
    routed = start_generated(gk)
    assert routed.setup.message_type == q931.SETUP
    assert gk.server.stats["call proceeding sent"] == 1


def test_callees_plain_call_proceeding_is_absorbed_after_ours():
    gk = generating()
    routed = start_generated(gk)
    routed.callee.send(proceeding(routed.call_id, routed.callee_crv))
    assert routed.caller.received() == []
    assert gk.server.stats["call proceeding absorbed"] == 1
    # the call goes on: Alerting and Connect reach the caller
    routed.callee.send(signal(q931.ALERTING, routed.callee_crv, True, "alerting",
                              {**common(routed.call_id), "destinationInfo": endpoint_type(),
                               "multipleCalls": False, "maintainConnection": False}))
    assert routed.caller.one().message_type == q931.ALERTING
    routed.callee.send(connect_message(routed.call_id, routed.callee_crv))
    assert routed.caller.one().message_type == q931.CONNECT
    assert gk.of(ev.CallConnected)


def test_callees_call_proceeding_with_fast_start_goes_on_as_facility_forwarded_elements():
    gk = generating()
    routed = start_generated(gk)
    h245 = ("10.0.0.2", 30000)
    routed.callee.send(proceeding(routed.call_id, routed.callee_crv, fastStart=FAST_START[:1],
                                  h245Address=ras.transport_to_asn(h245)))
    facility = routed.caller.one()
    assert facility.message_type == q931.FACILITY
    assert facility.body["reason"] == ("forwardedElements", None)
    assert facility.body["fastStart"] == FAST_START[:1]
    assert facility.address("h245Address") == h245
    assert facility.crv == routed.relay.caller_crv and facility.q931.from_destination is True
    assert facility.call_id == routed.call_id


def test_release_after_generated_proceeding_reaches_the_caller():
    gk = generating()
    routed = start_generated(gk)
    routed.callee.send(signal(q931.RELEASE_COMPLETE, routed.callee_crv, True, "releaseComplete",
                              common(routed.call_id),
                              [q931.Cause(q931.CAUSE_USER_BUSY, q931.LOCATION_USER).to_ie()]))
    assert_release(routed.caller.one(), routed.relay.caller_crv, True, q931.CAUSE_USER_BUSY)
    assert [r.release_reason for r in gk.of(ev.CallDetailRecord)] == [str(q931.CAUSE_USER_BUSY)]
