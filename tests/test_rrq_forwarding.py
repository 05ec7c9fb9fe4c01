"""``[Gatekeeper::Main] SendTo`` and ``SkipForwards`` (issue 12): the RRQs
and URQs a gatekeeper accepts are copied to its alternates, marked with
GnuGk's failover nonStandardData, and the alternate keeps the copies so that
an endpoint failing over to it can call at once.  Two controllers on fake
transports, time on a Clock."""

from __future__ import annotations

import dataclasses
import random

import pytest

from gatekeeper import config
from gatekeeper.core.failover import FailoverSettings
from gatekeeper.core.registry import Registry
from gatekeeper.h225 import codec, ras
from gatekeeper.ras.controller import RasConfig
from gatekeeper.testing import FakeEndpoint
from oracles import (assert_no_malformed, pdml_values, requires_tshark, run_tshark, tshark_pdml,
                     write_udp_pcap)
from test_ras_controller import GK_ADDRESS, Gatekeeper

GK1 = GK_ADDRESS                      # where GK1's copies come from
GK2 = ("192.0.2.2", 1719)
GK3 = ("192.0.2.3", 1719)
MARKER = {"t35CountryCode": 255, "t35Extension": 255, "manufacturerCode": 4242}


def gatekeeper(name: str, send_to=(), skip=(), alternates=(), seed: int = 1,
               **settings) -> Gatekeeper:
    gk = Gatekeeper(registry=Registry(rng=random.Random(seed)), gatekeeper_id=name, **settings)
    gk.controller.reconfigure(dataclasses.replace(
        gk.controller.config, alternate_gatekeepers=tuple(alternates),
        failover=FailoverSettings(tuple(send_to), frozenset(skip))))
    return gk


def alternate(address) -> ras.AlternateGk:
    return ras.AlternateGk(address, False, 10, "GK")


@pytest.fixture
def gk1() -> Gatekeeper:
    return gatekeeper("GK1", send_to=[GK2], alternates=[alternate(GK2)])


@pytest.fixture
def gk2() -> Gatekeeper:
    return gatekeeper("GK2", alternates=[alternate(GK1)], seed=2)


def forwarded(gk: Gatekeeper) -> list[tuple[bytes, tuple]]:
    """What ``gk`` sends once the answers of this turn are out."""
    gk.clock.advance(0)
    return gk.transport.take()


def relay(src: Gatekeeper, dst: Gatekeeper, source=GK1) -> list[tuple[bytes, tuple]]:
    """Deliver ``src``'s forwarded copies to ``dst``; what ``dst`` answered."""
    answers = []
    for data, _address in forwarded(src):
        answers += dst.send(data, source)
    return answers


def phone(number: str, host: str = "10.0.0.1", port: int = 1719) -> FakeEndpoint:
    return FakeEndpoint([number], (host, 1720), (host, port), supports_alt_gk=True)


def test_an_accepted_rrq_goes_to_every_send_to_address_after_the_answer():
    gk = gatekeeper("GK1", send_to=[GK2, GK3])
    alice = phone("1001")
    alice._seq = 500
    written = gk.send(alice.rrq(), alice.ras_address)
    # the answer first, alone
    assert [address for _data, address in written] == [alice.ras_address]
    assert alice.read(written[0][0]).kind == "registrationConfirm"
    copies = forwarded(gk)
    assert [address for _data, address in copies] == [GK2, GK3]
    for data, _address in copies:
        kind, value = codec.decode_ras(data)
        assert kind == "registrationRequest"
        assert value["endpointIdentifier"] == alice.endpoint_id
        assert value["nonStandardData"] == {
            "nonStandardIdentifier": ("h221NonStandard", MARKER),
            "data": alice.endpoint_id.encode()}
        assert value["keepAlive"] is False
        assert ras.transports_from_asn(value["rasAddress"]) == (alice.ras_address,)
        assert ras.transports_from_asn(value["callSignalAddress"]) == (alice.signal_address,)
        assert ras.aliases_from_asn(value["terminalAlias"]) == alice.aliases
        assert value["requestSeqNum"] != 501            # our own sequence numbers
    seqs = {codec.decode_ras(data)[1]["requestSeqNum"] for data, _ in copies}
    assert len(seqs) == 2
    assert gk.controller.stats["forwarded RRQ"] == 2


