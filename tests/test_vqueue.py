"""Virtual queues: calls held for an external application's answer.

The whole service runs on a Clock: endpoints send real encoded RAS to the RAS
protocol, status sessions run over StringTransport, and the tests read the
decoded replies and the exact status lines.
"""

from __future__ import annotations

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from gatekeeper import config as configuration
from gatekeeper import events as ev
from gatekeeper.configfile import ConfigError, read_ini
from gatekeeper.core.routing import (
    DEFAULT_CHAIN,
    Route,
    Router,
    RoutingRequest,
    parse_routing,
)
from gatekeeper.core.vqueue import parse_virtual_queues
from gatekeeper.h225 import ras
from gatekeeper.h225.ras import dialled_digits, h323_id
from gatekeeper.ras.controller import RasSettings
from gatekeeper.service import GatekeeperService, ListenSettings
from gatekeeper.testing import FakeDatagramTransport, FakeEndpoint

CONFIG = """
[RoutingPolicy]
default=explicit,vqueue,internal

[CTI::Agents]
VirtualQueueAliases=queue1,queue2
VirtualQueuePrefixes=0800
VirtualQueueRegex=^sales[0-9]+$
RequestTimeout=10
"""


class Session:
    """A status client on a StringTransport."""

    def __init__(self, service: GatekeeperService, port: int, trace: int = 2) -> None:
        self.clock = service.clock
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port),
                                         hostAddress=IPv4Address("TCP", "127.0.0.1", 7000))
        self.session = service.status.buildProtocol(None)
        self.session.makeConnection(self.transport)
        self.say(f"trace {trace}")
        self.take()

    def flush(self) -> None:
        for _ in range(20):
            self.clock.advance(0)

    def take(self) -> list[str]:
        self.flush()
        data = self.transport.value()
        self.transport.clear()
        return [line for line in data.decode("latin-1").split("\r\n") if line]

    def say(self, line: str) -> list[str]:
        self.take()
        self.session.dataReceived(line.encode() + b"\r\n")
        return self.take()


class Gatekeeper:
    def __init__(self, text: str = CONFIG) -> None:
        self.clock = Clock()
        self.clock.advance(1_795_702_393)
        config = configuration.parse(read_ini(text, "test.ini"))
        assert config.warnings == ()
        self.service = GatekeeperService(RasSettings(gatekeeper_id="GK"),
                                         ListenSettings(status_port=0, discovery_port=0),
                                         self.clock, config)
        self.transport = FakeDatagramTransport()
        self.service.ras_protocol.transport = self.transport
        self.service.ras_protocol.startProtocol()
        self.events: list[object] = []
        self.service.bus.subscribe(self.events.append)

    def send(self, endpoint: FakeEndpoint, data: bytes) -> list[ras.RasPdu]:
        """Deliver a datagram; the decoded messages sent back to ``endpoint``."""
        self.service.ras_protocol.datagramReceived(data, endpoint.ras_address)
        return self.replies(endpoint)

    def replies(self, endpoint: FakeEndpoint) -> list[ras.RasPdu]:
        written = self.transport.take()
        assert all(address == endpoint.ras_address for _, address in written), written
        return [endpoint.read(data) for data, _ in written]

    def register(self, endpoint: FakeEndpoint) -> None:
        (reply,) = self.send(endpoint, endpoint.rrq())
        assert reply.kind == "registrationConfirm"

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


def phone(n: int, *aliases: str) -> FakeEndpoint:
    return FakeEndpoint(list(aliases), (f"10.0.0.{n}", 1720), (f"10.0.0.{n}", 1719))


@pytest.fixture
def gk() -> Gatekeeper:
    return Gatekeeper()


@pytest.fixture
def parties(gk):
    caller, agent = phone(1, "1001", "alice"), phone(2, "2002", "agent1")
    gk.register(caller)
    gk.register(agent)
    return caller, agent


