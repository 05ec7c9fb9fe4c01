"""Status sessions over StringTransport: greeting, commands, events by trace level."""

from __future__ import annotations

import time

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from gatekeeper import events as ev
from gatekeeper.h225.ras import h323_id
from gatekeeper.ras.controller import RasSettings
from gatekeeper.service import GatekeeperService, ListenSettings
from gatekeeper.status.telnet import GREETING
from gatekeeper.testing import FakeDatagramTransport, FakeEndpoint


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


class Client:
    def __init__(self, factory, port=40000):
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port),
                                         hostAddress=IPv4Address("TCP", "127.0.0.1", 7000))
        self.session = factory.buildProtocol(None)
        self.session.makeConnection(self.transport)

    def take(self) -> bytes:
        """What the client received by the end of this reactor turn."""
        self.session.factory.flush()
        data = self.transport.value()
        self.transport.clear()
        return data

    def say(self, line: bytes) -> bytes:
        """Send a line; everything answered once pending listings are done."""
        self.take()
        self.session.dataReceived(line)
        clock = self.session.factory.clock
        for _ in range(10_000):
            if not clock.getDelayedCalls():
                break
            clock.advance(0)
        return self.take()


@pytest.fixture
def gk():
    clock = Clock()
    clock.advance(1_795_702_393)   # Thu, 26 Nov 2026 14:13:13 GMT
    service = GatekeeperService(RasSettings(gatekeeper_id="GK"), ListenSettings(), clock)
    service.start_time = clock.seconds()
    service.ras_protocol.transport = FakeDatagramTransport()
    service.ras_protocol.startProtocol()
    return service


def register(gk, endpoint):
    gk.ras_protocol.datagramReceived(endpoint.rrq(), endpoint.ras_address)
    data, _ = gk.ras_protocol.transport.take()[0]
    endpoint.read(data)


def test_connect_sends_the_telnet_greeting_then_the_version_banner(gk):
    client = Client(gk.status)
    data = client.take()
    assert data.startswith(GREETING + b"Version:\r\nGatekeeper(gatekeeper) Version(")
    assert data.endswith(b"Startup: Thu, 26 Nov 2026 14:13:13 GMT   Running: 0 days 00:00:00\r\n;\r\n")


def test_unknown_command_and_empty_line(gk):
    client = Client(gk.status)
    assert client.say(b"foobar\r\n") == b"Error: Unknown command 'foobar'\r\n"
    assert client.say(b"\r\n") == b""
    assert client.say(b"print\n") == b"Error: Unknown command 'print'\r\n"   # ambiguous


def test_registrations_listing_matches_the_seed_format(gk):
    client = Client(gk.status)
    assert client.say(b"r\r\n") == b"AllRegistrations\r\nNumber of Endpoints: 0\r\n;\r\n"
    register(gk, FakeEndpoint(["800:dialedDigits", "Wei"], ("10.1.1.10", 1720), ("10.1.1.10", 1719)))
    endpoint_id = gk.registry.find_alias("Wei").endpoint_id
    expected = (f"AllRegistrations\r\nRCF|10.1.1.10:1720|800:dialedDigits=Wei:h323_ID|terminal|"
                f"{endpoint_id}\r\nNumber of Endpoints: 1\r\n;\r\n").encode()
    for command in (b"r\r\n", b"?\n", b"PrintAllRegistrations\r", b"PRINTALLREGISTRATIONS\n",
                    b"par\n"):
        assert client.say(command) == expected
    # an ambiguous prefix is an unknown command, as in GnuGk
    assert client.say(b"printallreg\r") == b"Error: Unknown command 'printallreg'\r\n"
    verbose = client.say(b"rv\n").decode()
    assert "Thu, 26 Nov 2026 14:13:13 GMT C(0/0/0) <1>\r\n" in verbose


def test_find_and_not_found(gk):
    client = Client(gk.status)
    register(gk, FakeEndpoint(["800:dialedDigits", "Wei"], ("10.1.1.10", 1720), ("10.1.1.10", 1719)))
    reply = client.say(b"f 800\r\n").decode()
    assert reply.startswith("RCF|10.1.1.10:1720|800:dialedDigits=Wei:h323_ID|terminal|")
    assert reply.endswith("\r\n;\r\n")
    assert client.say(b"f 801\r\n") == b"SoftPBX: alias 801 not found!\r\n"
    assert client.say(b"find\r\n") == b"Syntax Error: Find ALIAS\r\n"


