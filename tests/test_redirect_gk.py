"""``[Gatekeeper::Main] RedirectGK`` (issue 12): past ``Endpoints > N`` new
registrations, past ``Calls > M`` new calls, and with ``temporary`` or
``permanent`` every GRQ, new registration and call are refused with
resourceUnavailable and altGKInfo naming the AlternateGKs, as GnuGk does."""

from __future__ import annotations

import dataclasses
import random

import pytest

from gatekeeper import config
from gatekeeper import events as ev
from gatekeeper.core.failover import FailoverSettings, RedirectRule
from gatekeeper.core.registry import Registry
from gatekeeper.h225 import codec, ras
from gatekeeper.status.formats import format_event
from gatekeeper.testing import FakeEndpoint
from oracles import (assert_no_malformed, pdml_values, requires_tshark, run_tshark, tshark_pdml,
                     write_udp_pcap)
from test_ras_controller import GK_ADDRESS, Gatekeeper

ALTERNATES = (ras.AlternateGk(("192.0.2.20", 1719), False, 120, "GK2"),
              ras.AlternateGk(("192.0.2.30", 1721), True, 5, None))


def parse(value: str):
    return config.parse(config.read_ini(f"[Gatekeeper::Main]\nRedirectGK={value}\n"
                                        "AlternateGKs=192.0.2.20;1719;false;120;GK2\n", "gk.ini"))


@pytest.mark.parametrize("value, rule", [
    ("Endpoints > 10; Calls > 5", RedirectRule(endpoints=10, calls=5)),
    ("Endpoints>3", RedirectRule(endpoints=3)),
    ("calls > 0", RedirectRule(calls=0)),
    ("Calls > 2 | Endpoints > 1", RedirectRule(endpoints=1, calls=2)),
    ("temporary", RedirectRule(mode="temporary")),
    ("Permanent", RedirectRule(mode="permanent")),
    ("", RedirectRule()),
])
def test_redirect_gk_is_read_in_gnugk_form(value, rule):
    assert parse(value).main.failover.redirect == rule


@pytest.mark.parametrize("value, why", [
    ("Endpoints > many", "'many' in 'Endpoints > many' is not a whole number"),
    ("Endpoints < 10", "'Endpoints < 10' is not 'Endpoints > N' or 'Calls > M'"),
    ("Registrations > 10", "is not 'Endpoints > N' or 'Calls > M'"),
    ("sometimes", "is not 'Endpoints > N' or 'Calls > M'"),
    ("Calls > 1; Calls > 2", "calls is limited twice"),
])
def test_bad_redirect_gk_is_refused_naming_section_key_and_value(value, why):
    with pytest.raises(config.ConfigError) as raised:
        parse(value)
    assert f"[Gatekeeper::Main] RedirectGK={value}" in str(raised.value)
    assert why in str(raised.value)


def test_redirect_without_alternates_is_warned_about():
    parsed = config.parse(config.read_ini("[Gatekeeper::Main]\nRedirectGK=temporary\n", "gk.ini"))
    assert any("RedirectGK is set but AlternateGKs is not" in w for w in parsed.warnings)


def gatekeeper(rule: RedirectRule, alternates=ALTERNATES) -> Gatekeeper:
    gk = Gatekeeper(registry=Registry(rng=random.Random(3)))
    gk.controller.reconfigure(dataclasses.replace(
        gk.controller.config, alternate_gatekeepers=alternates,
        failover=FailoverSettings(redirect=rule)))
    return gk


def phone(number: str, host: str) -> FakeEndpoint:
    return FakeEndpoint([number], (host, 1720), (host, 1719))


def alternates_of(info: dict) -> list[tuple]:
    return [(ras.transport_from_asn(a["rasAddress"]), a["needToRegister"], a["priority"],
             a.get("gatekeeperIdentifier")) for a in info["alternateGatekeeper"]]


EXPECTED = [(a.ras_address, a.need_to_register, a.priority, a.gatekeeper_id) for a in ALTERNATES]


def status_lines(gk: Gatekeeper, kind: type) -> list[str]:
    return [format_event(e) for e in gk.events if isinstance(e, kind)]


def test_past_the_endpoint_limit_new_registrations_go_to_the_alternates():
    gk = gatekeeper(RedirectRule(endpoints=1))
    first, second = phone("1001", "10.0.0.1"), phone("1002", "10.0.0.2")
    assert gk.ask(first, first.rrq()).kind == "registrationConfirm"
    rrj = gk.ask(second, second.rrq())
    assert (rrj.kind, rrj.reason) == ("registrationReject", "resourceUnavailable")
    assert alternates_of(rrj.raw["altGKInfo"]) == EXPECTED
    assert rrj.raw["altGKInfo"]["altGKisPermanent"] is False
    assert status_lines(gk, ev.RegistrationRejected) == [
        "RRJ|10.0.0.2|1002:dialedDigits|terminal|resourceUnavailable;"]
    # the registered one goes on: keepalives and full renewals
    assert gk.ask(first, first.rrq(lightweight=True)).kind == "registrationConfirm"
    assert gk.ask(first, first.rrq(keepalive=True)).kind == "registrationConfirm"
    # room again once the first leaves
    gk.ask(first, first.urq())
    assert gk.ask(second, second.rrq()).kind == "registrationConfirm"


