"""The call signalling side of gatekeeper.testing: FakeEndpoint as caller and
callee of routed calls, its message builders, its RAS client.

No gatekeeper here and no global reactor: legs are connected to each other
(or to StringTransports) through twisted.test.iosim, time is a Clock, and the
factories are checked against a MemoryReactorClock.
"""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.test import iosim

from gatekeeper.h225 import callsignal, codec, q931, ras, tpkt
from gatekeeper.testing import (
    CalleeFactory,
    CalleeScript,
    CallerFactory,
    ConnectionClosed,
    FakeDatagramTransport,
    FakeEndpoint,
    MessageTemplates,
    RasClient,
    answer_message,
    facility_message,
    information_message,
    peek_header,
)

GK_SIGNAL = ("127.0.0.1", 1721)
FAST_START = [bytes.fromhex("0000000c2013800a04000100c000020a1389")]


def admitted_caller(call_id: bytes = b"C" * 16, conference_id: bytes = b"F" * 16) -> FakeEndpoint:
    """Alice, registered, with an ACF for a call to 2002 read (routed)."""
    alice = FakeEndpoint(["1001", "alice"], ("127.0.0.1", 31720), ("127.0.0.1", 31719))
    alice.endpoint_id = "1_endp"
    arq = codec.decode_ras(alice.arq(["2002"], call_id=call_id, conference_id=conference_id))
    seq = arq[1]["requestSeqNum"]
    alice.read(codec.encode_ras(ras.acf(seq, 1280, GK_SIGNAL, routed=True)))
    return alice


def frames(transport: StringTransport) -> list[callsignal.SignalMessage]:
    payloads = tpkt.TpktDeframer().feed(transport.value())
    return [callsignal.parse(p) for p in payloads]


def callee_factory(clock, script=CalleeScript(), on_setup=None, decode=True) -> CalleeFactory:
    bob = FakeEndpoint(["2002", "bob"], ("127.0.0.1", 32720), ("127.0.0.1", 32719))
    return CalleeFactory(bob, clock, script, decode, on_setup)


def call_pair(clock, script=CalleeScript(), fast_start=None, decode=True, on_setup=None):
    """A caller leg connected straight to a callee leg (no gatekeeper between)."""
    alice = admitted_caller()
    setup = alice.setup(b"C" * 16, fast_start)
    caller_factory = CallerFactory(alice, clock, alice.calls[b"C" * 16], setup, decode)
    callee = callee_factory(clock, script, on_setup, decode)
    callee_leg = callee.buildProtocol(None)
    caller_leg = caller_factory.buildProtocol(None)
    pump = iosim.connect(callee_leg, iosim.makeFakeServer(callee_leg),
                         caller_leg, iosim.makeFakeClient(caller_leg), greet=False)
    pump.flush()
    return alice, callee, callee_leg, caller_leg, pump


# -- RAS side: what the ACF tells the caller ---------------------------------------


def test_acf_gives_the_call_its_signal_address_and_call_model():
    alice = admitted_caller()
    call = alice.calls[b"C" * 16]
    assert call.admitted is True
    assert call.signal_address == GK_SIGNAL
    assert call.call_model == "gatekeeperRouted"
    assert [a.value for a in call.destination] == ["2002"]


def test_arj_marks_the_call_not_admitted():
    alice = FakeEndpoint(["1001"])
    alice.endpoint_id = "1_endp"
    data = codec.decode_ras(alice.arq(["9999"], call_id=b"R" * 16))
    alice.read(codec.encode_ras(ras.arj(data[1]["requestSeqNum"], "calledPartyNotRegistered")))
    assert alice.calls[b"R" * 16].admitted is False
    assert alice.calls[b"R" * 16].signal_address is None


# -- the Setup ------------------------------------------------------------------


