"""The core tables: Registry (gatekeeper.core.registry), CallTable (core.calls),
BandwidthPool (core.bandwidth) and the routing chain (core.routing)."""

from __future__ import annotations

import random

import pytest

from gatekeeper.core.bandwidth import BandwidthPool
from gatekeeper.core.calls import Call, CallTable
from gatekeeper.core.registry import Endpoint, Registry
from gatekeeper.core.routing import (
    ExplicitPolicy,
    InternalPolicy,
    Route,
    Router,
    RoutingRequest,
    default_router,
)
from gatekeeper.h225.ras import dialled_digits, h323_id

NOW = 1_800_000_000.0


def endpoint(n: int, *aliases, ttl: int | None = None, prefixes=(), permanent=False,
             endpoint_type="terminal", last_seen=NOW) -> Endpoint:
    ip = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
    return Endpoint(
        endpoint_id=f"{n}_endp",
        aliases=tuple(aliases) or (h323_id(f"ep{n}"), dialled_digits(str(100000 + n))),
        signal_addresses=((ip, 1720),), ras_address=(ip, 1719), endpoint_type=endpoint_type,
        prefixes=tuple(prefixes), registration_time=last_seen, last_seen=last_seen,
        time_to_live=ttl, permanent=permanent, source_address=(ip, 1719))


# ---------------------------------------------------------------------------
# Registry: indexes
# ---------------------------------------------------------------------------


def test_added_endpoint_is_found_by_id_alias_and_signal_address():
    registry = Registry()
    ep = registry.add(endpoint(1, h323_id("alice"), dialled_digits("1001")))
    assert len(registry) == 1
    assert "1_endp" in registry
    assert registry.get("1_endp") is ep
    assert registry.find_alias("alice") is ep
    assert registry.find_alias(dialled_digits("1001")) is ep
    assert registry.find_signal(("10.0.0.1", 1720)) is ep
    assert list(registry) == [ep]


def test_aliases_match_by_text_whatever_their_type():
    registry = Registry()
    ep = registry.add(endpoint(1, dialled_digits("1001")))
    assert registry.find_alias(h323_id("1001")) is ep


def test_lookups_of_unknown_things_return_none():
    registry = Registry()
    registry.add(endpoint(1, h323_id("alice")))
    assert registry.get("nope") is None
    assert registry.find_alias("bob") is None
    assert registry.find_signal(("10.0.0.1", 1721)) is None
    assert registry.longest_prefix("0123") is None


def test_adding_an_existing_id_is_refused():
    registry = Registry()
    registry.add(endpoint(1))
    with pytest.raises(ValueError):
        registry.add(endpoint(1, h323_id("other")))
    assert registry.find_alias("other") is None


def test_removed_endpoint_disappears_from_every_index_and_is_remembered():
    registry = Registry()
    registry.add(endpoint(1, h323_id("alice"), dialled_digits("1001"), prefixes=("09",),
                          endpoint_type="gateway"))
    removed = registry.remove("1_endp", "unregistered", NOW + 5)
    assert removed is not None and removed.endpoint_id == "1_endp"
    assert len(registry) == 0
    assert registry.get("1_endp") is None
    assert registry.find_alias("alice") is None
    assert registry.find_alias("1001") is None
    assert registry.find_signal(("10.0.0.1", 1720)) is None
    assert registry.longest_prefix("0912") is None
    assert registry.removed[-1] == (NOW + 5, "unregistered", removed, (0, 0, 0))


def test_removing_an_unknown_id_returns_none_and_remembers_nothing():
    registry = Registry()
    assert registry.remove("ghost", "x", NOW) is None
    assert len(registry.removed) == 0


def test_removed_records_are_bounded():
    registry = Registry(removed_kept=3)
    for n in range(5):
        registry.add(endpoint(n))
        registry.remove(f"{n}_endp", "gone", NOW + n)
    assert [r[2].endpoint_id for r in registry.removed] == ["2_endp", "3_endp", "4_endp"]


def test_update_reindexes_aliases_and_signal_addresses():
    registry = Registry()
    ep = registry.add(endpoint(1, h323_id("alice")))
    registry.update(ep, aliases=(h323_id("alicia"),), signal_addresses=(("10.9.9.9", 1720),))
    assert registry.find_alias("alice") is None
    assert registry.find_alias("alicia") is ep
    assert registry.find_signal(("10.0.0.1", 1720)) is None
    assert registry.find_signal(("10.9.9.9", 1720)) is ep