def test_forwarding_does_not_change_the_answers():
    plain, forwarding = gatekeeper("GK1"), gatekeeper("GK1", send_to=[GK2])
    answers = []
    for gk in (plain, forwarding):
        alice = phone("1001")
        rcf = gk.send(alice.rrq(), alice.ras_address)
        alice.read(rcf[0][0])
        answers.append([rcf, gk.send(alice.rrq(lightweight=True), alice.ras_address),
                        gk.send(alice.urq(), alice.ras_address)])
    assert answers[0] == answers[1]
    assert forwarded(plain) == []
    assert [codec.decode_ras(d)[0] for d, _ in forwarded(forwarding)] == [
        "registrationRequest", "registrationRequest", "unregistrationRequest"]


def test_keepalives_and_urqs_are_forwarded_with_our_endpoint_identifier(gk1):
    alice = phone("1001")
    gk1.register(alice)
    forwarded(gk1)
    assert gk1.ask(alice, alice.rrq(lightweight=True)).kind == "registrationConfirm"
    [(data, address)] = forwarded(gk1)
    kind, value = codec.decode_ras(data)
    assert (kind, address, value["keepAlive"]) == ("registrationRequest", GK2, True)
    assert value["endpointIdentifier"] == alice.endpoint_id
    # a lightweight RRQ names no aliases; the copy still does (from the registration)
    assert ras.aliases_from_asn(value["terminalAlias"]) == alice.aliases
    endpoint_id = alice.endpoint_id
    assert gk1.ask(alice, alice.urq()).kind == "unregistrationConfirm"
    [(data, address)] = forwarded(gk1)
    kind, value = codec.decode_ras(data)
    assert (kind, address, value["endpointIdentifier"]) == (
        "unregistrationRequest", GK2, endpoint_id)
    assert ras.is_failover_marked(value)


def test_a_refused_rrq_is_not_forwarded(gk1):
    alice, mallory = phone("1001"), phone("1001", "10.0.0.9")
    gk1.register(alice)
    forwarded(gk1)
    assert gk1.ask(mallory, mallory.rrq()).kind == "registrationReject"
    assert forwarded(gk1) == []


def test_our_own_urq_is_forwarded_too(gk1):
    alice = phone("1001")
    gk1.register(alice)
    forwarded(gk1)
    gk1.controller.unregister(gk1.registry.get(alice.endpoint_id), "maintenance")
    written = forwarded(gk1)
    kinds = sorted((codec.decode_ras(d)[0], a) for d, a in written)
    assert kinds == sorted([("unregistrationRequest", GK2),
                            ("unregistrationRequest", alice.ras_address)])


def test_the_alternate_keeps_the_copy_without_answering_and_admits_the_endpoint(gk1, gk2):
    alice, bob = phone("1001"), phone("1002", "10.0.0.2")
    gk1.register(alice)
    gk1.register(bob)
    assert relay(gk1, gk2) == []                      # never answered
    copy = gk2.registry.get(alice.endpoint_id)
    assert copy is not None and copy.aliases == alice.aliases
    assert copy.ras_address == alice.ras_address and copy.signal_address == alice.signal_address
    assert gk2.controller.registration.is_copy(copy)
    assert gk2.controller.stats["forwarded registration"] == 2
    # GK1 is gone: alice asks GK2 straight away, with GK1's identifier
    acf = gk2.ask(alice, alice.arq(["1002"]))
    assert acf.kind == "admissionConfirm"
    assert alice.calls[list(alice.calls)[-1]].signal_address == bob.signal_address