def queue_call(gk, caller, destination="queue1", crv=77):
    """The caller dials a queue: RIP comes back at once."""
    data = caller.arq([destination], crv=crv)
    (reply,) = gk.send(caller, data)
    assert reply.kind == "requestInProgress"
    assert reply.raw["delay"] == 12_000          # RequestTimeout + 2 s, in ms
    return data, list(caller.calls)[-1]


def route_request_line(caller, crv, queue, call_id, message="ARQ") -> str:
    return (f"RouteRequest|10.0.0.1:1720|{caller.endpoint_id}|{crv}|{queue}|1001|"
            f"{ras.guid_dashed(call_id)}||gatekeeper.testing 1|10.0.0.1:1719|{message};")


# -- configuration -----------------------------------------------------------


def test_cti_agents_section_is_read_with_its_defaults():
    settings, warnings = parse_virtual_queues(read_ini(CONFIG))
    assert settings.aliases == ("queue1", "queue2")
    assert settings.prefixes == ("0800",)
    assert settings.regex == "^sales[0-9]+$"
    assert settings.request_timeout == 10.0
    assert warnings == []
    empty, _ = parse_virtual_queues(read_ini(""))
    assert not empty.configured and empty.request_timeout == 10.0


@pytest.mark.parametrize("key, value, problem", [
    ("VirtualQueueRegex", "([a", "not a regular expression"),
    ("RequestTimeout", "soon", "not a number"),
    ("RequestTimeout", "0", "more than 0"),
])
def test_bad_cti_agents_values_are_refused_with_key_and_value(key, value, problem):
    with pytest.raises(ConfigError) as raised:
        parse_virtual_queues(read_ini(f"[CTI::Agents]\n{key}={value}\n", "gk.ini"))
    error = raised.value
    assert (error.path, error.section, error.key, error.value) == ("gk.ini", "CTI::Agents", key,
                                                                    value)
    assert problem in error.problem


def test_unknown_cti_key_is_a_warning():
    _, warnings = parse_virtual_queues(read_ini("[CTI::Agents]\nAgentsMax=3\n", "gk.ini"))
    assert warnings == ["gk.ini: [CTI::Agents] AgentsMax: unknown key, ignored"]


def test_routing_policy_chains_default_and_by_alias_type_and_prefix():
    settings, warnings = parse_routing(read_ini(
        "[RoutingPolicy]\ndefault=internal\nh323_ID=vqueue,internal\n0049=explicit\n"
        "[RoutingPolicy::OnLRQ]\ndefault=vqueue\n"))
    assert warnings == []
    assert settings.default_chain() == ("internal",)
    assert settings.chains[("", "h323-ID")] == ("vqueue", "internal")
    assert settings.chains[("", "0049")] == ("explicit",)
    assert settings.chains[("LRQ", "default")] == ("vqueue",)
    assert parse_routing(read_ini(""))[0].default_chain() == DEFAULT_CHAIN


def test_unsupported_routing_policy_is_skipped_with_a_warning():
    settings, warnings = parse_routing(read_ini("[RoutingPolicy]\ndefault=internal,sql\n",
                                                "gk.ini"))
    assert settings.default_chain() == ("internal",)
    assert warnings == ["gk.ini: [RoutingPolicy] default: routing policy 'sql' is not "
                        "supported here, skipped"]
    with pytest.raises(ConfigError) as raised:
        parse_routing(read_ini("[RoutingPolicy]\ndefault= , \n", "gk.ini"))
    assert raised.value.key == "default" and raised.value.problem == "no policy named"


def test_virtual_queues_without_vqueue_in_any_chain_give_a_warning():
    config = configuration.parse(read_ini("[CTI::Agents]\nVirtualQueueAliases=q\n", "gk.ini"))
    assert any("no [RoutingPolicy] chain has vqueue" in w for w in config.warnings)