def test_setup_carries_the_acf_call_and_the_addresses():
    alice = admitted_caller(b"C" * 16, b"F" * 16)
    message = callsignal.parse(callsignal.serialize(alice.setup(b"C" * 16, FAST_START)))
    body = message.body
    assert message.message_type == q931.SETUP and message.body_kind == "setup"
    assert message.crv == alice.calls[b"C" * 16].crv
    assert message.q931.from_destination is False
    assert message.call_id == b"C" * 16
    assert body["conferenceID"] == b"F" * 16
    assert ras.aliases_from_asn(body["destinationAddress"]) == (ras.parse_alias("2002"),)
    assert [a.value for a in ras.aliases_from_asn(body["sourceAddress"])] == ["1001", "alice"]
    assert message.address("destCallSignalAddress") == GK_SIGNAL
    assert message.address("sourceCallSignalAddress") == ("127.0.0.1", 31720)
    assert body["fastStart"] == FAST_START
    assert message.q931.called_party_number.digits == "2002"


def test_setup_without_fast_start_has_none():
    alice = admitted_caller()
    message = callsignal.parse(callsignal.serialize(alice.setup(b"C" * 16)))
    assert "fastStart" not in message.body


def test_place_call_connects_to_the_acf_address_from_the_endpoint_host():
    reactor = MemoryReactorClock()
    alice = admitted_caller()
    leg = alice.place_call(reactor, b"C" * 16)
    host, port, factory, timeout, bind = reactor.tcpClients[0]
    assert (host, port) == GK_SIGNAL
    assert bind == ("127.0.0.1", 0)
    assert factory.buildProtocol(None) is leg
    transport = StringTransport()
    leg.makeConnection(transport)
    [setup] = frames(transport)
    assert setup.message_type == q931.SETUP and setup.call_id == b"C" * 16


def test_place_call_without_an_acf_address_is_refused():
    alice = FakeEndpoint(["1001"])
    alice.endpoint_id = "1_endp"
    alice.arq(["2002"], call_id=b"N" * 16)
    with pytest.raises(ValueError):
        alice.place_call(MemoryReactorClock(), b"N" * 16)


def test_failed_connection_fails_the_legs_opened_deferred():
    reactor = MemoryReactorClock()
    leg = admitted_caller().place_call(reactor, b"C" * 16)
    failures = []
    leg.opened.addErrback(failures.append)
    from twisted.internet.error import ConnectionRefusedError
    from twisted.python.failure import Failure
    waiting = []
    leg.wait_for(q931.CONNECT).addErrback(waiting.append)
    reactor.tcpClients[0][2].clientConnectionFailed(None, Failure(ConnectionRefusedError()))
    assert len(failures) == 1 and leg.errors and "refused" in leg.errors[0].lower()
    # whoever waits for the call's messages hears of it too
    assert waiting and waiting[0].check(ConnectionClosed) and leg.is_lost and leg.lost.called


# -- the callee ------------------------------------------------------------------


def test_listen_signalling_puts_the_bound_port_in_the_rrq():
    reactor = MemoryReactorClock()
    bob = FakeEndpoint(["2002"], ("127.0.0.1", 0))
    factory = bob.listen_signalling(reactor, port=34567)
    port, server_factory, backlog, interface = reactor.tcpServers[0]
    assert (port, interface) == (34567, "127.0.0.1") and server_factory is factory
    assert bob.callee is factory
    rrq = codec.decode_ras(bob.rrq())[1]
    assert ras.transport_from_asn(rrq["callSignalAddress"][0]) == ("127.0.0.1", 34567)


def test_callee_answers_setup_with_proceeding_alerting_connect():
    clock = Clock()
    alice, callee, callee_leg, caller_leg, pump = call_pair(clock, fast_start=FAST_START)
    assert callee_leg.names() == ["SETUP"]
    assert callee_leg.setup.message.body["fastStart"] == FAST_START
    assert caller_leg.types() == [q931.CALL_PROCEEDING, q931.ALERTING, q931.CONNECT]
    crv = alice.calls[b"C" * 16].crv
    for r in caller_leg.received:
        assert r.crv == crv and r.from_destination is True and r.call_id == b"C" * 16
    assert caller_leg.problems() == [] and callee_leg.problems() == []
    assert callee.setups == 1 and callee.connected == 1
    assert callee.by_call_id[b"C" * 16] is callee_leg


