"""The RAS service end to end: real encoded requests from FakeEndpoints go into
RasProtocol.datagramReceived, the RasController answers, and the tests read
the decoded replies and the events published on the bus.  Time is a Clock."""

from __future__ import annotations

import random

import pytest
from twisted.internet.task import Clock
from twisted.logger import LogLevel

from gatekeeper import events as ev
from gatekeeper.core.registry import Endpoint, Registry
from gatekeeper.h225 import codec, ras
from gatekeeper.h225.ras import dialled_digits, h323_id
from gatekeeper.ras import protocol as protocol_module
from gatekeeper.ras.controller import RasController, RasSettings
from gatekeeper.ras.policy import RasPolicy
from gatekeeper.ras.protocol import MAX_DATAGRAM, DiscoveryProtocol, RasProtocol
from gatekeeper.testing import FakeDatagramTransport, FakeEndpoint

START = 1_800_000_000
GK_ADDRESS = ("192.0.2.1", 1719)


class Gatekeeper:
    """A controller behind a RasProtocol on a fake transport, a Clock and a bus."""

    def __init__(self, registry: Registry | None = None, policy: RasPolicy | None = None,
                 **settings) -> None:
        settings.setdefault("gatekeeper_id", "GK")
        self.clock = Clock()
        self.clock.advance(START)
        self.bus = ev.EventBus()
        self.events: list[object] = []
        self.bus.subscribe(self.events.append)
        self.controller = RasController(RasSettings(**settings), self.bus, self.clock,
                                        registry=registry, policy=policy)
        self.protocol = RasProtocol(self.controller, self.clock)
        self.transport = FakeDatagramTransport(host=GK_ADDRESS)
        self.protocol.transport = self.transport
        self.protocol.startProtocol()
        self.controller.start()

    @property
    def registry(self) -> Registry:
        return self.controller.registry

    @property
    def calls(self):
        return self.controller.calls

    def now(self) -> float:
        return self.clock.seconds()

    def send(self, data: bytes, source) -> list[tuple[bytes, tuple]]:
        """Deliver one datagram; everything written because of it."""
        self.protocol.datagramReceived(data, source)
        return self.transport.take()

    def ask(self, endpoint: FakeEndpoint, data: bytes, source=None) -> ras.RasPdu:
        """Send ``endpoint``'s request; exactly one answer must go back to the
        source, and ``endpoint`` reads it."""
        source = source or endpoint.ras_address
        written = self.send(data, source)
        assert len(written) == 1, written
        reply, destination = written[0]
        assert destination == source
        return endpoint.read(reply)

    def register(self, endpoint: FakeEndpoint) -> str:
        pdu = self.ask(endpoint, endpoint.rrq())
        assert pdu.kind == "registrationConfirm", pdu.raw
        return endpoint.endpoint_id

    def call(self, caller: FakeEndpoint, callee: FakeEndpoint, destination=None,
             answer: bool = True, bandwidth: int = 1280) -> bytes:
        """Admit a call from ``caller`` to ``callee`` (and its answer); the call id."""
        pdu = self.ask(caller, caller.arq(destination or [callee.aliases[0]], bandwidth=bandwidth))
        assert pdu.kind == "admissionConfirm", pdu.raw
        call_id = list(caller.calls)[-1]
        if answer:
            pdu = self.ask(callee, callee.arq(answer_call=True, call_id=call_id,
                                              bandwidth=bandwidth))
            assert pdu.kind == "admissionConfirm", pdu.raw
        return call_id

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]

    def step(self, seconds: int) -> list[tuple[bytes, tuple]]:
        """Let time pass one second at a time; everything the gatekeeper sent."""
        self.clock.pump([1] * seconds)
        return self.transport.take()


def phone(n: int, *aliases, **kwargs) -> FakeEndpoint:
    """An endpoint at 10.0.0.n (signalling 1720, RAS 1719)."""
    aliases = list(aliases) or [f"{1000 + n}", f"user{n}"]
    return FakeEndpoint(aliases, (f"10.0.0.{n}", 1720), (f"10.0.0.{n}", 1719), **kwargs)


def kinds(written) -> list[str]:
    return [ras.parse(data).kind for data, _ in written]


def encode(message: tuple) -> bytes:
    return codec.encode_ras(message)


@pytest.fixture
def gk() -> Gatekeeper:
    return Gatekeeper()


def from_module(events: list[dict], module) -> list[dict]:
    return [e for e in events if e.get("log_namespace", "").startswith(module)]


# ---------------------------------------------------------------------------
# GRQ
# ---------------------------------------------------------------------------


def test_grq_is_confirmed_with_our_identifier_and_the_address_the_socket_reports(gk):
    alice = phone(1, "alice")
    pdu = gk.ask(alice, alice.grq())
    assert pdu.kind == "gatekeeperConfirm"
    assert pdu.raw["gatekeeperIdentifier"] == "GK"
    assert ras.transport_from_asn(pdu.raw["rasAddress"]) == GK_ADDRESS
    assert alice.gatekeeper_id == "GK"
    assert gk.of(ev.GatekeeperConfirmed) == [
        ev.GatekeeperConfirmed(alice.ras_address, (h323_id("alice"),), "terminal")]


def test_grq_on_a_wildcard_socket_announces_the_local_ip_towards_the_endpoint(monkeypatch):
    gk = Gatekeeper()
    gk.transport.host = ("0.0.0.0", 1719)
    asked = []

    def route_to(remote):
        asked.append(remote)
        return "198.51.100.7"

    monkeypatch.setattr(protocol_module, "local_ip_towards", route_to)
    alice = phone(1)
    pdu = gk.ask(alice, alice.grq())
    assert ras.transport_from_asn(pdu.raw["rasAddress"]) == ("198.51.100.7", 1719)
    gk.ask(alice, alice.grq())
    assert asked == ["10.0.0.1"]  # remembered per peer


def test_grq_naming_us_is_confirmed(gk):
    alice = phone(1, gatekeeper_id="GK")
    assert gk.ask(alice, alice.grq()).kind == "gatekeeperConfirm"


def test_grq_naming_another_gatekeeper_is_rejected_terminal_excluded(gk):
    alice = phone(1, "alice", gatekeeper_id="OtherGK")
    pdu = gk.ask(alice, alice.grq())
    assert pdu.kind == "gatekeeperReject"
    assert pdu.reason == "terminalExcluded"
    assert pdu.raw["gatekeeperIdentifier"] == "GK"
    assert gk.of(ev.GatekeeperConfirmed) == []
    assert gk.of(ev.GatekeeperRejected) == [
        ev.GatekeeperRejected(alice.ras_address, (h323_id("alice"),), "terminal",
                              "terminalExcluded")]


def test_multicast_grq_is_answered_at_its_source_through_the_ras_socket(gk):
    discovery = DiscoveryProtocol(gk.protocol)
    alice = phone(1, "alice")
    discovery.datagramReceived(alice.grq(), ("10.0.0.1", 40000))  # a random source port
    written = gk.transport.take()
    assert [(ras.parse(data).kind, to) for data, to in written] == [
        ("gatekeeperConfirm", ("10.0.0.1", 40000))]   # GnuGk's default, not the rasAddress
    assert len(gk.of(ev.GatekeeperConfirmed)) == 1


def test_multicast_grq_for_another_gatekeeper_is_left_unanswered(gk):
    discovery = DiscoveryProtocol(gk.protocol)
    alice = phone(1, gatekeeper_id="OtherGK")
    discovery.datagramReceived(alice.grq(), alice.ras_address)
    assert gk.transport.take() == []
    assert gk.of(ev.GatekeeperRejected) == []


def test_multicast_requests_other_than_grq_are_ignored(gk):
    discovery = DiscoveryProtocol(gk.protocol)
    alice = phone(1)
    discovery.datagramReceived(alice.rrq(), alice.ras_address)
    assert gk.transport.take() == []
    assert len(gk.registry) == 0
    assert gk.controller.stats["ignored multicast"] == 1
    assert gk.events == []


def test_discovery_socket_joins_the_gatekeeper_group_and_survives_a_failed_join(gk, logged):
    class Transport:
        joined = []

        def joinGroup(self, group, interface):
            self.joined.append(group)
            raise OSError("no multicast route")

    discovery = DiscoveryProtocol(gk.protocol)
    discovery.transport = Transport()
    discovery.startProtocol()
    assert Transport.joined == ["224.0.1.41"]
    assert any("could not join" in e.get("log_format", "") for e in logged)


# ---------------------------------------------------------------------------
# RRQ
# ---------------------------------------------------------------------------