def test_router_picks_chain_by_message_type_then_alias_type_then_prefix():
    class Named:
        def __init__(self, name):
            self.name = name

        def route(self, request):
            return Route(("192.0.2.9", 1720), policy=self.name)

    a, b, c, d = Named("a"), Named("b"), Named("c"), Named("d")
    router = Router([a], {("", "h323-ID"): [b], ("", "00"): [c], ("", "0049"): [d],
                          ("LRQ", "default"): [a]})

    def via(alias, message_type="ARQ"):
        return router.route(RoutingRequest((alias,), None, (), None, message_type)).policy

    assert via(h323_id("bob")) == "b"
    assert via(dialled_digits("0049301")) == "d"     # the longest prefix
    assert via(dialled_digits("0033")) == "c"
    assert via(dialled_digits("123")) == "a"
    assert via(h323_id("bob"), "LRQ") == "a"


# -- route to alias ------------------------------------------------------------


def test_route_to_alias_answers_the_held_arq_with_the_agent(gk, parties):
    caller, agent = parties
    acd, quiet = Session(gk.service, 40001, trace=1), Session(gk.service, 40002, trace=0)
    _, call_id = queue_call(gk, caller)
    assert acd.take() == [route_request_line(caller, 77, "queue1", call_id)]
    assert quiet.take() == []
    assert list(gk.service.calls) == []

    assert acd.say(f"RouteToAlias agent1 {caller.endpoint_id} 77") == []
    (acf,) = gk.replies(caller)
    assert acf.kind == "admissionConfirm"
    assert acf.raw["requestSeqNum"] == caller.answers[-2].raw["requestSeqNum"]
    assert ras.transport_from_asn(acf.raw["destCallSignalAddress"]) == ("10.0.0.2", 1720)
    assert ras.aliases_from_asn(acf.raw["destinationInfo"]) == (h323_id("agent1"),)
    (call,) = list(gk.service.calls)
    assert call.callee_endpoint_id == agent.endpoint_id
    assert not gk.service.virtual_queues.pending

    # The call ends: the CDR names the agent.
    (dcf,) = gk.send(caller, caller.drq(call_id))
    assert dcf.kind == "disengageConfirm"
    (cdr,) = gk.of(ev.CallDetailRecord)
    assert cdr.callee_endpoint_id == agent.endpoint_id
    assert cdr.callee_signal_address == ("10.0.0.2", 1720)
    assert cdr.destination_info == (h323_id("agent1"),)


def test_route_to_alias_prints_nothing_on_success_and_events_follow(gk, parties):
    caller, _ = parties
    acd = Session(gk.service, 40001, trace=2)
    queue_call(gk, caller)
    acd.take()
    lines = acd.say(f"rta agent1 {caller.endpoint_id} 77")
    assert [line for line in lines if line.startswith("Error")] == []
    assert any(line.startswith("ACF|10.0.0.1:1720|") for line in lines)


def test_prefix_and_regex_queues_publish_the_dialled_alias_as_queue(gk, parties):
    caller, _ = parties
    acd = Session(gk.service, 40001, trace=1)
    _, first = queue_call(gk, caller, "08001234", crv=5)
    _, second = queue_call(gk, caller, "sales12", crv=6)
    assert acd.take() == [route_request_line(caller, 5, "08001234", first),
                          route_request_line(caller, 6, "sales12", second)]


# -- route to gateway and reject ---------------------------------------------------


def test_route_to_gateway_sends_the_caller_to_the_given_address(gk, parties):
    caller, _ = parties
    acd = Session(gk.service, 40001, trace=1)
    queue_call(gk, caller)
    assert acd.say(f"RouteToGateway sip-gw 192.0.2.50:1721 {caller.endpoint_id} 77") == []
    (acf,) = gk.replies(caller)
    assert acf.kind == "admissionConfirm"
    assert ras.transport_from_asn(acf.raw["destCallSignalAddress"]) == ("192.0.2.50", 1721)
    (call,) = list(gk.service.calls)
    assert call.callee_endpoint_id == "" and call.callee_signal_address == ("192.0.2.50", 1721)


