"""Neighbour gatekeepers (gatekeeper.core.neighbors): settings, prefix
matching and ranking, the LRQ fan-out of the ``neighbor`` policy on a Clock
with a fake sender, and the forwarding decisions for received LRQs."""

from __future__ import annotations

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from zope.interface import implementer
from zope.interface.verify import verifyObject

from gatekeeper.configfile import ConfigError, read_ini
from gatekeeper.core import neighbors as nb
from gatekeeper.core.neighbors import (
    ILocationExchange,
    ILocationSender,
    LcfAnswer,
    LocationQuery,
    LrjAnswer,
    NeighborPolicy,
    NeighborSettings,
    RecentLrqs,
    accepts_lrq,
    build_query,
    forward_targets,
    forwarded_query,
    lrq_message,
    parse_neighbors,
    parse_prefixes,
    select_neighbors,
)
from gatekeeper.core.routing import Route, Router, RoutingRequest
from gatekeeper.errors import DecodeError
from gatekeeper.h225 import ras
from gatekeeper.h225.ras import Alias, dialled_digits, h323_id
from gatekeeper.interfaces import IRoutingPolicy
from oracles import (
    assert_no_malformed,
    requires_tshark,
    run_tshark,
    tshark_fields,
    write_udp_pcap,
)


def parse(text: str) -> tuple[NeighborSettings, list[str]]:
    return parse_neighbors(read_ini(text, "test.ini"))


def prefixes(value: str) -> nb.PrefixList:
    return parse_prefixes("test.ini", "Neighbor::X", "SendPrefixes", value)


def neighbor(name: str, send: str = "*", **fields) -> nb.Neighbor:
    return nb.Neighbor(name=name, host=fields.pop("host", "10.0.0.1"), gatekeeper_id=name,
                       send_prefixes=prefixes(send), **fields)


# -- settings --------------------------------------------------------------------

FULL = """
[RasSrv::Neighbors]
GK2=GnuGk
CISCO=CiscoGK

[Neighbor::GK2]
GatekeeperIdentifier=Zone2
Host=192.0.2.2:1720
Dynamic=1
SendPrefixes=02,0301:=3,h323_ID
SendAliases=alice,2000-2010
AcceptPrefixes=04,!0499
ForwardHopCount=4
AcceptForwardedLRQ=0
ForwardResponse=1
ForwardLRQ=Always
PingAlias=ping

[Neighbor::CISCO]
Host=192.0.2.3
"""


def test_neighbor_section_keys_are_read():
    settings, warnings = parse(FULL)
    assert warnings == []
    gk2 = settings.find("GK2")
    assert gk2 is not None
    assert (gk2.type, gk2.gatekeeper_id, gk2.host, gk2.port) == ("GnuGk", "Zone2",
                                                                 "192.0.2.2", 1720)
    assert gk2.dynamic is True
    assert gk2.send_prefixes.entries == (
        nb.PrefixEntry("02"), nb.PrefixEntry("0301", priority=3),
        nb.PrefixEntry("", alias_kind="h323-ID"))
    assert gk2.send_aliases == (nb.AliasRange("alice"), nb.AliasRange("2000", "2010"))
    assert gk2.accept_prefixes.entries == (nb.PrefixEntry("04"),
                                           nb.PrefixEntry("0499", negative=True))
    assert (gk2.forward_hop_count, gk2.accept_forwarded_lrq, gk2.forward_response,
            gk2.forward_lrq, gk2.ping_alias) == (4, False, True, "always", "ping")


def test_neighbor_defaults_follow_gnugk_manual():
    settings, _ = parse(FULL)
    cisco = settings.find("CISCO")
    assert cisco is not None
    assert (cisco.type, cisco.gatekeeper_id, cisco.port) == ("CiscoGk", "CISCO", 1719)
    assert cisco.send_prefixes.entries == ()      # no SendPrefixes: never asked
    assert cisco.accept_prefixes == nb.STAR
    assert (cisco.forward_hop_count, cisco.accept_forwarded_lrq, cisco.forward_response,
            cisco.forward_lrq, cisco.dynamic) == (0, True, False, "depends", False)
    features = settings.features
    assert (features.neighbor_timeout, features.send_retries, features.send_rip,
            features.accept_non_neighbor_lcf) == (2, 2, 0, False)
    assert features.longest_wait == 6.0


@pytest.mark.parametrize("spelling, expected", [
    ("GnuGk", "GnuGk"), ("gnugk", "GnuGk"), ("CiscoGk", "CiscoGk"), ("CISCOGK", "CiscoGk"),
    ("ClarentGK", "ClarentGk"), ("glonetgk", "GlonetGk"), ("Generic", "Generic"),
    ("GENERIC", "Generic")])
def test_neighbor_types_are_case_insensitive(spelling, expected):
    settings, _ = parse(f"[RasSrv::Neighbors]\nN={spelling}\n[Neighbor::N]\nHost=10.1.1.1\n")
    assert settings.neighbors[0].type == expected