def test_update_sets_other_fields():
    registry = Registry()
    ep = registry.add(endpoint(1))
    registry.update(ep, endpoint_type="mcu", ras_address=("10.1.1.1", 1719))
    assert ep.endpoint_type == "mcu"
    assert ep.ras_address == ("10.1.1.1", 1719)


def test_conflicting_aliases_lists_only_aliases_of_other_endpoints():
    registry = Registry()
    alice = registry.add(endpoint(1, h323_id("alice"), dialled_digits("1001")))
    registry.add(endpoint(2, h323_id("bob")))
    wanted = (h323_id("alice"), h323_id("bob"), h323_id("carol"))
    assert registry.conflicting_aliases(wanted, alice) == [h323_id("bob")]
    assert registry.conflicting_aliases(wanted, None) == [h323_id("alice"), h323_id("bob")]


def test_find_any_alias_returns_the_first_registered_one():
    registry = Registry()
    bob = registry.add(endpoint(2, h323_id("bob")))
    assert registry.find_any_alias([h323_id("nobody"), h323_id("bob")]) is bob
    assert registry.find_any_alias([h323_id("nobody")]) is None


def test_find_ip_matches_signal_or_ras_ip():
    registry = Registry()
    one = registry.add(endpoint(1))
    registry.add(endpoint(2))
    assert registry.find_ip("10.0.0.1") == [one]
    assert registry.find_ip("10.9.9.9") == []


def test_new_endpoint_ids_are_unique_and_carry_the_suffix():
    registry = Registry(id_suffix="_gk", rng=random.Random(7))
    ids = set()
    for _ in range(1000):
        new_id = registry.new_endpoint_id()
        assert new_id.endswith("_gk")
        ids.add(new_id)
    assert len(ids) == 1000


def test_new_endpoint_id_skips_ids_in_use():
    registry = Registry(rng=random.Random(1))
    probe = Registry(rng=random.Random(1))
    taken = probe.new_endpoint_id()
    registry.add(Endpoint(taken, (), (), None))
    assert registry.new_endpoint_id() != taken


# ---------------------------------------------------------------------------
# Registry: prefixes
# ---------------------------------------------------------------------------


def test_longest_prefix_wins():
    registry = Registry()
    short = registry.add(endpoint(1, h323_id("gw-short"), prefixes=("09",),
                                  endpoint_type="gateway"))
    long = registry.add(endpoint(2, h323_id("gw-long"), prefixes=("0912",),
                                 endpoint_type="gateway"))
    assert registry.longest_prefix("091234") == (long, "0912")
    assert registry.longest_prefix("095555") == (short, "09")
    assert registry.longest_prefix("0") is None
    assert registry.longest_prefix("19") is None


def test_same_prefix_prefers_the_least_busy_gateway():
    active: dict[str, int] = {}

    class Calls:                 # the call table's part the registry uses
        def active_count(self, endpoint_id):
            return active.get(endpoint_id, 0)

    registry = Registry(calls=Calls())
    busy = registry.add(endpoint(1, h323_id("gw1"), prefixes=("09",)))
    idle = registry.add(endpoint(2, h323_id("gw2"), prefixes=("09",)))
    active[busy.endpoint_id] = 3
    assert registry.longest_prefix("0911")[0] is idle
    active[idle.endpoint_id] = 5
    assert registry.longest_prefix("0911")[0] is busy


def test_configured_prefixes_apply_to_the_endpoint_with_that_alias():
    registry = Registry(configured_prefixes={"GW1": ("07", "071")})
    gw = registry.add(endpoint(1, h323_id("GW1")))
    registry.add(endpoint(2, h323_id("other")))
    assert set(gw.prefixes) == {"07", "071"}
    assert registry.longest_prefix("0719") == (gw, "071")
    assert registry.longest_prefix("0799") == (gw, "07")


