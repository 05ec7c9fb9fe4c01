"""``[RoutedMode] AcceptUnregisteredCalls=1``: a Setup with no ARQ before it
is admitted through the core's routing (issue 11).

The harness is test_signalling_relay.py's: a routed RasController, Setup
admission and the signalling server on a MemoryReactorClock, endpoints
10.0.0.1-4 registered as 1001-1004. The unregistered caller is 10.9.9.9.
"""

from __future__ import annotations

import dataclasses

import pytest

from gatekeeper import events as ev
from gatekeeper.core.admission import SetupRejected, SetupSettings, refusal_release
from gatekeeper.core.routing import (
    ExplicitPolicy, InternalPolicy, Router, RoutingSettings, build_router)
from gatekeeper.core.vqueue import VirtualQueues, VirtualQueueSettings
from gatekeeper.h225 import callsignal, q931, ras
from gatekeeper.h225.ras import Alias
from gatekeeper.status import formats
from test_signalling_relay import (
    CALLER_CRV, GK_HOST, GK_SIGNAL, SETTINGS, START, Gatekeeper, assert_release, cdr_reasons,
    common, connect_message, endpoint_type, setup_message, signal)

STRANGER = "10.9.9.9"
ACCEPT = SetupSettings(accept_unregistered=True)


@pytest.fixture
def gk() -> Gatekeeper:
    return Gatekeeper(setup=ACCEPT)


def stranger_setup(call_id: bytes, number: str = "1002", crv: int = CALLER_CRV,
                   source: tuple = (STRANGER, 1720), dest: tuple | None = GK_SIGNAL):
    message = setup_message(call_id, number, crv=crv, source=source)
    message.set_address("destCallSignalAddress", dest)
    return message


def alerting(call_id: bytes, crv: int):
    return signal(q931.ALERTING, crv, True, "alerting",
                  {**common(call_id), "destinationInfo": endpoint_type(),
                   "multipleCalls": False, "maintainConnection": False})


def with_vqueue(gk: Gatekeeper, timeout: float = 10.0) -> VirtualQueues:
    queues = VirtualQueues(VirtualQueueSettings(aliases=("800",), request_timeout=timeout),
                           gk.bus, gk.reactor, gk.controller.registry)
    gk.controller.reconfigure(dataclasses.replace(gk.controller.config, router=build_router(
        RoutingSettings({("", "default"): ("explicit", "internal", "vqueue")}),
        gk.controller.registry, {"vqueue": queues.policy})))
    return queues


# -- admitted on its Setup ---------------------------------------------------------------------


def test_setup_without_arq_is_refused_when_not_accepted():
    gk = Gatekeeper()          # AcceptUnregisteredCalls=0, GnuGk's default
    caller = gk.connect_caller(STRANGER)
    caller.send(stranger_setup(ras.new_guid()))
    got = caller.one()
    assert_release(got, CALLER_CRV, True, q931.CAUSE_NORMAL_UNSPECIFIED)
    assert got.body["reason"] == ("callerNotRegistered", None)
    assert gk.reactor.tcpClients == [] and len(gk.calls) == 0