def test_a_copy_is_not_forwarded_again():
    gk1 = gatekeeper("GK1", send_to=[GK2])
    gk2 = gatekeeper("GK2", send_to=[GK3, GK1], alternates=[alternate(GK1)], seed=2)
    alice = phone("1001")
    gk1.register(alice)
    relay(gk1, gk2)
    assert gk2.registry.get(alice.endpoint_id) is not None
    assert forwarded(gk2) == []


def test_rrqs_from_a_skip_forwards_ip_count_as_forwarded():
    # a peer that forwards without GnuGk's marker, named in SkipForwards
    gk2 = gatekeeper("GK2", skip=["192.0.2.7"], send_to=[GK3])
    alice = phone("1001")
    alice.endpoint_id = "77_endp"
    _, value = alice.rrq_message(keepalive=True)
    value["keepAlive"] = False
    written = gk2.send(codec.encode_ras(("registrationRequest", value)), ("192.0.2.7", 1719))
    assert written == []
    assert gk2.controller.registration.is_copy(gk2.registry.get("77_endp"))
    assert forwarded(gk2) == []


def test_a_marked_rrq_from_a_stranger_is_dropped(gk1, gk2):
    alice = phone("1001")
    gk1.register(alice)
    assert relay(gk1, gk2, source=("198.51.100.5", 1719)) == []
    assert gk2.registry.get(alice.endpoint_id) is None
    assert gk2.controller.stats["forwarded RAS refused"] == 1
    assert len(gk2.registry) == 0


def test_a_forwarded_urq_removes_the_copy_quietly(gk1, gk2):
    alice = phone("1001")
    gk1.register(alice)
    relay(gk1, gk2)
    gk1.ask(alice, alice.urq())
    assert relay(gk1, gk2) == []
    assert gk2.registry.get(alice.endpoint_id) is None
    assert gk2.controller.stats["forwarded unregistration"] == 1


def test_an_endpoint_that_moved_to_the_alternate_is_not_removed_by_a_late_urq(gk1, gk2):
    alice = phone("1001")
    gk1.register(alice)
    relay(gk1, gk2)
    # alice fails over: her keepalive now goes to GK2, which takes her on
    assert gk2.ask(alice, alice.rrq(lightweight=True)).kind == "registrationConfirm"
    assert not gk2.controller.registration.is_copy(gk2.registry.get(alice.endpoint_id))
    gk1.controller.unregister(gk1.registry.get(alice.endpoint_id), "ttlExpired")
    relay(gk1, gk2)
    assert gk2.registry.get(alice.endpoint_id) is not None


def test_a_full_rrq_at_the_alternate_renews_the_copy_under_the_same_identifier(gk1, gk2):
    alice = phone("1001")
    gk1.register(alice)
    relay(gk1, gk2)
    first_id = alice.endpoint_id
    alice.endpoint_id = None
    rcf = gk2.ask(alice, alice.rrq())
    assert rcf.kind == "registrationConfirm" and alice.endpoint_id == first_id
    assert not gk2.controller.registration.is_copy(gk2.registry.get(first_id))


def test_a_copy_never_blocks_an_endpoint_registering_at_the_alternate(gk1, gk2):
    alice = phone("1001")
    gk1.register(alice)
    relay(gk1, gk2)
    # the same alias from another address, registering at GK2 itself
    moved = phone("1001", "10.0.0.5")
    assert gk2.ask(moved, moved.rrq()).kind == "registrationConfirm"
    assert gk2.registry.get(alice.endpoint_id) is None
    assert gk2.registry.find_alias("1001").endpoint_id == moved.endpoint_id
    assert gk2.transport.take() == []       # the copy went without a URQ to anyone