def test_route_to_gateway_port_defaults_to_1720(gk, parties):
    caller, _ = parties
    acd = Session(gk.service, 40001, trace=1)
    queue_call(gk, caller)
    acd.say(f"rtg gw 192.0.2.50 {caller.endpoint_id} 77")
    (acf,) = gk.replies(caller)
    assert ras.transport_from_asn(acf.raw["destCallSignalAddress"]) == ("192.0.2.50", 1720)


@pytest.mark.parametrize("extra, reason", [
    ("", "calledPartyNotRegistered"),
    (" - requestDenied", "requestDenied"),
])
def test_route_reject_answers_arj(gk, parties, extra, reason):
    caller, _ = parties
    acd = Session(gk.service, 40001, trace=1)
    _, call_id = queue_call(gk, caller)
    if extra:
        extra = f" {ras.guid_dashed(call_id)} {extra.split()[-1]}"
    assert acd.say(f"RouteReject {caller.endpoint_id} 77{extra}") == []
    (arj,) = gk.replies(caller)
    assert arj.kind == "admissionReject"
    assert arj.raw["rejectReason"][0] == reason
    assert list(gk.service.calls) == []
    assert gk.of(ev.AdmissionRejected)[-1].reason == reason


def test_route_reject_with_an_unknown_reason_is_an_error_and_keeps_the_call_waiting(gk, parties):
    caller, _ = parties
    acd = Session(gk.service, 40001, trace=1)
    _, call_id = queue_call(gk, caller)
    lines = acd.say(f"rr {caller.endpoint_id} 77 {ras.guid_dashed(call_id)} noSuchReason")
    assert lines == ["Error: noSuchReason is not an ARJ reason"]
    assert gk.replies(caller) == []
    assert len(gk.service.virtual_queues.pending) == 1


# -- timeout, late and unknown answers ------------------------------------------------


def test_timeout_goes_on_down_the_chain_and_a_late_answer_is_an_error(gk, parties):
    caller, _ = parties
    acd = Session(gk.service, 40001, trace=1)
    queue_call(gk, caller)
    gk.clock.advance(9.9)
    assert gk.replies(caller) == []
    gk.clock.advance(0.2)
    (arj,) = gk.replies(caller)             # internal: queue1 is nobody's alias
    assert arj.kind == "admissionReject"
    assert arj.raw["rejectReason"][0] == "calledPartyNotRegistered"
    assert not gk.service.virtual_queues.pending
    acd.take()
    assert acd.say(f"rta agent1 {caller.endpoint_id} 77") == [
        f"Error: no RouteRequest pending for {caller.endpoint_id} 77"]
    assert gk.replies(caller) == []


def test_timeout_reaches_a_later_policy_that_routes(gk):
    caller, queue_owner = phone(1, "1001", "alice"), phone(3, "queue1")
    gk.register(caller)
    gk.register(queue_owner)
    queue_call(gk, caller)
    gk.clock.advance(10)
    (acf,) = gk.replies(caller)
    assert acf.kind == "admissionConfirm"
    assert ras.transport_from_asn(acf.raw["destCallSignalAddress"]) == ("10.0.0.3", 1720)


def test_answers_for_unknown_requests_get_clear_errors(gk, parties):
    caller, _ = parties
    acd = Session(gk.service, 40001, trace=1)
    assert acd.say("RouteToAlias agent1 nobody_endp 12") == [
        "Error: no RouteRequest pending for nobody_endp 12"]
    assert acd.say("RouteReject nobody_endp twelve") == ["Error: CallRef twelve is not a number"]
    assert acd.say("rtg gw not-an-ip nobody_endp 12")[0].startswith("Error: ")


def test_route_to_alias_that_is_not_registered_goes_on_down_the_chain(gk, parties):
    caller, _ = parties
    acd = Session(gk.service, 40001, trace=1)
    queue_call(gk, caller)
    assert acd.say(f"rta nobody {caller.endpoint_id} 77") == []
    (arj,) = gk.replies(caller)
    assert arj.kind == "admissionReject"
    assert arj.raw["rejectReason"][0] == "calledPartyNotRegistered"