def test_unregistered_caller_is_routed_to_the_registered_alias(gk):
    call_id = ras.new_guid()
    caller = gk.connect_caller(STRANGER)
    caller.send(stranger_setup(call_id))
    host, port, _factory, _timeout, bind = gk.reactor.tcpClients[-1]
    assert (host, port) == gk.phones[2].signal_address and bind == (GK_HOST, 0)
    call = gk.calls.find_call_id(call_id)
    assert call.caller_endpoint_id == "" and call.caller_signal_address == (STRANGER, 1720)
    assert call.callee_endpoint_id == gk.phones[2].endpoint_id
    assert call.caller_crv == CALLER_CRV and call.routed
    assert gk.controller.calls.counts(gk.phones[2].endpoint_id).active == 1
    callee = gk.accept_callee(local_port=40777)
    forwarded = callee.one()
    assert forwarded.message_type == q931.SETUP
    # The callee sees the gatekeeper as the source and its own address as destination.
    assert forwarded.address("sourceCallSignalAddress") == (GK_HOST, 40777)
    assert forwarded.address("destCallSignalAddress") == gk.phones[2].signal_address
    assert forwarded.crv != CALLER_CRV and forwarded.q931.from_destination is False
    # The callee asks to answer, as in routed mode: it joins the call.
    bob = gk.phones[2]
    acf = gk.ask(bob, bob.arq(["1001"], answer_call=True, call_id=call_id,
                              conference_id=call_id, crv=forwarded.crv))
    assert acf.kind == "admissionConfirm"
    assert len(gk.calls) == 1 and gk.calls.find_call_id(call_id).callee_crv == forwarded.crv
    gk.reactor.advance(2)
    callee.send(alerting(call_id, forwarded.crv))
    assert caller.one().message_type == q931.ALERTING
    gk.reactor.advance(3)
    callee.send(connect_message(call_id, forwarded.crv))
    got = caller.one()
    assert got.message_type == q931.CONNECT and got.crv == CALLER_CRV
    assert gk.calls.get(call.number).connect_time == START + 5
    caller.send(callsignal.release_complete(CALLER_CRV, False, q931.CAUSE_NORMAL_CALL_CLEARING,
                                            call_id))
    assert_release(callee.one(), forwarded.crv, False, q931.CAUSE_NORMAL_CALL_CLEARING)
    [record] = gk.of(ev.CallDetailRecord)
    assert record.release_reason == "16" and record.connect_time == START + 5
    assert record.caller_signal_address == (STRANGER, 1720) and record.caller_endpoint_id == ""
    assert len(gk.calls) == 0
    assert gk.controller.calls.counts(bob.endpoint_id).active == 0


def test_admission_events_of_a_setup_are_not_status_lines(gk):
    call_id = ras.new_guid()
    gk.connect_caller(STRANGER).send(stranger_setup(call_id))
    [confirmed] = gk.of(ev.AdmissionConfirmed)
    assert confirmed.origin == "Setup" and confirmed.endpoint_id == ""
    assert confirmed.call_id == call_id and not confirmed.answer_call
    assert confirmed.dest_signal_address == gk.phones[2].signal_address
    # Accounting starts on it (it is not an answer); the status port shows
    # no ACF for it, as GnuGk: no RAS message was answered.
    assert formats.format_event(confirmed) is None
    assert formats.format_event(dataclasses.replace(confirmed, origin="ARQ")).startswith("ACF|")
    caller = gk.connect_caller(STRANGER)
    caller.send(stranger_setup(ras.new_guid(), number="5555"))
    [rejected] = gk.of(ev.AdmissionRejected)
    assert rejected.origin == "Setup" and formats.format_event(rejected) is None


def test_setup_addressed_to_the_gatekeeper_routes_on_its_aliases(gk):
    # destCallSignalAddress is the gatekeeper itself: not an explicit route (a loop).
    gk.connect_caller(STRANGER).send(stranger_setup(ras.new_guid(), "1003", dest=GK_SIGNAL))
    assert gk.reactor.tcpClients[-1][:2] == gk.phones[3].signal_address


def test_setup_with_only_a_destination_address_goes_there(gk):
    call_id = ras.new_guid()
    message = stranger_setup(call_id, "1002", dest=("198.51.100.7", 1720))
    message.body.pop("destinationAddress")
    message.touch()
    message.q931.remove_ie(q931.IE_CALLED_PARTY_NUMBER)
    gk.connect_caller(STRANGER).send(message)
    assert gk.reactor.tcpClients[-1][:2] == ("198.51.100.7", 1720)
    call = gk.calls.find_call_id(call_id)
    assert call.callee_endpoint_id == "" and call.callee_signal_address == ("198.51.100.7", 1720)