def test_trace_levels_filter_events(gk):
    level0, level1, level2 = Client(gk.status, 1), Client(gk.status, 2), Client(gk.status, 3)
    assert level0.say(b"trace 0\r\n") == b"Output trace level is 0\r\n"
    assert level1.say(b"trace 1\r\n") == b"Output trace level is 1\r\n"
    assert level2.say(b"trace max\r\n") == b"Output trace level is 2\r\n"
    gk.bus.publish(ev.GatekeeperConfirmed(("127.0.0.1", 5), (h323_id("bob"),), "terminal"))
    record = ev.CallDetailRecord(1, bytes(16), bytes(16), 0.0, None, 10.0, None, "a", None, "b",
                                 (), (), "GK")
    gk.bus.publish(record)
    assert level0.take() == b""
    assert level1.take().startswith(b"CDR|1|")
    both = level2.take()
    assert both.startswith(b"GCF|127.0.0.1|bob|terminal;\r\nCDR|1|")
    assert client_trace_errors(level2) == b'Syntax Error: trace 0|1|2|"min"|"max"\r\n'


def client_trace_errors(client):
    return client.say(b"trace 3\r\n")


def test_ctrl_d_and_exit_close_the_session(gk):
    client = Client(gk.status)
    client.say(b"\x04")
    assert client.transport.disconnecting
    other = Client(gk.status)
    other.say(b"exit\r\n")
    assert other.transport.disconnecting


def test_pipelined_commands_each_answer_in_order(gk):
    client = Client(gk.status)
    reply = client.say(b"version\nstatistics\nfoo\n").decode()
    assert reply.index("Version:") < reply.index("-- Endpoint Statistics --") < reply.index(
        "Error: Unknown command 'foo'")


def test_a_client_that_stops_reading_is_dropped_and_others_go_on(gk):
    slow, fine = Client(gk.status, 1), Client(gk.status, 2)
    slow.session.pauseProducing()        # the transport's buffer is full
    gk.status.max_output = 10_000
    for _ in range(1000):
        gk.bus.publish(ev.GatekeeperConfirmed(("127.0.0.1", 5), (h323_id("bob"),), "terminal"))
        gk.clock.advance(0)              # each event in its own reactor turn
    assert slow.transport.disconnecting
    assert slow.session._queued == 0 and slow.session not in gk.status.sessions
    assert fine.take().count(b"GCF|") == 1000


def test_a_reading_client_gets_everything_held_while_it_was_behind_in_order(gk):
    client = Client(gk.status)
    client.take()
    client.session.pauseProducing()
    for n in range(500):
        gk.bus.publish(ev.GatekeeperConfirmed(("127.0.0.1", n), (h323_id("bob"),), "terminal"))
        if n % 50 == 0:
            gk.clock.advance(0)
    client.session.dataReceived(b"trace 2\r\n")
    assert client.take() == b""          # held while the transport is full
    client.session.resumeProducing()     # the transport drained
    gk.clock.advance(0)                  # the held output goes in the next turn
    lines = client.take().decode().split("\r\n")
    assert lines[:500] == ["GCF|127.0.0.1|bob|terminal;" for _ in range(500)]
    assert lines[500:] == ["Output trace level is 2", ""]
    assert client.session in gk.status.sessions and not client.transport.disconnecting


def call_between(gk, caller, callee):
    gk.ras_protocol.datagramReceived(caller.arq([callee.aliases[-1]]), caller.ras_address)
    caller.read(gk.ras_protocol.transport.take()[0][0])
    call_id = list(caller.calls)[-1]
    gk.ras_protocol.datagramReceived(callee.arq(answer_call=True, call_id=call_id),
                                     callee.ras_address)
    callee.read(gk.ras_protocol.transport.take()[0][0])
    return call_id


def test_unregister_alias_sends_urq_and_tells_every_session(gk):
    issuer, observer = Client(gk.status, 1), Client(gk.status, 2)
    observer.say(b"trace 0\r\n")
    bob = FakeEndpoint(["601", "bob"], ("10.0.1.31", 1720), ("10.0.1.31", 1032))
    register(gk, bob)
    endpoint_id = bob.endpoint_id
    issuer.take()
    reply = issuer.say(b"UnregisterAlias 601\r\n").decode()
    assert reply == (f"URQ|10.0.1.31:1032|{endpoint_id}|maintenance;\r\n"
                     "SoftPBX: Endpoint 601 unregistered!\r\n")
    assert observer.take() == b"SoftPBX: Endpoint 601 unregistered!\r\n"
    assert gk.registry.find_alias("601") is None
    sent = gk.ras_protocol.transport.take()
    assert [bob.answer(data) is not None for data, _ in sent] == [True]
    assert issuer.say(b"ua 601\r\n") == b"Alias 601 not found!\r\n"
    assert issuer.say(b"ua\r\n") == b"Syntax Error: UnregisterAlias ALIAS\r\n"