def test_lrq_features_are_read_and_become_each_neighbours_defaults():
    settings, warnings = parse("""
[RasSrv::LRQFeatures]
NeighborTimeout=5
SendRetries=0
ForwardHopCount=3
AcceptForwardedLRQ=0
ForwardResponse=1
ForwardLRQ=never
AcceptNonNeighborLCF=1
SendRIP=500
AcceptNonNeighborLRQ=1

[RasSrv::Neighbors]
A=GnuGk
B=GnuGk

[Neighbor::A]
Host=10.0.0.1

[Neighbor::B]
Host=10.0.0.2
ForwardHopCount=1
ForwardLRQ=depends
""")
    assert warnings == []        # AcceptNonNeighborLRQ belongs to ras/policy.py: no warning
    f = settings.features
    assert (f.neighbor_timeout, f.send_retries, f.forward_hop_count, f.accept_forwarded_lrq,
            f.forward_response, f.forward_lrq, f.accept_non_neighbor_lcf, f.send_rip) == (
        5, 0, 3, False, True, "never", True, 500)
    a, b = settings.find("A"), settings.find("B")
    assert (a.forward_hop_count, a.accept_forwarded_lrq, a.forward_response, a.forward_lrq) == (
        3, False, True, "never")
    assert (b.forward_hop_count, b.forward_lrq, b.forward_response) == (1, "depends", True)


@pytest.mark.parametrize("section, key, value, extra", [
    ("RasSrv::LRQFeatures", "NeighborTimeout", "0", ""),
    ("RasSrv::LRQFeatures", "NeighborTimeout", "2s", ""),
    ("RasSrv::LRQFeatures", "SendRetries", "-1", ""),
    ("RasSrv::LRQFeatures", "ForwardHopCount", "256", ""),
    ("RasSrv::LRQFeatures", "ForwardLRQ", "sometimes", ""),
    ("RasSrv::LRQFeatures", "AcceptForwardedLRQ", "maybe", ""),
    ("RasSrv::LRQFeatures", "SendRIP", "lots", ""),
    ("Neighbor::N", "Host", "not a host!", ""),
    ("Neighbor::N", "Host", "10.0.0.1:99999", ""),
    ("Neighbor::N", "ForwardLRQ", "often", "Host=10.0.0.1\n"),
    ("Neighbor::N", "ForwardHopCount", "x", "Host=10.0.0.1\n"),
    ("Neighbor::N", "Dynamic", "perhaps", "Host=10.0.0.1\n"),
    ("Neighbor::N", "SendPrefixes", "12:=high", "Host=10.0.0.1\n"),
    ("Neighbor::N", "SendPrefixes", "12:=", "Host=10.0.0.1\n"),
    ("Neighbor::N", "SendPrefixes", "!*", "Host=10.0.0.1\n"),
    ("Neighbor::N", "AcceptPrefixes", "!", "Host=10.0.0.1\n"),
    ("Neighbor::N", "SendAliases", "2010-2000", "Host=10.0.0.1\n"),
])
def test_a_bad_value_is_refused_naming_section_key_and_value(section, key, value, extra):
    body = f"[{section}]\n{extra}{key}={value}\n"
    if section.startswith("Neighbor::"):
        body = "[RasSrv::Neighbors]\nN=GnuGk\n" + body
    with pytest.raises(ConfigError) as caught:
        parse(body)
    error = caught.value
    assert (error.section, error.key) == (section, key)
    assert value in error.value or error.value in value
    assert f"[{section}]" in str(error) and key in str(error)


def test_bad_old_syntax_is_refused_naming_the_neighbour_line():
    with pytest.raises(ConfigError) as caught:
        parse("[RasSrv::Neighbors]\nOLD=10.0.0.1;1;pw;1;extra\n")
    assert (caught.value.section, caught.value.key) == ("RasSrv::Neighbors", "OLD")
    with pytest.raises(ConfigError) as caught:
        parse("[RasSrv::Neighbors]\nOLD=\n")
    assert caught.value.key == "OLD"


def test_old_one_line_syntax():
    settings, warnings = parse("""
[RasSrv::LRQFeatures]
AlwaysForwardLRQ=1
[RasSrv::Neighbors]
P1=10.0.0.5
P2=10.0.0.6:1800;02,03
P3=gk3.example.net;;secret;1
""")
    p1, p2, p3 = settings.neighbors
    assert (p1.name, p1.host, p1.port, p1.type) == ("P1", "10.0.0.5", 1719, "Generic")
    assert p1.send_prefixes == nb.STAR and p1.accept_prefixes == nb.STAR
    assert p1.forward_lrq == "always"                  # AlwaysForwardLRQ=1
    assert (p2.port, [e.pattern for e in p2.send_prefixes.entries]) == (1800, ["02", "03"])
    assert (p3.host, p3.dynamic, p3.send_prefixes) == ("gk3.example.net", True, nb.STAR)
    assert len(warnings) == 1 and "P3" in warnings[0] and "password" in warnings[0]


