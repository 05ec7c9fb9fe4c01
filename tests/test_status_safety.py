"""Status port safety: what stops or clears everything needs its full name,
``help COMMAND``, GnuGk's framing of an unknown command, MaxStatusClients
refusals logged, and LoginTimeout dropping every session that never logs in."""

from __future__ import annotations

import ast
import re

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from gatekeeper.ras.controller import RasSettings
from gatekeeper.service import GatekeeperService, ListenSettings
from gatekeeper.status import commands
from gatekeeper.status.auth import AuthRules, hash_password
from gatekeeper.testing import FakeDatagramTransport, FakeEndpoint

from testdata import GNUGK_TRANSCRIPTS


@pytest.fixture
def gk():
    clock = Clock()
    clock.advance(1_795_702_393)
    service = GatekeeperService(RasSettings(gatekeeper_id="GK"), ListenSettings(), clock)
    service.ras_protocol.transport = FakeDatagramTransport()
    service.ras_protocol.startProtocol()
    service.stopped = []
    service.stop_program = lambda: service.stopped.append(True)
    return service


class Client:
    def __init__(self, gk, host: str = "127.0.0.1", port: int = 40000) -> None:
        self.clock = gk.clock
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", host, port),
                                         hostAddress=IPv4Address("TCP", "127.0.0.1", 7000))
        self.session = gk.status.buildProtocol(None)
        self.session.makeConnection(self.transport)

    def take(self) -> bytes:
        self.session.factory.flush()
        data = self.transport.value()
        self.transport.clear()
        return data

    def say(self, line: bytes) -> bytes:
        self.take()
        self.session.dataReceived(line)
        for _ in range(1000):
            if not self.clock.getDelayedCalls():
                break
            self.clock.advance(0)
        return self.take()


def register(gk, number: int) -> None:
    endpoint = FakeEndpoint([f"60{number}"], (f"10.0.1.{number}", 1720),
                            (f"10.0.1.{number}", 1719))
    gk.ras_protocol.datagramReceived(endpoint.rrq(), endpoint.ras_address)
    gk.ras_protocol.transport.take()


def refusal(word: str, name: str) -> bytes:
    return f"Error: Unknown command '{word}' ({name} must be typed in full)\r\n".encode()


# -- only in full -------------------------------------------------------------------


@pytest.mark.parametrize("word", ["sh", "shu", "SHUT", "shutdow"])
def test_a_prefix_of_shutdown_does_not_stop_the_gatekeeper(gk, word):
    client = Client(gk)
    assert client.say(word.encode() + b"\r\n") == refusal(word, "Shutdown")
    gk.clock.advance(1)
    assert gk.stopped == []


@pytest.mark.parametrize("word", ["shutdown", "Shutdown", "SHUTDOWN"])
def test_shutdown_typed_in_full_stops_it(gk, word):
    client = Client(gk)
    assert client.say(word.encode() + b"\r\n").startswith(b"-- Endpoint Statistics --\r\n")
    gk.clock.advance(0)
    assert gk.stopped == [True]


@pytest.mark.parametrize("word", ["unregisterall", "UnregisterAllEndp", "unregisterallendpoint"])
def test_a_prefix_of_unregister_all_endpoints_unregisters_nobody(gk, word):
    for n in (1, 2):
        register(gk, n)
    client = Client(gk)
    assert client.say(f"{word}\r\n".encode()) == refusal(word, "UnregisterAllEndpoints")
    assert len(gk.registry) == 2


@pytest.mark.parametrize("word", ["uae", "UAE", "unregisterallendpoints"])
def test_unregister_all_endpoints_runs_by_its_name_or_gnugks_alias(gk, word):
    for n in (1, 2):
        register(gk, n)
    client = Client(gk)
    assert client.say(f"{word}\r\n".encode()).endswith(b"Done\r\n;\r\n")
    assert len(gk.registry) == 0


@pytest.mark.parametrize("word", ["clear", "cl", "ClearCall"])
def test_a_prefix_of_clear_calls_clears_nothing(gk, word):
    client = Client(gk)
    reply = client.say(f"{word}\r\n".encode())
    assert reply == refusal(word, "ClearCalls")
    assert b"All calls cleared." not in reply