def test_unregister_ip_with_and_without_port(gk):
    client = Client(gk.status)
    register(gk, FakeEndpoint(["601"], ("10.0.1.31", 1720), ("10.0.1.31", 1032)))
    register(gk, FakeEndpoint(["602"], ("10.0.1.32", 1720), ("10.0.1.32", 1032)))
    assert client.say(b"uip 10.0.1.31:1720\r\n").endswith(
        b"SoftPBX: Endpoint 10.0.1.31:1720 unregistered!\r\n")
    assert client.say(b"uip 10.0.1.32\r\n").endswith(b"SoftPBX: Endpoint 10.0.1.32 unregistered!\r\n")
    assert len(gk.registry) == 0
    assert client.say(b"uip 10.0.1.99\r\n") == b"IP 10.0.1.99 not found!\r\n"


def test_unregister_all_endpoints(gk):
    client = Client(gk.status)
    for n in range(3):
        register(gk, FakeEndpoint([f"60{n}"], (f"10.0.1.{n + 1}", 1720), (f"10.0.1.{n + 1}", 1719)))
    reply = client.say(b"uae\r\n").decode()
    assert reply.count("URQ|") == 3 and reply.endswith("Done\r\n;\r\n")
    assert len(gk.registry) == 0


def test_disconnect_call_sends_drq_to_both_and_prints_the_cdr(gk):
    client = Client(gk.status)
    alice = FakeEndpoint(["alice"], ("10.0.0.1", 1720), ("10.0.0.1", 1719))
    bob = FakeEndpoint(["bob"], ("10.0.0.2", 1720), ("10.0.0.2", 1719))
    register(gk, alice)
    register(gk, bob)
    call_between(gk, alice, bob)
    number = next(iter(gk.calls)).number
    reply = client.say(f"dc {number}\r\n".encode()).decode()
    assert reply.index(f"CDR|{number}|") < reply.index(f"Call number {number} disconnected.")
    assert len(gk.calls) == 0
    drqs = [addr for data, addr in gk.ras_protocol.transport.take()]
    assert sorted(drqs) == [alice.ras_address, bob.ras_address]
    assert client.say(f"dc {number}\r\n".encode()) == f"Can't find call number {number}\r\n".encode()
    assert client.say(b"dc\r\n") == b"Syntax Error: DisconnectCall CALL_NUMBER [CALL_NUMBER...]\r\n"


def test_disconnect_alias_ip_and_clear_calls(gk):
    client = Client(gk.status)
    client.say(b"trace 0\r\n")
    alice = FakeEndpoint(["alice"], ("10.0.0.1", 1720), ("10.0.0.1", 1719))
    bob = FakeEndpoint(["bob"], ("10.0.0.2", 1720), ("10.0.0.2", 1719))
    register(gk, alice)
    register(gk, bob)
    call_between(gk, alice, bob)
    assert client.say(b"dca nosuch\r\n") == b"No endpoint to disconnect!\r\n"
    client.say(b"dca alice\r\n")
    assert len(gk.calls) == 0
    call_between(gk, alice, bob)
    client.say(b"dip 10.0.0.2\r\n")
    assert len(gk.calls) == 0
    call_between(gk, alice, bob)
    call_between(gk, bob, alice)
    assert client.say(b"cc\r\n") == b"All calls cleared.\r\n"
    assert len(gk.calls) == 0


def test_fifty_sessions_at_trace_2_get_every_event_in_order_and_trace_0_none(gk):
    gk.status.max_clients = 60        # MaxStatusClients (20 by default)
    watchers = [Client(gk.status, 1000 + n) for n in range(50)]
    quiet = Client(gk.status, 2000)
    quiet.say(b"trace 0\r\n")
    for client in watchers:
        client.take()
    endpoints = [FakeEndpoint([f"{5000 + n}"], (f"10.1.{n // 200}.{n % 200 + 1}", 1720),
                              (f"10.1.{n // 200}.{n % 200 + 1}", 1719)) for n in range(300)]
    for endpoint in endpoints:
        register(gk, endpoint)
    expected = [f"RCF|{e.signal_address[0]}:1720|{e.aliases[0].value}:dialedDigits|terminal|"
                f"{e.endpoint_id};" for e in endpoints]
    for client in watchers:
        assert client.take().decode().splitlines() == expected
    assert quiet.take() == b""