def test_first_registration_is_confirmed_with_a_new_identifier_and_echoed_aliases(gk):
    alice = phone(1, "1001", "alice")
    pdu = gk.ask(alice, alice.rrq())
    assert pdu.kind == "registrationConfirm"
    assert pdu.raw["endpointIdentifier"]
    assert ras.aliases_from_asn(pdu.raw["terminalAlias"]) == (dialled_digits("1001"),
                                                              h323_id("alice"))
    assert ras.transports_from_asn(pdu.raw["callSignalAddress"]) == (("10.0.0.1", 1720),)
    assert pdu.raw["gatekeeperIdentifier"] == "GK"
    endpoint = gk.registry.get(alice.endpoint_id)
    assert endpoint.ras_address == alice.ras_address
    assert gk.registry.find_alias("alice") is endpoint
    [event] = gk.of(ev.EndpointRegistered)
    assert event == ev.EndpointRegistered(
        ("10.0.0.1", 1720), alice.ras_address, alice.aliases, "terminal", alice.endpoint_id,
        keepalive=False, new=True, vendor="gatekeeper.testing 1")


def test_endpoint_identifiers_are_unique_across_many_endpoints(gk):
    ids = [gk.register(phone(n)) for n in range(1, 61)]
    assert len(set(ids)) == 60
    assert len(gk.registry) == 60


def test_reregistration_from_the_same_signalling_address_keeps_the_identifier(gk):
    alice = phone(1, "alice")
    first = gk.register(alice)
    again = phone(1, "alice", "alicia")  # a restarted phone: knows no identifier
    again._seq = 10                      # (the same sequence number would be a retransmission)
    pdu = gk.ask(again, again.rrq())
    assert pdu.raw["endpointIdentifier"] == first
    assert len(gk.registry) == 1
    assert gk.registry.find_alias("alicia").endpoint_id == first
    assert [e.new for e in gk.of(ev.EndpointRegistered)] == [True, False]


def test_reregistration_with_fewer_aliases_drops_the_old_ones(gk):
    alice = phone(1, "alice", "1001")
    gk.register(alice)
    again = phone(1, "alice")
    again._seq = 10
    gk.register(again)
    assert gk.registry.find_alias("1001") is None
    assert gk.registry.find_alias("alice") is not None


def test_lightweight_keepalive_is_confirmed_and_refreshes_the_registration():
    gk = Gatekeeper(time_to_live=300)
    alice = phone(1, "alice")
    endpoint_id = gk.register(alice)
    gk.step(100)
    request = alice.rrq(keepalive=True, lightweight=True)
    sent = ras.parse(request)
    assert (sent.keep_alive, sent.endpoint_id, sent.call_signal_addresses,
            sent.ras_addresses) == (True, endpoint_id, (), ())
    pdu = gk.ask(alice, request)
    assert pdu.kind == "registrationConfirm"
    assert pdu.raw["endpointIdentifier"] == endpoint_id
    assert pdu.raw["timeToLive"] == 300
    assert gk.registry.get(endpoint_id).last_seen == gk.now()
    event = gk.of(ev.EndpointRegistered)[-1]
    assert (event.keepalive, event.new, event.endpoint_id) == (True, False, endpoint_id)


def test_full_keepalive_is_confirmed_with_the_same_identifier(gk):
    alice = phone(1, "alice")
    endpoint_id = gk.register(alice)
    request = alice.rrq(keepalive=True)
    sent = ras.parse(request)
    assert (sent.keep_alive, sent.endpoint_id, sent.aliases) == (True, endpoint_id,
                                                                (h323_id("alice"),))
    pdu = gk.ask(alice, request)
    assert pdu.kind == "registrationConfirm"
    assert pdu.raw["endpointIdentifier"] == endpoint_id
    assert ras.aliases_from_asn(pdu.raw["terminalAlias"]) == (h323_id("alice"),)
    assert len(gk.registry) == 1
    assert gk.of(ev.EndpointRegistered)[-1].keepalive


def test_keepalive_for_an_unknown_identifier_asks_for_a_full_registration(gk):
    alice = phone(1, "alice")
    alice.endpoint_id = "12345_endp"
    pdu = gk.ask(alice, alice.rrq(keepalive=True, lightweight=True))
    assert pdu.kind == "registrationReject"
    assert pdu.reason == "fullRegistrationRequired"
    assert len(gk.registry) == 0
    assert gk.of(ev.RegistrationRejected)[0].reason == "fullRegistrationRequired"


def test_keepalive_with_another_endpoints_identifier_is_refused(gk):
    alice = phone(1, "alice")
    endpoint_id = gk.register(alice)
    before = gk.registry.get(endpoint_id).last_seen
    mallory = phone(66, "mallory")
    mallory.endpoint_id = endpoint_id
    gk.clock.advance(5)
    pdu = gk.ask(mallory, mallory.rrq(keepalive=True, lightweight=True))
    assert pdu.kind == "registrationReject"
    assert pdu.reason == "securityDenial"
    assert gk.registry.get(endpoint_id).last_seen == before
    assert gk.controller.stats["spoofed"] == 1


def test_alias_owned_by_another_endpoint_is_rejected_duplicate_alias_naming_it(gk):
    gk.register(phone(1, "alice"))
    bob = phone(2, "bob", "alice")
    pdu = gk.ask(bob, bob.rrq())
    assert pdu.kind == "registrationReject"
    assert pdu.raw["rejectReason"] == ("duplicateAlias", [("h323-ID", "alice")])
    assert gk.registry.find_alias("bob") is None
    assert len(gk.registry) == 1
    [event] = gk.of(ev.RegistrationRejected)
    assert (event.source, event.reason) == (bob.ras_address, "duplicateAlias")


def _rrq_with(endpoint: FakeEndpoint, **fields) -> bytes:
    kind, value = endpoint.rrq_message()
    value.update(fields)
    return encode((kind, value))


@pytest.mark.parametrize("addresses", [
    [],
    [("0.0.0.0", 1720)],
    [("10.0.0.1", 0)],
    [("224.0.1.41", 1720)],
], ids=["none", "unspecified-ip", "port-0", "multicast"])
def test_rrq_without_a_usable_signalling_address_is_rejected(gk, addresses):
    alice = phone(1, "alice")
    data = _rrq_with(alice, callSignalAddress=[ras.transport_to_asn(a) for a in addresses])
    pdu = gk.ask(alice, data)
    assert pdu.kind == "registrationReject"
    assert pdu.reason == "invalidCallSignalAddress"
    assert len(gk.registry) == 0
    assert gk.of(ev.RegistrationRejected)[0].reason == "invalidCallSignalAddress"


@pytest.mark.parametrize("addresses", [
    [], [("0.0.0.0", 1719)], [("10.0.0.1", 0)],
], ids=["none", "unspecified-ip", "port-0"])
def test_rrq_without_a_usable_ras_address_is_rejected(gk, addresses):
    alice = phone(1, "alice")
    data = _rrq_with(alice, rasAddress=[ras.transport_to_asn(a) for a in addresses])
    pdu = gk.ask(alice, data)
    assert pdu.kind == "registrationReject"
    assert pdu.reason == "invalidRASAddress"
    assert len(gk.registry) == 0


def test_rrq_without_discovery_is_rejected_when_discovery_is_required():
    gk = Gatekeeper(require_discovery=True)
    alice = phone(1, "alice")
    pdu = gk.ask(alice, alice.rrq())
    assert pdu.kind == "registrationReject"
    assert pdu.reason == "discoveryRequired"
    assert len(gk.registry) == 0


def test_rrq_after_a_grq_is_accepted_when_discovery_is_required():
    gk = Gatekeeper(require_discovery=True)
    alice = phone(1, "alice")
    assert gk.ask(alice, alice.grq()).kind == "gatekeeperConfirm"
    assert gk.ask(alice, alice.rrq()).kind == "registrationConfirm"
    # A re-registration needs no new discovery, even much later.
    gk.clock.advance(3600)
    assert gk.ask(alice, alice.rrq()).kind == "registrationConfirm"


def test_discovery_is_forgotten_after_discovery_memory():
    gk = Gatekeeper(require_discovery=True, discovery_memory=600)
    alice = phone(1, "alice")
    gk.ask(alice, alice.grq())
    gk.clock.advance(601)
    assert gk.ask(alice, alice.rrq()).reason == "discoveryRequired"


def test_rrq_saying_discovery_is_incomplete_is_rejected_when_discovery_is_required():
    gk = Gatekeeper(require_discovery=True)
    alice = phone(1, "alice")
    gk.ask(alice, alice.grq())
    assert gk.ask(alice, alice.rrq(discovery_complete=False)).reason == "discoveryRequired"