def test_old_syntax_without_always_forward_uses_the_features_rule():
    settings, _ = parse("[RasSrv::Neighbors]\nP=10.0.0.5\n")
    assert settings.neighbors[0].forward_lrq == "depends"


def test_unknown_and_unsupported_keys_are_warned_and_ignored():
    settings, warnings = parse("""
[RasSrv::LRQFeatures]
Bogus=1
[RasSrv::Neighbors]
N=GnuGk
[Neighbor::N]
Host=10.0.0.1
Password=secret
H46018Client=1
SendIPs=*
Colour=blue
""")
    assert settings.find("N") is not None
    # an unknown [RasSrv::LRQFeatures] key is gatekeeper.ras.policy's to warn about
    assert not any("Bogus" in w for w in warnings)
    assert any("[Neighbor::N] Colour: unknown key" in w for w in warnings)
    for key in ("Password", "H46018Client", "SendIPs"):
        assert any(f"[Neighbor::N] {key}: not supported here" in w for w in warnings), key
    assert len(warnings) == 4


def test_neighbours_without_host_or_section_are_left_out_with_a_warning():
    settings, warnings = parse("""
[RasSrv::Neighbors]
A=GnuGk
B=GnuGk
C=GnuGk
[Neighbor::A]
SendPrefixes=*
[Neighbor::C]
Host=10.0.0.3
[Neighbor::Stray]
Host=10.0.0.9
""")
    assert [n.name for n in settings.neighbors] == ["C"]
    assert any("[Neighbor::A]: no Host" in w for w in warnings)
    assert any("B: no [Neighbor::B] section" in w for w in warnings)
    assert any("[Neighbor::Stray]: not listed" in w for w in warnings)


def test_hosts_ipv6_names_and_file_order():
    settings, _ = parse("""
[RasSrv::Neighbors]
Z=GnuGk
A=GnuGk
[Neighbor::Z]
Host=[2001:db8::1]:1730
[Neighbor::A]
Host=gk-a.example.org:1720
""")
    z, a = settings.neighbors
    assert (z.name, z.host, z.port) == ("Z", "2001:db8::1", 1730)
    assert (a.name, a.host, a.port) == ("A", "gk-a.example.org", 1720)
    assert z.is_at("2001:db8:0::1") and not a.is_at("10.0.0.1")
    assert settings.sender_of("2001:db8::1") is z and settings.sender_of("10.9.9.9") is None


# -- matching and ranking ------------------------------------------------------------

D = dialled_digits


def test_star_matches_everything_with_rank_zero_and_all_aliases():
    found = prefixes("*").match([D("123"), h323_id("bob")])
    assert found == nb.PrefixMatch(0, 1, None)
    chosen = select_neighbors([neighbor("A", "*")], [D("123"), h323_id("bob")])
    assert chosen[0].destination == (D("123"), h323_id("bob"))


def test_longest_prefix_ranks_and_only_the_matching_alias_is_asked_for():
    found = prefixes("1,123,12").match([h323_id("x"), D("12345")])
    assert (found.rank, found.alias) == (3, D("12345"))
    assert prefixes("9").match([D("12345")]) is None
    chosen = select_neighbors([neighbor("A", "12")], [h323_id("x"), D("12345")])
    assert chosen[0].destination == (D("12345"),)


def test_dot_is_a_one_digit_wildcard():
    assert prefixes("1.3").match([D("1939")]).rank == 3
    assert prefixes("1.3").match([D("1949")]) is None
    assert prefixes("1..").match([D("12")]) is None       # too short for the pattern


def test_exclusion_beats_star_and_equal_length_prefix():
    assert prefixes("*,!900").match([D("9001")]) is None
    assert prefixes("*,!900").match([D("8001")]).rank == 0
    assert prefixes("900,!900").match([D("9001")]) is None
    # a longer positive prefix wins over a shorter exclusion
    assert prefixes("!12,1234").match([D("12345")]).rank == 4
    assert prefixes("!12,1234").match([D("1299")]) is None


def test_alias_type_entries_rank_highest():
    found = prefixes("12345,h323_ID").match([D("12345"), h323_id("bob")])
    assert found.rank == 5          # first alias decides: 12345 is digits, no type entry
    found = prefixes("12345,dialedDigits").match([D("12345")])
    assert (found.rank, found.alias) == (nb.TYPE_RANK, D("12345"))
    for name, alias in [("url_ID", Alias("url-ID", "http://x")),
                        ("email_ID", Alias("email-ID", "a@b")),
                        ("transportID", Alias("transportID", "10.0.0.1:1720")),
                        ("H323_id", h323_id("bob"))]:
        assert prefixes(name).match([alias]).rank == nb.TYPE_RANK, name
    assert prefixes("url_ID").match([h323_id("bob")]) is None