def test_configured_and_announced_prefixes_are_merged_without_duplicates():
    registry = Registry(configured_prefixes={"GW1": ("07", "09")})
    gw = registry.add(endpoint(1, h323_id("GW1"), prefixes=("09", "08")))
    assert sorted(gw.prefixes) == ["07", "08", "09"]
    assert registry.longest_prefix("0812")[0] is gw


def test_update_replaces_announced_prefixes():
    registry = Registry()
    gw = registry.add(endpoint(1, prefixes=("09",)))
    registry.update(gw, prefixes=("08",))
    assert registry.longest_prefix("0912") is None
    assert registry.longest_prefix("0812") == (gw, "08")


# ---------------------------------------------------------------------------
# Registry: expiry
# ---------------------------------------------------------------------------


def test_endpoint_without_time_to_live_never_expires():
    registry = Registry()
    registry.add(endpoint(1, ttl=None))
    assert registry.due(NOW + 10 ** 6) == []


def test_permanent_endpoint_never_expires():
    registry = Registry()
    registry.add(endpoint(1, ttl=60, permanent=True))
    assert registry.due(NOW + 10 ** 6) == []
    assert registry.get("1_endp") is not None


def test_endpoint_is_due_only_after_its_time_to_live():
    registry = Registry()
    ep = registry.add(endpoint(1, ttl=60))
    assert registry.due(NOW + 59) == []
    assert registry.due(NOW + 60) == []
    assert registry.due(NOW + 61) == [ep]
    # Handed out once: it is the caller's to poll or drop.
    assert registry.due(NOW + 62) == []


def test_touch_restarts_the_time_to_live():
    registry = Registry()
    ep = registry.add(endpoint(1, ttl=60))
    ep.irq_polls = 2
    registry.touch(ep, NOW + 50)
    assert ep.last_seen == NOW + 50
    assert ep.irq_polls == 0
    assert registry.due(NOW + 100) == []
    assert registry.due(NOW + 111) == [ep]


def test_postpone_looks_at_the_endpoint_again_later():
    registry = Registry()
    ep = registry.add(endpoint(1, ttl=60))
    assert registry.due(NOW + 61) == [ep]
    registry.postpone(ep, 10, NOW + 61)
    assert registry.due(NOW + 70) == []
    assert registry.due(NOW + 72) == [ep]


def test_removed_endpoint_is_never_due():
    registry = Registry()
    registry.add(endpoint(1, ttl=60))
    registry.remove("1_endp", "gone", NOW)
    assert registry.due(NOW + 1000) == []


def test_due_returns_everything_that_expired_since_the_last_look():
    registry = Registry()
    eps = [registry.add(endpoint(n, ttl=60 + n)) for n in range(10)]
    assert {e.endpoint_id for e in registry.due(NOW + 1000)} == {e.endpoint_id for e in eps}


# ---------------------------------------------------------------------------
# Registry: scale
# ---------------------------------------------------------------------------


def test_lookups_and_changes_stay_right_with_100000_endpoints():
    count = 100_000
    registry = Registry(configured_prefixes={"gw-configured": ("0777",)})
    for n in range(count):
        registry.add(endpoint(n, ttl=60 + n % 3600))
    gateways = [registry.add(endpoint(count + 1, h323_id("gw-short"), prefixes=("0",))),
                registry.add(endpoint(count + 2, h323_id("gw-long"), prefixes=("0912345",))),
                registry.add(endpoint(count + 3, h323_id("gw-configured")))]
    assert len(registry) == count + 3

    for n in (0, 1, 4242, 65535, 65536, count - 1):
        ep = registry.get(f"{n}_endp")
        assert ep is not None
        assert registry.find_alias(f"ep{n}") is ep
        assert registry.find_alias(str(100000 + n)) is ep
        assert registry.find_signal(ep.signal_address) is ep
    assert registry.longest_prefix("0912345678") == (gateways[1], "0912345")
    assert registry.longest_prefix("0912399999") == (gateways[0], "0")
    assert registry.longest_prefix("07771") == (gateways[2], "0777")

    # Remove every other endpoint; the rest are still found, the removed are not.
    for n in range(0, count, 2):
        assert registry.remove(f"{n}_endp", "test", NOW) is not None
    assert len(registry) == count // 2 + 3
    assert registry.get("4242_endp") is None
    assert registry.find_alias("ep4242") is None
    assert registry.find_alias("ep4243") is registry.get("4243_endp")
    assert registry.find_signal(endpoint(4242).signal_address) is None
    assert registry.find_signal(endpoint(4243).signal_address) is registry.get("4243_endp")

    # Re-adding works, and the removed ones never come due.
    registry.add(endpoint(4242, ttl=60))
    assert registry.find_alias("ep4242") is registry.get("4242_endp")
    due = registry.due(NOW + 62)   # ttl 60 + n % 3600: the odd n with n % 3600 in (0, 1)
    expected = {f"{n}_endp" for n in range(1, count, 2) if n % 3600 <= 1} | {"4242_endp"}
    assert {e.endpoint_id for e in due} == expected


