"""Neighbour gatekeepers through the RAS controller (issue 12): the LRQs the
``neighbor`` policy sends (RasController as its ILocationSender), the LCF/LRJ/
RIP answers matched by seq and IP, and the LRQs neighbours send us (accepted,
refused, forwarded with hopCount, ForwardResponse 0 and 1).  Real encoded
datagrams through RasProtocol on a FakeDatagramTransport; time is a Clock."""

from __future__ import annotations

from twisted.internet.task import Clock

from gatekeeper import events as ev
from gatekeeper.configfile import read_ini
from gatekeeper.core.admission import SetupAdmission, SetupRequest, SetupSettings
from gatekeeper.core.neighbors import parse_neighbors
from gatekeeper.core.routing import RoutingSettings, build_router
from gatekeeper.h225 import ras
from gatekeeper.h225.ras import dialled_digits, h323_id
from gatekeeper.ras.controller import RasConfig, RasController, RasSettings
from gatekeeper.ras.protocol import RasProtocol
from gatekeeper.testing import FakeDatagramTransport, FakeEndpoint

GK_ADDRESS = ("192.0.2.1", 1719)
GK2 = ("192.0.2.2", 1719)
GK3 = ("192.0.2.3", 1719)
STRANGER = ("198.51.100.7", 1719)

MESH = """
[RasSrv::Neighbors]
GK2=GnuGk
GK3=GnuGk
[Neighbor::GK2]
Host=192.0.2.2
SendPrefixes=*
[Neighbor::GK3]
Host=192.0.2.3:1719
SendPrefixes=*
"""


class Gatekeeper:
    """A controller with neighbours, behind a RasProtocol on a fake transport."""

    def __init__(self, neighbours: str = MESH, routed: bool = False, **features) -> None:
        text = neighbours
        if features:
            text += "[RasSrv::LRQFeatures]\n" + "".join(f"{k}={v}\n" for k, v in features.items())
        self.neighbors, warnings = parse_neighbors(read_ini(text, "gk.ini"))
        assert warnings == []
        self.clock = Clock()
        self.clock.advance(1_800_000_000)
        self.bus = ev.EventBus()
        self.events: list[object] = []
        self.bus.subscribe(self.events.append)
        settings = RasSettings(gatekeeper_id="GK1", routed=routed,
                               signal_address=("192.0.2.1", 1720) if routed else None)
        self.controller = RasController(settings, self.bus, self.clock)
        self.router = build_router(RoutingSettings(), self.controller.registry,
                                   {"neighbor": self.controller.neighbor_policy})
        self.controller.reconfigure(RasConfig(settings, router=self.router,
                                              neighbors=self.neighbors))
        self.protocol = RasProtocol(self.controller, self.clock)
        self.transport = FakeDatagramTransport(host=GK_ADDRESS)
        self.protocol.transport = self.transport
        self.protocol.startProtocol()

    def send(self, data: bytes, source) -> list[tuple[ras.RasPdu, tuple]]:
        self.protocol.datagramReceived(data, source)
        return self.take()

    def deliver(self, data: bytes, source) -> None:
        """Deliver one datagram; what it makes written stays for take()."""
        self.protocol.datagramReceived(data, source)

    def take(self) -> list[tuple[ras.RasPdu, tuple]]:
        return [(ras.parse(data), address) for data, address in self.transport.take()]

    def register(self, endpoint: FakeEndpoint) -> None:
        self.protocol.datagramReceived(endpoint.rrq(), endpoint.ras_address)
        [(data, _)] = self.transport.take()
        assert endpoint.read(data).kind == "registrationConfirm"


def alice(gk: Gatekeeper) -> FakeEndpoint:
    endpoint = FakeEndpoint(["1001", "alice"], ("192.0.2.50", 1720), ("192.0.2.50", 1719))
    gk.register(endpoint)
    return endpoint


def lcf(seq: int, signal=("203.0.113.3", 1720), ras_address=("203.0.113.3", 1719)) -> bytes:
    return ras.encode(ras.Lcf(seq, signal, ras_address))


def lrj(seq: int, reason: str = "notRegistered") -> bytes:
    return ras.encode(ras.Lrj(seq, reason))


def rip(seq: int, delay_ms: int) -> bytes:
    return ras.encode(ras.Rip(seq, delay_ms))