def test_a_copy_does_not_take_a_local_endpoints_aliases(gk1, gk2):
    local = phone("1001", "10.0.0.5")
    gk2.register(local)
    alice = phone("1001")
    gk1.register(alice)
    relay(gk1, gk2)
    assert gk2.registry.get(alice.endpoint_id) is None
    assert gk2.registry.find_alias("1001").endpoint_id == local.endpoint_id
    assert gk2.controller.stats["forwarded RAS ignored"] == 1


def test_a_copy_expires_silently(gk2):
    gk1 = gatekeeper("GK1", send_to=[GK2], time_to_live=60)
    alice = phone("1001")
    gk1.register(alice)
    relay(gk1, gk2)
    assert gk2.registry.get(alice.endpoint_id).time_to_live == 60
    gk2.clock.advance(65)
    assert gk2.registry.get(alice.endpoint_id) is not None   # the poll's grace
    gk2.clock.advance(15)
    assert gk2.registry.get(alice.endpoint_id) is None
    assert gk2.transport.take() == []                # no IRQ, no URQ to alice


def test_forwarded_keepalives_keep_the_copy_alive(gk2):
    gk1 = gatekeeper("GK1", send_to=[GK2], time_to_live=60)
    alice = phone("1001")
    gk1.register(alice)
    relay(gk1, gk2)
    for _ in range(4):
        gk1.clock.advance(50)
        gk2.clock.advance(50)
        assert gk1.ask(alice, alice.rrq(lightweight=True)).kind == "registrationConfirm"
        relay(gk1, gk2)
    assert gk2.registry.get(alice.endpoint_id) is not None
    assert gk2.controller.stats["forwarded keepalive"] == 4


def test_a_forwarded_keepalive_rebuilds_a_lost_copy(gk1, gk2):
    alice = phone("1001")
    gk1.register(alice)
    forwarded(gk1)                      # GK2 was down then: lost
    gk1.ask(alice, alice.rrq(lightweight=True))
    relay(gk1, gk2)
    assert gk2.registry.get(alice.endpoint_id).aliases == alice.aliases


def test_answers_to_our_copies_are_swallowed_and_counted(gk1):
    alice = phone("1001")
    gk1.register(alice)
    [(data, _)] = forwarded(gk1)
    seq = codec.decode_ras(data)[1]["requestSeqNum"]
    rrj = ras.encode(ras.Rrj(seq, "fullRegistrationRequired", "GK2"))
    assert gk1.send(rrj, GK2) == []
    assert gk1.controller.stats["forwarded RAS answered"] == 1
    assert gk1.controller.stats["unexpected"] == 0
    # anything else from there is still unexpected
    gk1.send(ras.encode(ras.Rrj(seq + 7, "fullRegistrationRequired", "GK2")), GK2)
    assert gk1.controller.stats["unexpected"] == 1


def test_reload_changes_send_to():
    gk = gatekeeper("GK1")
    text = "[Gatekeeper::Main]\nName=GK1\nSendTo=192.0.2.2:1719\n"
    parsed = config.parse(config.read_ini(text, "gk.ini"))
    gk.controller.reconfigure(dataclasses.replace(
        gk.controller.config, failover=parsed.main.failover))
    alice = phone("1001")
    gk.register(alice)
    assert [a for _, a in forwarded(gk)] == [GK2]
    gk.controller.reconfigure(RasConfig(gk.controller.settings))
    gk.ask(alice, alice.rrq(lightweight=True))
    assert forwarded(gk) == []


def parse(text: str):
    return config.parse(config.read_ini(f"[Gatekeeper::Main]\n{text}\n", "gk.ini"))


def test_send_to_and_skip_forwards_are_read_in_gnugk_form():
    main = parse("SendTo=192.0.2.2:1720, 192.0.2.3;192.0.2.2:1720\n"
                 "SkipForwards=192.0.2.7 192.0.2.8,192.0.2.9").main
    assert main.failover.send_to == (("192.0.2.2", 1720), ("192.0.2.3", 1719))
    assert main.failover.skip_forwards == {"192.0.2.7", "192.0.2.8", "192.0.2.9"}
    assert parse("").main.failover == FailoverSettings()