def test_prefixes_match_the_text_of_non_digit_aliases():
    assert prefixes("sales").match([h323_id("sales-1")]).rank == 5


def test_send_aliases_match_exactly_or_in_a_range():
    n = nb.Neighbor("A", host="10.0.0.1", send_aliases=(nb.AliasRange("bob"),
                                                         nb.AliasRange("2000", "2010")))
    assert nb.send_match(n, [D("2005")]).rank == nb.ALIAS_RANK
    assert nb.send_match(n, [h323_id("bob")]).alias == h323_id("bob")
    assert nb.send_match(n, [D("2011")]) is None
    assert nb.send_match(n, [D("20050")]) is None
    assert nb.send_match(n, [h323_id("bobby")]) is None


def test_selection_order_rank_then_priority_then_file_order():
    ns = [neighbor("star", "*"), neighbor("short", "1"), neighbor("low", "123:=5"),
          neighbor("high", "123:=2"), neighbor("high2", "123:=2"), neighbor("none", "9"),
          neighbor("typed", "dialedDigits:=9")]
    chosen = select_neighbors(ns, [D("12345")])
    assert [s.neighbor.name for s in chosen] == ["typed", "high", "high2", "low", "short", "star"]
    assert [s.rank for s in chosen] == [nb.TYPE_RANK, 3, 3, 3, 1, 0]
    assert [s.neighbor.name for s in select_neighbors(ns, [D("12345")], exclude=ns[3])] == [
        "typed", "high2", "low", "short", "star"]


def test_no_send_prefixes_or_no_destination_selects_nobody():
    n = nb.Neighbor("A", host="10.0.0.1")
    assert select_neighbors([n], [D("1")]) == ()
    assert select_neighbors([neighbor("B", "*")], []) == ()


def test_accept_prefixes_decide_incoming_lrqs():
    n = nb.Neighbor("A", host="10.0.0.1", gatekeeper_id="ZoneA")
    assert accepts_lrq(n, [D("555")], None)                  # default: *
    n = nb.Neighbor("A", host="10.0.0.1", gatekeeper_id="ZoneA",
                    accept_prefixes=prefixes("04,!0499,h323_ID"))
    assert accepts_lrq(n, [D("0412")], None)
    assert not accepts_lrq(n, [D("04991")], None)
    assert not accepts_lrq(n, [D("0512")], None)
    assert accepts_lrq(n, [h323_id("bob")], None)
    assert not accepts_lrq(n, [], None)
    strict = nb.Neighbor("A", host="10.0.0.1", gatekeeper_id="ZoneA", accept_forwarded_lrq=False)
    assert accepts_lrq(strict, [D("1")], "ZoneA")
    assert not accepts_lrq(strict, [D("1")], "ZoneB")
    assert not accepts_lrq(strict, [D("1")], None)


# -- what the LRQ says -----------------------------------------------------------------

ARQ = RoutingRequest(destination=(D("2001"),), dest_signal_address=None,
                     source=(h323_id("caller"), D("1001")), caller=None, call_reference=77)


def selection_for(type_: str, hop: int = 0) -> nb.Selection:
    return select_neighbors([neighbor("N", "20", type=type_, forward_hop_count=hop)],
                            [D("2001")])[0]


def test_gnugk_and_generic_lrq_fields():
    for type_ in ("GnuGk", "Generic"):
        query = build_query(selection_for(type_), ARQ, "OurGK")
        assert query == LocationQuery((D("2001"),), (h323_id("caller"), D("1001")), "OurGK",
                                      None, False)
    setup = RoutingRequest((D("2001"),), None, (), None, message_type="Setup")
    query = build_query(selection_for("GnuGk", hop=3), setup, "OurGK")
    assert (query.source, query.can_map_alias, query.hop_count) == (
        (h323_id("OurGK"),), True, 3)


def test_cisco_clarent_and_glonet_lrq_fields():
    cisco = build_query(selection_for("CiscoGk", hop=1), ARQ, "OurGK")
    assert (cisco.gatekeeper_id, cisco.source, cisco.can_map_alias, cisco.hop_count) == (
        None, (h323_id("OurGK"),), True, 1)
    clarent = build_query(selection_for("ClarentGk"), ARQ, "OurGK")
    assert (clarent.gatekeeper_id, clarent.source, clarent.can_map_alias, clarent.hop_count) == (
        None, (h323_id("OurGK"),), False, None)
    glonet = build_query(selection_for("GlonetGk"), ARQ, "OurGK")
    assert glonet.source == (h323_id("OurGK"), D("77"))