# -- several calls, several applications ------------------------------------------------


def test_duplicate_arq_while_waiting_makes_no_second_route_request(gk, parties):
    caller, _ = parties
    acd = Session(gk.service, 40001, trace=1)
    data, call_id = queue_call(gk, caller)
    # The very same datagram again, then the same call asked with a new seq.
    (again,) = gk.send(caller, data)
    assert again.kind == "requestInProgress"
    (anew,) = gk.send(caller, caller.arq(["queue1"], call_id=call_id, crv=77))
    assert anew.kind == "requestInProgress"
    newest = anew.raw["requestSeqNum"]
    assert len(acd.take()) == 1
    assert gk.service.virtual_queues.stats["requests"] == 1

    acd.say(f"rta agent1 {caller.endpoint_id} 77")
    (acf,) = gk.replies(caller)
    assert acf.kind == "admissionConfirm" and acf.raw["requestSeqNum"] == newest
    # A retransmission after the answer gets the answer, not a RIP.
    gk.service.ras_protocol.datagramReceived(data, caller.ras_address)
    (again,) = gk.replies(caller)
    assert again.kind == "admissionConfirm"
    assert again.raw["requestSeqNum"] == ras.parse(data).seq
    assert len(list(gk.service.calls)) == 1


def test_two_pending_calls_answered_out_of_order(gk, parties):
    caller, agent = parties
    other, agent2 = phone(4, "1004", "bob"), phone(5, "2005", "agent2")
    gk.register(other)
    gk.register(agent2)
    acd = Session(gk.service, 40001, trace=1)
    queue_call(gk, caller, crv=10)
    (rip,) = gk.send(other, other.arq(["queue2"], crv=20))
    assert rip.kind == "requestInProgress"
    assert len(acd.take()) == 2

    assert acd.say(f"rta agent2 {other.endpoint_id} 20") == []
    (acf,) = gk.replies(other)
    assert ras.transport_from_asn(acf.raw["destCallSignalAddress"]) == ("10.0.0.5", 1720)
    assert gk.replies(caller) == []
    assert acd.say(f"rta agent1 {caller.endpoint_id} 10") == []
    (acf,) = gk.replies(caller)
    assert ras.transport_from_asn(acf.raw["destCallSignalAddress"]) == ("10.0.0.2", 1720)


def test_first_answer_wins_between_two_sessions(gk, parties):
    caller, _ = parties
    first, second = Session(gk.service, 40001, trace=1), Session(gk.service, 40002, trace=1)
    queue_call(gk, caller)
    assert first.say(f"rta agent1 {caller.endpoint_id} 77") == []
    assert second.say(f"RouteReject {caller.endpoint_id} 77") == [
        f"Error: no RouteRequest pending for {caller.endpoint_id} 77"]
    replies = gk.replies(caller)
    assert [pdu.kind for pdu in replies] == ["admissionConfirm"]


def test_answer_by_call_id_wins_over_a_wrong_call_reference(gk, parties):
    caller, _ = parties
    acd = Session(gk.service, 40001, trace=1)
    _, call_id = queue_call(gk, caller)
    assert acd.say(f"rta agent1 {caller.endpoint_id} 999 {ras.guid_dashed(call_id)}") == []
    assert [p.kind for p in gk.replies(caller)] == ["admissionConfirm"]
    other = ras.guid_dashed(ras.new_guid())
    queue_call(gk, caller, crv=78)
    assert acd.say(f"rta agent1 {caller.endpoint_id} 78 {other}") == [
        f"Error: no RouteRequest pending for {caller.endpoint_id} 78"]


def test_other_ras_traffic_goes_on_while_a_call_waits(gk, parties):
    caller, agent = parties
    queue_call(gk, caller)
    (acf,) = gk.send(agent, agent.arq(["alice"]))
    assert acf.kind == "admissionConfirm"
    late = phone(6, "3006")
    gk.register(late)
    assert len(gk.service.virtual_queues.pending) == 1