@pytest.mark.parametrize("word", ["cc", "clearcalls", "CLEARCALLS"])
def test_clear_calls_runs_by_its_name_or_gnugks_alias(gk, word):
    assert Client(gk).say(f"{word}\r\n".encode()) == b"All calls cleared.\r\n"


def test_only_the_three_commands_need_their_full_name_and_their_aliases_are_gnugks():
    held = {entry.name: entry.aliases for entry in commands.COMMANDS if entry.in_full}
    assert held == {"Shutdown": (), "UnregisterAllEndpoints": ("uae",), "ClearCalls": ("cc",)}
    recorded = _steps("01_basic_commands.txt")[b"help\r\n"].decode().split("\r\n")
    for names in held.values():
        assert set(names) <= set(recorded)      # GnuGk 5.15 has exactly these short forms


def test_other_prefixes_expand_and_ambiguous_ones_stay_unknown(gk):
    client = Client(gk)
    assert client.say(b"stat\r\n").startswith(b"-- Endpoint Statistics --")
    assert client.say(b"s\r\n").startswith(b"-- Endpoint Statistics --")
    # both UnregisterAlias and UnregisterAllEndpoints: ambiguous, as in GnuGk (no hint)
    assert client.say(b"unregistera x\r\n") == b"Error: Unknown command 'unregistera x'\r\n"
    assert commands.lookup("unregistera") is None


# -- help COMMAND --------------------------------------------------------------------


def test_help_command_prints_its_usage_line(gk):
    client = Client(gk)
    assert client.say(b"help find\r\n") == (
        b"Find|f ALIAS\r\n  find an endpoint by alias or prefix\r\n;\r\n")
    assert client.say(b"h dc\r\n") == (
        b"DisconnectCall|dc CALL_NUMBER [CALL_NUMBER...]\r\n  disconnect calls by number\r\n"
        b";\r\n")
    assert client.say(b"help ROUTEREJECT\r\n").startswith(
        b"RouteReject|rr CALLING_ENDPOINT_ID CRV [CALLID [REASON]]\r\n")
    assert client.say(b"help shutdown\r\n") == (
        b"Shutdown\r\n  stop the gatekeeper (if [GkStatus::Auth] Shutdown allows) "
        b"(type the name in full)\r\n;\r\n")


def test_help_for_no_such_command_or_too_many_words(gk):
    client = Client(gk)
    assert client.say(b"help nosuch\r\n") == b"Error: Unknown command 'nosuch'\r\n"
    assert client.say(b"help sh\r\n") == refusal("sh", "Shutdown")
    assert client.say(b"help find fv\r\n") == b"Syntax Error: Help [COMMAND]\r\n"


def test_every_command_has_a_help_entry(gk):
    client = Client(gk)
    for entry in commands.COMMANDS:
        reply = client.say(f"help {entry.name}\r\n".encode()).decode()
        lines = reply.split("\r\n")
        assert lines[0] == entry.usage_line() and lines[0].split()[0].split("|")[0] == entry.name
        assert lines[1].startswith("  ") and len(lines[1]) > 4 and lines[2:] == [";", ""]


def test_gnugk_recordings_have_no_help_with_an_argument():
    # so help COMMAND's answer is ours: GnuGk 5.15 answers the table whatever follows
    sent = [line for name in sorted(GNUGK_TRANSCRIPTS.glob("*.txt"))
            for line in _steps(name.name)]
    assert sent
    helps = [line for line in sent if line.strip().lower().startswith((b"help", b"h "))]
    assert helps and all(line.strip().lower() in (b"help", b"help\x08p") for line in helps)


# -- an unknown command, as GnuGk 5.15 frames it --------------------------------------


def _steps(name: str) -> dict[bytes, bytes]:
    """What was sent -> everything received until the next send."""
    steps: dict[bytes, bytes] = {}
    last = None
    for line in (GNUGK_TRANSCRIPTS / name).read_text().splitlines():
        match = re.match(r"^[0-9.]+ (SEND|RECV) (b['\"].*)$", line)
        if not match:
            continue
        data = ast.literal_eval(match.group(2))
        if match.group(1) == "SEND":
            last = data
            steps.setdefault(last, b"")
        elif last is not None:
            steps[last] += data
    return steps