def test_lrq_message_encodes_and_decodes_with_every_field():
    query = LocationQuery((D("2001"),), (h323_id("caller"),), "OurGK", 4, True,
                          call_id=bytes(range(16)))
    pdu = ras.parse(ras.encode(lrq_message(query, 42, ("192.0.2.1", 1719))))
    assert isinstance(pdu, ras.LocationRequest)
    assert (pdu.seq, pdu.destination_info, pdu.reply_address, pdu.source_info, pdu.gatekeeper_id,
            pdu.hop_count, pdu.can_map_alias, pdu.call_id, pdu.endpoint_id) == (
        42, (D("2001"),), ("192.0.2.1", 1719), (h323_id("caller"),), "OurGK", 4, True,
        bytes(range(16)), None)
    plain = ras.parse(ras.encode(lrq_message(LocationQuery((D("1"),)), 7, ("192.0.2.1", 1719))))
    assert (plain.hop_count, plain.gatekeeper_id, plain.can_map_alias, plain.source_info) == (
        None, None, False, ())
    kept = lrq_message(LocationQuery((D("1"),), seq=9, reply_address=("198.51.100.1", 1719)),
                       7, ("192.0.2.1", 1719))
    assert (kept.seq, kept.reply_address) == (9, ("198.51.100.1", 1719))
    assert kept.with_seq(10).seq == 10


def test_read_location_confirm():
    encoded = ras.encode(ras.Lcf(5, ("10.0.0.2", 1720), ("10.0.0.2", 1719), [D("2001")]))
    confirm = ras.read_location_confirm(ras.parse(encoded))
    assert confirm == ras.LocationConfirm(5, ("10.0.0.2", 1720), ("10.0.0.2", 1719), (D("2001"),))
    bare = ras.read_location_confirm(ras.parse(ras.encode(
        ras.Lcf(6, ("10.0.0.3", 1720), ("10.0.0.3", 1719)))))
    assert bare.destination_info == ()
    with pytest.raises(DecodeError):
        ras.read_location_confirm(ras.parse(ras.encode(ras.Lrj(5, "requestDenied"))))


# -- the fan-out -----------------------------------------------------------------------


@implementer(ILocationExchange)
class FakeExchange:
    def __init__(self, neighbor: nb.Neighbor, query: LocationQuery, on_progress) -> None:
        self.neighbor, self.query, self.on_progress = neighbor, query, on_progress
        self.answer: Deferred = Deferred()
        self.sends = 1
        self.cancelled = False

    def resend(self) -> None:
        self.sends += 1

    def cancel(self) -> None:
        self.cancelled = True

    def lcf(self, address=("10.9.9.9", 1720), destination=()) -> None:
        self.answer.callback(LcfAnswer(address, ("10.9.9.9", 1719), tuple(destination)))

    def lrj(self, reason="requestDenied") -> None:
        self.answer.callback(LrjAnswer(reason))


@implementer(ILocationSender)
class FakeSender:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.sent: dict[str, FakeExchange] = {}
        self.sent_at: dict[str, float] = {}
        self.fail_for: set[str] = set()

    def send_lrq(self, neighbor, query, on_progress):
        if neighbor.name in self.fail_for:
            raise OSError("network unreachable")
        exchange = FakeExchange(neighbor, query, on_progress)
        self.sent[neighbor.name] = exchange
        self.sent_at[neighbor.name] = self.clock.seconds()
        return exchange


def setup_policy(*ns: nb.Neighbor, timeout: int = 2, retries: int = 2):
    clock = Clock()
    sender = FakeSender(clock)
    settings = NeighborSettings(tuple(ns), nb.LrqFeatures(neighbor_timeout=timeout,
                                                          send_retries=retries))
    return NeighborPolicy(settings, sender, clock, "OurGK"), sender, clock


def results(d: Deferred) -> list:
    out: list = []
    d.addBoth(out.append)
    return out


RANKED = (neighbor("best", "2001"), neighbor("mid", "200"), neighbor("star", "*"),
          neighbor("other", "9"))


def test_policy_provides_the_routing_interface():
    policy, sender, _ = setup_policy(*RANKED)
    assert verifyObject(IRoutingPolicy, policy) and policy.name == "neighbor"
    assert verifyObject(ILocationSender, sender)


def test_lrqs_go_to_all_selected_neighbours_at_once():
    policy, sender, clock = setup_policy(*RANKED)
    answer = policy.route(ARQ)
    assert isinstance(answer, Deferred)
    assert sorted(sender.sent) == ["best", "mid", "star"]     # "other" does not match
    assert set(sender.sent_at.values()) == {0.0}
    assert sender.sent["best"].query.destination == (D("2001"),)
    assert sender.sent["best"].query.gatekeeper_id == "OurGK"


def test_best_ranked_lcf_wins_even_when_a_lower_one_arrives_first():
    policy, sender, clock = setup_policy(*RANKED)
    out = results(policy.route(ARQ))
    sender.sent["star"].lcf(("10.0.0.30", 1720))
    sender.sent["mid"].lcf(("10.0.0.20", 1720))
    clock.advance(1)
    assert out == []                          # "best" has not answered yet
    sender.sent["best"].lcf(("10.0.0.10", 1720), [D("2001"), h323_id("bob")])
    assert out == [Route(("10.0.0.10", 1720), None, matched="best", policy="neighbor",
                         destination=(D("2001"), h323_id("bob")))]
    assert all(e.cancelled for e in sender.sent.values())
    assert clock.getDelayedCalls() == []