def lrq_from(seq: int, destination: str, reply, gatekeeper_id: str = "GK2",
             hop_count: int | None = None) -> bytes:
    return ras.encode(ras.Lrq(seq, [ras.parse_alias(destination)], reply, gatekeeper_id,
                              [h323_id("caller")], None, hop_count))


def arq_fans_out(gk: Gatekeeper, caller: FakeEndpoint, number: str = "3003"):
    """ARQ for a number nobody here has: RIP to the caller, one LRQ to each
    neighbour; the LRQs by destination address."""
    written = gk.send(caller.arq([number]), caller.ras_address)
    rips = [p for p, a in written if a == caller.ras_address]
    assert [p.kind for p in rips] == ["requestInProgress"]
    lrqs = {a: p for p, a in written if p.kind == "locationRequest"}
    assert set(lrqs) == {GK2, GK3}
    return lrqs


def final_answer(gk: Gatekeeper, caller: FakeEndpoint) -> ras.RasPdu:
    answers = [d for d, a in gk.transport.take() if a == caller.ras_address]
    assert len(answers) == 1, answers
    return caller.read(answers[0])


# -- LRQs we send -------------------------------------------------------------


def test_arq_sends_an_lrq_to_each_neighbour_and_the_lcf_becomes_the_acf_destination():
    gk = Gatekeeper()
    caller = alice(gk)
    lrqs = arq_fans_out(gk, caller)
    lrq = lrqs[GK3]
    assert ras.aliases_from_asn(lrq.raw["destinationInfo"]) == (dialled_digits("3003"),)
    assert lrq.gatekeeper_id == "GK1"
    assert lrq.reply_address == GK_ADDRESS     # our RAS address towards the neighbour
    assert lrqs[GK2].seq != lrqs[GK3].seq      # a requestSeqNum of its own each
    gk.deliver(lcf(lrq.seq), GK3)
    acf = final_answer(gk, caller)
    assert acf.kind == "admissionConfirm"
    assert ras.transport_from_asn(acf.raw["destCallSignalAddress"]) == ("203.0.113.3", 1720)
    assert gk.controller.stats["LCF received"] == 1
    # decided: the other neighbour's late answer is dropped quietly
    gk.deliver(lcf(lrqs[GK2].seq), GK2)
    assert gk.take() == [] and gk.controller.stats["late LRQ answer"] == 1
    assert gk.controller.stats["unexpected"] == 0


def test_lrj_from_every_neighbour_ends_in_arj_and_lrqs_are_not_retransmitted_by_the_sender():
    gk = Gatekeeper()
    caller = alice(gk)
    lrqs = arq_fans_out(gk, caller)
    gk.deliver(lrj(lrqs[GK2].seq), GK2)
    assert gk.take() == []                    # GK3 may still confirm
    gk.deliver(lrj(lrqs[GK3].seq), GK3)
    arj = final_answer(gk, caller)
    assert (arj.kind, arj.reason) == ("admissionReject", "calledPartyNotRegistered")
    gk.clock.advance(30)
    assert gk.take() == []                    # nothing re-sent, nothing pending
    assert gk.controller._outgoing == {}


def test_silent_neighbours_get_the_same_lrq_again_then_time_out():
    gk = Gatekeeper(NeighborTimeout=1, SendRetries=1)
    caller = alice(gk)
    lrqs = arq_fans_out(gk, caller)
    gk.clock.advance(1)
    again = {a: p for p, a in gk.take()}
    assert set(again) == {GK2, GK3}
    assert {a: p.seq for a, p in again.items()} == {a: p.seq for a, p in lrqs.items()}
    gk.clock.advance(0.99)
    assert gk.take() == []
    gk.clock.advance(0.01)
    arj = final_answer(gk, caller)
    assert (arj.kind, arj.reason) == ("admissionReject", "calledPartyNotRegistered")
    assert gk.controller._outgoing == {}      # the policy cancelled both


