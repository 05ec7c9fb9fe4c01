"""The admission and registration core (gatekeeper.core.admission,
gatekeeper.core.registration) on their own: typed requests in, decisions and
events out, no RAS encoding anywhere.  Also the RAS layer's keepalive RCF
templates (gatekeeper.ras.keepalive) and the typed outgoing messages."""

from __future__ import annotations

from dataclasses import replace

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from gatekeeper import events as ev
from gatekeeper.core.admission import (
    Admission, AdmissionHeld, AdmissionRefused, AdmissionRequest, AdmissionSettings, Admitted,
    BandwidthGranted, BandwidthRefused, BandwidthRequest, Disengaged, DisengageRefused,
    DisengageRequest)
from gatekeeper.core.bandwidth import BandwidthPool
from gatekeeper.core.calls import CallTable
from gatekeeper.core.registration import (
    DiscoveryConfirmed, DiscoveryRefused, DiscoveryRequest, KeepaliveRequest, RegisterRequest,
    Registered, Registration, RegistrationRefused, RegistrationSettings, Unregistered,
    UnregisterRequest, UnregistrationRefused)
from gatekeeper.core.registry import Endpoint, Registry
from gatekeeper.core.rewrite import RewriteRule
from gatekeeper.core.routing import Route, Router, RoutingRequest
from gatekeeper.h225 import ras
from gatekeeper.h225.ras import dialled_digits, h323_id
from gatekeeper.ras.keepalive import KeepaliveReplies

START = 1_800_000_000
CALL_ID = bytes(range(16))


class Notes:
    """An EndpointNotifier that writes down what it was asked to tell."""

    def __init__(self) -> None:
        self.told: list[tuple] = []

    def unregistration_requested(self, endpoint, reason):
        self.told.append(("URQ", endpoint.endpoint_id, reason))

    def disengage_requested(self, endpoint, call, call_reference, reason):
        self.told.append(("DRQ", endpoint.endpoint_id, call_reference, reason))

    def poll(self, endpoint):
        self.told.append(("IRQ", endpoint.endpoint_id))


class Core:
    """A registry, a call table, a bus, a clock and both core objects."""

    def __init__(self, total_bandwidth=None, router=None, **registration) -> None:
        self.clock = Clock()
        self.clock.advance(START)
        self.bus = ev.EventBus()
        self.events: list[object] = []
        self.bus.subscribe(self.events.append)
        self.registry = Registry(rng=__import__("random").Random(1))
        self.calls = CallTable()
        self.notes = Notes()
        self.admission = Admission(self.registry, self.calls, self.bus, self.clock,
                                   AdmissionSettings("GK", total_bandwidth=total_bandwidth),
                                   router=router,
                                   bandwidth=BandwidthPool(total_bandwidth), notifier=self.notes)
        self.registration = Registration(
            self.registry, self.bus, self.clock, self.admission.end_calls_of,
            RegistrationSettings("GK", **registration), notifier=self.notes)

    def register(self, n: int, *aliases, ttl=None) -> Endpoint:
        decision = self.registration.register(rrq(n, *aliases, ttl=ttl))
        assert isinstance(decision, Registered), decision
        return decision.endpoint

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]


def address(n: int, port: int) -> tuple[str, int]:
    return (f"10.0.0.{n}", port)


def rrq(n: int, *aliases, ttl=None, source=None, **changes) -> RegisterRequest:
    return RegisterRequest(
        source or address(n, 1719), (address(n, 1720),), (address(n, 1719),),
        tuple(aliases) or (dialled_digits(str(100 + n)),), "terminal", time_to_live=ttl,
        **changes)


def arq(caller: Endpoint, *destination, **changes) -> AdmissionRequest:
    fields = dict(source=caller.ras_address, endpoint_id=caller.endpoint_id,
                  destination_info=tuple(destination), bandwidth=1280, call_reference=7,
                  conference_id=bytes(16), call_id=CALL_ID)
    fields.update(changes)
    return AdmissionRequest(**fields)


# -- admission --------------------------------------------------------------------------------


