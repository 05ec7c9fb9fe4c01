"""Event fan-out to status sessions: batching per reactor turn, ordering with
direct output, trace levels, broadcasts and the per-session filters hook."""

from __future__ import annotations

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from gatekeeper import events as ev
from gatekeeper.h225.ras import h323_id
from gatekeeper.ras.controller import RasSettings
from gatekeeper.service import GatekeeperService, ListenSettings
from gatekeeper.testing import FakeDatagramTransport, FakeEndpoint


class Client:
    def __init__(self, factory, port):
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port),
                                         hostAddress=IPv4Address("TCP", "127.0.0.1", 7000))
        self.writes: list[bytes] = []
        write = self.transport.write
        self.transport.write = lambda data: (self.writes.append(data), write(data))[1]
        self.session = factory.buildProtocol(None)
        self.session.makeConnection(self.transport)
        self.take()

    def take(self) -> bytes:
        data = self.transport.value()
        self.transport.clear()
        self.writes.clear()
        return data

    def lines(self) -> list[str]:
        return self.take().decode().splitlines()


class FakeFilters:
    """Accepts the lines containing ``word`` while enabled."""

    def __init__(self, word: str, enabled: bool = True) -> None:
        self.word, self.enabled, self.asked = word, enabled, 0

    def accepts(self, line: str) -> bool:
        self.asked += 1
        return self.word in line


@pytest.fixture
def gk():
    clock = Clock()
    clock.advance(1_795_702_393)
    service = GatekeeperService(RasSettings(gatekeeper_id="GK"), ListenSettings(), clock)
    service.ras_protocol.transport = FakeDatagramTransport()
    service.ras_protocol.startProtocol()
    service.status.max_clients = 100
    return service


def gcf(gk, name: str, port: int = 5) -> None:
    gk.bus.publish(ev.GatekeeperConfirmed(("127.0.0.1", port), (h323_id(name),), "terminal"))


def register(gk, endpoint) -> None:
    gk.ras_protocol.datagramReceived(endpoint.rrq(), endpoint.ras_address)
    endpoint.read(gk.ras_protocol.transport.take()[0][0])


def test_fifty_sessions_at_trace_2_get_a_registration_burst_in_order_and_trace_0_none(gk):
    watchers = [Client(gk.status, 1000 + n) for n in range(50)]
    quiet = Client(gk.status, 2000)
    quiet.session.dataReceived(b"trace 0\r\n")
    assert quiet.take() == b"Output trace level is 0\r\n"
    endpoints = [FakeEndpoint([f"{5000 + n}"], (f"10.1.{n // 200}.{n % 200 + 1}", 1720),
                              (f"10.1.{n // 200}.{n % 200 + 1}", 1719)) for n in range(400)]
    for n, endpoint in enumerate(endpoints):
        register(gk, endpoint)          # a burst: many in one reactor turn, then the next
        if n % 100 == 99:
            gk.clock.advance(0)
    gk.clock.advance(0)
    expected = [f"RCF|{e.signal_address[0]}:1720|{e.aliases[0].value}:dialedDigits|terminal|"
                f"{e.endpoint_id};" for e in endpoints]
    for client in watchers:
        assert client.lines() == expected
    assert quiet.take() == b""


def test_the_events_of_one_turn_reach_a_session_in_one_write(gk):
    client = Client(gk.status, 1)
    for n in range(50):
        gcf(gk, "bob", n)
    assert client.writes == []          # nothing until the turn ends
    gk.clock.advance(0)
    assert len(client.writes) == 1 and client.writes[0].count(b"GCF|") == 50


def test_an_answer_after_an_event_comes_after_its_line(gk):
    client, other = Client(gk.status, 1), Client(gk.status, 2)
    gcf(gk, "ann")
    client.session.dataReceived(b"trace 2\r\n")
    assert client.take() == b"GCF|127.0.0.1|ann|terminal;\r\nOutput trace level is 2\r\n"
    assert other.take() == b"GCF|127.0.0.1|ann|terminal;\r\n"   # flushed for everyone
    gk.clock.advance(0)
    assert client.take() == b"" and other.take() == b""         # and only once


