"""The endpoints' call counters come from the call table, the one owner.

``C(active/connected/total)`` in ``PrintAllRegistrationsVerbose``: active =
the endpoint's calls in the table, connected = its calls answered so far
(cumulative, as GnuGk's C(0/32/39) shows), total = its calls admitted so
far; ``CallTable.counts(endpoint_id)`` gives all three.
"""

from __future__ import annotations

import time

import pytest
from twisted.internet.task import Clock

from gatekeeper import events as ev
from gatekeeper.core.calls import Call, CallTable, EndpointCalls
from gatekeeper.core.registry import Endpoint, Registry
from gatekeeper.h225 import callsignal, q931, ras
from gatekeeper.ras.controller import RasSettings
from gatekeeper.service import GatekeeperService, ListenSettings
from gatekeeper.testing import FakeDatagramTransport, FakeEndpoint
from test_ras_controller import Gatekeeper as RasGatekeeper
from test_ras_controller import kinds, phone
from test_signalling_relay import CALLER_CRV, connect_message
from test_signalling_relay import Gatekeeper as RoutedGatekeeper
from test_signalling_unregistered import ACCEPT, STRANGER, stranger_setup


def test_endpoints_keep_no_counters_of_their_own():
    fields = set(Endpoint.__dataclass_fields__)
    assert not fields & {"active_calls", "connected_calls", "total_calls"}


# -- the call table on its own -------------------------------------------------------


def call(number: int, caller: str = "a", callee: str = "b") -> Call:
    return Call(number, bytes([number]) * 16, bytes(16), caller, None, 1, callee, None, (), (),
                0, 100.0)


def test_counts_follow_add_join_connect_and_end():
    table = CallTable()
    first = table.add(call(1, "a", ""))
    assert table.counts("a") == EndpointCalls(1, 0, 1) and table.counts("b") == (0, 0, 0)
    table.join(first, "b", None, 5)
    table.join(first, "b", None, 5)                   # asked again: counted once
    assert table.counts("b") == (1, 0, 1)
    table.mark_connected(first, 101.0)
    table.mark_connected(first, 102.0)
    assert table.counts("a") == table.counts("b") == (1, 1, 1)
    table.add(call(2, "a", "b"))
    assert table.counts("a") == (2, 1, 2) and table.active_count("b") == 2
    table.end(first, 110.0, "GK")
    assert table.counts("a") == table.counts("b") == (1, 1, 2)


def test_reset_call_counters_leaves_the_endpoints_counters():
    table = CallTable()
    table.mark_connected(table.add(call(1)), 101.0)
    table.reset_counters()
    assert (table.total, table.total_connected) == (0, 0)
    assert table.counts("a") == table.counts("b") == (1, 1, 1)


def test_forgetting_an_endpoint_returns_its_counters_and_drops_its_totals():
    table = CallTable()
    ongoing = table.add(call(1))
    assert table.forget_endpoint("b") == (1, 0, 1)
    table.mark_connected(ongoing, 101.0)             # b left: counts for a only
    assert table.counts("b") == (1, 0, 0) and table.counts("a") == (1, 1, 1)
    table.end(ongoing, 102.0, "GK")
    assert table.counts("b") == (0, 0, 0)


def test_the_registry_keeps_an_endpoints_counters_when_it_is_removed():
    table = CallTable()
    registry = Registry(calls=table)
    gone = registry.add(Endpoint("b_endp", (ras.h323_id("bob"),), (("10.0.0.2", 1720),),
                                 ("10.0.0.2", 1719)))
    table.add(call(1, "a", "b_endp"))
    registry.remove("b_endp", "gone", 200.0)
    assert registry.removed[-1] == (200.0, "gone", gone, (1, 0, 1))


def test_the_least_busy_gateway_is_the_one_with_fewer_calls_in_the_table():
    table = CallTable()
    registry = Registry(calls=table)
    gateways = [registry.add(Endpoint(f"g{n}", (ras.h323_id(f"gw{n}"),),
                                      ((f"10.0.1.{n}", 1720),), (f"10.0.1.{n}", 1719),
                                      "gateway", prefixes=("09",))) for n in (1, 2)]
    table.add(call(1, "x", "g1"))
    assert registry.longest_prefix("0912")[0] is gateways[1]
    table.add(call(2, "x", "g2"))
    table.add(call(3, "y", "g2"))
    assert registry.longest_prefix("0912")[0] is gateways[0]