def test_rip_from_a_neighbour_stops_its_resends_and_extends_the_wait():
    gk = Gatekeeper(NeighborTimeout=1, SendRetries=0)
    caller = alice(gk)
    lrqs = arq_fans_out(gk, caller)
    gk.deliver(lrj(lrqs[GK2].seq), GK2)
    assert gk.send(rip(lrqs[GK3].seq, 5000), GK3) == []
    assert gk.controller.stats["RIP received"] == 1
    gk.clock.advance(4)
    assert gk.take() == []                    # still waiting for GK3
    gk.deliver(lcf(lrqs[GK3].seq), GK3)
    assert final_answer(gk, caller).kind == "admissionConfirm"


def test_answers_from_another_ip_are_ignored_unless_accept_non_neighbor_lcf():
    gk = Gatekeeper(NeighborTimeout=1, SendRetries=0)
    caller = alice(gk)
    lrqs = arq_fans_out(gk, caller)
    assert gk.send(lcf(lrqs[GK3].seq), STRANGER) == []
    assert gk.controller.stats["unexpected"] == 1
    gk.clock.advance(1)
    assert final_answer(gk, caller).kind == "admissionReject"

    gk = Gatekeeper(NeighborTimeout=1, SendRetries=0, AcceptNonNeighborLCF=1)
    caller = alice(gk)
    lrqs = arq_fans_out(gk, caller)
    gk.deliver(lcf(lrqs[GK3].seq, ("203.0.113.9", 1720)), STRANGER)
    acf = final_answer(gk, caller)
    assert ras.transport_from_asn(acf.raw["destCallSignalAddress"]) == ("203.0.113.9", 1720)


def test_routed_mode_acf_names_us_and_the_call_goes_to_the_lcf_address():
    gk = Gatekeeper(routed=True)
    caller = alice(gk)
    lrqs = arq_fans_out(gk, caller)
    gk.deliver(lcf(lrqs[GK2].seq, ("192.0.2.2", 1720)), GK2)
    acf = final_answer(gk, caller)
    assert ras.transport_from_asn(acf.raw["destCallSignalAddress"]) == ("192.0.2.1", 1720)
    [call] = list(gk.controller.calls)
    # the relay opens the callee leg to the call's callee address: the LCF's
    assert call.callee_signal_address == ("192.0.2.2", 1720)
    decision = SetupAdmission(gk.controller.admission).on_setup(SetupRequest(
        call.call_id, call.conference_id, 5, ("192.0.2.50", 40000), (dialled_digits("3003"),)))
    assert decision.destination == ("192.0.2.2", 1720)


# -- LRQs neighbours send us --------------------------------------------------


def test_an_lrq_from_a_neighbour_for_a_registration_here_is_confirmed():
    gk = Gatekeeper()
    alice(gk)
    [(pdu, address)] = gk.send(lrq_from(7, "1001", ("192.0.2.2", 1719)), ("192.0.2.2", 50000))
    assert (pdu.kind, pdu.seq, address) == ("locationConfirm", 7, ("192.0.2.2", 1719))
    assert ras.read_location_confirm(pdu).call_signal_address == ("192.0.2.50", 1720)
    assert any(isinstance(e, ev.LocationConfirmed) for e in gk.events)


def test_routed_mode_lcf_names_our_call_signalling_address():
    gk = Gatekeeper(routed=True)
    alice(gk)
    [(pdu, _)] = gk.send(lrq_from(7, "1001", GK2), GK2)
    answer = ras.read_location_confirm(pdu)
    assert answer.call_signal_address == ("192.0.2.1", 1720)
    assert answer.ras_address[1] == 1719 and answer.ras_address != ("192.0.2.50", 1719)


def test_an_lrq_outside_the_neighbours_accept_prefixes_is_refused_and_counted():
    gk = Gatekeeper(MESH + "AcceptPrefixes=10\n")      # for GK3
    [(pdu, address)] = gk.send(lrq_from(8, "2002", GK3, "GK3"), GK3)
    assert (pdu.kind, pdu.reason, address) == ("locationReject", "requestDenied", GK3)
    assert gk.controller.stats["LRQ not accepted"] == 1
    assert [e.reason for e in gk.events if isinstance(e, ev.LocationRejected)] == ["requestDenied"]


def test_an_lrq_from_a_stranger_is_refused_as_before():
    gk = Gatekeeper()
    [(pdu, address)] = gk.send(lrq_from(9, "1001", STRANGER), STRANGER)
    assert (pdu.kind, pdu.reason, address) == ("locationReject", "securityDenial", STRANGER)