def test_source_address_of_another_host_is_not_believed(gk):
    call_id = ras.new_guid()
    gk.connect_caller(STRANGER).send(stranger_setup(call_id, source=("10.0.0.1", 1720)))
    assert gk.calls.find_call_id(call_id).caller_signal_address[0] == STRANGER


def test_called_number_is_used_when_there_is_no_destination_alias(gk):
    call_id = ras.new_guid()
    message = stranger_setup(call_id, "1004")
    message.body.pop("destinationAddress")
    message.touch()
    gk.connect_caller(STRANGER).send(message)
    assert gk.reactor.tcpClients[-1][:2] == gk.phones[4].signal_address


@pytest.mark.parametrize("number, reason, cause", [
    ("5555", "calledPartyNotRegistered", q931.CAUSE_SUBSCRIBER_ABSENT),
])
def test_unknown_destination_is_released_with_its_reason(gk, number, reason, cause):
    caller = gk.connect_caller(STRANGER)
    caller.send(stranger_setup(ras.new_guid(), number))
    got = caller.one()
    assert_release(got, CALLER_CRV, True, cause)
    assert got.body["reason"] == (reason, None)
    assert caller.closed and gk.reactor.tcpClients == [] and len(gk.calls) == 0
    assert gk.server.stats["setups rejected"] == 1


def test_setup_with_no_destination_at_all_is_bad_format(gk):
    message = stranger_setup(ras.new_guid(), "1002", dest=None)
    message.body.pop("destinationAddress")
    message.touch()
    message.q931.remove_ie(q931.IE_CALLED_PARTY_NUMBER)
    caller = gk.connect_caller(STRANGER)
    caller.send(message)
    got = caller.one()
    assert_release(got, CALLER_CRV, True, q931.CAUSE_INVALID_NUMBER_FORMAT)
    assert got.body["reason"] == ("badFormatAddress", None)


def test_refusal_reasons_map_to_release_complete_reasons():
    assert refusal_release("resourceUnavailable") == SetupRejected(
        q931.CAUSE_RESOURCES_UNAVAILABLE, "gatekeeperResources")
    assert refusal_release("requestDenied").reason == "destinationRejection"
    assert refusal_release("somethingNew") == SetupRejected(q931.CAUSE_NORMAL_UNSPECIFIED,
                                                            "undefinedReason")


def test_arq_admitted_call_still_needs_its_caller_host(gk):
    # Accepting unregistered calls does not let another host take over an
    # ARQ-admitted call by its call identifier.
    call_id = gk.admit(1, 2)
    intruder = gk.connect_caller(STRANGER)
    intruder.send(stranger_setup(call_id))
    assert intruder.one().body["reason"] == ("securityDenied", None)
    assert gk.reactor.tcpClients == []


def test_same_call_id_twice_is_refused_the_second_time(gk):
    call_id = ras.new_guid()
    gk.connect_caller(STRANGER).send(stranger_setup(call_id))
    again = gk.connect_caller(STRANGER)
    again.send(stranger_setup(call_id))
    assert again.one().body["reason"] == ("destinationRejection", None)
    assert len(gk.calls) == 1 and len(gk.reactor.tcpClients) == 1


def test_shutting_down_refuses_unregistered_setups(gk):
    gk.controller.accepting = False
    caller = gk.connect_caller(STRANGER)
    caller.send(stranger_setup(ras.new_guid()))
    assert caller.one().body["reason"] == ("gatekeeperResources", None)


def test_reconfigure_turns_it_off_for_new_setups(gk):
    gk.admission.reconfigure(SetupSettings(accept_unregistered=False))
    caller = gk.connect_caller(STRANGER)
    caller.send(stranger_setup(ras.new_guid()))
    assert caller.one().body["reason"] == ("callerNotRegistered", None)