# ---------------------------------------------------------------------------
# CallTable
# ---------------------------------------------------------------------------


def make_call(table: CallTable, caller="a_endp", callee="b_endp", call_id=b"\x01" * 16,
              crv=10, bandwidth=1280, admission_time=NOW) -> Call:
    return table.add(Call(
        number=table.next_number(), call_id=call_id, conference_id=call_id,
        caller_endpoint_id=caller, caller_signal_address=("10.0.0.1", 1720), caller_crv=crv,
        callee_endpoint_id=callee, callee_signal_address=("10.0.0.2", 1720),
        destination_info=(h323_id("bob"),), source_info=(h323_id("alice"),),
        bandwidth=bandwidth, admission_time=admission_time))


def test_call_numbers_increase():
    table = CallTable()
    one = make_call(table, call_id=b"\x01" * 16)
    two = make_call(table, call_id=b"\x02" * 16)
    assert (one.number, two.number) == (1, 2)
    assert [c.number for c in table] == [1, 2]
    assert table.total == 2


def test_call_is_found_by_number_call_id_and_endpoint():
    table = CallTable()
    call = make_call(table)
    assert table.get(call.number) is call
    assert table.find_call_id(b"\x01" * 16) is call
    assert table.find_call_id(None) is None
    assert table.of_endpoint("a_endp") == [call]
    assert table.of_endpoint("b_endp") == [call]


def test_find_falls_back_to_conference_id_and_call_reference():
    table = CallTable()
    call = make_call(table, crv=77)
    assert table.find("a_endp", None, b"\x01" * 16, 77) is call
    assert table.find("a_endp", None, b"\x01" * 16, 78) is None
    assert table.find("a_endp", None, b"\x02" * 16, 77) is None


def test_join_adds_the_called_side():
    table = CallTable()
    call = make_call(table, callee="")
    table.join(call, "b_endp", ("10.0.0.9", 1720), 55)
    assert call.answered
    assert call.callee_endpoint_id == "b_endp"
    assert call.callee_signal_address == ("10.0.0.9", 1720)
    assert call.crv_for("b_endp") == 55
    assert table.of_endpoint("b_endp") == [call]
    assert table.find("b_endp", None, call.conference_id, 55) is call


def test_mark_connected_counts_once_and_keeps_the_first_time():
    table = CallTable()
    call = make_call(table)
    table.mark_connected(call, NOW + 5)
    table.mark_connected(call, NOW + 9)
    assert call.connect_time == NOW + 5
    assert table.total_connected == 1


def test_end_removes_the_call_and_returns_its_record():
    table = CallTable()
    call = make_call(table, admission_time=NOW)
    table.mark_connected(call, NOW + 3)
    record = table.end(call, NOW + 45, "GK", "normalDrop")
    assert len(table) == 0
    assert table.find_call_id(call.call_id) is None
    assert table.of_endpoint("a_endp") == []
    assert record.call_number == call.number
    assert record.caller_endpoint_id == "a_endp"
    assert record.callee_endpoint_id == "b_endp"
    assert record.setup_time == NOW
    assert record.connect_time == NOW + 3
    assert record.disconnect_time == NOW + 45
    assert record.duration == 42
    assert record.caller_ip == "10.0.0.1"
    assert record.callee_ip == "10.0.0.2"
    assert record.release_reason == "normalDrop"
    assert record.gatekeeper_name == "GK"


def test_active_bandwidth_sums_the_calls():
    table = CallTable()
    make_call(table, call_id=b"\x01" * 16, bandwidth=100)
    make_call(table, call_id=b"\x02" * 16, bandwidth=250)
    assert table.active_bandwidth() == 350