def test_arq_to_a_registered_alias_is_admitted_with_the_callee_address_and_counted():
    core = Core()
    alice, bob = core.register(1), core.register(2)
    decision = core.admission.admit(arq(alice, dialled_digits("102")))
    assert isinstance(decision, Admitted)
    assert decision.destination == bob.signal_address
    assert (decision.bandwidth, decision.routed, decision.destination_type) == (1280, False,
                                                                                "terminal")
    assert decision.call.caller_endpoint_id == alice.endpoint_id
    assert decision.call.callee_endpoint_id == bob.endpoint_id
    assert core.calls.counts(alice.endpoint_id) == core.calls.counts(bob.endpoint_id) == (1, 0, 1)
    [confirmed] = core.of(ev.AdmissionConfirmed)
    assert confirmed.call_number == decision.call.number
    assert len(core.calls) == 1


def test_routed_mode_sends_the_caller_to_the_gatekeeper():
    core = Core()
    core.admission.reconfigure(AdmissionSettings("GK", True, ("192.0.2.1", 1720)))
    alice, _ = core.register(1), core.register(2)
    decision = core.admission.admit(arq(alice, dialled_digits("102")))
    assert decision.destination == ("192.0.2.1", 1720) and decision.routed


def test_arq_refusals_carry_their_h225_reason_and_publish_a_rejection():
    core = Core()
    alice = core.register(1)
    assert core.admission.admit(arq(alice, dialled_digits("999"))) == \
        AdmissionRefused("calledPartyNotRegistered")
    assert core.admission.admit(arq(alice)) == AdmissionRefused("requestDenied")
    assert core.admission.admit(arq(alice, dialled_digits("101"), endpoint_id="nobody")) == \
        AdmissionRefused("callerNotRegistered")
    spoofed = arq(alice, dialled_digits("101"), source=("10.9.9.9", 1719))
    assert core.admission.admit(spoofed) == AdmissionRefused("invalidEndpointIdentifier")
    assert [e.reason for e in core.of(ev.AdmissionRejected)] == [
        "calledPartyNotRegistered", "requestDenied", "callerNotRegistered",
        "invalidEndpointIdentifier"]
    assert core.admission.stats["spoofed"] == 1 and len(core.calls) == 0


def test_no_bandwidth_left_refuses_and_reserves_nothing():
    core = Core(total_bandwidth=2000)
    alice, _ = core.register(1), core.register(2)
    assert isinstance(core.admission.admit(arq(alice, dialled_digits("102"))), Admitted)
    second = arq(alice, dialled_digits("102"), call_id=bytes(16 * [9]), call_reference=8)
    assert core.admission.admit(second) == AdmissionRefused("resourceUnavailable")
    assert core.admission.bandwidth.used == 1280


def test_the_same_arq_again_confirms_the_same_call_without_a_second_one():
    core = Core()
    alice, _ = core.register(1), core.register(2)
    first = core.admission.admit(arq(alice, dialled_digits("102")))
    again = core.admission.admit(arq(alice, dialled_digits("102")))
    assert again.call is first.call and len(core.calls) == 1
    assert core.calls.counts(alice.endpoint_id).total == 1


def test_answer_call_joins_the_call_and_in_direct_mode_connects_it():
    core = Core()
    alice, bob = core.register(1), core.register(2)
    call = core.admission.admit(arq(alice, dialled_digits("102"))).call
    answer = core.admission.admit(arq(bob, dialled_digits("102"), answer_call=True,
                                      call_reference=9))
    assert isinstance(answer, Admitted) and answer.call is call
    assert call.callee_crv == 9 and call.connected
    assert core.calls.counts(alice.endpoint_id) == core.calls.counts(bob.endpoint_id) == (1, 1, 1)


def test_rewrite_rules_apply_before_routing():
    core = Core()
    alice, bob = core.register(1), core.register(2)
    core.admission.reconfigure(replace(core.admission.settings,
                                       rewrite_rules=(RewriteRule("0", "10"),)))
    decision = core.admission.admit(arq(alice, dialled_digits("02")))
    assert decision.call.callee_endpoint_id == bob.endpoint_id
    assert decision.call.destination_info == (dialled_digits("102"),)


