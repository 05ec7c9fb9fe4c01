"""Who may ask the RAS service what, and where the answers go (GnuGk's rules):
LRQs only from our endpoints and neighbours unless [RasSrv::LRQFeatures]
AcceptNonNeighborLRQ=1, never an answer at a third party's replyAddress,
GRQ/RRQ answered at their source unless [ReplyToRasAddress] says otherwise,
and no registration taken over from another port of its host unless
[RasSrv::RRQFeatures] OverwriteEPOnSameAddress=1."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest
from twisted.internet.task import Clock

from gatekeeper import config as configuration
from gatekeeper import events as ev
from gatekeeper.configfile import ConfigError, read_ini
from gatekeeper.core.registry import Endpoint, Registry
from gatekeeper.h225 import codec, ras
from gatekeeper.h225.ras import h323_id
from gatekeeper.ras.controller import RasSettings
from gatekeeper.ras.policy import RasPolicy, ReplyRule
from gatekeeper.service import GatekeeperService, ListenSettings
from gatekeeper.testing import FakeDatagramTransport, FakeEndpoint
from test_ras_controller import Gatekeeper, kinds, phone

STRANGER = ("203.0.113.5", 40000)
ELSEWHERE = ("198.51.100.77", 9999)     # a third party's address


def rule(network: str, use: bool = True) -> ReplyRule:
    return ReplyRule(ipaddress.ip_network(network), use)


def lrq(destination: str, reply_address, endpoint_id: str | None = None, seq: int = 7) -> bytes:
    return codec.encode_ras(ras.lrq(seq, [ras.parse_alias(destination)], reply_address,
                                    endpoint_id=endpoint_id))


def one(written) -> tuple[ras.RasPdu, tuple]:
    assert len(written) == 1, written
    data, destination = written[0]
    return ras.parse(data), destination


def from_controller(logged) -> list[dict]:
    return [e for e in logged
            if e.get("log_namespace", "").startswith("gatekeeper.ras.controller")]


# -- LRQ: who is answered -------------------------------------------------------------------

def test_lrq_from_a_stranger_is_refused_at_its_source_never_at_its_reply_address():
    gk = Gatekeeper()
    gk.register(phone(2, "bob"))
    pdu, destination = one(gk.send(lrq("bob", ELSEWHERE), STRANGER))
    assert (pdu.kind, pdu.reason, destination) == ("locationReject", "securityDenial", STRANGER)
    assert gk.controller.stats["LRQ refused"] == 1
    assert gk.of(ev.LocationConfirmed) == []
    [rejected] = gk.of(ev.LocationRejected)
    assert (rejected.destination, rejected.reason) == ((h323_id("bob"),), "securityDenial")


def test_refused_lrqs_are_all_counted_and_logged_at_a_bounded_rate(logged):
    gk = Gatekeeper()
    for seq in range(1, 201):
        gk.send(lrq("bob", ELSEWHERE, seq=seq), STRANGER)
    assert gk.controller.stats["LRQ refused"] == 200
    refusals = [e for e in from_controller(logged) if "refused an LRQ" in e["log_format"]]
    assert len(refusals) == 1
    gk.clock.advance(11)
    gk.send(lrq("bob", ELSEWHERE, seq=999), STRANGER)
    refusals = [e for e in from_controller(logged) if "refused an LRQ" in e["log_format"]]
    assert len(refusals) == 2 and refusals[1]["skipped"] == 199


def test_lrq_from_a_registered_endpoint_is_answered_where_it_asked_from():
    gk = Gatekeeper()
    alice, bob = phone(1, "alice"), phone(2, "bob")
    alice_id = gk.register(alice)
    gk.register(bob)
    pdu, destination = one(gk.send(lrq("bob", ELSEWHERE, alice_id), alice.ras_address))
    assert (pdu.kind, destination) == ("locationConfirm", alice.ras_address)
    assert ras.transport_from_asn(pdu.raw["callSignalAddress"]) == bob.signal_address


def test_lrq_naming_an_endpoint_identifier_from_another_address_is_a_strangers():
    gk = Gatekeeper()
    alice = phone(1, "alice")
    alice_id = gk.register(alice)
    gk.register(phone(2, "bob"))
    pdu, destination = one(gk.send(lrq("bob", alice.ras_address, alice_id), ("10.0.0.1", 5555)))
    assert (pdu.kind, pdu.reason, destination) == (
        "locationReject", "securityDenial", ("10.0.0.1", 5555))


def test_accept_non_neighbor_lrq_answers_anyone_at_a_reply_address_on_its_own_host():
    gk = Gatekeeper(policy=RasPolicy(accept_non_neighbor_lrq=True))
    gk.register(phone(2, "bob"))
    pdu, destination = one(gk.send(lrq("bob", (STRANGER[0], 1719)), STRANGER))
    assert (pdu.kind, destination) == ("locationConfirm", (STRANGER[0], 1719))
    assert gk.controller.stats["LRQ replyAddress ignored"] == 0


def test_accept_non_neighbor_lrq_never_answers_at_a_third_partys_reply_address():
    gk = Gatekeeper(policy=RasPolicy(accept_non_neighbor_lrq=True))
    gk.register(phone(2, "bob"))
    pdu, destination = one(gk.send(lrq("bob", ELSEWHERE), STRANGER))
    assert (pdu.kind, destination) == ("locationConfirm", STRANGER)
    assert gk.controller.stats["LRQ replyAddress ignored"] == 1


def test_an_lrq_naming_an_endpoint_from_elsewhere_is_not_routed_as_that_endpoints():
    gk = Gatekeeper(policy=RasPolicy(accept_non_neighbor_lrq=True))
    alice_id = gk.register(phone(1, "alice"))
    gk.register(phone(2, "bob"))
    asked = []

    class Router:
        def route(self, request):
            asked.append(request)
            return None

    gk.controller.reconfigure(dataclasses.replace(gk.controller.config, router=Router()))
    pdu, _ = one(gk.send(lrq("bob", (STRANGER[0], 1719), alice_id), STRANGER))
    assert pdu.kind == "locationReject"
    assert [(r.caller, r.message_from) for r in asked] == [(None, STRANGER)]
    gk.send(lrq("bob", ("10.0.0.1", 1719), alice_id, seq=8), ("10.0.0.1", 1719))
    assert asked[1].caller.endpoint_id == alice_id


def test_a_neighbour_check_lets_an_lrq_in_and_its_answer_goes_to_the_reply_address():
    gk = Gatekeeper()   # no AcceptNonNeighborLRQ: the neighbour table decides
    gk.register(phone(2, "bob"))
    asked = []

    def neighbour(request, source):
        asked.append((request.destination_info, source))
        return source[0] == STRANGER[0]

    gk.controller.is_neighbour = neighbour
    pdu, destination = one(gk.send(lrq("bob", ("192.0.2.50", 1719)), STRANGER))
    assert (pdu.kind, destination) == ("locationConfirm", ("192.0.2.50", 1719))
    assert asked == [((h323_id("bob"),), STRANGER)]
    pdu, destination = one(gk.send(lrq("bob", ELSEWHERE), ("203.0.113.6", 1719)))
    assert (pdu.kind, pdu.reason) == ("locationReject", "securityDenial")


def test_reply_to_ras_address_sends_an_endpoints_lrq_answer_to_its_reply_address():
    gk = Gatekeeper(policy=RasPolicy(reply_to_ras_address=(rule("10.0.0.0/8"),)))
    alice = phone(1, "alice")
    alice_id = gk.register(alice)
    gk.register(phone(2, "bob"))
    pdu, destination = one(gk.send(lrq("bob", ("10.0.0.1", 2000), alice_id),
                                   alice.ras_address))
    assert (pdu.kind, destination) == ("locationConfirm", ("10.0.0.1", 2000))


# -- GRQ and RRQ: where the answer goes ----------------------------------------------------

def test_grq_is_answered_at_its_source_not_at_the_ras_address_it_names():
    gk = Gatekeeper()
    decoy = FakeEndpoint(["alice"], ("10.0.0.1", 1720), ELSEWHERE)
    pdu, destination = one(gk.send(decoy.grq(), ("10.0.0.1", 40000)))
    assert (pdu.kind, destination) == ("gatekeeperConfirm", ("10.0.0.1", 40000))


def test_reply_to_ras_address_sends_the_gcf_to_the_ras_address_and_the_longest_rule_wins():
    policy = RasPolicy(reply_to_ras_address=(rule("10.0.0.0/8"), rule("10.0.5.0/24", False)))
    gk = Gatekeeper(policy=policy)
    alice, carol = phone(1, "alice"), phone(5, "carol")
    carol.ras_address = carol.signal_address = ("10.0.5.5", 1719)
    _, destination = one(gk.send(alice.grq(), ("10.0.0.1", 40000)))
    assert destination == alice.ras_address
    _, destination = one(gk.send(carol.grq(), ("10.0.5.5", 40000)))
    assert destination == ("10.0.5.5", 40000)


def test_rrq_and_its_rejection_go_to_the_source_unless_reply_to_ras_address():
    for policy, expected in ((RasPolicy(), ("10.0.0.1", 40000)),
                             (RasPolicy(reply_to_ras_address=(rule("10.0.0.1"),)),
                              ("10.0.0.1", 1719))):
        gk = Gatekeeper(policy=policy)
        alice = phone(1, "alice")
        pdu, destination = one(gk.send(alice.rrq(), ("10.0.0.1", 40000)))
        assert (pdu.kind, destination) == ("registrationConfirm", expected)
        rival = phone(1, "alice")
        rival.signal_address = ("10.0.0.1", 1721)     # the alias is alice's
        rival._seq = 50
        pdu, destination = one(gk.send(rival.rrq(), ("10.0.0.1", 40000)))
        assert (pdu.kind, pdu.reason, destination) == ("registrationReject", "duplicateAlias",
                                                       expected)


def test_reply_to_ras_address_answers_a_keepalive_at_the_ras_address():
    gk = Gatekeeper(policy=RasPolicy(reply_to_ras_address=(rule("10.0.0.0/24"),)),
                    time_to_live=300)
    alice = phone(1, "alice")
    [(data, destination)] = gk.send(alice.rrq(), ("10.0.0.1", 40000))   # from another socket
    assert destination == alice.ras_address
    alice.read(data)
    for _ in range(2):   # the template path must not be taken either time
        pdu, destination = one(gk.send(alice.rrq(keepalive=True), ("10.0.0.1", 40000)))
        assert (pdu.kind, destination) == ("registrationConfirm", alice.ras_address)
        assert pdu.seq == alice._seq and pdu.raw["endpointIdentifier"] == alice.endpoint_id


# -- registrations are not taken over from another port of the same host ------------------

@pytest.fixture
def in_a_call():
    gk = Gatekeeper()
    alice, bob = phone(1, "1001", "alice"), phone(2, "1002", "bob")
    alice_id = gk.register(alice)
    gk.register(bob)
    call_id = gk.call(alice, bob)
    return gk, alice, bob, alice_id, call_id


def test_full_rrq_from_another_port_of_the_same_host_is_refused(in_a_call, logged):
    gk, alice, _, alice_id, _ = in_a_call
    intruder = FakeEndpoint(["1001", "alice"], alice.signal_address, ("10.0.0.1", 40000))
    pdu = gk.ask(intruder, intruder.rrq())
    assert (pdu.kind, pdu.reason) == ("registrationReject", "duplicateAlias")
    assert ras.aliases_from_asn(pdu.raw["rejectReason"][1]) == alice.aliases
    other = FakeEndpoint(["evil"], alice.signal_address, ("10.0.0.1", 40001))
    pdu = gk.ask(other, other.rrq())
    assert (pdu.kind, pdu.reason) == ("registrationReject", "invalidCallSignalAddress")
    kept = gk.registry.get(alice_id)
    assert kept.ras_address == alice.ras_address and gk.registry.find_alias("evil") is None
    assert gk.controller.stats["takeover refused"] == 2
    assert any("refused an RRQ" in e["log_format"] for e in from_controller(logged))


def test_refused_intruder_cannot_drop_the_calls_or_unregister_the_endpoint(in_a_call):
    gk, alice, _, alice_id, call_id = in_a_call
    intruder = FakeEndpoint(["1001", "alice"], alice.signal_address, ("10.0.0.1", 40000))
    assert gk.ask(intruder, intruder.rrq()).kind == "registrationReject"
    intruder.endpoint_id, intruder.calls = alice_id, alice.calls
    assert gk.ask(intruder, intruder.drq(call_id)).kind == "disengageReject"
    pdu = gk.ask(intruder, intruder.urq())
    assert (pdu.kind, pdu.reason) == ("unregistrationReject", "permissionDenied")
    assert len(gk.calls) == 1 and gk.registry.get(alice_id) is not None


def test_rrq_naming_the_endpoint_identifier_from_another_port_is_refused(in_a_call):
    gk, alice, _, alice_id, _ = in_a_call
    message = alice.rrq_message()
    message[1]["endpointIdentifier"] = alice_id
    pdu, destination = one(gk.send(codec.encode_ras(message), ("10.0.0.1", 40000)))
    assert pdu.kind == "registrationReject" and destination == ("10.0.0.1", 40000)
    assert gk.registry.get(alice_id).ras_address == alice.ras_address


def test_keepalive_from_another_port_of_the_same_host_is_refused(in_a_call):
    gk, alice, _, alice_id, _ = in_a_call
    gk.clock.advance(30)
    pdu, _ = one(gk.send(alice.rrq(keepalive=True), ("10.0.0.1", 40000)))
    assert (pdu.kind, pdu.reason) == ("registrationReject", "securityDenial")
    assert gk.registry.get(alice_id).last_seen == gk.now() - 30


def test_reregistration_from_the_registered_addresses_still_renews():
    gk = Gatekeeper()
    alice = phone(1, "alice")                         # rasAddress 10.0.0.1:1719
    pdu, _ = one(gk.send(alice.rrq(), ("10.0.0.1", 40000)))   # sent from another socket
    alice_id = pdu.raw["endpointIdentifier"]
    for source in (("10.0.0.1", 40000), ("10.0.0.1", 1719)):
        pdu, _ = one(gk.send(alice.rrq(), source))
        assert (pdu.kind, pdu.raw["endpointIdentifier"]) == ("registrationConfirm", alice_id)
    assert len(gk.registry) == 1 and gk.of(ev.EndpointUnregistered) == []


# -- OverwriteEPOnSameAddress=1: the new registration replaces the old one -----------------

def test_overwrite_lets_the_new_registration_replace_the_old_one_with_urq_and_cdr():
    gk = Gatekeeper(policy=RasPolicy(overwrite_ep_on_same_address=True))
    alice, bob = phone(1, "1001", "alice"), phone(2, "1002", "bob")
    alice_id = gk.register(alice)
    gk.register(bob)
    gk.call(alice, bob)
    restarted = FakeEndpoint(["1001", "alice"], alice.signal_address, ("10.0.0.1", 40000))
    written = gk.send(restarted.rrq(), restarted.ras_address)
    by_kind = {ras.parse(data).kind: (ras.parse(data), to) for data, to in written}
    assert sorted(by_kind) == ["disengageRequest", "registrationConfirm",
                               "unregistrationRequest"]
    rcf, to = by_kind["registrationConfirm"]
    assert to == restarted.ras_address and rcf.raw["endpointIdentifier"] != alice_id
    urq, to = by_kind["unregistrationRequest"]
    assert to == alice.ras_address and urq.raw["reason"][0] == "maintenance"
    assert by_kind["disengageRequest"][1] == bob.ras_address
    assert gk.registry.get(alice_id) is None
    assert gk.registry.find_alias("alice").endpoint_id == rcf.raw["endpointIdentifier"]
    assert len(gk.calls) == 0 and len(gk.of(ev.CallDetailRecord)) == 1
    assert [e.endpoint_id for e in gk.of(ev.EndpointUnregistered)] == [alice_id]


def test_overwrite_lets_an_endpoint_with_a_new_ip_take_its_aliases_back():
    gk = Gatekeeper(policy=RasPolicy(overwrite_ep_on_same_address=True))
    alice = phone(1, "1001", "alice")
    alice_id = gk.register(alice)
    moved = phone(50, "1001", "alice")              # the same phone, a new address
    written = gk.send(moved.rrq(), moved.ras_address)
    assert sorted(kinds(written)) == ["registrationConfirm", "unregistrationRequest"]
    assert gk.registry.get(alice_id) is None
    assert gk.registry.find_alias("1001").ras_address == moved.ras_address


def test_without_overwrite_an_endpoint_with_a_new_ip_is_refused_duplicate_alias():
    gk = Gatekeeper()
    alice_id = gk.register(phone(1, "1001", "alice"))
    moved = phone(50, "1001", "alice")
    pdu = gk.ask(moved, moved.rrq())
    assert (pdu.kind, pdu.reason) == ("registrationReject", "duplicateAlias")
    assert gk.registry.get(alice_id) is not None


def test_overwrite_never_replaces_a_permanent_endpoint_nor_another_hosts_address():
    registry = Registry()
    registry.add(Endpoint(endpoint_id="1_endp", aliases=(h323_id("perm"),),
                          signal_addresses=(("10.0.0.9", 1720),), ras_address=None,
                          permanent=True))
    gk = Gatekeeper(registry=registry, policy=RasPolicy(overwrite_ep_on_same_address=True))
    claimant = phone(3, "perm")
    pdu = gk.ask(claimant, claimant.rrq())
    assert (pdu.kind, pdu.reason) == ("registrationReject", "duplicateAlias")
    alice = phone(1, "alice")
    gk.register(alice)
    intruder = FakeEndpoint(["alice"], alice.signal_address, ("10.0.0.66", 1719))
    pdu = gk.ask(intruder, intruder.rrq())
    assert (pdu.kind, pdu.reason) == ("registrationReject", "invalidCallSignalAddress")
    assert registry.get("1_endp") is not None and registry.find_alias("alice") is not None


# -- configuration ---------------------------------------------------------------------------

def test_the_policy_keys_are_read():
    config = configuration.parse(read_ini(
        "[RasSrv::LRQFeatures]\nAcceptNonNeighborLRQ=1\n"
        "[RasSrv::RRQFeatures]\nOverwriteEPOnSameAddress=yes\n"
        "[ReplyToRasAddress]\n192.168.0.0/18=True\n192.168.4.0/24=False\n2001:db8::/32=1\n",
        "gk.ini"))
    assert config.warnings == ()
    assert config.ras_policy == RasPolicy(
        accept_non_neighbor_lrq=True, overwrite_ep_on_same_address=True,
        reply_to_ras_address=(rule("192.168.0.0/18"), rule("192.168.4.0/24", False),
                              rule("2001:db8::/32")))


def test_the_policy_defaults_are_gnugks_and_only_unknown_lrq_features_keys_warn():
    # NeighborTimeout is read by gatekeeper.core.neighbors: no warning.
    config = configuration.parse(read_ini("[RasSrv::LRQFeatures]\nNeighborTimeout=3\n"
                                          "Bogus=1\n", "gk.ini"))
    assert config.ras_policy == RasPolicy()
    assert config.neighbors.features.neighbor_timeout == 3
    assert config.warnings == (
        "gk.ini: [RasSrv::LRQFeatures] Bogus: unknown key, ignored",)


@pytest.mark.parametrize("section, key, value", [
    ("RasSrv::LRQFeatures", "AcceptNonNeighborLRQ", "maybe"),
    ("RasSrv::RRQFeatures", "OverwriteEPOnSameAddress", "2"),
    ("ReplyToRasAddress", "10.0.0.0/33", "True"),
    ("ReplyToRasAddress", "somehost", "True"),
    ("ReplyToRasAddress", "10.0.0.0/8", "sometimes"),
])
def test_bad_policy_values_are_refused_naming_section_key_and_value(section, key, value):
    with pytest.raises(ConfigError) as raised:
        configuration.parse(read_ini(f"[{section}]\n{key}={value}\n", "gk.ini"))
    assert (raised.value.section, raised.value.key, raised.value.value) == (section, key, value)
    assert f"[{section}] {key}={value}" in str(raised.value)


def test_reply_rules_match_by_the_longest_network_and_default_to_the_source():
    policy = RasPolicy(reply_to_ras_address=(   # the file's order does not matter
        rule("10.1.2.3"), rule("10.1.0.0/16", False), rule("10.0.0.0/8"),
        rule("2001:db8::/32")))
    assert [policy.replies_to_ras_address(ip) for ip in (
        "10.9.9.9", "10.1.9.9", "10.1.2.3", "2001:db8::1", "11.0.0.1", "::ffff:10.9.9.9",
        "not an ip")] == [True, False, True, True, False, False, False]
    assert RasPolicy().replies_to_ras_address("10.9.9.9") is False


def make(path) -> GatekeeperService:
    """A service on a Clock reading ``path`` at start and on reload."""
    clock = Clock()
    clock.advance(1_800_000_000)
    service = GatekeeperService(RasSettings(gatekeeper_id="GK"),
                                ListenSettings(status_port=0, discovery_port=0), clock,
                                configuration.load(path))
    service.config_loader = lambda: (configuration.load(path), service.settings)
    service.ras_protocol.transport = FakeDatagramTransport()
    service.ras_protocol.startProtocol()
    return service


def test_reload_takes_the_new_policy(tmp_path):
    path = tmp_path / "gk.ini"
    path.write_text("[Gatekeeper::Main]\nName=GK\n")
    service = make(path)
    transport = service.ras_protocol.transport

    def ask_lrq(seq: int) -> ras.RasPdu:
        service.ras_protocol.datagramReceived(lrq("bob", (STRANGER[0], 1719), seq=seq),
                                              STRANGER)
        return one(transport.take())[0]

    assert ask_lrq(1).reason == "securityDenial"
    path.write_text("[Gatekeeper::Main]\nName=GK\n[RasSrv::LRQFeatures]\nAcceptNonNeighborLRQ=1\n"
                    "[RasSrv::RRQFeatures]\nOverwriteEPOnSameAddress=1\n")
    assert service.reload()[0]
    assert service.controller.policy == RasPolicy(accept_non_neighbor_lrq=True,
                                                  overwrite_ep_on_same_address=True)
    assert ask_lrq(2).reason == "notRegistered"       # answered now, for an unknown alias
    path.write_text("[RasSrv::LRQFeatures]\nAcceptNonNeighborLRQ=perhaps\n")
    assert not service.reload()[0]
    assert service.controller.policy.accept_non_neighbor_lrq is True


def test_debug_set_applies_the_policy_at_once(tmp_path):
    path = tmp_path / "gk.ini"
    path.write_text("[Gatekeeper::Main]\nName=GK\n")
    service = make(path)
    ok, _ = service.edit_config(service.config.ini.with_value(
        "ReplyToRasAddress", "10.0.0.0/8", "1"))
    assert ok and service.controller.policy.replies_to_ras_address("10.2.3.4")
