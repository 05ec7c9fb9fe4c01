"""``[Gatekeeper::Main] AlternateGKs`` (issue 12): the alternate gatekeepers
named in GCF and RCF to endpoints that say supportsAltGK, and in a URQ with
reason maintenance, as GnuGk does."""

from __future__ import annotations

import dataclasses

import pytest

from gatekeeper import config
from gatekeeper.h225 import ras
from gatekeeper.testing import FakeEndpoint
from oracles import (assert_no_malformed, pdml_values, requires_tshark, run_tshark, tshark_pdml,
                     write_udp_pcap)
from test_ras_controller import Gatekeeper

ALTERNATES = (ras.AlternateGk(("192.0.2.20", 1719), False, 120, "GK2"),
              ras.AlternateGk(("192.0.2.30", 1721), True, 5, None))


def parse(value: str):
    return config.parse(config.read_ini(f"[Gatekeeper::Main]\nAlternateGKs={value}\n", "gk.ini"))


def test_alternate_gks_are_read_in_gnugk_form():
    main = parse("192.0.2.20;1719;false;120;GK2, 192.0.2.30:1721:true:5").main
    assert main.alternate_gatekeepers == ALTERNATES
    assert config.parse(config.read_ini("", "gk.ini")).main.alternate_gatekeepers == ()


@pytest.mark.parametrize("value, why", [
    ("gk2.example;1719;false;1;GK2", "'gk2.example' is not an IPv4 address"),
    ("192.0.2.20;0;false;1;GK2", "port '0' is not 1-65535"),
    ("192.0.2.20;1719;perhaps;1;GK2", "needToRegister 'perhaps' is not true or false"),
    ("192.0.2.20;1719;false;128;GK2", "priority '128' is not 0-127"),
    ("192.0.2.20;1719", "is not ip;port;needToRegister;priority;gkid"),
])
def test_bad_alternate_gks_are_refused_naming_section_key_and_value(value, why):
    with pytest.raises(config.ConfigError) as raised:
        parse(value)
    assert str(raised.value) == f"gk.ini: [Gatekeeper::Main] AlternateGKs={value}: {why}" or (
        f"[Gatekeeper::Main] AlternateGKs={value}" in str(raised.value)
        and why in str(raised.value))


@pytest.fixture
def gk() -> Gatekeeper:
    gk = Gatekeeper()
    gk.controller.reconfigure(dataclasses.replace(gk.controller.config,
                                                  alternate_gatekeepers=ALTERNATES))
    return gk


def phone(supports: bool) -> FakeEndpoint:
    return FakeEndpoint(["1001"], ("10.0.0.1", 1720), ("10.0.0.1", 1719),
                        supports_alt_gk=supports)


def answer(gk: Gatekeeper, endpoint: FakeEndpoint, data: bytes) -> ras.RasPdu:
    [(reply, _address)] = gk.send(data, endpoint.ras_address)
    return endpoint.read(reply)


def expected() -> list[tuple]:
    return sorted(((a.ras_address, a.need_to_register, a.priority, a.gatekeeper_id)
                   for a in ALTERNATES), key=lambda a: a[2])


def test_gcf_and_rcf_name_the_alternates_to_an_endpoint_that_supports_them(gk):
    endpoint = phone(True)
    assert answer(gk, endpoint, endpoint.grq()).kind == "gatekeeperConfirm"
    assert endpoint.alternates == expected()
    endpoint.alternates = []
    assert answer(gk, endpoint, endpoint.rrq()).kind == "registrationConfirm"
    assert endpoint.alternates == expected()
    # A keepalive that says supportsAltGK gets them too (not the cached template).
    endpoint.alternates = []
    pdu = answer(gk, endpoint, endpoint.rrq(lightweight=True))
    assert pdu.kind == "registrationConfirm" and endpoint.alternates == expected()


def test_no_alternates_for_an_endpoint_that_does_not_say_it_supports_them(gk):
    endpoint = phone(False)
    gcf = answer(gk, endpoint, endpoint.grq())
    rcf = answer(gk, endpoint, endpoint.rrq())
    keepalive = answer(gk, endpoint, endpoint.rrq(lightweight=True))
    for pdu in (gcf, rcf, keepalive):
        assert "alternateGatekeeper" not in pdu.raw, pdu.kind


def test_no_alternates_configured_none_sent():
    gk = Gatekeeper()
    endpoint = phone(True)
    assert "alternateGatekeeper" not in answer(gk, endpoint, endpoint.rrq()).raw


def test_urq_for_maintenance_names_the_alternates(gk):
    endpoint = phone(True)
    answer(gk, endpoint, endpoint.rrq())
    registered = gk.registry.get(endpoint.endpoint_id)
    gk.controller.unregister(registered, "maintenance")
    [(urq, _address)] = gk.transport.take()
    pdu = ras.parse(urq)
    assert pdu.kind == "unregistrationRequest"
    assert [ras.transport_from_asn(a["rasAddress"]) for a in pdu.raw["alternateGatekeeper"]] == [
        a.ras_address for a in ALTERNATES]
    endpoint.answer(urq)
    assert endpoint.alternates == expected()


def test_urq_for_another_reason_names_none(gk):
    endpoint = phone(True)
    answer(gk, endpoint, endpoint.rrq())
    gk.controller.unregister(gk.registry.get(endpoint.endpoint_id), "undefinedReason")
    [(urq, _address)] = gk.transport.take()
    assert "alternateGatekeeper" not in ras.parse(urq).raw


@requires_tshark
def test_tshark_decodes_the_alternates_we_send(gk, tmp_path):
    endpoint = phone(True)
    replies = [gk.send(endpoint.grq(), endpoint.ras_address)[0][0],
               gk.send(endpoint.rrq(), endpoint.ras_address)[0][0]]
    pcap = write_udp_pcap(tmp_path / "alt.pcap", replies, src=("192.0.2.1", 1719),
                          dst=("10.0.0.1", 1719))
    assert_no_malformed(run_tshark(pcap))
    for packet in tshark_pdml(pcap):
        assert pdml_values(packet, "h225.priority") == ["120", "5"]
        assert "GK2" in pdml_values(packet, "h225.gatekeeperIdentifier")
        assert pdml_values(packet, "h225.needToRegister") in (["0", "1"], ["False", "True"])