# -- direct mode (RAS only) ---------------------------------------------------------


@pytest.fixture
def gk() -> RasGatekeeper:
    return RasGatekeeper()


def test_arq_counts_for_caller_and_callee_and_the_answer_connects(gk):
    alice, bob = phone(1, "alice"), phone(2, "bob")
    gk.register(alice)
    gk.register(bob)
    call_id = gk.call(alice, bob, answer=False)
    assert gk.calls.counts(alice.endpoint_id) == gk.calls.counts(bob.endpoint_id) == (1, 0, 1)
    pdu = gk.ask(bob, bob.arq(answer_call=True, call_id=call_id))
    assert pdu.kind == "admissionConfirm"
    # Direct mode: the answering ARQ is the connect; the callee is counted once.
    assert gk.calls.counts(alice.endpoint_id) == gk.calls.counts(bob.endpoint_id) == (1, 1, 1)


def test_an_answer_to_a_call_from_outside_joins_and_counts_for_the_callee_only(gk):
    bob = phone(2, "bob")
    gk.register(bob)
    pdu = gk.ask(bob, bob.arq(["bob"], answer_call=True, call_id=ras.new_guid()))
    assert pdu.kind == "admissionConfirm"
    [only] = list(gk.calls)
    assert only.caller_endpoint_id == "" and gk.calls.counts(bob.endpoint_id) == (1, 1, 1)
    assert gk.calls.counts("") == (0, 0, 0)


def test_drq_ends_the_call_for_both_and_keeps_their_totals(gk):
    alice, bob = phone(1, "alice"), phone(2, "bob")
    gk.register(alice)
    gk.register(bob)
    call_id = gk.call(alice, bob)
    assert gk.ask(alice, alice.drq(call_id)).kind == "disengageConfirm"
    assert gk.calls.counts(alice.endpoint_id) == gk.calls.counts(bob.endpoint_id) == (0, 1, 1)
    gk.call(alice, bob, answer=False)
    assert gk.calls.counts(alice.endpoint_id) == (1, 1, 2)


def test_unregistration_ends_the_call_for_the_other_party_and_keeps_the_leavers_counts(gk):
    alice, bob = phone(1, "alice"), phone(2, "bob")
    gk.register(alice)
    gk.register(bob)
    gk.call(alice, bob)
    written = gk.send(alice.urq(), alice.ras_address)
    assert sorted(kinds(written)) == ["disengageRequest", "unregistrationConfirm"]
    assert len(gk.calls) == 0
    assert gk.calls.counts(bob.endpoint_id) == (0, 1, 1)
    removed = gk.registry.removed[-1]
    assert (removed.endpoint.endpoint_id, removed.calls) == (alice.endpoint_id, (1, 1, 1))
    assert gk.calls.counts(alice.endpoint_id) == (0, 0, 0)     # its totals are gone


# -- routed mode ------------------------------------------------------------------


def test_routed_counts_connect_on_connect_and_end_on_release_complete():
    gk = RoutedGatekeeper()
    alice, bob = gk.phones[1].endpoint_id, gk.phones[2].endpoint_id
    routed = gk.start_call()
    assert gk.calls.counts(alice) == gk.calls.counts(bob) == (1, 0, 1)
    answer = gk.ask(gk.phones[2], gk.phones[2].arq(
        ["1001"], answer_call=True, call_id=routed.call_id, conference_id=routed.call_id,
        crv=routed.callee_crv))
    assert answer.kind == "admissionConfirm"
    # Routed: the answering ARQ joins (no second count) but does not connect.
    assert gk.calls.counts(bob) == (1, 0, 1)
    routed.callee.send(connect_message(routed.call_id, routed.callee_crv))
    assert gk.calls.counts(alice) == gk.calls.counts(bob) == (1, 1, 1)
    routed.caller.send(callsignal.release_complete(
        CALLER_CRV, False, q931.CAUSE_NORMAL_CALL_CLEARING, routed.call_id))
    assert len(gk.calls) == 0 and len(gk.of(ev.CallDetailRecord)) == 1
    assert gk.calls.counts(alice) == gk.calls.counts(bob) == (0, 1, 1)