def test_time_to_live_is_off_unless_configured(gk):
    alice = phone(1, "alice", time_to_live=120)
    pdu = gk.ask(alice, alice.rrq())
    assert "timeToLive" not in pdu.raw
    assert gk.registry.get(alice.endpoint_id).time_to_live is None
    # ... and such a registration is never polled nor dropped.
    assert gk.step(2000) == []
    assert alice.endpoint_id in gk.registry


@pytest.mark.parametrize("requested, granted", [
    (None, 300), (120, 120), (30, 60), (59, 60), (900, 300), (300, 300),
])
def test_time_to_live_granted_is_the_smaller_of_configured_and_requested_never_below_60(
        requested, granted):
    gk = Gatekeeper(time_to_live=300)
    alice = phone(1, "alice", time_to_live=requested)
    pdu = gk.ask(alice, alice.rrq())
    assert pdu.raw["timeToLive"] == granted
    assert gk.registry.get(alice.endpoint_id).time_to_live == granted


def test_additive_registration_adds_aliases_to_the_existing_ones(gk):
    alice = phone(1, "alice", "1001")
    endpoint_id = gk.register(alice)
    extra = phone(1, "alice-mobile")
    extra._seq = 10
    pdu = gk.ask(extra, _rrq_with(extra, additiveRegistration=None))
    assert pdu.kind == "registrationConfirm"
    assert pdu.raw["endpointIdentifier"] == endpoint_id
    assert ras.aliases_from_asn(pdu.raw["terminalAlias"]) == (
        h323_id("alice"), dialled_digits("1001"), h323_id("alice-mobile"))
    for alias in ("alice", "1001", "alice-mobile"):
        assert gk.registry.find_alias(alias).endpoint_id == endpoint_id


# ---------------------------------------------------------------------------
# URQ from the endpoint
# ---------------------------------------------------------------------------


def test_urq_from_the_endpoint_is_confirmed_and_removes_it(gk):
    alice = phone(1, "alice")
    endpoint_id = gk.register(alice)
    pdu = gk.ask(alice, alice.urq())
    assert pdu.kind == "unregistrationConfirm"
    assert len(gk.registry) == 0
    assert gk.registry.find_alias("alice") is None
    assert gk.of(ev.EndpointUnregistered) == [ev.EndpointUnregistered(
        alice.ras_address, endpoint_id, (h323_id("alice"),), "endpoint request",
        ("10.0.0.1", 1720), "terminal")]


def test_urq_naming_only_the_signalling_address_is_confirmed(gk):
    gk.register(phone(1, "alice"))
    forgetful = phone(1, "alice")  # knows no identifier
    assert gk.ask(forgetful, forgetful.urq()).kind == "unregistrationConfirm"
    assert len(gk.registry) == 0


def test_urq_from_an_unknown_endpoint_is_rejected_not_currently_registered(gk):
    ghost = phone(9, "ghost")
    ghost.endpoint_id = "42_endp"
    pdu = gk.ask(ghost, ghost.urq())
    assert pdu.kind == "unregistrationReject"
    assert pdu.reason == "notCurrentlyRegistered"
    assert gk.of(ev.UnregistrationRejected)[0].reason == "notCurrentlyRegistered"


def test_urq_with_another_endpoints_identifier_is_denied_and_the_victim_stays(gk):
    alice = phone(1, "alice")
    victim = gk.register(alice)
    mallory = phone(66, "mallory")
    mallory.endpoint_id = victim
    pdu = gk.ask(mallory, mallory.urq())
    assert pdu.kind == "unregistrationReject"
    assert pdu.reason == "permissionDenied"
    assert victim in gk.registry
    assert gk.of(ev.EndpointUnregistered) == []
    assert gk.of(ev.UnregistrationRejected)[0].reason == "permissionDenied"


def test_urq_naming_another_endpoints_signalling_address_is_denied(gk):
    victim = gk.register(phone(1, "alice"))
    mallory = FakeEndpoint(["alice"], ("10.0.0.1", 1720), ("10.0.0.66", 1719))
    assert gk.ask(mallory, mallory.urq()).reason == "permissionDenied"
    assert victim in gk.registry


# ---------------------------------------------------------------------------
# Time to live: IRQ polling, then URQ ttlExpired
# ---------------------------------------------------------------------------


def test_silent_endpoint_is_polled_with_irq_then_unregistered_ttl_expired():
    gk = Gatekeeper(time_to_live=60, irq_poll_count=1, irq_poll_interval=10,
                    request_retries=3, request_interval=2)
    alice = phone(1, "alice")
    endpoint_id = gk.register(alice)

    assert gk.step(60) == []
    irq = gk.step(1)
    assert [(ras.parse(d).kind, to) for d, to in irq] == [("infoRequest", alice.ras_address)]
    assert gk.of(ev.InfoRequested) == [ev.InfoRequested(alice.ras_address, endpoint_id)]
    assert endpoint_id in gk.registry

    written = gk.step(11)
    # The IRQ is retransmitted while unanswered, then the URQ goes out.
    assert kinds(written).count("infoRequest") == 2
    assert kinds(written)[-1] == "unregistrationRequest"
    urq = ras.parse(written[-1][0])
    assert written[-1][1] == alice.ras_address
    assert urq.reason == "ttlExpired"
    assert urq.endpoint_id == endpoint_id
    assert endpoint_id not in gk.registry
    assert gk.of(ev.UnregistrationRequested) == [
        ev.UnregistrationRequested(alice.ras_address, endpoint_id, "ttlExpired")]
    [gone] = gk.of(ev.EndpointUnregistered)
    assert (gone.endpoint_id, gone.reason) == (endpoint_id, "ttlExpired")


def test_unanswered_urq_is_retransmitted_then_given_up():
    gk = Gatekeeper(time_to_live=60, irq_poll_count=0, request_retries=3, request_interval=2)
    alice = phone(1, "alice")
    gk.register(alice)
    written = gk.step(80)
    assert kinds(written) == ["unregistrationRequest"] * 3
    assert len({d for d, _ in written}) == 1   # the very same request each time
    assert gk.controller.stats["unanswered unregistrationRequest"] == 1
    assert gk.step(60) == []


def test_urq_retransmission_stops_once_the_endpoint_answers():
    gk = Gatekeeper(time_to_live=60, irq_poll_count=0, request_retries=3, request_interval=2)
    alice = phone(1, "alice")
    gk.register(alice)
    [(urq, to)] = gk.step(62)
    assert ras.parse(urq).kind == "unregistrationRequest"
    assert gk.step(2) == [(urq, to)]    # not answered yet: sent again
    ucf = alice.answer(urq)
    assert gk.send(ucf, to) == []       # a UCF is not answered
    assert gk.step(30) == []
    assert gk.controller.stats["unexpected"] == 0
    assert gk.controller.stats["unanswered unregistrationRequest"] == 0


def test_each_irq_poll_is_counted_before_the_endpoint_is_dropped():
    gk = Gatekeeper(time_to_live=60, irq_poll_count=2, irq_poll_interval=10, request_retries=1)
    alice = phone(1, "alice")
    gk.register(alice)
    written = gk.step(61 + 11 + 11)
    assert kinds(written) == ["infoRequest", "infoRequest", "unregistrationRequest"]
    assert len(gk.of(ev.InfoRequested)) == 2


def test_irr_answering_the_irq_keeps_the_endpoint_registered():
    gk = Gatekeeper(time_to_live=60, irq_poll_count=1, irq_poll_interval=10,
                    request_retries=3, request_interval=2)
    alice = phone(1, "alice")
    endpoint_id = gk.register(alice)
    [(irq, to)] = gk.step(61)
    irr = alice.answer(irq)
    assert gk.send(irr, to) == []
    assert gk.of(ev.InfoResponseReceived) == [
        ev.InfoResponseReceived(alice.ras_address, endpoint_id, False)]
    # No IRQ retransmission, no URQ: the time to live started again.
    assert gk.step(60) == []
    assert endpoint_id in gk.registry
    assert gk.of(ev.UnregistrationRequested) == []
    assert kinds(gk.step(1)) == ["infoRequest"]


def test_keepalive_before_expiry_keeps_the_endpoint_registered():
    gk = Gatekeeper(time_to_live=60)
    alice = phone(1, "alice")
    endpoint_id = gk.register(alice)
    assert gk.step(50) == []
    assert gk.ask(alice, alice.rrq(keepalive=True, lightweight=True)).kind == "registrationConfirm"
    assert gk.step(60) == []          # 110 s after registering, 60 after the keepalive
    assert endpoint_id in gk.registry
    assert kinds(gk.step(1)) == ["infoRequest"]