def test_bad_input_never_breaks_the_port(gk):
    import random

    rng = random.Random(5)
    client = Client(gk.status)
    for _ in range(10_000):
        line = bytes(rng.randrange(32, 127) for _ in range(rng.randint(0, 40)))
        if not line.lower().startswith((b"exit", b"q", b"quit")):
            client.session.dataReceived(line + b"\r\n")
        client.take()
    client.session.dataReceived(bytes(rng.randrange(256) for _ in range(100_000)).replace(
        b"\x03", b"").replace(b"\x04", b""))
    client.session.dataReceived(b"\xff\xfb" * 50_000)          # an IAC flood
    client.session.dataReceived(b"x" * (1 << 20))               # an unterminated 1 MiB line
    assert client.session.reader.pending <= gk.status.max_line
    client.take()
    fresh = Client(gk.status, 40001)
    fresh.take()
    assert fresh.say(b"r\r\n") == b"AllRegistrations\r\nNumber of Endpoints: 0\r\n;\r\n"


def test_overlong_line_gets_an_error_and_the_session_continues(gk):
    client = Client(gk.status)
    reply = client.say(b"x" * 9000 + b"\r\n")
    assert reply.startswith(b"Error: line too long")
    assert client.say(b"trace 2\r\n") == b"Output trace level is 2\r\n"


def test_route_commands_with_nothing_pending_say_so(gk):
    client = Client(gk.status)
    assert client.say(b"RouteToAlias Suzi endp_4711 1234\r\n") == \
        b"Error: no RouteRequest pending for endp_4711 1234\r\n"
    assert client.say(b"rtg Suzi 192.168.0.50 endp_4711 1234\r\n") == \
        b"Error: no RouteRequest pending for endp_4711 1234\r\n"
    assert client.say(b"RouteReject endp_4711 1234\r\n") == \
        b"Error: no RouteRequest pending for endp_4711 1234\r\n"
    assert client.say(b"rta\r\n").startswith(b"Syntax Error: RouteToAlias")
    assert client.say(b"TransferCall Frank Peter\r\n").startswith(b"Error: TransferCall needs")


def test_debug_trc_and_printrm(gk):
    client = Client(gk.status)
    assert client.say(b"debug trc 5\r\n") == b"Trace Level is now 5\r\n"
    assert client.say(b"debug trc +\r\n") == b"Trace Level is now 6\r\n"
    assert client.say(b"debug trc -\r\n") == b"Trace Level is now 5\r\n"
    bob = FakeEndpoint(["bob"], ("127.0.0.1", 1731), ("127.0.0.1", 34991))
    register(gk, bob)
    endpoint_id = bob.endpoint_id
    client.say(b"ua bob\r\n")
    assert client.say(b"debug printrm\r\n") == (
        f"AllRemoved\r\nRCF|127.0.0.1:1731|bob:h323_ID|terminal|{endpoint_id}\r\n"
        "Number of Endpoints: 1\r\n;\r\n").encode()


def test_reset_call_counters(gk):
    client = Client(gk.status)
    gk.calls.total = 7
    assert client.say(b"ResetCallCounters\r\n") == b"Call counters reset\r\n"
    assert gk.calls.total == 0