def test_onsetup_chain_is_used_for_setups_only(gk):
    # [RoutingPolicy::OnSetup] default=explicit: a Setup is not routed by alias.
    registry = gk.controller.registry
    gk.controller.reconfigure(dataclasses.replace(gk.controller.config, router=Router(
        [ExplicitPolicy(registry), InternalPolicy(registry)],
        {("Setup", "default"): [ExplicitPolicy(registry)]})))
    caller = gk.connect_caller(STRANGER)
    caller.send(stranger_setup(ras.new_guid(), "1002"))
    assert caller.one().body["reason"] == ("calledPartyNotRegistered", None)
    # An ARQ still routes by alias.
    gk.admit(1, 2)


# -- virtual queues on Setup -----------------------------------------------------------------


def test_setup_to_a_virtual_queue_waits_for_route_to_alias(gk):
    queues = with_vqueue(gk)
    call_id = ras.new_guid()
    caller = gk.connect_caller(STRANGER)
    caller.send(stranger_setup(call_id, "800", crv=77))
    [request] = gk.of(ev.RouteRequested)
    assert request.message_type == "Setup" and request.caller_endpoint_id == "unregistered"
    assert request.call_reference == 77 and request.virtual_queue == "800"
    assert request.call_id == call_id
    assert request.caller_address == (STRANGER, 1720)
    assert request.message_from[0] == STRANGER
    assert formats.format_event(request).startswith(f"RouteRequest|{STRANGER}:1720|unregistered|77|800|")
    assert formats.format_event(request).endswith("|Setup;")
    assert gk.reactor.tcpClients == [] and caller.received() == []
    # What the caller sends while it waits reaches the callee after the Setup.
    caller.send(signal(q931.INFORMATION, 77, False, "information", common(call_id)))
    assert queues.route_to_alias("unregistered", 77, None, Alias("dialledDigits", "1003")) is None
    assert gk.reactor.tcpClients[-1][:2] == gk.phones[3].signal_address
    callee = gk.accept_callee()
    setup, information = callee.received()
    assert setup.message_type == q931.SETUP and information.message_type == q931.INFORMATION
    assert setup.body["destinationAddress"] == [("dialledDigits", "1003")]
    assert information.crv == setup.crv
    call = gk.calls.find_call_id(call_id)
    assert call.callee_endpoint_id == gk.phones[3].endpoint_id
    assert call.destination_info == (Alias("dialledDigits", "1003"),)


def test_setup_to_a_virtual_queue_rejected(gk):
    queues = with_vqueue(gk)
    caller = gk.connect_caller(STRANGER)
    caller.send(stranger_setup(ras.new_guid(), "800", crv=78))
    assert queues.reject("unregistered", 78, None, "resourceUnavailable") is None
    got = caller.one()
    assert_release(got, 78, True, q931.CAUSE_RESOURCES_UNAVAILABLE)
    assert got.body["reason"] == ("gatekeeperResources", None)
    assert caller.closed and len(gk.calls) == 0


def test_virtual_queue_timeout_goes_on_down_the_chain(gk):
    with_vqueue(gk, timeout=3)
    caller = gk.connect_caller(STRANGER)
    caller.send(stranger_setup(ras.new_guid(), "800", crv=79))
    gk.reactor.advance(3)
    got = caller.one()
    assert got.body["reason"] == ("calledPartyNotRegistered", None)


def test_generate_call_proceeding_answers_a_held_setup_at_once():
    gk = Gatekeeper(dataclasses.replace(SETTINGS, generate_call_proceeding=True), setup=ACCEPT)
    queues = with_vqueue(gk)
    call_id = ras.new_guid()
    caller = gk.connect_caller(STRANGER)
    caller.send(stranger_setup(call_id, "800", crv=80))
    proceeding = caller.one()
    assert proceeding.message_type == q931.CALL_PROCEEDING and proceeding.crv == 80
    assert proceeding.q931.from_destination is True
    queues.route_to_alias("unregistered", 80, None, Alias("dialledDigits", "1002"))
    callee = gk.accept_callee()
    forwarded = callee.one()
    # The callee's own CallProceeding is not a second one for the caller.
    callee.send(signal(q931.CALL_PROCEEDING, forwarded.crv, True, "callProceeding",
                       {**common(call_id), "destinationInfo": endpoint_type(),
                        "multipleCalls": False, "maintainConnection": False}))
    assert caller.received() == []
    assert gk.server.stats["call proceeding sent"] == 1
    assert gk.server.stats["call proceeding absorbed"] == 1