def test_stop_cancels_every_timer():
    gk = Gatekeeper(time_to_live=60, irq_poll_count=0)
    gk.register(phone(1, "alice"))
    gk.step(62)   # a URQ is waiting for its answer
    assert gk.clock.getDelayedCalls()
    gk.controller.stop()
    assert gk.clock.getDelayedCalls() == []


# ---------------------------------------------------------------------------
# ARQ (direct mode)
# ---------------------------------------------------------------------------


def test_arq_to_a_registered_alias_is_confirmed_with_the_callees_signalling_address(gk):
    alice, bob = phone(1, "alice"), phone(2, "bob")
    gk.register(alice)
    gk.register(bob)
    pdu = gk.ask(alice, alice.arq(["bob"], bandwidth=640))
    assert pdu.kind == "admissionConfirm"
    assert ras.transport_from_asn(pdu.raw["destCallSignalAddress"]) == ("10.0.0.2", 1720)
    assert pdu.raw["callModel"] == ("direct", None)
    assert pdu.raw["bandWidth"] == 640
    [call_id] = alice.calls
    [call] = list(gk.calls)
    assert (call.call_id, call.caller_endpoint_id, call.callee_endpoint_id) == (
        call_id, alice.endpoint_id, bob.endpoint_id)
    [event] = gk.of(ev.AdmissionConfirmed)
    assert event == ev.AdmissionConfirmed(
        caller_signal_address=("10.0.0.1", 1720), endpoint_id=alice.endpoint_id,
        call_reference=alice.calls[call_id].crv, destination=(h323_id("bob"),),
        source=(h323_id("alice"),), answer_call=False, call_id=call_id, routed=False,
        call_number=call.number, dest_signal_address=("10.0.0.2", 1720), bandwidth=640)


def test_arq_to_dialled_digits_finds_the_endpoint_with_that_number(gk):
    alice, bob = phone(1, "alice"), phone(2, "2002", "bob")
    gk.register(alice)
    gk.register(bob)
    pdu = gk.ask(alice, alice.arq(["2002"]))
    assert ras.transport_from_asn(pdu.raw["destCallSignalAddress"]) == bob.signal_address


def test_arq_to_a_number_goes_to_the_gateway_with_the_longest_announced_prefix(gk):
    alice = phone(1, "alice")
    short = phone(20, "gw-short", endpoint_type="gateway", prefixes=("09",))
    long = phone(21, "gw-long", endpoint_type="gateway", prefixes=("0912",))
    for ep in (alice, short, long):
        gk.register(ep)
    pdu = gk.ask(alice, alice.arq(["0912555"]))
    assert ras.transport_from_asn(pdu.raw["destCallSignalAddress"]) == long.signal_address
    assert "gateway" in pdu.raw["destinationType"]
    pdu = gk.ask(alice, alice.arq(["0955555"]))
    assert ras.transport_from_asn(pdu.raw["destCallSignalAddress"]) == short.signal_address
    assert gk.ask(alice, alice.arq(["0855555"])).reason == "calledPartyNotRegistered"
    assert [e.dest_signal_address for e in gk.of(ev.AdmissionConfirmed)] == [
        long.signal_address, short.signal_address]


def test_arq_to_a_number_uses_configured_gateway_prefixes_and_the_longest_wins():
    gk = Gatekeeper(registry=Registry(configured_prefixes={"GW1": ("07",)}))
    alice = phone(1, "alice")
    configured = phone(20, "GW1", endpoint_type="gateway")
    announced = phone(21, "GW2", endpoint_type="gateway", prefixes=("0712",))
    for ep in (alice, configured, announced):
        gk.register(ep)
    pdu = gk.ask(alice, alice.arq(["0799"]))
    assert ras.transport_from_asn(pdu.raw["destCallSignalAddress"]) == configured.signal_address
    pdu = gk.ask(alice, alice.arq(["071234"]))
    assert ras.transport_from_asn(pdu.raw["destCallSignalAddress"]) == announced.signal_address


def test_arq_naming_a_destination_address_is_sent_there(gk):
    alice = phone(1, "alice")
    gk.register(alice)
    pdu = gk.ask(alice, alice.arq([], dest_signal_address=("192.0.2.50", 1720)))
    assert pdu.kind == "admissionConfirm"
    assert ras.transport_from_asn(pdu.raw["destCallSignalAddress"]) == ("192.0.2.50", 1720)
    [call] = list(gk.calls)
    assert call.callee_endpoint_id == ""
    assert gk.of(ev.AdmissionConfirmed)[0].dest_signal_address == ("192.0.2.50", 1720)


def test_callees_answer_call_arq_joins_the_existing_call(gk):
    alice, bob = phone(1, "alice"), phone(2, "bob")
    gk.register(alice)
    gk.register(bob)
    call_id = gk.call(alice, bob, answer=False)
    pdu = gk.ask(bob, bob.arq(answer_call=True, call_id=call_id))
    assert pdu.kind == "admissionConfirm"
    assert ras.transport_from_asn(pdu.raw["destCallSignalAddress"]) == bob.signal_address
    assert len(gk.calls) == 1
    [call] = list(gk.calls)
    assert call.endpoint_ids() == (alice.endpoint_id, bob.endpoint_id)
    assert call.answered and call.connected
    assert call.crv_for(bob.endpoint_id) == bob.calls[call_id].crv
    answer = gk.of(ev.AdmissionConfirmed)[-1]
    assert (answer.answer_call, answer.endpoint_id, answer.call_id, answer.call_number) == (
        True, bob.endpoint_id, call_id, call.number)
    assert gk.calls.counts(bob.endpoint_id).active == 1
    assert gk.calls.counts(alice.endpoint_id).active == 1


def test_answer_call_arq_for_a_call_from_outside_admits_the_called_side_alone(gk):
    bob = phone(2, "bob")
    gk.register(bob)
    call_id = ras.new_guid()
    assert gk.ask(bob, bob.arq(answer_call=True, call_id=call_id)).kind == "admissionConfirm"
    [call] = list(gk.calls)
    assert (call.caller_endpoint_id, call.callee_endpoint_id) == ("", bob.endpoint_id)


def test_answer_call_arq_from_a_third_endpoint_is_denied(gk):
    alice, bob, carol = phone(1, "alice"), phone(2, "bob"), phone(3, "carol")
    for ep in (alice, bob, carol):
        gk.register(ep)
    call_id = gk.call(alice, bob, answer=False)
    pdu = gk.ask(carol, carol.arq(answer_call=True, call_id=call_id))
    assert pdu.reason == "requestDenied"
    [call] = list(gk.calls)
    assert call.callee_endpoint_id == bob.endpoint_id


def test_arq_to_an_unknown_alias_is_rejected_called_party_not_registered(gk):
    alice = phone(1, "alice")
    gk.register(alice)
    pdu = gk.ask(alice, alice.arq(["nobody"]))
    assert pdu.kind == "admissionReject"
    assert pdu.reason == "calledPartyNotRegistered"
    assert len(gk.calls) == 0
    [event] = gk.of(ev.AdmissionRejected)
    call_id = list(alice.calls)[-1]
    assert event == ev.AdmissionRejected(
        ("10.0.0.1", 1720), (h323_id("nobody"),), (h323_id("alice"),), False,
        "calledPartyNotRegistered", call_id, alice.endpoint_id)


def test_arq_from_an_unregistered_endpoint_is_rejected_caller_not_registered(gk):
    gk.register(phone(2, "bob"))
    stranger = phone(1, "stranger")
    stranger.endpoint_id = "999_endp"
    assert gk.ask(stranger, stranger.arq(["bob"])).reason == "callerNotRegistered"
    assert len(gk.calls) == 0
    [event] = gk.of(ev.AdmissionRejected)
    assert (event.reason, event.endpoint_id) == ("callerNotRegistered", "999_endp")


def test_arq_with_another_endpoints_identifier_is_rejected_invalid_endpoint_identifier(gk):
    alice, bob = phone(1, "alice"), phone(2, "bob")
    gk.register(alice)
    gk.register(bob)
    mallory = phone(66, "mallory")
    mallory.endpoint_id = alice.endpoint_id
    pdu = gk.ask(mallory, mallory.arq(["bob"]))
    assert pdu.reason == "invalidEndpointIdentifier"
    assert len(gk.calls) == 0
    assert gk.calls.counts(alice.endpoint_id).total == 0
    assert gk.of(ev.AdmissionRejected)[0].reason == "invalidEndpointIdentifier"