def test_other_rejects_carry_no_alt_gk_info():
    gk = gatekeeper(RedirectRule(endpoints=5))
    first, thief = phone("1001", "10.0.0.1"), phone("1001", "10.0.0.2")
    gk.ask(first, first.rrq())
    rrj = gk.ask(thief, thief.rrq())
    assert rrj.reason == "duplicateAlias" and "altGKInfo" not in rrj.raw


def test_past_the_call_limit_new_calls_go_to_the_alternates():
    gk = gatekeeper(RedirectRule(calls=1))
    alice, bob, carol = (phone("100%d" % n, "10.0.0.%d" % n) for n in (1, 2, 3))
    for endpoint in (alice, bob, carol):
        gk.register(endpoint)
    gk.call(alice, bob)                        # the first call, and bob's answer ARQ
    arj = gk.ask(carol, carol.arq(["1001"]))
    assert (arj.kind, arj.reason) == ("admissionReject", "resourceUnavailable")
    assert alternates_of(arj.raw["altGKInfo"]) == EXPECTED
    line = status_lines(gk, ev.AdmissionRejected)[-1]
    assert line.startswith(
        "ARJ|10.0.0.3:1720|1001:dialedDigits|1003:dialedDigits|false|resourceUnavailable|")
    # a retransmitted ARQ of the call already up is answered as before
    call_id = list(alice.calls)[-1]
    again = gk.ask(alice, alice.arq(["1002"], call_id=call_id))
    assert again.kind == "admissionConfirm"


def test_the_answering_side_of_a_call_is_never_redirected():
    gk = gatekeeper(RedirectRule(calls=0))
    alice, bob = phone("1001", "10.0.0.1"), phone("1002", "10.0.0.2")
    gk.register(alice)
    gk.register(bob)
    assert gk.ask(alice, alice.arq(["1002"])).reason == "resourceUnavailable"
    answer = gk.ask(bob, bob.arq(answer_call=True, call_id=ras.new_guid()))
    assert answer.kind == "admissionConfirm"


def test_an_unregistered_caller_is_refused_as_before():
    gk = gatekeeper(RedirectRule(calls=0))
    stranger = phone("1009", "10.0.0.9")
    stranger.endpoint_id = "nobody_endp"
    arj = gk.ask(stranger, stranger.arq(["1001"]))
    assert arj.reason == "callerNotRegistered" and "altGKInfo" not in arj.raw


@pytest.mark.parametrize("mode, permanent", [("temporary", False), ("permanent", True)])
def test_temporary_and_permanent_redirect_grq_rrq_and_arq(mode, permanent):
    gk = gatekeeper(RedirectRule())
    alice, bob = phone("1001", "10.0.0.1"), phone("1002", "10.0.0.2")
    gk.register(alice)
    gk.register(bob)
    gk.controller.reconfigure(dataclasses.replace(
        gk.controller.config, failover=FailoverSettings(redirect=RedirectRule(mode=mode))))
    newcomer = phone("1003", "10.0.0.3")
    grj = gk.ask(newcomer, newcomer.grq())
    rrj = gk.ask(newcomer, newcomer.rrq())
    arj = gk.ask(alice, alice.arq(["1002"]))
    for pdu, kind in ((grj, "gatekeeperReject"), (rrj, "registrationReject"),
                      (arj, "admissionReject")):
        assert (pdu.kind, pdu.reason) == (kind, "resourceUnavailable")
        assert alternates_of(pdu.raw["altGKInfo"]) == EXPECTED
        assert pdu.raw["altGKInfo"]["altGKisPermanent"] is permanent
    assert status_lines(gk, ev.GatekeeperRejected) == [
        "GRJ|10.0.0.3|1003|terminal|resourceUnavailable;"]
    # registered endpoints keep their registration
    assert gk.ask(alice, alice.rrq(lightweight=True)).kind == "registrationConfirm"


def test_without_alternates_the_reject_names_none():
    gk = gatekeeper(RedirectRule(mode="temporary"), alternates=())
    newcomer = phone("1003", "10.0.0.3")
    rrj = gk.ask(newcomer, newcomer.rrq())
    assert rrj.reason == "resourceUnavailable" and "altGKInfo" not in rrj.raw