def test_two_unregistered_callers_with_one_crv_wait_apart(gk):
    queues = with_vqueue(gk)
    first, second = ras.new_guid(), ras.new_guid()
    a = gk.connect_caller(STRANGER)
    a.send(stranger_setup(first, "800", crv=5))
    b = gk.connect_caller("10.9.9.10")
    b.send(stranger_setup(second, "800", crv=5, source=("10.9.9.10", 1720)))
    assert len(gk.of(ev.RouteRequested)) == 2 and len(queues.pending) == 2
    assert queues.reject("unregistered", 5, second) is None
    assert b.one().message_type == q931.RELEASE_COMPLETE
    assert a.received() == [] and len(queues.pending) == 1
    assert queues.route_to_alias("unregistered", 5, None, Alias("dialledDigits", "1002")) is None
    assert gk.calls.find_call_id(first) is not None and gk.calls.find_call_id(second) is None


def test_caller_releasing_while_held_leaves_no_call(gk):
    queues = with_vqueue(gk)
    call_id = ras.new_guid()
    caller = gk.connect_caller(STRANGER)
    caller.send(stranger_setup(call_id, "800", crv=81))
    caller.send(callsignal.release_complete(81, False, q931.CAUSE_NORMAL_CALL_CLEARING, call_id))
    assert caller.closed
    queues.route_to_alias("unregistered", 81, None, Alias("dialledDigits", "1002"))
    assert gk.reactor.tcpClients == [] and len(gk.calls) == 0
    # Admitted after the caller left: the call ends at once, with the caller's cause.
    assert cdr_reasons(gk) == ["16"]
    assert gk.controller.calls.counts(gk.phones[2].endpoint_id).active == 0
    assert gk.server.stats["held caller gone"] == 1


def test_caller_connection_lost_while_held(gk):
    queues = with_vqueue(gk)
    caller = gk.connect_caller(STRANGER)
    caller.send(stranger_setup(ras.new_guid(), "800", crv=82))
    caller.lose()
    queues.reject("unregistered", 82, None)
    assert gk.reactor.tcpClients == [] and len(gk.calls) == 0 and cdr_reasons(gk) == []


def test_garbage_while_held_drops_the_leg_only(gk):
    queues = with_vqueue(gk)
    caller = gk.connect_caller(STRANGER)
    caller.send(stranger_setup(ras.new_guid(), "800", crv=83))
    caller.send_bytes(b"\x03\x00\x00\x05\xff")
    assert caller.closed and gk.server.stats["malformed"] == 1
    queues.route_to_alias("unregistered", 83, None, Alias("dialledDigits", "1002"))
    assert gk.reactor.tcpClients == [] and len(gk.calls) == 0


def test_flood_while_held_is_bounded(gk):
    with_vqueue(gk)
    call_id = ras.new_guid()
    caller = gk.connect_caller(STRANGER)
    caller.send(stranger_setup(call_id, "800", crv=84))
    for _ in range(SETTINGS.max_pending + 1):
        caller.send(signal(q931.INFORMATION, 84, False, "information", common(call_id)))
    got = caller.one()
    assert got.body["reason"] == ("gatekeeperResources", None) and caller.closed


def test_stop_while_held_releases_the_caller(gk):
    with_vqueue(gk)
    caller = gk.connect_caller(STRANGER)
    caller.send(stranger_setup(ras.new_guid(), "800", crv=85))
    gk.server.stop()
    assert caller.one().body["reason"] == ("gatekeeperResources", None)
    assert caller.closed