def test_callee_answers_after_the_script_delays():
    clock = Clock()
    script = CalleeScript(answers=("alerting", "connect"), delays=(1.0, 2.0))
    _, _, _, caller_leg, pump = call_pair(clock, script)
    assert caller_leg.types() == []
    clock.advance(1.0)
    pump.flush()
    assert caller_leg.types() == [q931.ALERTING]
    clock.advance(1.9)
    pump.flush()
    assert caller_leg.types() == [q931.ALERTING]
    clock.advance(0.1)
    pump.flush()
    assert caller_leg.types() == [q931.ALERTING, q931.CONNECT]


def test_callee_refuses_with_release_complete_and_closes():
    clock = Clock()
    script = CalleeScript(refuse=q931.CAUSE_USER_BUSY, refuse_reason="inConf")
    _, callee, callee_leg, caller_leg, pump = call_pair(clock, script)
    pump.flush()
    [answer] = caller_leg.received
    assert answer.message_type == q931.RELEASE_COMPLETE and answer.cause == q931.CAUSE_USER_BUSY
    assert answer.message.body["reason"][0] == "inConf"
    assert caller_leg.is_lost and callee_leg.is_lost
    assert callee.connected == 0


def test_callee_waits_for_on_setup_before_answering():
    from twisted.internet.defer import Deferred
    clock = Clock()
    gate = Deferred()
    seen = []
    _, _, callee_leg, caller_leg, pump = call_pair(
        clock, on_setup=lambda leg: (seen.append(leg.call_id), gate)[1])
    assert seen == [b"C" * 16] and caller_leg.types() == []
    gate.callback(None)
    pump.flush()
    assert caller_leg.types() == [q931.CALL_PROCEEDING, q931.ALERTING, q931.CONNECT]


def test_callee_hangs_up_after_release_after():
    clock = Clock()
    _, callee, callee_leg, caller_leg, pump = call_pair(
        clock, CalleeScript(release_after=5.0, release_cause=q931.CAUSE_NORMAL_UNSPECIFIED))
    clock.advance(4.9)
    pump.flush()
    assert q931.RELEASE_COMPLETE not in caller_leg.types()
    clock.advance(0.1)
    pump.flush()
    release = caller_leg.first(q931.RELEASE_COMPLETE)
    assert release is not None and release.cause == q931.CAUSE_NORMAL_UNSPECIFIED
    assert callee_leg.released_by_me and caller_leg.is_lost


def test_caller_release_reaches_the_callee_and_is_counted():
    clock = Clock()
    _, callee, callee_leg, caller_leg, pump = call_pair(clock)
    caller_leg.release(q931.CAUSE_NORMAL_CALL_CLEARING)
    pump.flush()
    release = callee_leg.first(q931.RELEASE_COMPLETE)
    assert release.cause == q931.CAUSE_NORMAL_CALL_CLEARING and release.from_destination is False
    assert callee.releases == 1 and callee_leg.is_lost and callee.legs_lost == 1
    assert callee_leg.problems() == []


def test_information_from_the_caller_arrives_at_the_callee():
    clock = Clock()
    _, _, callee_leg, caller_leg, pump = call_pair(clock)
    waited = callee_leg.wait_for(q931.INFORMATION)
    got = []
    waited.addCallback(got.append)
    caller_leg.information()
    pump.flush()
    assert got and got[0].message_type == q931.INFORMATION and got[0].call_id == b"C" * 16


def test_wait_for_fires_for_past_messages_and_fails_when_the_leg_is_lost():
    clock = Clock()
    _, _, callee_leg, caller_leg, pump = call_pair(clock)
    connect = []
    caller_leg.wait_for(q931.CONNECT).addCallback(connect.append)
    assert connect and connect[0].message_type == q931.CONNECT
    failed = []
    caller_leg.wait_for(q931.FACILITY).addErrback(failed.append)
    callee_leg.close()
    pump.flush()
    assert failed and failed[0].check(ConnectionClosed)
    late = []
    caller_leg.wait_for(q931.STATUS).addErrback(late.append)
    assert late and late[0].check(ConnectionClosed)