def test_arq_without_any_destination_is_rejected_request_denied(gk):
    alice = phone(1, "alice")
    gk.register(alice)
    pdu = gk.ask(alice, alice.arq([]))
    assert pdu.reason == "requestDenied"
    assert len(gk.calls) == 0


def test_arq_beyond_the_total_bandwidth_is_rejected_until_a_call_ends():
    gk = Gatekeeper(total_bandwidth=3000)
    alice, bob = phone(1, "alice"), phone(2, "bob")
    gk.register(alice)
    gk.register(bob)
    first = gk.call(alice, bob, bandwidth=1280)
    gk.call(alice, bob, bandwidth=1280)
    pdu = gk.ask(alice, alice.arq(["bob"], bandwidth=1280))
    assert pdu.reason == "resourceUnavailable"
    assert gk.of(ev.AdmissionRejected)[-1].reason == "resourceUnavailable"
    assert len(gk.calls) == 2
    assert gk.ask(alice, alice.drq(first)).kind == "disengageConfirm"
    assert gk.controller.bandwidth.used == 1280
    assert gk.ask(alice, alice.arq(["bob"], bandwidth=1280)).kind == "admissionConfirm"


# ---------------------------------------------------------------------------
# DRQ
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("first", ["caller", "callee"])
def test_drq_ends_the_call_with_exactly_one_cdr_whichever_side_sends_first(first):
    gk = Gatekeeper(total_bandwidth=10_000)
    alice, bob = phone(1, "alice"), phone(2, "bob")
    gk.register(alice)
    gk.register(bob)
    admitted = gk.now()
    pdu = gk.ask(alice, alice.arq(["bob"]))
    assert pdu.kind == "admissionConfirm"
    call_id = list(alice.calls)[-1]
    gk.clock.advance(5)
    answered = gk.now()
    gk.ask(bob, bob.arq(answer_call=True, call_id=call_id))
    gk.clock.advance(42)

    one, other = (alice, bob) if first == "caller" else (bob, alice)
    assert gk.ask(one, one.drq(call_id)).kind == "disengageConfirm"
    assert len(gk.calls) == 0
    [cdr] = gk.of(ev.CallDetailRecord)
    assert (cdr.caller_endpoint_id, cdr.callee_endpoint_id) == (alice.endpoint_id,
                                                               bob.endpoint_id)
    assert (cdr.setup_time, cdr.connect_time, cdr.disconnect_time) == (
        admitted, answered, answered + 42)
    assert cdr.duration == 42
    assert cdr.call_id == call_id
    assert cdr.gatekeeper_name == "GK"
    assert cdr.release_reason == "normalDrop"
    assert (cdr.caller_ip, cdr.callee_ip) == ("10.0.0.1", "10.0.0.2")
    assert gk.of(ev.DisengageConfirmed)[0].endpoint_id == one.endpoint_id

    assert gk.ask(other, other.drq(call_id)).kind == "disengageConfirm"
    assert len(gk.of(ev.CallDetailRecord)) == 1
    assert len(gk.of(ev.DisengageConfirmed)) == 2
    assert gk.controller.bandwidth.used == 0
    for ep in (alice, bob):
        # GnuGk's C(active/connected/total): connected and total count every call so far
        assert gk.calls.counts(ep.endpoint_id) == (0, 1, 1)


def test_drq_of_an_unanswered_call_gives_a_cdr_with_no_duration(gk):
    alice, bob = phone(1, "alice"), phone(2, "bob")
    gk.register(alice)
    gk.register(bob)
    call_id = gk.call(alice, bob, answer=False)
    gk.clock.advance(30)
    gk.ask(alice, alice.drq(call_id))
    [cdr] = gk.of(ev.CallDetailRecord)
    assert cdr.connect_time is None
    assert cdr.duration == 0


def test_drq_from_an_unregistered_endpoint_is_rejected_not_registered(gk):
    alice, bob = phone(1, "alice"), phone(2, "bob")
    gk.register(alice)
    gk.register(bob)
    call_id = gk.call(alice, bob)
    stranger = phone(9, "stranger")
    stranger.endpoint_id = "999_endp"
    stranger.calls = dict(alice.calls)
    pdu = gk.ask(stranger, stranger.drq(call_id))
    assert pdu.kind == "disengageReject"
    assert pdu.reason == "notRegistered"
    assert len(gk.calls) == 1
    assert gk.of(ev.DisengageRejected)[0].reason == "notRegistered"


def test_drq_with_another_endpoints_identifier_is_rejected_and_the_call_survives(gk):
    alice, bob = phone(1, "alice"), phone(2, "bob")
    gk.register(alice)
    gk.register(bob)
    call_id = gk.call(alice, bob)
    mallory = phone(66, "mallory")
    mallory.endpoint_id = alice.endpoint_id
    mallory.calls = dict(alice.calls)
    pdu = gk.ask(mallory, mallory.drq(call_id))
    assert pdu.kind == "disengageReject"
    assert pdu.reason == "requestToDropOther"
    assert len(gk.calls) == 1
    assert gk.of(ev.CallDetailRecord) == []


def test_drq_from_a_registered_endpoint_not_in_the_call_is_rejected_and_the_call_survives(gk):
    alice, bob, mallory = phone(1, "alice"), phone(2, "bob"), phone(66, "mallory")
    for ep in (alice, bob, mallory):
        gk.register(ep)
    call_id = gk.call(alice, bob)
    mallory.calls = dict(alice.calls)   # it learnt the call identifier
    pdu = gk.ask(mallory, mallory.drq(call_id))
    assert pdu.kind == "disengageReject"
    assert pdu.reason == "requestToDropOther"
    assert len(gk.calls) == 1
    assert gk.of(ev.CallDetailRecord) == []


def test_drq_for_an_unknown_call_is_confirmed_without_a_cdr(gk):
    alice = phone(1, "alice")
    gk.register(alice)
    alice.arq(["nobody"])   # a call the gatekeeper never admitted
    call_id = list(alice.calls)[-1]
    assert gk.ask(alice, alice.drq(call_id)).kind == "disengageConfirm"
    assert gk.of(ev.CallDetailRecord) == []


# ---------------------------------------------------------------------------
# BRQ, LRQ, IRR, RAI, unknown messages
# ---------------------------------------------------------------------------


def test_brq_within_the_pool_is_confirmed_and_beyond_it_rejected_with_what_is_allowed():
    gk = Gatekeeper(total_bandwidth=3000)
    alice, bob = phone(1, "alice"), phone(2, "bob")
    gk.register(alice)
    gk.register(bob)
    call_id = gk.call(alice, bob, bandwidth=1000)
    pdu = gk.ask(alice, alice.brq(call_id, 2000))
    assert pdu.kind == "bandwidthConfirm"
    assert pdu.raw["bandWidth"] == 2000
    assert gk.controller.bandwidth.used == 2000
    assert gk.of(ev.BandwidthConfirmed) == [
        ev.BandwidthConfirmed(alice.ras_address, alice.endpoint_id, 2000)]

    pdu = gk.ask(alice, alice.brq(call_id, 4000))
    assert pdu.kind == "bandwidthReject"
    assert pdu.reason == "insufficientResources"
    assert pdu.raw["allowedBandWidth"] == 3000
    assert gk.controller.bandwidth.used == 2000
    assert gk.of(ev.BandwidthRejected)[0].reason == "insufficientResources"


def test_brq_from_an_unregistered_endpoint_or_for_an_unknown_call_is_rejected(gk):
    alice = phone(1, "alice")
    alice.endpoint_id = "999_endp"
    alice.arq(["x"])
    call_id = list(alice.calls)[-1]
    assert gk.ask(alice, alice.brq(call_id, 100)).reason == "notBound"
    gk.register(alice)
    assert gk.ask(alice, alice.brq(call_id, 100)).reason == "invalidConferenceID"


def test_brq_from_a_registered_endpoint_not_in_the_call_is_rejected(gk):
    alice, bob, mallory = phone(1, "alice"), phone(2, "bob"), phone(66, "mallory")
    for ep in (alice, bob, mallory):
        gk.register(ep)
    call_id = gk.call(alice, bob, bandwidth=1000)
    mallory.calls = dict(alice.calls)
    pdu = gk.ask(mallory, mallory.brq(call_id, 100))
    assert pdu.kind == "bandwidthReject"
    assert pdu.reason == "invalidPermission"
    assert list(gk.calls)[0].bandwidth == 1000