def test_a_listing_is_never_cut_by_event_lines_and_earlier_events_come_first(gk):
    client = Client(gk.status, 1)
    register(gk, FakeEndpoint(["801"], ("10.2.0.1", 1720), ("10.2.0.1", 1719)))
    client.session.dataReceived(b"r\r\n")
    gcf(gk, "late")
    for _ in range(10):
        gk.clock.advance(0)
    lines = client.lines()
    assert lines[0].startswith("RCF|10.2.0.1:1720|801")        # the event before the command
    assert lines[1:4] == ["AllRegistrations", lines[2], "Number of Endpoints: 1"]
    assert lines[4:] == [";", "GCF|127.0.0.1|late|terminal;"]


def test_broadcast_by_level_keeps_order_with_events(gk):
    trace0, trace1, trace2 = (Client(gk.status, n) for n in (1, 2, 3))
    trace0.session.dataReceived(b"trace 0\r\n")
    trace1.session.dataReceived(b"trace 1\r\n")
    for client in (trace0, trace1, trace2):
        client.take()
    gcf(gk, "first")
    gk.status.broadcast("to all")
    gk.status.broadcast("to 1 and 2", level=1)
    gcf(gk, "second")
    gk.status.broadcast("to 2", level=2)
    gk.clock.advance(0)
    assert trace0.lines() == ["to all"]
    assert trace1.lines() == ["to all", "to 1 and 2"]
    assert trace2.lines() == ["GCF|127.0.0.1|first|terminal;", "to all", "to 1 and 2",
                              "GCF|127.0.0.1|second|terminal;", "to 2"]


def test_filters_hook_only_sessions_with_active_filters_are_asked(gk):
    plain, filtered, disabled = (Client(gk.status, n) for n in (1, 2, 3))
    filtered.session.filters = FakeFilters("bob")
    disabled.session.filters = off = FakeFilters("bob", enabled=False)
    gcf(gk, "bob")
    gcf(gk, "ann")
    gk.status.broadcast("SoftPBX: a broadcast")       # not an event line: never filtered
    gk.clock.advance(0)
    assert plain.lines() == ["GCF|127.0.0.1|bob|terminal;", "GCF|127.0.0.1|ann|terminal;",
                             "SoftPBX: a broadcast"]
    assert filtered.lines() == ["GCF|127.0.0.1|bob|terminal;", "SoftPBX: a broadcast"]
    assert disabled.lines() == plain_lines_of(gk)
    assert filtered.session.filters.asked == 2 and off.asked == 0
    filtered.session.filters.enabled = False          # "filter 0": everything again
    gcf(gk, "ann")
    gk.clock.advance(0)
    assert filtered.lines() == ["GCF|127.0.0.1|ann|terminal;"]


def plain_lines_of(gk):
    return ["GCF|127.0.0.1|bob|terminal;", "GCF|127.0.0.1|ann|terminal;", "SoftPBX: a broadcast"]


def test_new_sessions_take_their_filters_from_the_factory(gk):
    gk.status.make_filters = lambda: FakeFilters("bob")
    client = Client(gk.status, 1)
    assert isinstance(client.session.filters, FakeFilters)
    gk.status.make_filters = lambda: FakeFilters("bob", enabled=False)
    assert Client(gk.status, 2).session.filters is None   # built by a filter command later
    gk.status.make_filters = None
    assert Client(gk.status, 3).session.filters is None


def test_a_failing_filter_costs_only_its_own_session(gk):
    broken, fine = Client(gk.status, 1), Client(gk.status, 2)

    class Broken(FakeFilters):
        def accepts(self, line):
            raise RuntimeError("bad filter")

    broken.session.filters = Broken("x")
    gcf(gk, "bob")
    gk.clock.advance(0)
    assert fine.lines() == ["GCF|127.0.0.1|bob|terminal;"]
    assert broken.take() == b""


def test_events_nobody_would_see_are_not_formatted(gk, monkeypatch):
    client = Client(gk.status, 1)
    client.session.dataReceived(b"trace 0\r\n")
    client.take()
    formatted = []
    import gatekeeper.status.protocol as protocol
    monkeypatch.setattr(protocol, "format_event", lambda e: formatted.append(e) or "X")
    gcf(gk, "bob")                                   # trace level 2
    gk.clock.advance(0)
    assert formatted == [] and client.take() == b""
    client.session.dataReceived(b"trace 2\r\n")
    client.take()
    gcf(gk, "bob")
    gk.clock.advance(0)
    assert len(formatted) == 1 and client.take() == b"X\r\n"


def test_closing_sessions_still_get_the_lines_owed(gk):
    client = Client(gk.status, 1)
    gcf(gk, "bob")
    client.session.close()
    assert client.take() == b"GCF|127.0.0.1|bob|terminal;\r\n"