# -- LRQ, unregistering and stopping --------------------------------------------------


#: LRQs are answered for registered endpoints and neighbours only; these come
#: from another gatekeeper that is neither.
OPEN_TO_LRQS = "\n[RasSrv::LRQFeatures]\nAcceptNonNeighborLRQ=1\n"


def test_lrq_to_a_queue_is_held_and_answered_with_lcf():
    gk = Gatekeeper(CONFIG + OPEN_TO_LRQS)
    agent = phone(2, "2002", "agent1")
    gk.register(agent)
    neighbour = phone(9, "x")
    acd = Session(gk.service, 40001, trace=1)
    (rip,) = gk.send(neighbour, neighbour.lrq(["queue1"]))
    assert rip.kind == "requestInProgress"
    seq = rip.raw["requestSeqNum"]
    (line,) = acd.take()
    assert line == f"RouteRequest||unregistered|{seq}|queue1|||||10.0.0.9:1719|LRQ;"
    assert acd.say(f"rta agent1 unregistered {seq}") == []
    (lcf,) = gk.replies(neighbour)
    assert lcf.kind == "locationConfirm"
    assert ras.transport_from_asn(lcf.raw["callSignalAddress"]) == ("10.0.0.2", 1720)
    assert ras.transport_from_asn(lcf.raw["rasAddress"]) == ("10.0.0.2", 1719)


def test_lrq_route_reject_answers_lrj():
    gk = Gatekeeper(CONFIG + OPEN_TO_LRQS)
    neighbour = phone(9, "x")
    acd = Session(gk.service, 40001, trace=1)
    (rip,) = gk.send(neighbour, neighbour.lrq(["queue1"]))
    acd.say(f"rr unregistered {rip.raw['requestSeqNum']}")
    (lrj,) = gk.replies(neighbour)
    assert lrj.kind == "locationReject" and lrj.raw["rejectReason"][0] == "requestDenied"


def test_caller_gone_before_the_answer_gets_nothing(gk, parties):
    caller, _ = parties
    acd = Session(gk.service, 40001, trace=1)
    queue_call(gk, caller)
    (ucf,) = gk.send(caller, caller.urq())
    assert ucf.kind == "unregistrationConfirm"
    acd.say(f"rta agent1 {gk.of(ev.RouteRequested)[0].caller_endpoint_id} 77")
    assert gk.replies(caller) == []
    assert list(gk.service.calls) == []


def test_stopping_refuses_the_waiting_calls(gk, parties):
    caller, _ = parties
    queue_call(gk, caller)
    gk.service.stopService()
    (arj,) = gk.replies(caller)
    assert arj.kind == "admissionReject" and arj.raw["rejectReason"][0] == "resourceUnavailable"


def test_reload_keeps_waiting_calls_and_takes_new_queues(gk, parties, tmp_path):
    caller, _ = parties
    queue_call(gk, caller)
    path = tmp_path / "gk.ini"
    path.write_text(CONFIG.replace("queue1,queue2", "queue1,queue3"))
    gk.service.config_loader = lambda: (configuration.load(path), gk.service.settings)
    ok, _ = gk.service.reload()
    assert ok
    assert len(gk.service.virtual_queues.pending) == 1
    (rip,) = gk.send(caller, caller.arq(["queue3"], crv=80))
    assert rip.kind == "requestInProgress"
    (arj,) = gk.send(caller, caller.arq(["queue2"], crv=81))
    assert arj.kind == "admissionReject"


def test_regex_queue_is_searched_as_gnugk_does():
    gk = Gatekeeper("[RoutingPolicy]\ndefault=vqueue,internal\n"
                    "[CTI::Agents]\nVirtualQueueRegex=^12\n")
    caller = phone(1, "1001")
    gk.register(caller)
    (rip,) = gk.send(caller, caller.arq(["12345"], crv=3))
    assert rip.kind == "requestInProgress"
    (arj,) = gk.send(caller, caller.arq(["31234"], crv=4))
    assert arj.kind == "admissionReject"