# -- checks ----------------------------------------------------------------------


def test_callee_problems_name_wrong_crv_flag_call_id_and_addresses():
    clock = Clock()
    callee = callee_factory(clock, CalleeScript(answers=()))
    leg = callee.buildProtocol(None)
    leg.makeConnection(StringTransport())
    alice = admitted_caller()
    setup = alice.setup(b"C" * 16)
    leg.dataReceived(tpkt.frame(callsignal.serialize(setup)))
    crv = setup.crv
    assert leg.problems(source=("127.0.0.1", 31720), destination=GK_SIGNAL) == []
    problems = leg.problems(source=("10.9.9.9", 1720), destination=("10.8.8.8", 1720))
    assert any("sourceCallSignalAddress" in p for p in problems)
    assert any("destCallSignalAddress" in p for p in problems)
    # another CRV, then the wrong direction, then another call identifier
    for wrong in (information_message(crv + 1, False, b"C" * 16),
                  information_message(crv, True, b"C" * 16),
                  information_message(crv, False, b"X" * 16)):
        leg.dataReceived(tpkt.frame(callsignal.serialize(wrong)))
    problems = leg.problems()
    assert len(problems) == 3, problems
    assert "call reference" in problems[0] and "flag" in problems[1] and "identifier" in problems[2]


def test_callee_problem_when_the_first_message_is_not_a_setup():
    clock = Clock()
    leg = callee_factory(clock).buildProtocol(None)
    leg.makeConnection(StringTransport())
    leg.dataReceived(tpkt.frame(callsignal.serialize(facility_message(7, False, b"C" * 16))))
    assert leg.problems() and "not a Setup" in leg.problems()[0]
    assert leg.setup is None


def test_bad_tpkt_is_recorded_and_closes_without_raising():
    clock = Clock()
    leg = callee_factory(clock).buildProtocol(None)
    transport = StringTransport()
    leg.makeConnection(transport)
    leg.dataReceived(b"\x07\x00\x00\x05x")
    assert leg.errors and leg.errors[0].startswith("tpkt")
    assert transport.disconnecting


def test_bad_q931_is_recorded_and_closes_without_raising():
    clock = Clock()
    leg = callee_factory(clock).buildProtocol(None)
    transport = StringTransport()
    leg.makeConnection(transport)
    leg.dataReceived(tpkt.frame(b"\x09\x02\x00"))
    assert leg.errors and leg.errors[0].startswith("q931")
    assert transport.disconnecting


def test_legs_that_do_not_decode_record_headers_only():
    clock = Clock()
    _, _, callee_leg, caller_leg, _ = call_pair(clock, decode=False)
    assert callee_leg.types() == [q931.SETUP]
    assert caller_leg.types() == [q931.CALL_PROCEEDING, q931.ALERTING, q931.CONNECT]
    assert all(r.message is None and r.from_destination for r in caller_leg.received)
    # the callee decodes its Setup all the same: it needs the call identifier
    assert callee_leg.received[0].message is not None and callee_leg.call_id == b"C" * 16
    assert callee_leg.crv == callee_leg.received[0].crv


# -- builders ---------------------------------------------------------------------


@pytest.mark.parametrize("kind,message_type", [("callProceeding", q931.CALL_PROCEEDING),
                                               ("alerting", q931.ALERTING),
                                               ("connect", q931.CONNECT),
                                               ("progress", q931.PROGRESS)])
def test_answers_decode_as_what_they_are(kind, message_type):
    message = callsignal.parse(callsignal.serialize(
        answer_message(kind, 300, b"A" * 16, b"B" * 16, fast_start=FAST_START,
                       h245_address=("127.0.0.1", 5000))))
    assert message.message_type == message_type and message.body_kind == kind
    assert message.crv == 300 and message.q931.from_destination is True
    assert message.call_id == b"A" * 16
    assert message.body["fastStart"] == FAST_START
    assert message.address("h245Address") == ("127.0.0.1", 5000)
    if kind == "connect":
        assert message.body["conferenceID"] == b"B" * 16


