"""MakeCall (gatekeeper/signalling/makecall.py): the pseudo endpoint calls
SOURCE and, once SOURCE answers, asks it to call DESTINATION (Facility
callForwarded, GnuGk's FacilityForward).

The harness is test_signalling_relay.py's (routed RasController, Setup
admission, MemoryReactorClock as clock and connector, endpoints 10.0.0.1-4
registered as 1001-1004).
"""

from __future__ import annotations

import pytest

from gatekeeper import events as ev
from gatekeeper.configfile import read_ini
from gatekeeper.h225 import callsignal, q931, ras
from gatekeeper.h225.ras import Alias
from gatekeeper.signalling.makecall import (
    MakeCalls, MakeCallSettings, parse_make_call)
from test_signalling_relay import (
    GK_HOST, GK_SIGNAL, START, Gatekeeper, cdr_reasons, common, connect_message, endpoint_type,
    signal)


def number(digits: str) -> Alias:
    return ras.dialled_digits(digits)


class Lab:
    def __init__(self, settings: MakeCallSettings = MakeCallSettings()) -> None:
        self.gk = Gatekeeper()
        self.calls = MakeCalls(self.gk.admission, self.gk.reactor, self.gk.reactor, settings,
                               bind_address=GK_HOST, signal_address=lambda: GK_SIGNAL)
        self.gk.bus.subscribe(self.calls)

    def start(self, source: str = "1002", destination: Alias | tuple = number("1003")):
        """MakeCall; SOURCE accepts the TCP leg; what it received first (the Setup)."""
        reply = self.calls.make_call(number(source), destination)
        assert reply.startswith("MakeCall: calling "), reply
        party = self.gk.accept_callee(local_port=41000)
        return reply, party, party.one()

    def answer(self, party, setup, phone: int = 2) -> None:
        """SOURCE asks to answer (ARQ answerCall), rings, connects."""
        endpoint = self.gk.phones[phone]
        call_id = setup.call_id
        acf = self.gk.ask(endpoint, endpoint.arq(["InternalMakeCallEP"], answer_call=True,
                                                 call_id=call_id, conference_id=call_id,
                                                 crv=setup.crv))
        assert acf.kind == "admissionConfirm"
        party.send(signal(q931.ALERTING, setup.crv, True, "alerting",
                          {**common(call_id), "destinationInfo": endpoint_type(),
                           "multipleCalls": False, "maintainConnection": False}))
        self.gk.reactor.advance(1)
        party.send(connect_message(call_id, setup.crv))


@pytest.fixture
def lab() -> Lab:
    return Lab()


def test_pseudo_endpoint_calls_the_source_with_its_own_setup(lab):
    reply, party, setup = lab.start()
    assert reply == "MakeCall: calling 1002; when it answers it is asked to call 1003"
    host, port = lab.gk.reactor.tcpClients[-1][:2]
    assert (host, port) == lab.gk.phones[2].signal_address
    assert lab.gk.reactor.tcpClients[-1][4] == (GK_HOST, 0)
    assert setup.message_type == q931.SETUP and setup.q931.from_destination is False
    assert setup.body["sourceAddress"] == [("h323-ID", "InternalMakeCallEP")]
    assert setup.body["destinationAddress"] == [("dialledDigits", "1002")]
    assert setup.address("destCallSignalAddress") == lab.gk.phones[2].signal_address
    assert setup.address("sourceCallSignalAddress") == (GK_HOST, 41000)
    assert "fastStart" not in setup.body and "h245Address" not in setup.body
    assert setup.pdu["h245Tunnelling"] is True
    assert setup.q931.called_party_number.digits == "1002"
    # The pseudo call is in the call table, for the source only.
    call = lab.gk.calls.find_call_id(setup.call_id)
    assert call.caller_endpoint_id == "" and call.callee_endpoint_id == lab.gk.phones[2].endpoint_id
    assert call.caller_signal_address == GK_SIGNAL
    [confirmed] = lab.gk.of(ev.AdmissionConfirmed)
    assert confirmed.origin == "MakeCall"


def test_source_answers_and_is_asked_to_call_the_destination(lab):
    _reply, party, setup = lab.start()
    lab.answer(party, setup)
    facility = party.one()
    assert facility.message_type == q931.FACILITY and facility.crv == setup.crv
    assert facility.q931.from_destination is False
    assert facility.body["reason"] == ("callForwarded", None)
    assert facility.body["alternativeAliasAddress"] == [("dialledDigits", "1003")]
    assert facility.call_id == setup.call_id
    call = lab.gk.calls.find_call_id(setup.call_id)
    assert call.connect_time == START + 1
    # The source releases the pseudo call (as ooh323c does) and calls 1003 itself.
    party.send(callsignal.release_complete(setup.crv, True, q931.CAUSE_NORMAL_CALL_CLEARING,
                                           setup.call_id, "facilityCallDeflection"))
    assert party.closed
    assert cdr_reasons(lab.gk) == ["16"]
    assert lab.calls.stats["transferred"] == 1 and lab.calls.calls == {}
    assert len(lab.gk.calls) == 0
    # ... its DRQ for the pseudo call afterwards finds nothing to end twice.
    bob = lab.gk.phones[2]
    assert lab.gk.ask(bob, bob.drq(setup.call_id)).kind == "disengageConfirm"
    assert cdr_reasons(lab.gk) == ["16"]


def test_destination_address_goes_in_alternative_address(lab):
    _reply, party, setup = lab.start(destination=("198.51.100.9", 1720))
    lab.answer(party, setup)
    facility = party.one()
    assert "alternativeAliasAddress" not in facility.body
    assert facility.address("alternativeAddress") == ("198.51.100.9", 1720)