@pytest.fixture
def open_gk() -> Gatekeeper:
    """A gatekeeper answering LRQs from anyone ([RasSrv::LRQFeatures] AcceptNonNeighborLRQ=1)."""
    return Gatekeeper(policy=RasPolicy(accept_non_neighbor_lrq=True))


def test_lrq_for_a_registered_alias_is_confirmed_to_the_reply_address(open_gk):
    gk = open_gk
    bob = phone(2, "bob")
    gk.register(bob)
    neighbour = FakeEndpoint([], ras_address=("198.51.100.9", 1719))
    written = gk.send(neighbour.lrq(["bob"]), ("198.51.100.9", 40001))
    assert len(written) == 1
    data, destination = written[0]
    assert destination == ("198.51.100.9", 1719)
    pdu = ras.parse(data)
    assert pdu.kind == "locationConfirm"
    assert ras.transport_from_asn(pdu.raw["callSignalAddress"]) == bob.signal_address
    assert ras.transport_from_asn(pdu.raw["rasAddress"]) == bob.ras_address
    [event] = gk.of(ev.LocationConfirmed)
    assert (event.endpoint_id, event.signal_address) == (bob.endpoint_id, bob.signal_address)


def test_lrq_for_a_number_behind_a_gateway_prefix_is_confirmed(open_gk):
    gk = open_gk
    gateway = phone(20, "gw", endpoint_type="gateway", prefixes=("09",))
    gk.register(gateway)
    neighbour = FakeEndpoint([], ras_address=("198.51.100.9", 1719))
    pdu = gk.ask(neighbour, neighbour.lrq(["0912345"]))
    assert pdu.kind == "locationConfirm"
    assert ras.transport_from_asn(pdu.raw["callSignalAddress"]) == gateway.signal_address


def test_lrq_for_an_unknown_alias_is_rejected(open_gk):
    gk = open_gk
    neighbour = FakeEndpoint([], ras_address=("198.51.100.9", 1719))
    pdu = gk.ask(neighbour, neighbour.lrq(["nobody"]))
    assert pdu.kind == "locationReject"
    assert pdu.reason == "notRegistered"
    assert gk.of(ev.LocationRejected)[0].destination == (h323_id("nobody"),)


def test_unsolicited_irr_refreshes_the_registration_without_an_answer():
    gk = Gatekeeper(time_to_live=60)
    alice = phone(1, "alice")
    endpoint_id = gk.register(alice)
    gk.step(50)
    assert gk.send(alice.irr(), alice.ras_address) == []
    assert gk.of(ev.InfoResponseReceived) == [
        ev.InfoResponseReceived(alice.ras_address, endpoint_id, True)]
    assert gk.step(60) == []
    assert kinds(gk.step(1)) == ["infoRequest"]


def test_irr_asking_for_a_response_is_acknowledged(gk):
    alice = phone(1, "alice")
    gk.register(alice)
    pdu = gk.ask(alice, alice.irr(need_response=True))
    assert pdu.kind == "infoRequestAck"


def test_irr_from_an_unknown_endpoint_is_nakked_when_it_asks_for_a_response(gk):
    ghost = phone(9, "ghost")
    ghost.endpoint_id = "1_endp"
    pdu = gk.ask(ghost, ghost.irr(need_response=True))
    assert pdu.kind == "infoRequestNak"
    assert pdu.raw["nakReason"] == ("notRegistered", None)
    assert gk.send(ghost.irr(), ghost.ras_address) == []
    assert gk.of(ev.InfoResponseReceived) == []


def test_irr_with_another_endpoints_identifier_does_not_refresh_it():
    gk = Gatekeeper(time_to_live=60)
    alice = phone(1, "alice")
    endpoint_id = gk.register(alice)
    mallory = phone(66, "mallory")
    mallory.endpoint_id = endpoint_id
    gk.step(50)
    gk.send(mallory.irr(), mallory.ras_address)
    assert gk.of(ev.InfoResponseReceived) == []
    assert kinds(gk.step(11)) == ["infoRequest"]


def test_rai_is_confirmed_and_recorded(gk):
    alice = phone(1, "alice")
    endpoint_id = gk.register(alice)
    pdu = gk.ask(alice, alice.rai(almost_out_of_resources=True))
    assert pdu.kind == "resourcesAvailableConfirm"
    assert gk.registry.get(endpoint_id).almost_out_of_resources
    assert gk.of(ev.ResourcesAvailable) == [
        ev.ResourcesAvailable(alice.ras_address, endpoint_id, True)]


NON_STANDARD = encode(("nonStandardMessage", {
    "requestSeqNum": 77,
    "nonStandardData": {"nonStandardIdentifier": ("h221NonStandard", {
        "t35CountryCode": 181, "t35Extension": 0, "manufacturerCode": 18}), "data": b"hello"},
}))
UNKNOWN_EXTENSION = bytes.fromhex("9403aabbcc")


@pytest.mark.parametrize("data", [NON_STANDARD, UNKNOWN_EXTENSION],
                         ids=["nonStandardMessage", "unknown-extension"])
def test_message_we_do_not_understand_gets_unknown_message_response(gk, data):
    source = ("10.0.0.1", 1719)
    written = gk.send(data, source)
    assert [to for _, to in written] == [source]
    pdu = ras.parse(written[0][0])
    assert pdu.kind == "unknownMessageResponse"
    assert pdu.raw["messageNotUnderstood"] == data
    assert gk.controller.stats["unknown"] == 1


def test_nonstandard_message_response_keeps_its_sequence_number(gk):
    [(data, _)] = gk.send(NON_STANDARD, ("10.0.0.1", 1719))
    assert ras.parse(data).seq == 77


# ---------------------------------------------------------------------------
# Retransmitted requests
# ---------------------------------------------------------------------------


def test_retransmitted_rrq_gets_the_identical_reply_and_is_handled_once(gk):
    alice = phone(1, "alice")
    rrq = alice.rrq()
    first = gk.send(rrq, alice.ras_address)
    second = gk.send(rrq, alice.ras_address)
    assert first == second and len(first) == 1
    assert len(gk.registry) == 1
    assert len(gk.of(ev.EndpointRegistered)) == 1
    assert gk.protocol.stats["retransmissions"] == 1


def test_retransmitted_arq_admits_one_call(gk):
    alice, bob = phone(1, "alice"), phone(2, "bob")
    gk.register(alice)
    gk.register(bob)
    arq = alice.arq(["bob"])
    first = gk.send(arq, alice.ras_address)
    second = gk.send(arq, alice.ras_address)
    assert first == second
    assert ras.parse(first[0][0]).kind == "admissionConfirm"
    assert len(gk.calls) == 1
    assert len(gk.of(ev.AdmissionConfirmed)) == 1
    assert gk.controller.bandwidth.used == 1280


def test_request_with_the_same_sequence_number_after_the_window_is_handled_again(gk):
    alice = phone(1, "alice")
    rrq = alice.rrq()
    gk.send(rrq, alice.ras_address)
    gk.clock.advance(gk.protocol.retransmit_window + 1)
    written = gk.send(rrq, alice.ras_address)
    assert ras.parse(written[0][0]).kind == "registrationConfirm"
    assert [e.new for e in gk.of(ev.EndpointRegistered)] == [True, False]
    assert gk.protocol.stats["retransmissions"] == 0


def test_same_sequence_number_from_another_source_is_not_a_retransmission(gk):
    alice, bob = phone(1, "alice"), phone(2, "bob")
    assert ras.parse(alice.rrq()).seq == ras.parse(bob.rrq()).seq
    alice._seq = bob._seq = 0
    gk.register(alice)
    gk.register(bob)
    assert len(gk.registry) == 2


def test_other_request_under_a_used_sequence_number_is_not_a_retransmission(gk):
    # A restarted endpoint on the same port numbers its requests from 1 again
    # (ooh323c does): its ARQ for another number must not get the old ACF.
    alice, bob = phone(1, "alice"), phone(2, "bob")
    gk.register(alice)
    gk.register(bob)
    alice._seq = 5
    assert gk.ask(alice, alice.arq(["bob"])).kind == "admissionConfirm"
    alice._seq = 5
    pdu = gk.ask(alice, alice.arq(["9999"]))
    assert pdu.kind == "admissionReject"
    assert pdu.raw["rejectReason"] == ("calledPartyNotRegistered", None)
    assert gk.protocol.stats["retransmissions"] == 0