def test_templates_give_the_bytes_the_builder_gives():
    templates = MessageTemplates()
    for kind in ("callProceeding", "alerting", "connect"):
        for crv in (1, 0x1234, 0x7FFF):
            call_id = bytes(range(16))
            built = q931.encode(answer_message(kind, crv, call_id, call_id).q931)
            assert templates.answer(kind, crv, call_id) == built


def test_peek_header_reads_type_crv_and_flag():
    for crv, flag in ((1, False), (0x2A5B, True), (0x7FFF, False)):
        payload = callsignal.serialize(information_message(crv, flag, b"C" * 16))
        assert peek_header(payload) == (q931.INFORMATION, crv, flag)
    with pytest.raises(Exception):
        peek_header(b"\x09")


# -- RAS client ---------------------------------------------------------------------


def test_ras_client_matches_answers_by_sequence_number_and_answers_drq():
    clock = Clock()
    alice = FakeEndpoint(["1001"], ("127.0.0.1", 1720), ("127.0.0.1", 40000))
    client = RasClient(alice, ("127.0.0.1", 1719), clock)
    transport = FakeDatagramTransport(("127.0.0.1", 40000))
    client.makeConnection(transport)
    answers = []
    client.request(alice.rrq()).addCallback(answers.append)
    [(sent, to)] = transport.take()
    seq = codec.decode_ras(sent)[1]["requestSeqNum"]
    assert to == ("127.0.0.1", 1719)
    rcf = codec.encode_ras(ras.rcf(seq, [("127.0.0.1", 1720)], "7_endp", "GK"))
    client.datagramReceived(rcf, ("127.0.0.1", 1719))
    assert answers and answers[0].kind == "registrationConfirm" and alice.endpoint_id == "7_endp"
    # the gatekeeper's DRQ is answered with DCF and recorded
    alice.arq(["2002"], call_id=b"D" * 16)
    drq = codec.encode_ras(ras.drq(77, "7_endp", b"D" * 16, 5, "forcedDrop", b"D" * 16, "GK",
                                   False))
    client.datagramReceived(drq, ("127.0.0.1", 1719))
    [(answer, _)] = transport.take()[-1:]
    assert codec.decode_ras(answer) == ("disengageConfirm", {"requestSeqNum": 77})
    assert client.gatekeeper_requests[0].kind == "disengageRequest"


def test_ras_client_request_times_out():
    clock = Clock()
    alice = FakeEndpoint(["1001"])
    client = RasClient(alice, ("127.0.0.1", 1719), clock, timeout=2.0)
    client.makeConnection(FakeDatagramTransport())
    failures = []
    client.request(alice.rrq()).addErrback(failures.append)
    clock.advance(2.0)
    assert failures and failures[0].check(TimeoutError)


def test_ras_client_retransmits_before_it_gives_up():
    clock = Clock()
    alice = FakeEndpoint(["1001"])
    client = RasClient(alice, ("127.0.0.1", 1719), clock, timeout=1.0, retries=2)
    transport = FakeDatagramTransport()
    client.makeConnection(transport)
    answers, failures = [], []
    client.request(alice.rrq()).addCallbacks(answers.append, failures.append)
    [(first, _)] = transport.take()
    clock.advance(1.0)
    clock.advance(1.0)
    assert [data for data, _ in transport.take()] == [first, first]
    assert client.retransmitted == 2 and not failures
    seq = codec.decode_ras(first)[1]["requestSeqNum"]
    client.datagramReceived(codec.encode_ras(ras.rcf(seq, [("127.0.0.1", 1720)], "3_e", "GK")),
                            ("127.0.0.1", 1719))
    assert answers and answers[0].kind == "registrationConfirm"
    clock.advance(5.0)
    assert not failures and transport.take() == []