def test_the_top_ranked_lcf_is_used_at_once():
    policy, sender, clock = setup_policy(*RANKED)
    out = results(policy.route(ARQ))
    sender.sent["best"].lcf(("10.0.0.10", 1720))
    assert [r.matched for r in out] == ["best"]
    assert clock.getDelayedCalls() == []


def test_a_lower_ranked_lcf_is_used_after_the_better_ones_reject():
    policy, sender, clock = setup_policy(*RANKED)
    out = results(policy.route(ARQ))
    sender.sent["star"].lcf(("10.0.0.30", 1720))
    sender.sent["best"].lrj()
    assert out == []                          # "mid" still pending, ranks above "star"
    sender.sent["mid"].lrj("notRegistered")
    assert [(r.matched, r.signal_address) for r in out] == [("star", ("10.0.0.30", 1720))]


def test_a_lower_ranked_lcf_is_used_when_the_better_ones_time_out():
    policy, sender, clock = setup_policy(*RANKED, timeout=2, retries=1)
    out = results(policy.route(ARQ))
    sender.sent["mid"].lcf(("10.0.0.20", 1720))
    clock.advance(3.9)
    assert out == []
    clock.advance(0.1)                        # 2 s x (1 + 1 retry)
    assert [r.matched for r in out] == ["mid"]
    assert sender.sent["best"].sends == 2 and sender.sent["star"].sends == 2
    assert sender.sent["mid"].sends == 1      # it answered: not re-sent


def test_all_lrj_gives_none_and_the_chain_goes_on():
    policy, sender, clock = setup_policy(*RANKED)

    @implementer(IRoutingPolicy)
    class After:
        name = "after"

        def route(self, request):
            return Route(("10.1.1.1", 1720), None, "fallback", self.name)

    out = results(Router([policy, After()]).route(ARQ))
    for exchange in list(sender.sent.values()):
        exchange.lrj()
    assert [r.policy for r in out] == ["after"]
    assert clock.getDelayedCalls() == []


def test_timeout_with_retries_resends_same_lrq_then_gives_none():
    policy, sender, clock = setup_policy(neighbor("A", "*"), neighbor("B", "*"),
                                         timeout=2, retries=2)
    out = results(policy.route(ARQ))
    counts = []
    for _ in range(3):
        counts.append((sender.sent["A"].sends, sender.sent["B"].sends))
        clock.advance(2)
    assert counts == [(1, 1), (2, 2), (3, 3)]
    assert out == [None]                      # at 6 s: NeighborTimeout x (SendRetries + 1)
    assert sender.sent["A"].cancelled and sender.sent["B"].cancelled
    assert len(sender.sent) == 2              # re-sends, not new exchanges


def test_no_retries_means_one_lrq_and_one_timeout():
    policy, sender, clock = setup_policy(neighbor("A", "*"), timeout=3, retries=0)
    out = results(policy.route(ARQ))
    clock.advance(2.9)
    assert out == []
    clock.advance(0.1)
    assert out == [None] and sender.sent["A"].sends == 1


def test_a_late_answer_after_the_decision_is_ignored():
    policy, sender, clock = setup_policy(*RANKED)
    out = results(policy.route(ARQ))
    sender.sent["best"].lcf(("10.0.0.10", 1720))
    sender.sent["mid"].lcf(("10.0.0.20", 1720))       # late: already decided
    sender.sent["star"].lrj()
    assert [r.matched for r in out] == ["best"]
    clock.advance(100)
    assert len(out) == 1


def test_an_answer_after_timeout_is_ignored():
    policy, sender, clock = setup_policy(neighbor("A", "*"), timeout=1, retries=0)
    out = results(policy.route(ARQ))
    clock.advance(1)
    sender.sent["A"].lcf()
    assert out == [None]


def test_equal_ranks_first_lcf_wins():
    policy, sender, clock = setup_policy(neighbor("A", "20"), neighbor("B", "20"))
    out = results(policy.route(ARQ))
    sender.sent["B"].lcf(("10.0.0.2", 1720))
    assert [r.matched for r in out] == ["B"]


def test_priority_orders_equal_length_prefixes():
    policy, sender, clock = setup_policy(neighbor("A", "20:=5"), neighbor("B", "20:=1"))
    out = results(policy.route(ARQ))
    sender.sent["A"].lcf(("10.0.0.1", 1720))
    assert out == []                          # B (priority 1) ranks above A (5)
    sender.sent["B"].lrj()
    assert [r.matched for r in out] == ["A"]


def test_no_matching_neighbour_or_an_lrq_passes_at_once():
    policy, sender, clock = setup_policy(neighbor("A", "9"))
    assert policy.route(ARQ) is None
    policy, sender, clock = setup_policy(neighbor("A", "*"))
    lrq = RoutingRequest((D("2001"),), None, (), None, message_type="LRQ")
    assert policy.route(lrq) is None
    assert sender.sent == {}