def test_rrq_repeated_after_a_urq_registers_again_instead_of_getting_the_old_rcf(gk):
    # An endpoint that unregisters and restarts within the window sends the
    # very same GRQ/RRQ bytes: the old RCF names an endpoint id that is gone.
    alice = phone(1, "alice")
    rrq = alice.rrq()
    first = gk.send(rrq, alice.ras_address)
    old_id = ras.parse(first[0][0]).raw["endpointIdentifier"]
    alice.endpoint_id = old_id
    assert gk.ask(alice, alice.urq()).kind == "unregistrationConfirm"
    [(again, _)] = gk.send(rrq, alice.ras_address)
    pdu = ras.parse(again)
    assert pdu.kind == "registrationConfirm"
    assert pdu.raw["endpointIdentifier"] != old_id
    assert gk.registry.get(pdu.raw["endpointIdentifier"]) is not None
    assert len(gk.of(ev.EndpointRegistered)) == 2
    # the URQ's own answer is still kept for its retransmissions
    alice._seq -= 1
    alice.endpoint_id = old_id
    assert gk.ask(alice, alice.urq()).kind == "unregistrationConfirm"
    assert gk.protocol.stats["retransmissions"] == 1


def test_arq_repeated_after_the_window_does_not_admit_the_call_twice():
    gk = Gatekeeper(total_bandwidth=3000)
    alice, bob = phone(1, "alice"), phone(2, "bob")
    gk.register(alice)
    gk.register(bob)
    arq = alice.arq(["bob"])
    call_id = list(alice.calls)[-1]
    gk.send(arq, alice.ras_address)
    gk.clock.advance(gk.protocol.retransmit_window + 1)
    [(again, _)] = gk.send(arq, alice.ras_address)
    pdu = ras.parse(again)
    assert pdu.kind == "admissionConfirm"
    assert ras.transport_from_asn(pdu.raw["destCallSignalAddress"]) == bob.signal_address
    assert len(gk.calls) == 1
    assert gk.controller.bandwidth.used == 1280
    assert gk.calls.counts(alice.endpoint_id).active == 1
    gk.ask(alice, alice.drq(call_id))
    assert len(gk.calls) == 0
    assert gk.controller.bandwidth.used == 0
    assert gk.calls.counts(alice.endpoint_id).active == 0


# ---------------------------------------------------------------------------
# Requests the gatekeeper sends
# ---------------------------------------------------------------------------


def test_forced_unregistration_sends_urq_and_publishes(gk):
    alice = phone(1, "alice")
    endpoint_id = gk.register(alice)
    gk.controller.unregister(gk.registry.get(endpoint_id))
    [(data, to)] = gk.transport.take()
    urq = ras.parse(data)
    assert (urq.kind, to, urq.endpoint_id, urq.reason) == (
        "unregistrationRequest", alice.ras_address, endpoint_id, "maintenance")
    assert endpoint_id not in gk.registry
    assert gk.of(ev.UnregistrationRequested) == [
        ev.UnregistrationRequested(alice.ras_address, endpoint_id, "maintenance")]
    [gone] = gk.of(ev.EndpointUnregistered)
    assert (gone.endpoint_id, gone.reason) == (endpoint_id, "forced")
    assert gk.send(alice.answer(data), alice.ras_address) == []
    assert gk.step(20) == []


def test_forced_unregistration_of_a_permanent_endpoint_sends_nothing(gk):
    gk.registry.add(Endpoint("perm_endp", (h323_id("pbx"),), (("10.0.0.5", 1720),),
                             ("10.0.0.5", 1719), permanent=True))
    gk.controller.unregister(gk.registry.get("perm_endp"))
    assert gk.transport.take() == []
    assert "perm_endp" not in gk.registry


def test_gatekeeper_disconnect_sends_drq_to_both_sides_and_publishes_one_cdr(gk):
    alice, bob = phone(1, "alice"), phone(2, "bob")
    gk.register(alice)
    gk.register(bob)
    call_id = gk.call(alice, bob)
    [call] = list(gk.calls)
    record = gk.controller.disconnect(call)
    written = gk.transport.take()
    assert sorted(to for _, to in written) == [alice.ras_address, bob.ras_address]
    drqs = {to: ras.parse(data) for data, to in written}
    for ep in (alice, bob):
        drq = drqs[ep.ras_address]
        assert drq.kind == "disengageRequest"
        assert drq.reason == "forcedDrop"
        assert drq.call_id == call_id
        assert drq.endpoint_id == ep.endpoint_id
        assert drq.call_reference == ep.calls[call_id].crv
        assert drq.answered_call == (ep is bob)
    assert len(gk.calls) == 0
    assert gk.of(ev.CallDetailRecord) == [record]
    assert record.release_reason == "forcedDrop"
    assert sorted(e.endpoint_id for e in gk.of(ev.DisengageRequested)) == sorted(
        [alice.endpoint_id, bob.endpoint_id])
    # Both answer; nothing is retransmitted, nothing else is published.
    for data, to in written:
        ep = alice if to == alice.ras_address else bob
        assert gk.send(ep.answer(data), to) == []
    assert gk.step(20) == []
    assert len(gk.of(ev.CallDetailRecord)) == 1
    assert gk.controller.stats["unexpected"] == 0


def test_unanswered_drq_is_retransmitted():
    gk = Gatekeeper(request_retries=3, request_interval=2)
    alice, bob = phone(1, "alice"), phone(2, "bob")
    gk.register(alice)
    gk.register(bob)
    gk.call(alice, bob)
    gk.controller.disconnect(list(gk.calls)[0])
    assert len(gk.transport.take()) == 2
    assert kinds(gk.step(10)) == ["disengageRequest"] * 4


# ---------------------------------------------------------------------------
# Permanent endpoints
# ---------------------------------------------------------------------------


def test_permanent_endpoint_never_expires_and_is_routable():
    gk = Gatekeeper(time_to_live=60, irq_poll_count=1)
    gk.registry.add(Endpoint("pbx_endp", (h323_id("pbx"), dialled_digits("500")),
                             (("10.0.0.5", 1720),), ("10.0.0.5", 1719), time_to_live=60,
                             permanent=True, last_seen=gk.now()))
    assert gk.step(500) == []
    assert "pbx_endp" in gk.registry
    alice = phone(1, "alice")
    gk.register(alice)
    pdu = gk.ask(alice, alice.arq(["500"]))
    assert pdu.kind == "admissionConfirm"
    assert ras.transport_from_asn(pdu.raw["destCallSignalAddress"]) == ("10.0.0.5", 1720)
    assert list(gk.calls)[0].callee_endpoint_id == "pbx_endp"


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


def test_malformed_datagram_is_counted_logged_and_not_answered(gk, logged):
    written = gk.send(b"\xff" * 10, ("10.0.0.1", 1719))
    assert written == []
    assert gk.protocol.stats["malformed"] == 1
    [warning] = from_module(logged, "gatekeeper.ras.protocol")
    assert warning["log_level"] == LogLevel.warn
    assert warning["source"] == "10.0.0.1:1719"


def test_truncated_datagrams_are_counted_and_not_answered(gk):
    rrq = phone(1, "alice").rrq()
    for size in range(0, len(rrq)):
        assert gk.send(rrq[:size], ("10.0.0.1", 1719)) == []
    assert gk.protocol.stats["malformed"] == len(rrq)
    assert len(gk.registry) == 0


def test_oversized_datagram_is_dropped_undecoded(gk, monkeypatch):
    decoded = []
    monkeypatch.setattr(ras, "parse", lambda data: decoded.append(data))
    assert gk.send(b"\x00" * (MAX_DATAGRAM + 1), ("10.0.0.1", 1719)) == []
    assert gk.protocol.stats["malformed"] == 1
    assert decoded == []


def test_a_thousand_garbage_datagrams_produce_only_a_few_log_events(gk, logged):
    rng = random.Random(5)
    source = ("10.0.0.1", 1719)
    for n in range(1000):
        kind = n % 3
        if kind == 0:
            data = b"\xff" + bytes(rng.randrange(256) for _ in range(20))
        elif kind == 1:
            data = phone(1).rrq()[:rng.randrange(1, 20)]
        else:
            data = b"\x01" * (MAX_DATAGRAM + 1)
        assert gk.send(data, source) == []
    assert gk.protocol.stats["malformed"] == 1000
    assert len(logged) <= 4
    # After the window a summary says how many were not logged.
    gk.clock.advance(11)
    gk.send(b"\xff" * 4, source)
    assert "more like it" in logged[-1]["log_format"]
    assert logged[-1]["skipped"] > 0
    # ... and the next valid request from the same address is served.
    alice = phone(1, "alice")
    assert gk.ask(alice, alice.rrq()).kind == "registrationConfirm"


