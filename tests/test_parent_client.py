"""The parent gatekeeper client (gatekeeper/ras/client.py) on a Clock with a fake transport."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from gatekeeper import events as ev
from gatekeeper.configfile import ConfigError, read_ini
from gatekeeper.core.routing import Route, RoutingRequest
from gatekeeper.h225 import codec, ras
from gatekeeper.ras.client import (EndpointSettings, ParentClient, ParentPolicy, gk_lines,
                                   parse_endpoint)
from gatekeeper.testing import FakeDatagramTransport
from oracles import assert_no_malformed, requires_tshark, run_tshark, tshark_fields, write_udp_pcap

PARENT = ("127.0.0.1", 2719)
OURS = ("127.0.0.1", 40000)
SIGNAL = ("127.0.0.1", 1721)


def settings(**kw) -> EndpointSettings:
    base = dict(parent=PARENT, h323_ids=("child",), prefixes=("9",), time_to_live=60,
                retry_interval=3)
    base.update(kw)
    return EndpointSettings(**base)


def make(**kw) -> tuple[ParentClient, FakeDatagramTransport, Clock]:
    clock = Clock()
    client = ParentClient(settings(**kw), clock, lambda: SIGNAL)
    transport = FakeDatagramTransport(host=OURS)
    client.makeConnection(transport)
    return client, transport, clock


def sent(transport: FakeDatagramTransport) -> list[ras.RasPdu]:
    out = []
    for data, address in transport.take():
        assert address == PARENT
        out.append(ras.parse(data))
    return out


def answer(client: ParentClient, message: tuple) -> None:
    client.datagramReceived(codec.encode_ras(message), PARENT)


def register(client, transport, ttl=60) -> ras.RasPdu:
    """Drive discovery and registration; return the full RRQ."""
    client.start()
    [grq] = sent(transport)
    assert grq.kind == "gatekeeperRequest"
    answer(client, ras.gcf(grq.seq, "ParentGK", PARENT))
    [rrq] = sent(transport)
    assert rrq.kind == "registrationRequest"
    answer(client, ras.rcf(rrq.seq, [PARENT], "EP-1", "ParentGK", time_to_live=ttl))
    assert client.registered
    return rrq


# -- settings ------------------------------------------------------------------


def test_endpoint_section_parsed_with_gnugk_defaults():
    ini = read_ini("[Endpoint]\nGatekeeper=10.0.0.1\nPrefix=9,8\nE164=1234\n", "gk.ini")
    parsed, warnings = parse_endpoint(ini, "MyGK")
    assert parsed.parent == ("10.0.0.1", 1719)
    assert parsed.endpoint_type == "gateway"
    assert parsed.h323_ids == ("MyGK",)
    assert parsed.e164 == ("1234",)
    assert parsed.prefixes == ("9", "8")
    assert (parsed.time_to_live, parsed.retry_interval, parsed.discovery) == (60, 3, True)
    assert warnings == []


def test_endpoint_section_absent_means_no_parent():
    parsed, _ = parse_endpoint(read_ini("[Gatekeeper::Main]\nName=x\n"), "x")
    assert not parsed.configured
    parsed, _ = parse_endpoint(read_ini("[Endpoint]\nGatekeeper=no\n"), "x")
    assert not parsed.configured


def test_auto_and_password_warned():
    parsed, warnings = parse_endpoint(read_ini("[Endpoint]\nGatekeeper=auto\nPassword=s\n"), "x")
    assert not parsed.configured
    assert any("auto" in w for w in warnings)
    assert any("H.235" in w for w in warnings)


@pytest.mark.parametrize("key,value", [("Gatekeeper", "parent.example"), ("Type", "MCU"),
                                       ("TimeToLive", "0"), ("RRQRetryInterval", "x"),
                                       ("Discovery", "maybe"), ("Prefix", "9a"),
                                       ("Gatekeeper", "1.2.3.4:99999")])
def test_bad_values_refused_naming_section_key_value(key, value):
    ini = read_ini(f"[Endpoint]\n{key}={value}\n", "gk.ini")
    with pytest.raises(ConfigError) as error:
        parse_endpoint(ini, "x")
    assert error.value.section == "Endpoint"
    assert error.value.key == key
    assert error.value.value == value


def test_unknown_key_warned():
    _, warnings = parse_endpoint(read_ini("[Endpoint]\nBogus=1\n", "gk.ini"), "x")
    assert warnings and "Bogus" in warnings[0]


# -- lifecycle ------------------------------------------------------------------


def test_discovery_then_full_rrq_as_gateway_with_prefix_and_addresses():
    client, transport, _ = make(e164=("5551",))
    rrq = register(client, transport)
    value = rrq.raw
    assert "gateway" in value["terminalType"]
    assert ras.supported_prefixes(value["terminalType"]) == (ras.dialled_digits("9"),)
    assert ras.transports_from_asn(value["rasAddress"]) == (OURS,)
    assert ras.transports_from_asn(value["callSignalAddress"]) == (SIGNAL,)
    assert ras.aliases_from_asn(value["terminalAlias"]) == (ras.h323_id("child"),
                                                             ras.dialled_digits("5551"))
    assert value["timeToLive"] == 60
    assert value["keepAlive"] is False
    assert value["gatekeeperIdentifier"] == "ParentGK"
    assert client.endpoint_id == "EP-1"
    assert gk_lines(client) == [f"127.0.0.1:2719\tEP-1"]


def test_terminal_type_and_no_discovery():
    client, transport, _ = make(endpoint_type="terminal", discovery=False)
    client.start()
    [rrq] = sent(transport)
    assert rrq.kind == "registrationRequest"
    assert "terminal" in rrq.raw["terminalType"]


def test_gcf_from_another_gatekeeper_identifier_is_not_used():
    client, transport, clock = make(gatekeeper_id="Wanted")
    client.start()
    [grq] = sent(transport)
    assert grq.raw["gatekeeperIdentifier"] == "Wanted"
    answer(client, ras.gcf(grq.seq, "Other", PARENT))
    assert sent(transport) == []
    assert "Other" in client.gk_lines()[0]
    clock.advance(6)          # retry after the doubled interval
    assert [p.kind for p in sent(transport)] == ["gatekeeperRequest"]


def test_lightweight_keepalive_before_ttl_runs_out():
    client, transport, clock = make()
    register(client, transport, ttl=40)
    clock.advance(29)
    assert sent(transport) == []
    clock.advance(1.5)
    [keepalive] = sent(transport)
    assert keepalive.raw["keepAlive"] is True
    assert keepalive.raw["endpointIdentifier"] == "EP-1"
    assert keepalive.raw["rasAddress"] == []
    answer(client, ras.rcf(keepalive.seq, [PARENT], "EP-1", "ParentGK", time_to_live=40))
    assert client.registered
    clock.advance(30.5)
    assert [p.raw["keepAlive"] for p in sent(transport)] == [True]


def test_no_answer_retries_doubling_up_to_x128():
    client, transport, clock = make(discovery=False, retry_interval=1)
    client.start()
    times = []
    assert len(sent(transport)) == 1
    for _ in range(10):
        before = clock.seconds()
        while not transport.written:
            clock.advance(1)
        times.append(clock.seconds() - before)
        assert [p.kind for p in sent(transport)] == ["registrationRequest"]
    assert times == [1, 2, 4, 8, 16, 32, 64, 128, 128, 128]
    assert client.gk_lines() == ["not registered\tparent not answering"]


def test_rrj_reason_kept_and_retried_later():
    client, transport, clock = make(discovery=False)
    client.start()
    [rrq] = sent(transport)
    answer(client, ras.rrj(rrq.seq, "securityDenial"))
    assert not client.registered
    assert client.gk_lines() == ["not registered\tRRJ securityDenial"]
    clock.advance(5.9)
    assert sent(transport) == []
    clock.advance(0.2)
    [again] = sent(transport)
    assert again.kind == "registrationRequest" and again.raw["keepAlive"] is False


def test_parent_restart_keepalive_rejected_means_full_registration():
    client, transport, clock = make()
    register(client, transport, ttl=20)
    clock.advance(15)
    [keepalive] = sent(transport)
    answer(client, ras.rrj(keepalive.seq, "fullRegistrationRequired"))
    [full] = sent(transport)
    assert full.kind == "registrationRequest" and full.raw["keepAlive"] is False
    answer(client, ras.rcf(full.seq, [PARENT], "EP-2", "ParentGK", time_to_live=20))
    assert client.gk_lines() == ["127.0.0.1:2719\tEP-2"]


def test_parent_restart_keepalive_unanswered_then_full_registration():
    client, transport, clock = make()
    register(client, transport, ttl=20)
    clock.advance(15)
    [keepalive] = sent(transport)
    clock.advance(6)             # the keepalive waits 3 s, then one full RRQ (next wait 6 s)
    kinds = [(p.kind, p.raw.get("keepAlive")) for p in sent(transport)]
    assert kinds == [("registrationRequest", False)]
    assert not client.registered


def test_urq_from_parent_answered_ucf_and_registration_again():
    client, transport, _ = make()
    register(client, transport)
    answer(client, ras.urq(77, [PARENT], "EP-1", "ParentGK", "maintenance"))
    written = sent(transport)
    assert written[0].kind == "unregistrationConfirm" and written[0].seq == 77
    assert written[1].kind == "gatekeeperRequest"
    assert not client.registered


def test_irq_from_parent_answered_irr():
    client, transport, _ = make()
    register(client, transport)
    answer(client, ras.irq(55))
    [irr] = sent(transport)
    assert irr.kind == "infoRequestResponse" and irr.seq == 55
    assert irr.raw["endpointIdentifier"] == "EP-1"


def test_urq_to_parent_at_stop_and_timers_cancelled():
    client, transport, clock = make()
    register(client, transport)
    client.stop()
    [urq] = sent(transport)
    assert urq.kind == "unregistrationRequest"
    assert urq.raw["endpointIdentifier"] == "EP-1"
    assert clock.getDelayedCalls() == []
    assert client.gk_lines()[0].startswith("not registered")


def test_malformed_and_foreign_datagrams_counted_not_raised():
    client, transport, _ = make()
    register(client, transport)
    client.datagramReceived(b"\xff\x00garbage", PARENT)
    client.datagramReceived(b"", PARENT)
    client.datagramReceived(codec.encode_ras(ras.ucf(9)), ("127.0.0.1", 9999))
    client.datagramReceived(codec.encode_ras(ras.ucf(999)), PARENT)   # nothing asked
    assert client.counts["malformed"] == 2
    assert client.counts["foreign"] == 1
    assert client.counts["unexpected"] == 1
    assert client.registered


# -- the parent policy ---------------------------------------------------------------


def request(**kw) -> RoutingRequest:
    base = dict(destination=(ras.dialled_digits("3003"),), dest_signal_address=None,
                source=(ras.dialled_digits("1001"),), caller=None, call_id=b"C" * 16,
                call_reference=42)
    base.update(kw)
    return RoutingRequest(**base)


def test_parent_policy_arq_acf_gives_route_and_drq_at_call_end():
    client, transport, _ = make()
    register(client, transport)
    policy = ParentPolicy(client)
    results = []
    policy.route(request()).addCallback(results.append)
    [arq] = sent(transport)
    assert arq.kind == "admissionRequest"
    assert arq.raw["endpointIdentifier"] == "EP-1"
    assert ras.aliases_from_asn(arq.raw["destinationInfo"]) == (ras.dialled_digits("3003"),)
    assert ras.aliases_from_asn(arq.raw["srcInfo"]) == (ras.dialled_digits("1001"),)
    assert arq.raw["callIdentifier"]["guid"] == b"C" * 16
    assert arq.raw["callReferenceValue"] == 42
    answer(client, ras.acf(arq.seq, 1280, ("10.1.1.1", 1720)))
    assert results == [Route(("10.1.1.1", 1720), None, "10.1.1.1:1720", "parent")]
    client.observe(object())             # not a CDR: nothing
    assert sent(transport) == []
    cdr = ev.CallDetailRecord.__new__(ev.CallDetailRecord)
    object.__setattr__(cdr, "call_id", b"C" * 16)
    client.observe(cdr)
    [drq] = sent(transport)
    assert drq.kind == "disengageRequest"
    assert drq.raw["callIdentifier"]["guid"] == b"C" * 16
    assert drq.raw["endpointIdentifier"] == "EP-1"
    client.observe(cdr)                  # only once
    assert sent(transport) == []


def test_parent_policy_dest_address_forwarded():
    client, transport, _ = make()
    register(client, transport)
    ParentPolicy(client).route(request(dest_signal_address=("10.2.2.2", 1720)))
    [arq] = sent(transport)
    assert ras.transport_from_asn(arq.raw["destCallSignalAddress"]) == ("10.2.2.2", 1720)


def test_parent_policy_arj_and_timeout_pass():
    client, transport, clock = make()
    register(client, transport)
    policy = ParentPolicy(client)
    results = []
    policy.route(request()).addCallback(results.append)
    [arq] = sent(transport)
    answer(client, ras.arj(arq.seq, "calledPartyNotRegistered"))
    policy.route(request(call_id=b"D" * 16)).addCallback(results.append)
    sent(transport)
    clock.advance(2.1)
    assert results == [None, None]
    assert client.counts["arj"] == 1 and client.counts["arq timeout"] == 1
    assert client.registered              # an ARQ timeout is not a lost registration


def test_parent_policy_passes_when_not_registered_or_for_lrq():
    client, transport, _ = make()
    policy = ParentPolicy(client)
    assert policy.route(request()) is None
    register(client, transport)
    assert policy.route(request(message_type="LRQ")) is None
    assert sent(transport) == []


def test_gk_lines_without_parent_is_gnugk_text():
    assert gk_lines(None) == ["not registered\t"]


def test_keepalive_follows_our_ttl_when_the_parent_grants_more():
    client, transport, clock = make(time_to_live=8)
    register(client, transport, ttl=60)
    clock.advance(6.1)
    [keepalive] = sent(transport)
    assert keepalive.raw["keepAlive"] is True


def test_reconfigure_with_new_settings_unregisters_and_registers_again():
    client, transport, _ = make()
    register(client, transport)
    client.reconfigure(settings())                 # the same: nothing happens
    assert sent(transport) == [] and client.registered
    client.reconfigure(settings(prefixes=("8",)))
    urq, grq = sent(transport)
    assert (urq.kind, grq.kind) == ("unregistrationRequest", "gatekeeperRequest")
    answer(client, ras.gcf(grq.seq, "ParentGK", PARENT))
    [rrq] = sent(transport)
    assert ras.supported_prefixes(rrq.raw["terminalType"]) == (ras.dialled_digits("8"),)


def test_reconfigure_to_no_parent_unregisters_and_stays_stopped():
    client, transport, clock = make()
    register(client, transport)
    client.reconfigure(settings(parent=None))
    [urq] = sent(transport)
    assert urq.kind == "unregistrationRequest"
    clock.advance(600)
    assert sent(transport) == []
    assert client.state == "stopped"


@requires_tshark
def test_tshark_decodes_everything_the_client_sends_without_malformed(tmp_path):
    client, transport, clock = make(e164=("5551",), gatekeeper_id="ParentGK")
    client.start()
    datagrams = [d for d, _ in transport.written]                      # GRQ
    answer(client, ras.gcf(ras.parse(datagrams[0]).seq, "ParentGK", PARENT))
    datagrams = [d for d, _ in transport.written]                      # + full RRQ
    answer(client, ras.rcf(ras.parse(datagrams[-1]).seq, [PARENT], "EP-1", "ParentGK",
                           time_to_live=60))
    clock.advance(45)                                                  # keepalive
    ParentPolicy(client).route(request(dest_signal_address=("10.2.2.2", 1720)))   # ARQ
    arq = ras.parse(transport.written[-1][0])
    answer(client, ras.acf(arq.seq, 1280, ("10.1.1.1", 1720)))
    cdr = ev.CallDetailRecord.__new__(ev.CallDetailRecord)
    object.__setattr__(cdr, "call_id", b"C" * 16)
    client.observe(cdr)                                                # DRQ
    answer(client, ras.irq(55))                                        # IRR
    client.stop()                                                      # URQ
    datagrams = [d for d, _ in transport.written]
    kinds = [ras.parse(d).kind for d in datagrams]
    assert kinds == ["gatekeeperRequest", "registrationRequest", "registrationRequest",
                     "admissionRequest", "disengageRequest", "infoRequestResponse",
                     "unregistrationRequest"]
    pcap = write_udp_pcap(tmp_path / "client.pcap", datagrams)    # to port 1719: RAS
    assert_no_malformed(run_tshark(pcap))
    rows = tshark_fields(pcap, ["h225.requestSeqNum", "h225.endpointIdentifier",
                                "h225.dialledDigits"])
    assert [r["h225.requestSeqNum"] for r in rows] == [[str(ras.parse(d).seq)]
                                                        for d in datagrams]
    assert rows[2]["h225.endpointIdentifier"] == ["EP-1"]          # the keepalive
    assert rows[3]["h225.endpointIdentifier"] == ["EP-1"]          # the ARQ
    assert "5551" in rows[1]["h225.dialledDigits"]                 # the full RRQ's E164