def test_send_failures_count_as_rejects():
    policy, sender, clock = setup_policy(neighbor("A", "2001"), neighbor("B", "*"))
    sender.fail_for.add("A")
    out = results(policy.route(ARQ))
    sender.sent["B"].lcf(("10.0.0.2", 1720))
    assert [r.matched for r in out] == ["B"]      # A (better) could not be asked
    policy, sender, clock = setup_policy(neighbor("A", "2001"), neighbor("B", "*"))
    out = results(policy.route(ARQ))
    sender.sent["B"].lcf(("10.0.0.2", 1720))
    sender.sent["A"].answer.errback(OSError("gone"))
    assert [r.matched for r in out] == ["B"]


def test_everyone_failing_to_send_gives_none_at_once():
    policy, sender, clock = setup_policy(neighbor("A", "*"))
    sender.fail_for.add("A")
    out = results(policy.route(ARQ))
    assert out == [None] and clock.getDelayedCalls() == []


def test_request_in_progress_extends_the_wait_and_stops_resends():
    policy, sender, clock = setup_policy(neighbor("A", "*"), timeout=2, retries=0)
    out = results(policy.route(ARQ))
    clock.advance(1)
    sender.sent["A"].on_progress(5000)        # RIP: 5 s more
    clock.advance(4.9)
    assert out == []
    sender.sent["A"].lcf(("10.0.0.1", 1720))
    assert [r.matched for r in out] == ["A"]
    assert sender.sent["A"].sends == 1


def test_request_in_progress_cannot_hold_a_call_for_ever():
    # one RIP waits at most RIP_LIMIT seconds
    policy, sender, clock = setup_policy(neighbor("A", "*"), timeout=1, retries=0)
    out = results(policy.route(ARQ))
    sender.sent["A"].on_progress(60000)
    clock.advance(nb.RIP_LIMIT - 0.1)
    assert out == []
    clock.advance(0.1)
    assert out == [None]
    # RIP after RIP: never past the longest wait plus RIP_LIMIT
    policy, sender, clock = setup_policy(neighbor("A", "*"), timeout=1, retries=0)
    out = results(policy.route(ARQ))
    while not out and clock.seconds() < 200:
        sender.sent["A"].on_progress(60000)
        clock.advance(0.5)
    assert out == [None]
    assert clock.seconds() == 1 + nb.RIP_LIMIT


def test_cancelling_the_route_stops_the_fan_out():
    policy, sender, clock = setup_policy(neighbor("A", "*"))
    d = policy.route(ARQ)
    d.addErrback(lambda f: None)
    d.cancel()
    assert sender.sent["A"].cancelled and clock.getDelayedCalls() == []
    sender.sent["A"].lcf()                    # late: nothing breaks


def test_new_settings_apply_to_the_next_call():
    policy, sender, clock = setup_policy(neighbor("A", "*"))
    policy.update(NeighborSettings((neighbor("B", "*"),)), "Renamed")
    results(policy.route(ARQ))
    assert list(sender.sent) == ["B"] and sender.sent["B"].query.gatekeeper_id == "Renamed"


def test_locate_with_nothing_to_ask_fires_none():
    policy, _, _ = setup_policy()
    assert results(policy.locate([])) == [None]


# -- forwarding received LRQs --------------------------------------------------------------

def forwarding(rule: str = "depends", **features) -> tuple[NeighborSettings, nb.Neighbor]:
    sender = neighbor("S", "*", host="10.0.0.100", forward_lrq=rule)
    others = (neighbor("X", "20"), neighbor("Y", "*", forward_hop_count=3),
              neighbor("G", "*", type="GlonetGk"), neighbor("Z", "9"))
    return NeighborSettings((sender,) + others, nb.LrqFeatures(**features)), sender


def names(forwards) -> list[tuple[str, int | None]]:
    return [(f.neighbor.name, f.hop_count) for f in forwards]


def test_forward_never():
    settings, sender = forwarding("never")
    assert forward_targets(5, sender, settings, [D("2001")]) == ()


def test_forward_depends_needs_hop_count_above_one_and_decrements():
    settings, sender = forwarding("depends")
    assert forward_targets(None, sender, settings, [D("2001")]) == ()
    assert forward_targets(1, sender, settings, [D("2001")]) == ()
    assert names(forward_targets(3, sender, settings, [D("2001")])) == [("X", 2), ("Y", 2)]


def test_forward_always_without_hop_count_and_zero_cuts():
    settings, sender = forwarding("always")
    # no hopCount: forwarded; the target's ForwardHopCount (>= 1) bounds it
    assert names(forward_targets(None, sender, settings, [D("2001")])) == [("X", None),
                                                                          ("Y", 3)]
    assert forward_targets(1, sender, settings, [D("2001")]) == ()     # 1 - 1 = 0
    assert names(forward_targets(2, sender, settings, [D("2001")])) == [("X", 1), ("Y", 1)]