def test_random_datagrams_never_escape_and_are_logged_at_a_bounded_rate(gk, logged):
    rng = random.Random(11)
    source = ("10.0.0.1", 1719)
    for _ in range(2000):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80)))
        gk.protocol.datagramReceived(data, source)
    assert gk.protocol.stats["received"] == 2000
    assert gk.protocol.stats["errors"] == 0
    assert len(logged) <= 10
    gk.transport.take()   # the UnknownMessageResponses to what decoded as unknown kinds
    alice = phone(1, "alice")
    assert gk.ask(alice, alice.rrq()).kind == "registrationConfirm"


def test_confirm_sent_to_the_gatekeeper_is_counted_unexpected_and_not_answered(gk):
    source = ("10.0.0.1", 1719)
    rcf = encode(ras.rcf(5, [("10.0.0.1", 1720)], "1_endp", "GK"))
    assert gk.send(rcf, source) == []
    assert gk.controller.stats["unexpected"] == 1
    assert gk.events == []


def test_confirm_nobody_asked_for_is_counted_unexpected_and_not_answered(gk):
    assert gk.send(encode(ras.ucf(321)), ("10.0.0.1", 1719)) == []
    assert gk.controller.stats["unexpected"] == 1


def test_answer_of_the_wrong_kind_does_not_stop_a_retransmission():
    gk = Gatekeeper(time_to_live=60, irq_poll_count=0, request_retries=3)
    alice = phone(1, "alice")
    gk.register(alice)
    [(urq, to)] = gk.step(62)
    seq = ras.parse(urq).seq
    assert gk.send(encode(ras.dcf(seq)), to) == []
    assert gk.controller.stats["unexpected"] == 1
    assert kinds(gk.step(2)) == ["unregistrationRequest"]


def test_unknown_message_response_is_never_answered(gk):
    """Answering one would ping-pong forever between two gatekeepers."""
    response = encode(ras.unknown_message_response(9, b"\x00\x01"))
    assert gk.send(response, ("10.0.0.1", 1719)) == []
    assert gk.controller.stats["unexpected"] == 1


def test_unexpected_messages_are_logged_at_a_bounded_rate(gk, logged):
    for seq in range(1, 1001):
        gk.send(encode(ras.ucf(seq)), ("10.0.0.1", 1719))
    assert gk.controller.stats["unexpected"] == 1000
    assert len(from_module(logged, "gatekeeper.ras")) <= 2


def test_unknown_extension_kinds_share_one_counter(gk):
    for n in range(30):
        # RasMessage extension alternative 8 + n (we know 0..7), one octet of content.
        data = bytes([0x80 | (8 + n), 0x01, 0x00])
        gk.protocol.received(data, ("10.0.0.1", 1719))
    assert gk.controller.stats["?extension"] == 30
    assert [k for k in gk.controller.stats if k.startswith("?extension-")] == []


def test_handler_failure_is_logged_and_answered_with_a_generic_reject(gk, logged):
    alice, bob = phone(1, "alice"), phone(2, "bob")
    gk.register(alice)
    gk.register(bob)

    def broken(request):
        raise RuntimeError("routing policy exploded")

    gk.controller.router.route = broken
    pdu = gk.ask(alice, alice.arq(["bob"]))
    assert pdu.kind == "admissionReject"
    assert pdu.reason == "undefinedReason"
    assert gk.protocol.stats["errors"] == 1
    [failure] = [e for e in logged if "log_failure" in e]
    assert failure["log_failure"].check(RuntimeError)
    assert failure["kind"] == "admissionRequest"


@pytest.mark.parametrize("handler, make, kind, reason", [
    ("on_grq", lambda ep: ep.grq(), "gatekeeperReject", "undefinedReason"),
    ("on_rrq", lambda ep: ep.rrq(), "registrationReject", "undefinedReason"),
    ("on_urq", lambda ep: ep.urq(), "unregistrationReject", "undefinedReason"),
    ("on_lrq", lambda ep: ep.lrq(["x"]), "locationReject", "undefinedReason"),
])
def test_every_request_kind_gets_its_generic_reject_when_its_handler_raises(
        monkeypatch, logged, handler, make, kind, reason):
    def broken(self, *args):
        raise RuntimeError("boom")

    monkeypatch.setattr(RasController, handler, broken)
    gk = Gatekeeper()
    alice = phone(1, "alice")
    pdu = gk.ask(alice, make(alice))
    assert (pdu.kind, pdu.reason) == (kind, reason)
    assert len([e for e in logged if "log_failure" in e]) == 1


def test_failure_with_no_generic_reject_sends_nothing_and_escapes_nothing(monkeypatch, logged):
    def broken(self, *args):
        raise RuntimeError("boom")

    monkeypatch.setattr(RasController, "on_irr", broken)
    gk = Gatekeeper()
    alice = phone(1, "alice")
    gk.register(alice)
    assert gk.send(alice.irr(), alice.ras_address) == []
    assert gk.protocol.stats["errors"] == 1
    assert len([e for e in logged if "log_failure" in e]) == 1


def test_unexpected_error_outside_the_handler_never_escapes_datagram_received(gk, logged,
                                                                           monkeypatch):
    def broken(data):
        raise RuntimeError("codec bug")

    monkeypatch.setattr(ras, "parse", broken)
    gk.protocol.datagramReceived(b"\x00", ("10.0.0.1", 1719))
    assert gk.protocol.stats["errors"] == 1
    assert [e["log_failure"].check(RuntimeError) for e in logged if "log_failure" in e] == [
        RuntimeError]


def test_send_failure_is_counted_and_does_not_escape(gk, logged):
    def refuse(data, address):
        raise OSError("network unreachable")

    gk.transport.write = refuse
    alice = phone(1, "alice")
    gk.protocol.datagramReceived(alice.rrq(), alice.ras_address)
    assert gk.protocol.stats["send errors"] == 1
    assert len(gk.registry) == 1


# --- registrations are not taken over, calls do not outlive their parties -------------------

def test_full_rrq_from_another_host_cannot_take_over_a_signalling_address(gk):
    alice = phone(1, "1001", "alice")
    alice_id = gk.register(alice)
    intruder = FakeEndpoint(["evil"], alice.signal_address, ("10.0.0.66", 1719))
    pdu = gk.ask(intruder, intruder.rrq())
    assert pdu.kind == "registrationReject"
    assert pdu.reason == "invalidCallSignalAddress"
    kept = gk.registry.get(alice_id)
    assert kept is not None and kept.ras_address == alice.ras_address
    assert gk.registry.find_alias("evil") is None


def test_an_endpoint_leaving_ends_its_calls_and_tells_the_other_side(gk):
    alice, bob = phone(1, "1001", "alice"), phone(2, "1002", "bob")
    gk.register(alice)
    bob_id = gk.register(bob)
    call_id = gk.call(alice, bob)
    assert len(gk.calls) == 1
    written = gk.send(alice.urq(), alice.ras_address)
    assert len(gk.calls) == 0
    records = gk.of(ev.CallDetailRecord)
    assert len(records) == 1 and records[0].call_id == call_id
    assert sorted(kinds(written)) == ["disengageRequest", "unregistrationConfirm"]
    sent = [w for w in written if ras.parse(w[0]).kind == "disengageRequest"]
    assert sent[0][1] == bob.ras_address
    assert ras.parse(sent[0][0]).endpoint_id == bob_id
    assert gk.controller.bandwidth.used == 0


def test_ttl_expiry_ends_the_silent_endpoints_calls():
    gk = Gatekeeper(time_to_live=60, irq_poll_count=0)
    alice, bob = phone(1, "1001", "alice"), phone(2, "1002", "bob")
    gk.register(alice)
    gk.register(bob)
    gk.call(alice, bob)
    for _ in range(55):          # bob keeps alive, alice goes quiet
        gk.clock.advance(1)
        if gk.clock.seconds() % 20 == 0:
            gk.ask(bob, bob.rrq(keepalive=True))
    gk.step(10)
    assert gk.registry.find_alias("alice") is None
    assert len(gk.calls) == 0
    assert len(gk.of(ev.CallDetailRecord)) == 1


def test_discovery_memory_forgets_old_grqs():
    gk = Gatekeeper(require_discovery=True, discovery_memory=60)
    for n in range(1, 50):
        endpoint = phone(n)
        gk.ask(endpoint, endpoint.grq())
    assert len(gk.controller.registration._discovered) == 49
    gk.clock.advance(61)
    late = phone(60)
    gk.ask(late, late.grq())
    assert list(gk.controller.registration._discovered) == ["10.0.0.60"]