def test_an_lrq_nothing_here_has_is_forwarded_with_the_hop_count_decremented():
    gk = Gatekeeper()
    written = gk.send(lrq_from(11, "5005", ("198.51.100.1", 1719), "GKX", hop_count=3), GK2)
    by_address = {a: p for p, a in written}
    assert set(by_address) == {GK3, ("198.51.100.1", 1719)}     # never back to GK2
    copy = by_address[GK3]
    assert (copy.kind, copy.seq, copy.hop_count) == ("locationRequest", 11, 2)
    assert copy.reply_address == ("198.51.100.1", 1719)           # ForwardResponse=0
    assert copy.gatekeeper_id == "GKX"
    answer = by_address[("198.51.100.1", 1719)]
    assert answer.kind == "requestInProgress"
    assert gk.controller.stats["LRQ forwarded"] == 1
    # the same LRQ again through another neighbour: a loop, not forwarded again
    assert gk.send(lrq_from(11, "5005", ("198.51.100.1", 1719), "GKX", hop_count=2), GK3) == []
    assert gk.controller.stats["LRQ loop dropped"] == 1


def test_an_lrq_with_hop_count_one_or_none_is_not_forwarded_by_default():
    gk = Gatekeeper()
    for seq, hop in ((12, 1), (13, None)):
        [(pdu, address)] = gk.send(lrq_from(seq, "5005", GK2, hop_count=hop), GK2)
        assert (pdu.kind, pdu.reason, address) == ("locationReject", "notRegistered", GK2)


def test_forward_response_1_asks_the_other_neighbours_and_answers_itself():
    gk = Gatekeeper(ForwardResponse=1)
    written = gk.send(lrq_from(14, "5005", GK2, hop_count=2), GK2)
    by_address = {a: p for p, a in written}
    assert set(by_address) == {GK2, GK3}
    assert by_address[GK2].kind == "requestInProgress"
    ours = by_address[GK3]
    assert ours.kind == "locationRequest" and ours.hop_count == 1
    assert ours.reply_address == GK_ADDRESS and ours.seq != 14     # a fresh LRQ of ours
    gk.deliver(lcf(ours.seq, ("203.0.113.5", 1720)), GK3)
    [(answer, address)] = gk.take()
    assert (answer.kind, answer.seq, address) == ("locationConfirm", 14, GK2)
    confirm = ras.read_location_confirm(answer)
    assert confirm.call_signal_address == ("203.0.113.5", 1720)
    assert confirm.ras_address == GK3


def test_forward_response_1_with_every_neighbour_rejecting_answers_lrj():
    gk = Gatekeeper(ForwardResponse=1)
    written = gk.send(lrq_from(15, "5005", GK2, hop_count=2), GK2)
    ours = next(p for p, a in written if a == GK3)
    gk.deliver(lrj(ours.seq), GK3)
    [(answer, address)] = gk.take()
    assert (answer.kind, answer.seq, address) == ("locationReject", 15, GK2)


# -- Setups from neighbour zones ------------------------------------------------


def test_a_setup_from_a_neighbours_ip_is_routed_as_an_unregistered_callers():
    gk = Gatekeeper(routed=True)
    alice(gk)
    request = SetupRequest(ras.new_guid(), bytes(16), 9, ("192.0.2.3", 40001),
                           (dialled_digits("1001"),))
    neighbours = SetupAdmission(gk.controller.admission, SetupSettings(),
                                is_neighbour=lambda ip: ip == "192.0.2.3")
    admitted = neighbours.on_setup(request)
    assert admitted.destination == ("192.0.2.50", 1720)
    stranger = replace_source(request, ("198.51.100.7", 40001))
    assert neighbours.on_setup(stranger).reason == "callerNotRegistered"
    closed = SetupAdmission(gk.controller.admission, SetupSettings(accept_neighbors_calls=False),
                            is_neighbour=lambda ip: True)
    assert closed.on_setup(replace_source(request, ("192.0.2.3", 40002), new_id=True)).reason \
        == "callerNotRegistered"


def replace_source(request: SetupRequest, source, new_id: bool = True) -> SetupRequest:
    from dataclasses import replace
    return replace(request, source=source, call_id=ras.new_guid() if new_id else request.call_id)