def test_source_that_never_releases_is_released_after_the_facility(lab):
    _reply, party, setup = lab.start()
    lab.answer(party, setup)
    party.received()
    lab.gk.reactor.advance(MakeCallSettings().release_timeout)
    got = party.one()
    assert got.message_type == q931.RELEASE_COMPLETE and got.crv == setup.crv
    assert party.closed and len(lab.gk.calls) == 0


def test_source_that_does_not_answer_is_released(lab):
    _reply, party, setup = lab.start()
    settings = MakeCallSettings()
    lab.gk.reactor.advance(settings.connect_timeout + settings.answer_timeout)
    got = party.one()
    assert got.message_type == q931.RELEASE_COMPLETE
    assert got.cause == q931.CAUSE_NO_USER_RESPONDING
    assert cdr_reasons(lab.gk) == [str(q931.CAUSE_NO_USER_RESPONDING)]
    assert lab.calls.stats["timeouts"] == 1


def test_source_that_refuses(lab):
    _reply, party, setup = lab.start()
    party.send(callsignal.release_complete(setup.crv, True, q931.CAUSE_USER_BUSY, setup.call_id))
    assert party.closed and cdr_reasons(lab.gk) == ["17"]
    assert lab.calls.stats["refused by source"] == 1


def test_unknown_source_is_an_error_line(lab):
    assert lab.calls.make_call(number("5555"), number("1003")) == (
        "Error: cannot call 5555: calledPartyNotRegistered")
    assert lab.gk.reactor.tcpClients == [] and len(lab.gk.calls) == 0


@pytest.mark.parametrize("method, line", [
    ("H.450.2", "Error: transfer method H.450.2 is not supported (FacilityForward is)"),
    ("reroute", "Error: transfer method Reroute is not supported (FacilityForward is)"),
    ("Teleport", "Error: Teleport is not a transfer method (FacilityForward, "
                 "FacilityRouteCallToMC, H.450.2, Reroute)"),
])
def test_other_transfer_methods_are_refused(lab, method, line):
    assert lab.calls.make_call(number("1002"), number("1003"), method) == line
    assert lab.gk.reactor.tcpClients == []


def test_facilityforward_named_in_any_case_is_accepted(lab):
    assert lab.calls.make_call(number("1002"), number("1003"), "facilityforward").startswith(
        "MakeCall: calling 1002")


def test_source_unreachable_ends_the_pseudo_call(lab):
    from twisted.internet.error import ConnectionRefusedError
    from twisted.python.failure import Failure
    lab.calls.make_call(number("1002"), number("1003"))
    _host, _port, factory, _timeout, _bind = lab.gk.reactor.tcpClients[-1]
    factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))
    assert cdr_reasons(lab.gk) == [str(q931.CAUSE_NO_ROUTE_TO_DESTINATION)]
    assert lab.calls.stats["unreachable"] == 1 and lab.calls.calls == {}


def test_disconnect_call_releases_the_pseudo_leg(lab):
    _reply, party, setup = lab.start()
    call = lab.gk.calls.find_call_id(setup.call_id)
    lab.gk.controller.disconnect(call)
    got = party.one()
    assert got.message_type == q931.RELEASE_COMPLETE and party.closed
    assert len(cdr_reasons(lab.gk)) == 1 and lab.calls.calls == {}


def test_garbage_from_the_source_ends_the_pseudo_call(lab):
    _reply, party, setup = lab.start()
    party.send_bytes(b"\x03\x00\x00\x05\xff")
    assert party.closed and lab.calls.stats["malformed"] == 1
    assert len(cdr_reasons(lab.gk)) == 1


def test_messages_of_another_call_reference_are_ignored(lab):
    _reply, party, setup = lab.start()
    party.send(connect_message(setup.call_id, setup.crv + 1))
    assert party.received() == [] and lab.gk.calls.find_call_id(setup.call_id).connect_time is None


def test_no_tunnelling_when_disabled():
    lab = Lab(MakeCallSettings(disable_h245_tunneling=True, endpoint_alias="Operator"))
    _reply, _party, setup = lab.start()
    assert setup.pdu["h245Tunnelling"] is False
    assert setup.body["sourceAddress"] == [("h323-ID", "Operator")]


def test_stop_releases_pseudo_calls(lab):
    _reply, party, _setup = lab.start()
    lab.calls.stop()
    assert party.one().message_type == q931.RELEASE_COMPLETE and party.closed


def test_parse_make_call_section():
    ini = read_ini("[CTI::MakeCall]\nEndpointAlias=Operator\nTransferMethod=facilityforward\n"
                        "DisableH245Tunneling=1\nDisableFastStart=1\nUseH450=1\n"
                        "TransferMethod2=x\n", "gk.ini")
    settings, warnings = parse_make_call(ini)
    assert settings == MakeCallSettings(endpoint_alias="Operator", disable_h245_tunneling=True)
    assert warnings == [
        "gk.ini: [CTI::MakeCall] UseH450=1: H.450.2 is not supported, FacilityForward is used",
        warnings[1]]
    assert "TransferMethod2" in warnings[1]
    settings, warnings = parse_make_call(read_ini("[CTI::MakeCall]\nTransferMethod=Reroute\n",
                                                       "gk.ini"))
    assert settings.transfer_method == "FacilityForward"
    assert warnings == ["gk.ini: [CTI::MakeCall] TransferMethod=Reroute: not supported, "
                        "FacilityForward is used"]