def test_a_setup_from_an_unregistered_caller_can_use_the_same_routing_and_confirm():
    core = Core()
    bob = core.register(2)
    request = AdmissionRequest(("198.51.100.7", 4000), None, (dialled_digits("102"),),
                               src_signal_address=("198.51.100.7", 1720), bandwidth=640,
                               call_id=CALL_ID, origin="Setup")
    request, route = core.admission.resolve(request, None)
    decision = core.admission.confirm(request, None, route)
    assert isinstance(decision, Admitted)
    assert decision.destination == bob.signal_address
    assert decision.call.caller_endpoint_id == ""
    assert decision.call.caller_signal_address == ("198.51.100.7", 1720)
    assert core.calls.counts(bob.endpoint_id).active == 1


class AskingPolicy:
    """A routing policy that asks someone else: a Deferred the test fires."""

    name = "asking"

    def __init__(self) -> None:
        self.asked: list[RoutingRequest] = []
        self.pending: list[Deferred] = []

    def route(self, request):
        self.asked.append(request)
        self.pending.append(Deferred())
        return self.pending[-1]


def test_a_held_arq_is_decided_when_the_route_is_known_and_asked_only_once():
    policy = AskingPolicy()
    core = Core(router=Router([policy]))
    alice, bob = core.register(1), core.register(2)
    held = core.admission.admit(arq(alice, dialled_digits("555")))
    assert isinstance(held, AdmissionHeld) and held.decision is not None
    again = core.admission.admit(arq(alice, dialled_digits("555")))
    assert isinstance(again, AdmissionHeld) and again.decision is None
    assert len(policy.asked) == 1
    decided = []
    held.decision.addCallback(decided.append)
    policy.pending[0].callback(Route(bob.signal_address, bob))
    assert isinstance(decided[0], Admitted) and decided[0].destination == bob.signal_address


def test_a_held_arq_whose_caller_left_is_answered_with_nothing():
    policy = AskingPolicy()
    core = Core(router=Router([policy]))
    alice, bob = core.register(1), core.register(2)
    held = core.admission.admit(arq(alice, dialled_digits("555")))
    core.registration.unregister(alice)
    decided = []
    held.decision.addCallback(decided.append)
    policy.pending[0].callback(Route(bob.signal_address, bob))
    assert decided == [None] and len(core.calls) == 0


def test_a_failing_route_refuses_the_held_arq_with_undefined_reason():
    policy = AskingPolicy()
    core = Core(router=Router([policy]))
    alice = core.register(1)
    held = core.admission.admit(arq(alice, dialled_digits("555")))
    decided = []
    held.decision.addCallback(decided.append)
    policy.pending[0].errback(RuntimeError("the application went away"))
    assert decided == [AdmissionRefused("undefinedReason")]


def test_drq_ends_the_call_gives_back_bandwidth_and_counts_down():
    core = Core(total_bandwidth=5000)
    alice, bob = core.register(1), core.register(2)
    call = core.admission.admit(arq(alice, dialled_digits("102"))).call
    decision = core.admission.disengage(DisengageRequest(
        alice.ras_address, alice.endpoint_id, CALL_ID, bytes(16), 7))
    assert decision == Disengaged(call)
    assert core.admission.bandwidth.used == 0 and len(core.calls) == 0
    assert core.calls.counts(alice.endpoint_id).active == 0
    assert core.calls.counts(bob.endpoint_id).active == 0
    assert [r.call_number for r in core.of(ev.CallDetailRecord)] == [call.number]
    spoofed = core.admission.disengage(DisengageRequest(
        ("10.9.9.9", 1719), alice.endpoint_id, CALL_ID, bytes(16), 7))
    assert spoofed == DisengageRefused("requestToDropOther")


def test_brq_grants_what_fits_and_says_what_would_have():
    core = Core(total_bandwidth=3000)
    alice, _ = core.register(1), core.register(2)
    call = core.admission.admit(arq(alice, dialled_digits("102"))).call

    def brq(bandwidth):
        return core.admission.change_bandwidth(BandwidthRequest(
            alice.ras_address, alice.endpoint_id, CALL_ID, bytes(16), 7, bandwidth))

    assert brq(2000) == BandwidthGranted(2000) and call.bandwidth == 2000
    assert brq(4000) == BandwidthRefused("insufficientResources", 3000)
    assert core.admission.bandwidth.used == 2000