def test_an_unregistered_callers_call_counts_only_for_the_callee():
    gk = RoutedGatekeeper(setup=ACCEPT)
    bob = gk.phones[2].endpoint_id
    call_id = ras.new_guid()
    caller = gk.connect_caller(STRANGER)
    caller.send(stranger_setup(call_id))
    callee = gk.accept_callee()
    forwarded = callee.one()
    assert gk.calls.counts(bob) == (1, 0, 1)
    assert all(gk.calls.counts(p.endpoint_id) == (0, 0, 0)
               for n, p in gk.phones.items() if n != 2)
    gk.reactor.advance(3)
    callee.send(connect_message(call_id, forwarded.crv))
    assert gk.calls.counts(bob) == (1, 1, 1) and gk.calls.counts("") == (0, 0, 0)
    callee.send(callsignal.release_complete(forwarded.crv, True,
                                            q931.CAUSE_NORMAL_CALL_CLEARING, call_id))
    assert len(gk.calls) == 0 and gk.calls.counts(bob) == (0, 1, 1)


# -- what the status port shows ---------------------------------------------------------


@pytest.fixture
def service(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    clock = Clock()
    clock.advance(1_795_702_393)   # Thu, 26 Nov 2026 14:13:13 GMT
    service = GatekeeperService(RasSettings(gatekeeper_id="GK"), ListenSettings(), clock)
    service.ras_protocol.transport = FakeDatagramTransport()
    service.ras_protocol.startProtocol()
    yield service
    monkeypatch.undo()
    time.tzset()


def ask(service, endpoint, data):
    service.ras_protocol.datagramReceived(data, endpoint.ras_address)
    return endpoint.read(service.ras_protocol.transport.take()[0][0])


def status(service, line: bytes) -> str:
    from test_status_session import Client
    return Client(service.status).say(line).decode()


def test_status_port_prints_the_call_tables_counters(service):
    alice = FakeEndpoint(["alice"], ("10.0.0.1", 1720), ("10.0.0.1", 1719))
    bob = FakeEndpoint(["bob"], ("10.0.0.2", 1720), ("10.0.0.2", 1719))
    for endpoint in (alice, bob):
        ask(service, endpoint, endpoint.rrq())
    assert ask(service, alice, alice.arq(["bob"])).kind == "admissionConfirm"
    call_id = list(alice.calls)[-1]
    assert ask(service, bob, bob.arq(answer_call=True, call_id=call_id)).kind == \
        "admissionConfirm"
    assert ask(service, alice, alice.arq(["bob"])).kind == "admissionConfirm"
    when = "Thu, 26 Nov 2026 14:13:13 GMT"
    assert f"{when} C(2/1/2) <1>\r\n" in status(service, b"FindVerbose alice\r\n")
    assert f"|{bob.endpoint_id}\r\n{when} C(2/1/2) <1>\r\n" in status(service, b"rv\r\n")
    assert "|2|0.00%|0|0.00%|0\r\n" in status(service, b"PrintEndpointQoS\r\n")
    status(service, b"ResetCallCounters\r\n")
    assert f"{when} C(2/1/2) <1>\r\n" in status(service, b"FindVerbose bob\r\n")
    assert ask(service, alice, alice.drq(call_id)).kind == "disengageConfirm"
    assert f"{when} C(1/1/2) <1>\r\n" in status(service, b"FindVerbose alice\r\n")
    alice_id = alice.endpoint_id
    assert ask(service, alice, alice.urq()).kind == "unregistrationConfirm"
    assert f"{when} C(0/1/2) <1>\r\n" in status(service, b"FindVerbose bob\r\n")
    removed = status(service, b"debug printrm VERBOSE\r\n")
    # As it stood when the registration ended (its call was still up then).
    assert f"|{alice_id}\r\n{when} C(1/1/2) <1>\r\n" in removed