UNKNOWN = [(name, sent, received) for name in ("01_basic_commands.txt", "02_variants_LF.txt",
                                               "03_prefix_symbols_CR.txt", "15_issuer.txt")
           for sent, received in _steps(name).items()
           if received.startswith(b"Error: Unknown command")]


def test_the_recordings_have_unknown_commands():
    assert len(UNKNOWN) >= 5


@pytest.mark.parametrize("name, sent, received", UNKNOWN)
def test_an_unknown_command_is_one_line_without_a_semicolon_as_in_gnugk(gk, name, sent, received):
    assert received.count(b"\r\n") == 1 and b";" not in received   # GnuGk 5.15's framing
    assert Client(gk).say(sent) == received


# -- MaxStatusClients -------------------------------------------------------------------


def _refusals(logged):
    return [e for e in logged if "MaxStatusClients" in e.get("log_format", "")]


def test_a_client_over_max_status_clients_is_refused_and_logged_with_the_count(gk, logged):
    gk.status.max_clients = 2
    Client(gk, port=40001)
    Client(gk, port=40002)
    third = Client(gk, port=40003)
    assert third.transport.value().endswith(b"\r\nAccess forbidden!\r\n")
    assert third.transport.disconnecting
    (event,) = _refusals(logged)
    assert (event["peer"], event["count"], event["limit"]) == ("127.0.0.1:40003", 2, 2)
    assert event["log_level"].name == "warn"


def test_max_status_clients_refusals_are_logged_at_a_bounded_rate(gk, logged):
    gk.status.max_clients = 0
    for port in range(41000, 41050):
        Client(gk, port=port)
    assert len(_refusals(logged)) == 1
    gk.clock.advance(11)
    Client(gk, port=42000)
    later = _refusals(logged)
    assert len(later) == 2 and later[1]["skipped"] == 49


# -- LoginTimeout -------------------------------------------------------------------------


@pytest.fixture
def login_gk(gk):
    gk.status.auth = AuthRules.from_items([("rule", "password"),
                                           ("gkadmin", hash_password("secret")),
                                           ("LoginTimeout", "30")])
    return gk


def test_a_session_that_never_sends_anything_is_dropped_after_login_timeout(login_gk):
    client = Client(login_gk, host="10.0.0.5")
    client.take()
    login_gk.clock.advance(29.9)
    assert not client.transport.disconnecting
    login_gk.clock.advance(0.2)
    assert client.take() == b"\r\nAccess forbidden!\r\n" and client.transport.disconnecting
    assert not client.session.logged_in
    assert client.session not in login_gk.status.sessions or client.session._closing


def test_partial_lines_and_telnet_negotiation_do_not_keep_a_session_alive(login_gk, logged):
    client = Client(login_gk, host="10.0.0.5")
    client.take()
    # every 2 s: a piece of a line that never ends, and a telnet option request
    for _ in range(14):
        client.session.dataReceived(b"gkadm")
        client.session.dataReceived(b"\xff\xfb\x18\xff\xfd\x01")   # WILL TERMINAL-TYPE, DO ECHO
        login_gk.clock.advance(2)
    assert not client.transport.disconnecting                 # 28 s
    login_gk.clock.advance(2.1)
    assert client.transport.value().endswith(b"\r\nAccess forbidden!\r\n")
    assert client.transport.disconnecting and not client.session.logged_in
    (event,) = [e for e in logged if "did not log in" in e.get("log_format", "")]
    assert event["peer"] == "10.0.0.5:40000" and event["seconds"] == 30


def test_a_user_name_without_a_password_is_dropped_after_login_timeout(login_gk):
    client = Client(login_gk, host="10.0.0.5")
    client.take()
    client.session.dataReceived(b"gkadmin\r\n")
    assert client.take() == b"\xff\xfb\x01Password: "
    login_gk.clock.advance(25)
    client.session.dataReceived(b"sec")          # typing, never Enter
    login_gk.clock.advance(5.1)
    assert client.transport.disconnecting and not client.session.logged_in


def test_a_session_that_logs_in_in_time_stays(login_gk):
    client = Client(login_gk, host="10.0.0.5")
    client.session.dataReceived(b"gkadmin\r\nsecret\r\n")
    assert client.session.logged_in
    login_gk.clock.advance(3600)
    assert not client.transport.disconnecting