def test_disconnect_tells_both_parties_and_ends_the_call_once():
    core = Core()
    alice, bob = core.register(1), core.register(2)
    call = core.admission.admit(arq(alice, dialled_digits("102"))).call
    core.admission.admit(arq(bob, dialled_digits("102"), answer_call=True, call_reference=9))
    core.admission.disconnect(call, "forcedDrop")
    assert core.notes.told == [("DRQ", alice.endpoint_id, 7, "forcedDrop"),
                               ("DRQ", bob.endpoint_id, 9, "forcedDrop")]
    assert len(core.of(ev.CallDetailRecord)) == 1


# -- registration -----------------------------------------------------------------------------


def test_full_registration_then_keepalive_from_where_it_was_made():
    core = Core(time_to_live=300)
    decision = core.registration.register(rrq(1, ttl=600))
    assert isinstance(decision, Registered) and decision.new and decision.time_to_live == 300
    endpoint = decision.endpoint
    core.clock.advance(100)
    kept = core.registration.keepalive(KeepaliveRequest(endpoint.ras_address,
                                                        endpoint.endpoint_id, 120))
    assert kept == Registered(endpoint, 120) and endpoint.last_seen == START + 100
    assert [e.keepalive for e in core.of(ev.EndpointRegistered)] == [False, True]
    stranger = core.registration.keepalive(KeepaliveRequest(("10.0.0.1", 5555),
                                                            endpoint.endpoint_id))
    assert stranger == RegistrationRefused("securityDenial")
    unknown = core.registration.keepalive(KeepaliveRequest(("10.0.0.1", 1719), "nobody"))
    assert unknown == RegistrationRefused("fullRegistrationRequired")


def test_time_to_live_is_off_unless_configured_and_never_below_the_minimum():
    assert Core().registration.grant_time_to_live(30) is None
    assert Core(time_to_live=300).registration.grant_time_to_live(30) == 60
    assert Core(time_to_live=300).registration.grant_time_to_live(None) == 300


def test_an_alias_taken_by_another_endpoint_is_refused_with_the_duplicates():
    core = Core()
    core.register(1, h323_id("alice"))
    decision = core.registration.register(rrq(2, h323_id("alice"), dialled_digits("7")))
    assert decision == RegistrationRefused("duplicateAlias", (h323_id("alice"),))
    assert [e.reason for e in core.of(ev.RegistrationRejected)] == ["duplicateAlias"]


def test_overwrite_ep_on_same_address_replaces_the_old_registration_with_a_urq():
    core = Core(overwrite_ep_on_same_address=True)
    old = core.register(1, h323_id("alice"))
    decision = core.registration.register(rrq(2, h323_id("alice")))
    assert isinstance(decision, Registered)
    assert core.notes.told == [("URQ", old.endpoint_id, "maintenance")]
    assert core.registry.get(old.endpoint_id) is None
    assert core.registry.find_alias(h323_id("alice")) is decision.endpoint


def test_another_hosts_signalling_address_is_never_taken_over():
    core = Core(overwrite_ep_on_same_address=True)
    alice = core.register(1)
    intruder = RegisterRequest(("10.0.0.66", 1719), alice.signal_addresses,
                               (("10.0.0.66", 1719),), (h323_id("evil"),), "terminal")
    assert core.registration.register(intruder) == \
        RegistrationRefused("invalidCallSignalAddress")
    assert core.registration.stats["spoofed"] == 1 and core.notes.told == []


def test_require_discovery_wants_a_grq_from_the_host_first():
    core = Core(require_discovery=True)
    assert core.registration.register(rrq(1, discovery_complete=True)) == \
        RegistrationRefused("discoveryRequired")
    grq = DiscoveryRequest(address(1, 1719), None, None, (), "terminal")
    assert core.registration.discover(grq) == DiscoveryConfirmed()
    assert isinstance(core.registration.register(rrq(1, discovery_complete=True)), Registered)


def test_a_grq_for_another_gatekeeper_is_refused_unless_multicast():
    core = Core()
    grq = DiscoveryRequest(address(1, 1719), None, "OTHER", (), "terminal")
    assert core.registration.discover(grq) == DiscoveryRefused("terminalExcluded")
    multicast = DiscoveryRequest(address(1, 1719), None, "OTHER", (), "terminal", True)
    assert core.registration.discover(multicast) is None