# ---------------------------------------------------------------------------
# BandwidthPool
# ---------------------------------------------------------------------------


def test_unlimited_pool_grants_everything():
    pool = BandwidthPool()
    assert pool.available is None
    assert pool.take(10 ** 9)
    assert pool.change(10, 10 ** 9) == 10 ** 9


def test_pool_grants_until_exhausted_and_refuses_without_reserving():
    pool = BandwidthPool(3000)
    assert pool.take(1280)
    assert pool.take(1280)
    assert not pool.take(1280)
    assert pool.used == 2560
    assert pool.available == 440


def test_given_back_bandwidth_can_be_taken_again():
    pool = BandwidthPool(2000)
    assert pool.take(1280)
    assert not pool.take(1280)
    pool.give_back(1280)
    assert pool.take(1280)


def test_giving_back_never_goes_below_zero():
    pool = BandwidthPool(2000)
    pool.give_back(500)
    assert pool.used == 0
    assert pool.available == 2000


def test_change_grants_what_fits_and_keeps_the_old_amount_otherwise():
    pool = BandwidthPool(3000)
    pool.take(1000)
    assert pool.change(1000, 2500) == 2500
    assert pool.used == 2500
    assert pool.change(2500, 4000) == 2500
    assert pool.used == 2500
    assert pool.change(2500, 100) == 100
    assert pool.used == 100


# ---------------------------------------------------------------------------
# Routing
# ---------------------------------------------------------------------------


def request(*destination, address=None, caller=None):
    return RoutingRequest(tuple(destination), address, (), caller)


def test_explicit_policy_routes_to_the_named_address_and_recognises_its_endpoint():
    registry = Registry()
    bob = registry.add(endpoint(2, h323_id("bob")))
    policy = ExplicitPolicy(registry)
    assert policy.route(request(address=("10.0.0.2", 1720))) == Route(
        ("10.0.0.2", 1720), bob, "10.0.0.2:1720", "explicit")
    unknown = policy.route(request(address=("192.0.2.7", 1720)))
    assert unknown.signal_address == ("192.0.2.7", 1720)
    assert unknown.endpoint is None
    assert policy.route(request(h323_id("bob"))) is None


def test_internal_policy_prefers_an_exact_alias_over_a_prefix():
    registry = Registry()
    registry.add(endpoint(1, h323_id("gw"), prefixes=("09",)))
    exact = registry.add(endpoint(2, dialled_digits("0912")))
    route = InternalPolicy(registry).route(request(dialled_digits("0912")))
    assert route.endpoint is exact
    assert route.matched == "0912"
    assert route.policy == "internal"


def test_internal_policy_routes_digits_by_longest_prefix():
    registry = Registry()
    registry.add(endpoint(1, h323_id("gw-short"), prefixes=("09",)))
    long = registry.add(endpoint(2, h323_id("gw-long"), prefixes=("091",)))
    route = InternalPolicy(registry).route(request(dialled_digits("091555")))
    assert (route.endpoint, route.matched) == (long, "091")
    assert route.signal_address == ("10.0.0.2", 1720)


def test_internal_policy_does_not_prefix_route_names():
    registry = Registry()
    registry.add(endpoint(1, h323_id("gw"), prefixes=("09",)))
    assert InternalPolicy(registry).route(request(h323_id("0912"))) is None


def test_internal_policy_passes_on_unknown_destinations():
    assert InternalPolicy(Registry()).route(request(h323_id("nobody"))) is None


def test_router_takes_the_first_answer_in_policy_order():
    registry = Registry()
    bob = registry.add(endpoint(2, h323_id("bob")))
    router = default_router(registry)
    assert router.names == ["explicit", "internal"]
    by_address = router.route(request(h323_id("bob"), address=("192.0.2.7", 1720)))
    assert by_address.policy == "explicit"
    assert by_address.signal_address == ("192.0.2.7", 1720)
    by_alias = router.route(request(h323_id("bob")))
    assert by_alias.policy == "internal" and by_alias.endpoint is bob
    assert router.route(request(h323_id("nobody"))) is None


def test_router_with_no_policies_routes_nothing():
    assert Router([]).route(request(h323_id("bob"))) is None