def test_r_with_100000_registrations_comes_in_slices_and_is_never_cut(gk):
    from gatekeeper.core.registry import Endpoint
    from gatekeeper.h225.ras import dialled_digits

    for n in range(100_000):
        gk.registry.add(Endpoint(f"{n}_endp", (dialled_digits(str(100000 + n)),),
                                 ((f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", 1720),), None))
    class TurnClock(Clock):
        """A reactor turn is a step of 1 µs: a call for 'the next turn' waits."""

        def callLater(self, delay, function, *args, **kwargs):
            return super().callLater(max(delay, 1e-6), function, *args, **kwargs)

    turns = TurnClock()
    turns.advance(gk.clock.seconds())
    gk.status.clock = turns
    client = Client(gk.status)
    client.take()
    client.session.dataReceived(b"r\r\n")
    assert client.take() == b""          # the listing starts on the next reactor turn
    turns.advance(1e-6)
    first = client.take()
    assert first.startswith(b"AllRegistrations\r\n")
    assert turns.getDelayedCalls(), "the rest waits for later reactor turns"
    # an event and a reply during the listing come after its end
    gk.bus.publish(ev.GatekeeperConfirmed(("127.0.0.1", 5), (h323_id("bob"),), "terminal"))
    client.session.dataReceived(b"trace 2\r\n")
    slices = 1
    output = first
    while turns.getDelayedCalls():
        turns.advance(1e-6)
        output += client.take()
        slices += 1
        assert slices < 1000
    lines = output.decode().split("\r\n")
    assert lines[100_001] == "Number of Endpoints: 100000" and lines[100_002] == ";"
    assert lines[100_003:105_000][:2] == ["GCF|127.0.0.1|bob|terminal;", "Output trace level is 2"]
    assert slices > 1


def test_shutdown_prints_statistics_then_stops_the_program(gk):
    stopped = []
    gk.stop_program = lambda: stopped.append(True)
    client = Client(gk.status)
    reply = client.say(b"shutdown\r\n")
    assert reply.startswith(b"-- Endpoint Statistics --\r\n") and reply.endswith(b";\r\n")
    gk.clock.advance(0)
    assert stopped == [True]


def test_shutdown_can_be_forbidden(gk):
    from gatekeeper.status.auth import AuthRules

    gk.status.auth = AuthRules.from_items([("rule", "allow"), ("Shutdown", "forbid")])
    stopped = []
    gk.stop_program = lambda: stopped.append(True)
    client = Client(gk.status)
    assert client.say(b"shutdown\r\n") == b"Shutdown not allowed!\r\n"
    gk.clock.advance(0)
    assert stopped == []


def test_stopping_ends_calls_with_cdrs_and_refuses_new_ones(gk):
    records = []
    gk.bus.subscribe(lambda e: records.append(e) if isinstance(e, ev.CallDetailRecord) else None)
    alice = FakeEndpoint(["alice"], ("10.0.0.1", 1720), ("10.0.0.1", 1719))
    bob = FakeEndpoint(["bob"], ("10.0.0.2", 1720), ("10.0.0.2", 1719))
    register(gk, alice)
    register(gk, bob)
    call_between(gk, alice, bob)
    watcher = Client(gk.status)
    gk.stopService()
    assert len(records) == 1 and records[0].release_reason == "gatekeeper shutdown"
    assert len(gk.calls) == 0
    assert watcher.transport.disconnecting
    gk.ras_protocol.datagramReceived(alice.arq(["bob"]), alice.ras_address)
    assert alice.read(gk.ras_protocol.transport.take()[0][0]).kind == "admissionReject"


def test_disconnect_session(gk):
    first, second = Client(gk.status, 1), Client(gk.status, 2)
    assert first.say(f"ds {second.session.number}\r\n".encode()) == \
        f"Session {second.session.number} disconnected\r\n".encode()
    assert second.transport.disconnecting
    assert first.say(b"ds 999\r\n") == b"Session 999 not found\r\n"


def test_current_calls_listing(gk):
    client = Client(gk.status)
    alice = FakeEndpoint(["alice"], ("10.0.1.49", 1720), ("10.0.1.49", 1719))
    bob = FakeEndpoint(["bob"], ("10.1.1.1", 1720), ("10.1.1.1", 1719))
    register(gk, alice)
    register(gk, bob)
    assert client.say(b"c\r\n") == (b"CurrentCalls\r\nNumber of Calls: 0 Active: 0 From Neighbor: 0 "
                                    b"From Parent: 0 Proxied: 0\r\n;\r\n")
    call_id = call_between(gk, alice, bob)
    gk.clock.advance(109)
    lines = client.say(b"!\r\n").decode().split("\r\n")
    call = next(iter(gk.calls))
    dashed = "-".join(f"{b:02x}" for b in call_id)
    assert lines[:5] == [
        "CurrentCalls",
        f"Call No. {call.number} | CallID {' '.join(f'{b:02x}' for b in call_id)} | 109 | 0",
        "Dial bob:h323_ID",
        f"ACF|10.0.1.49:1720|{alice.endpoint_id}|{call.caller_crv}|bob:h323_ID|alice:h323_ID|false|"
        f"{dashed}|Direct;",
        f"ACF|10.1.1.1:1720|{bob.endpoint_id}|{call.callee_crv}|bob:h323_ID|alice:h323_ID|true|"
        f"{dashed}|Direct;",
    ]
    assert lines[5:] == ["Number of Calls: 1 Active: 1 From Neighbor: 0 From Parent: 0 Proxied: 0",
                         ";", ""]
    verbose = client.say(b"cv\r\n").decode().split("\r\n")
    assert verbose[5] == "# alice:h323_ID|bob:h323_ID|1280|Thu, 26 Nov 2026 14:13:13 GMT <1>"


def test_yell_reaches_every_session_as_gnugk_prints_it(gk):
    speaker, listener = Client(gk.status, 47548), Client(gk.status, 47549)
    listener.say(b"trace 0\r\n")
    number = speaker.session.number
    expected = f"  {number}\t127.0.0.1:47548=>127.0.0.1:7000\t: yell hi all\r\n".encode()
    assert speaker.say(b"yell hi all\r\n") == expected
    assert listener.take() == expected