def test_urq_from_the_endpoint_ends_its_calls_and_from_elsewhere_is_refused():
    core = Core()
    alice, bob = core.register(1), core.register(2)
    core.admission.admit(arq(alice, dialled_digits("102")))
    core.admission.admit(arq(bob, dialled_digits("102"), answer_call=True, call_reference=9))
    refused = core.registration.unregistration_request(UnregisterRequest(
        ("10.9.9.9", 1719), alice.endpoint_id))
    assert refused == UnregistrationRefused("permissionDenied")
    done = core.registration.unregistration_request(UnregisterRequest(
        alice.ras_address, alice.endpoint_id))
    assert done == Unregistered(alice) and len(core.calls) == 0
    # bob, still registered, is told the call ended; alice is gone and is not
    assert core.notes.told == [("DRQ", bob.endpoint_id, 9, "forcedDrop")]
    assert len(core.of(ev.CallDetailRecord)) == 1


def test_a_silent_endpoint_is_polled_then_dropped():
    core = Core(time_to_live=60, irq_poll_count=1, irq_poll_interval=10)
    endpoint = core.register(1, ttl=60)
    core.clock.advance(62)
    core.registration.check_registrations()
    assert core.notes.told == [("IRQ", endpoint.endpoint_id)]
    core.clock.advance(12)
    core.registration.check_registrations()
    assert core.notes.told[-1] == ("URQ", endpoint.endpoint_id, "ttlExpired")
    assert core.registry.get(endpoint.endpoint_id) is None


# -- the RAS layer's keepalive templates and typed messages -----------------------------------


def test_keepalive_rcf_template_is_rebuilt_when_what_it_carries_changes():
    registry = Registry(rng=__import__("random").Random(2))
    endpoint = registry.add(Endpoint("1_endp", (h323_id("a"),), (("10.0.0.1", 1720),),
                                     ("10.0.0.1", 1719)))
    replies = KeepaliveReplies(lambda e: registry.get(e.endpoint_id) is e)
    first = replies.rcf(endpoint, 5, True, 300, "GK")
    decoded = ras.parse(first)
    assert decoded.kind == "registrationConfirm" and decoded.seq == 5
    assert decoded.raw["timeToLive"] == 300
    assert ras.parse(replies.rcf(endpoint, 6, True, 300, "GK")).seq == 6
    registry.update(endpoint, signal_addresses=(("10.0.0.1", 1730),))
    moved = ras.parse(replies.rcf(endpoint, 7, True, 300, "GK"))
    assert ras.transports_from_asn(moved.raw["callSignalAddress"]) == (("10.0.0.1", 1730),)
    assert "terminalAlias" not in ras.parse(replies.rcf(endpoint, 8, False, 300, "GK")).raw


def test_keepalive_templates_of_endpoints_gone_are_swept():
    registry = Registry(rng=__import__("random").Random(3))
    replies = KeepaliveReplies(lambda e: registry.get(e.endpoint_id) is e, minimum_size=4)
    for n in range(10):
        endpoint = Endpoint(f"{n}_endp", (), ((f"10.0.0.{n + 1}", 1720),), None)
        replies.rcf(endpoint, 1, False, None, "GK")    # never registered: swept
    assert len(replies) <= 5


def test_typed_messages_encode_as_their_tuple_builders_do():
    acf = ras.Acf(3, 640, ("10.0.0.2", 1720), routed=True, destination_type="gateway")
    assert ras.encode(acf) == ras.encode(ras.acf(3, 640, ("10.0.0.2", 1720), routed=True,
                                                 destination_type="gateway"))
    assert ras.parse(ras.encode(acf.with_seq(9))).seq == 9
    rrj = ras.Rrj(4, "duplicateAlias", "GK", (h323_id("alice"),))
    assert ras.parse(ras.encode(rrj)).reason == "duplicateAlias"
    assert ras.kind_of(ras.Inak(2, "notRegistered")) == "infoRequestNak"
    assert ras.parse(ras.encode(ras.Inak(2, "notRegistered"))).raw["nakReason"][0] == \
        "notRegistered"