def test_never_back_to_the_sender_nor_to_a_glonet():
    settings, sender = forwarding("always")
    forwards = forward_targets(5, sender, settings, [D("2001")])
    assert "S" not in [f.neighbor.name for f in forwards]
    assert "G" not in [f.neighbor.name for f in forwards]
    assert "Z" not in [f.neighbor.name for f in forwards]      # SendPrefixes 9: no match


def test_forwarded_destination_is_the_matching_alias():
    settings, sender = forwarding("always")
    forwards = forward_targets(5, sender, settings, [h323_id("bob"), D("2001")])
    by_name = {f.neighbor.name: f.destination for f in forwards}
    assert by_name == {"X": (D("2001"),), "Y": (h323_id("bob"), D("2001"))}


def test_non_neighbour_lrq_follows_the_features_rule():
    settings, _ = forwarding(forward_lrq="never")
    assert forward_targets(5, None, settings, [D("2001")]) == ()
    settings, _ = forwarding(forward_lrq="depends")
    # best-ranked first: X (prefix 20) before S and Y (*, file order)
    assert names(forward_targets(2, None, settings, [D("2001")])) == [
        ("X", 1), ("S", 1), ("Y", 1)]


def received_lrq(seq: int = 12, reply=("198.51.100.7", 1719)) -> ras.LocationRequest:
    return ras.parse(ras.encode(ras.NeighborLrq(
        seq, [D("2001")], reply, "Origin", [h323_id("caller")], 4, True, bytes(16))))


def test_forwarded_query_keeps_or_replaces_seq_and_reply_address():
    lrq = received_lrq()
    forward = nb.Forward(neighbor("X", "20"), 3, (D("2001"),))
    direct = forwarded_query(lrq, forward, "OurGK", our_reply=False)
    assert direct == LocationQuery((D("2001"),), (h323_id("caller"),), "Origin", 3, True,
                                   bytes(16), 12, ("198.51.100.7", 1719))
    relayed = forwarded_query(lrq, forward, "OurGK", our_reply=True)
    assert (relayed.seq, relayed.reply_address, relayed.hop_count) == (None, None, 3)


def test_recent_lrqs_cut_a_forwarding_loop():
    clock = Clock()
    recent = RecentLrqs(clock, lifetime=6)
    assert recent.first_time(received_lrq())
    assert not recent.first_time(received_lrq())                 # came back round the loop
    assert recent.first_time(received_lrq(seq=13))
    assert recent.first_time(received_lrq(reply=("198.51.100.8", 1719)))
    clock.advance(6)
    assert recent.first_time(received_lrq())                     # lifetime over


def test_recent_lrqs_stay_bounded():
    clock = Clock()
    recent = RecentLrqs(clock, lifetime=60, limit=8)
    for seq in range(1, 30):
        assert recent.first_time(received_lrq(seq=seq))
    assert len(recent._seen) <= 8


# -- tshark reads the LRQs the policy makes ---------------------------------------------------

@requires_tshark
def test_tshark_decodes_every_neighbour_type_lrq_without_malformed(tmp_path):
    setup = RoutingRequest((D("2001"), h323_id("bob")), None, (h323_id("caller"),), None,
                           message_type="Setup", call_reference=77)
    queries = [build_query(selection_for(type_, hop=hop), request, "OurGK")
               for type_ in ("GnuGk", "Generic", "CiscoGk", "ClarentGk", "GlonetGk")
               for hop, request in ((0, ARQ), (5, setup))]
    queries.append(forwarded_query(received_lrq(), nb.Forward(neighbor("X", "20"), 3,
                                                              (D("2001"),)), "OurGK", False))
    datagrams = [ras.encode(lrq_message(q, seq, ("192.0.2.1", 1719)))
                 for seq, q in enumerate(queries, 1)]
    pcap = write_udp_pcap(tmp_path / "lrq.pcap", datagrams)
    assert_no_malformed(run_tshark(pcap))
    rows = tshark_fields(pcap, ["h225.requestSeqNum", "h225.hopCount", "h225.canMapAlias",
                                "h225.gatekeeperIdentifier", "h225.dialledDigits"])
    assert len(rows) == len(queries)
    for row, (seq, query) in zip(rows, enumerate(queries, 1)):
        expected_seq = query.seq if query.seq is not None else seq
        assert row["h225.requestSeqNum"] == [str(expected_seq)]
        assert row["h225.hopCount"] == ([str(query.hop_count)] if query.hop_count else [])
        assert row["h225.gatekeeperIdentifier"] == (
            [query.gatekeeper_id] if query.gatekeeper_id else [])
        assert "2001" in row["h225.dialledDigits"]
        assert len(row["h225.canMapAlias"]) == 1
        assert row["h225.canMapAlias"][0].lower() in (("1", "true") if query.can_map_alias
                                                      else ("0", "false"))