def test_copies_of_an_alternates_registrations_do_not_count_and_are_not_redirected():
    gk = gatekeeper(RedirectRule(endpoints=1))
    gk.controller.reconfigure(dataclasses.replace(
        gk.controller.config, alternate_gatekeepers=(ras.AlternateGk(("192.0.2.9", 1719)),),
        failover=FailoverSettings(redirect=RedirectRule(endpoints=1))))
    for n in (1, 2):
        copy = phone(f"200{n}", f"10.0.1.{n}")
        copy.endpoint_id = f"{n}_other"
        kind, value = copy.rrq_message(keepalive=True)
        value["keepAlive"] = False
        value["nonStandardData"] = ras.failover_marker()
        assert gk.send(codec.encode_ras((kind, value)), ("192.0.2.9", 1719)) == []
    assert len(gk.registry) == 2
    local = phone("1001", "10.0.0.1")
    assert gk.ask(local, local.rrq()).kind == "registrationConfirm"
    other = phone("1002", "10.0.0.2")
    assert gk.ask(other, other.rrq()).reason == "resourceUnavailable"


def test_reload_changes_the_redirect():
    gk = gatekeeper(RedirectRule(mode="temporary"))
    newcomer = phone("1003", "10.0.0.3")
    assert gk.ask(newcomer, newcomer.rrq()).kind == "registrationReject"
    parsed = config.parse(config.read_ini("[Gatekeeper::Main]\nRedirectGK=Endpoints > 5\n",
                                          "gk.ini"))
    gk.controller.reconfigure(dataclasses.replace(gk.controller.config,
                                                  failover=parsed.main.failover))
    assert gk.ask(newcomer, newcomer.rrq()).kind == "registrationConfirm"


@requires_tshark
def test_tshark_decodes_the_redirect_rejects(tmp_path):
    gk = gatekeeper(RedirectRule())
    alice, newcomer = phone("1001", "10.0.0.1"), phone("1003", "10.0.0.3")
    gk.register(alice)
    gk.controller.reconfigure(dataclasses.replace(
        gk.controller.config, failover=FailoverSettings(redirect=RedirectRule(mode="permanent"))))
    replies = [gk.send(data, endpoint.ras_address)[0][0] for endpoint, data in (
        (newcomer, newcomer.grq()), (newcomer, newcomer.rrq()), (alice, alice.arq(["1002"])))]
    assert [codec.decode_ras(r)[0] for r in replies] == [
        "gatekeeperReject", "registrationReject", "admissionReject"]
    pcap = write_udp_pcap(tmp_path / "redirect.pcap", replies, src=GK_ADDRESS,
                          dst=alice.ras_address)
    assert_no_malformed(run_tshark(pcap))
    packets = tshark_pdml(pcap)
    assert len(packets) == 3
    for packet in packets:
        assert pdml_values(packet, "h225.priority") == ["120", "5"]
        assert "GK2" in pdml_values(packet, "h225.gatekeeperIdentifier")
        assert pdml_values(packet, "h225.altGKisPermanent") in (["1"], ["True"])


def test_a_service_reload_changes_send_to_and_redirect_gk_and_a_bad_file_is_refused(tmp_path):
    from test_reload import ask, make

    path = tmp_path / "gk.ini"
    path.write_text("[Gatekeeper::Main]\nName=GK1\nSendTo=192.0.2.2\nRedirectGK=Endpoints > 1\n"
                    "AlternateGKs=192.0.2.20;1719;false;120;GK2\n")
    service = make(path)
    service.controller.forwarder.clock = service.clock    # as make() does for the others
    transport = service.ras_protocol.transport
    first, second = phone("1001", "10.0.0.1"), phone("1002", "10.0.0.2")
    assert ask(service, first, first.rrq()).kind == "registrationConfirm"
    service.clock.advance(0)
    [(copy, address)] = transport.take()
    assert address == ("192.0.2.2", 1719) and ras.is_failover_marked(codec.decode_ras(copy)[1])
    assert ask(service, second, second.rrq()).reason == "resourceUnavailable"
    # a host name is refused: the running configuration stays
    path.write_text("[Gatekeeper::Main]\nName=GK1\nSendTo=gk2.example.com\n")
    ok, detail = service.reload("signal")
    assert not ok and "[Gatekeeper::Main] SendTo=gk2.example.com" in detail
    assert ask(service, second, second.rrq()).reason == "resourceUnavailable"
    path.write_text("[Gatekeeper::Main]\nName=GK1\n")
    assert service.reload("signal")[0]
    assert ask(service, second, second.rrq()).kind == "registrationConfirm"
    service.clock.advance(0)
    assert transport.take() == []