@pytest.mark.parametrize("line, why", [
    ("SendTo=gk2.example.com:1719", "'gk2.example.com' is not an IP address (host names"),
    ("SendTo=192.0.2.2:0", "port '0' is not 1-65535"),
    ("SendTo=192.0.2.2:http", "port 'http' is not 1-65535"),
    ("SkipForwards=gk2.example.com", "'gk2.example.com' is not an IP address"),
])
def test_bad_send_to_and_skip_forwards_are_refused_naming_section_key_and_value(line, why):
    with pytest.raises(config.ConfigError) as raised:
        parse(line)
    assert f"[Gatekeeper::Main] {line}" in str(raised.value)
    assert why in str(raised.value)


@requires_tshark
def test_tshark_decodes_the_forwarded_rrq_and_urq(gk1, tmp_path):
    gateway = FakeEndpoint(["gw1"], ("10.0.0.3", 1720), ("10.0.0.3", 1719),
                           endpoint_type="gateway", prefixes=("9", "0044"))
    gk1.register(gateway)
    endpoint_id = gateway.endpoint_id
    gk1.ask(gateway, gateway.urq())
    copies = [data for data, _ in forwarded(gk1)]
    assert len(copies) == 2
    pcap = write_udp_pcap(tmp_path / "forwarded.pcap", copies, src=GK1, dst=GK2)
    assert_no_malformed(run_tshark(pcap))
    rrq, urq = tshark_pdml(pcap)
    # the marker first (the RRQ's endpointVendor names its own T.35 codes after it)
    for packet in (rrq, urq):
        assert pdml_values(packet, "h225.t35CountryCode")[0] == "255"
        assert pdml_values(packet, "h225.t35Extension")[0] == "255"
        assert pdml_values(packet, "h225.manufacturerCode")[0] == "4242"
    assert pdml_values(urq, "h225.t35CountryCode") == ["255"]
    assert endpoint_id in pdml_values(rrq, "h225.endpointIdentifier")
    assert endpoint_id in pdml_values(urq, "h225.endpointIdentifier")
    assert "9" in pdml_values(rrq, "h225.dialledDigits")


def test_stopping_sends_the_copies_still_queued_and_leaves_no_timer(gk1):
    alice = phone("1001")
    gk1.register(alice)
    assert gk1.clock.getDelayedCalls()          # the copy waits for the next turn
    gk1.controller.stop()
    [(data, address)] = gk1.transport.take()
    assert (codec.decode_ras(data)[0], address) == ("registrationRequest", GK2)
    assert gk1.clock.getDelayedCalls() == []


def test_pycrate_reads_the_copies_and_the_redirect_rejects_as_we_wrote_them(gk1):
    pytest.importorskip("pycrate_asn1dir", reason="pycrate is the test-only H.225.0 oracle")
    from test_pycrate_oracle import RAS_TYPE, assert_pycrate_reads

    gateway = FakeEndpoint(["gw1", "5550"], ("10.0.0.3", 1720), ("10.0.0.3", 1719),
                           endpoint_type="gateway", prefixes=("9",))
    gk1.register(gateway)
    gk1.ask(gateway, gateway.rrq(lightweight=True))
    gk1.ask(gateway, gateway.urq())
    copies = [data for data, _ in forwarded(gk1)]
    info = ras.AltGkInfo((alternate(GK2), ras.AlternateGk(GK3, True, 5)), True)
    rejects = [ras.encode(message) for message in (
        ras.Grj(3, "resourceUnavailable", "GK1", alt_gk_info=info),
        ras.Rrj(4, "resourceUnavailable", "GK1", alt_gk_info=info),
        ras.Arj(5, "resourceUnavailable", alt_gk_info=info))]
    assert len(copies) == 3
    for number, data in enumerate(copies + rejects):
        assert_pycrate_reads(RAS_TYPE, codec.decode_ras(data), data, f"message {number}")
