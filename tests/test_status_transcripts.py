"""Replay GnuGk 5.15's recorded status-port sessions against ours, byte for byte.

Each transcript in tests/data/gnugk-transcripts lists what a client
sent and what GnuGk answered.  The ones whose answers do not depend on live
endpoints and calls are replayed here, step by step, over one session of a
gatekeeper set up like the recording (same INI file, empty tables).  Only
what must differ is normalised: the version line, times, session numbers and
client ports.  Where we differ on purpose, the difference is written down in
DELIBERATE with its reason, and our bytes are checked against that instead.
"""

from __future__ import annotations

import ast
import re
import time

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from gatekeeper.config import parse, read_ini
from gatekeeper.ras.controller import RasSettings
from gatekeeper.service import GatekeeperService, ListenSettings
from gatekeeper.status import commands

from testdata import GNUGK_TRANSCRIPTS as TRANSCRIPTS

# The configuration the recordings were made with (tests/data/README.md).
RECORDED_INI = """\
[Gatekeeper::Main]
Name=GnuGk
Home=127.0.0.1
StatusPort=7000
StatusTraceLevel=2
TimeToLive=300
[RoutedMode]
GKRouted=1
H245Routed=0
CallSignalPort=1721
[GkStatus::Auth]
rule=allow
"""

@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def steps(name: str) -> list[tuple[bytes, bytes]]:
    """(sent, everything received before the next send) for each SEND."""
    result: list[tuple[bytes, bytes]] = []
    for line in (TRANSCRIPTS / name).read_text().splitlines():
        match = re.match(r"^[0-9.]+ (SEND|RECV) (b['\"].*)$", line)
        if not match:
            continue
        kind, literal = match.groups()
        data = ast.literal_eval(literal)
        if kind == "SEND":
            result.append((data, b""))
        elif result:
            sent, received = result[-1]
            result[-1] = (sent, received + data)
    return result


# -- normalising what must differ ------------------------------------------------

_VERSION = re.compile(rb"Version:\r\n[^\r\n]*\r\n")
_STARTUP = re.compile(rb"Startup: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT( +)"
                      rb"Running: \d+ days \d\d:\d\d:\d\d")
_PEAK = re.compile(rb"Peak: (\d+) at [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT")
_SESSION = re.compile(rb"  \d+\t127\.0\.0\.1:\d+=>127\.0\.0\.1:\d+\t")


def normalise(data: bytes) -> bytes:
    data = _VERSION.sub(b"Version:\r\n<version>\r\n", data)
    data = _STARTUP.sub(rb"Startup: <time>\1Running: <uptime>", data)
    data = _PEAK.sub(rb"Peak: \1 at <time>", data)
    return _SESSION.sub(b"  <n>\t<peer>\t", data)


def seed_spacing(data: bytes) -> bytes:
    """The statistics block as the seed document prints it: single spaces
    between fields (GnuGk 5.15 puts two, and three before Running)."""
    def collapse(block: re.Match[bytes]) -> bytes:
        return re.sub(rb" {2,}", b" ", block.group(0))
    return re.sub(rb"-- Endpoint Statistics --\r\n.*?\r\n;\r\n", collapse, data, flags=re.S)


# -- where we differ from 5.15 on purpose -------------------------------------------
# (transcript, sent bytes) -> our answer, and why.

_CFG_ROUTED = b"Section [RoutedMode]\r\nGKRouted=1\r\nH245Routed=0\r\nCallSignalPort=1721\r\n;\r\n"


def _find_not_found(alias: str) -> bytes:
    return f"SoftPBX: alias {alias} not found!\r\n".encode()


DELIBERATE: dict[tuple[str, bytes], tuple[bytes, str]] = {}
for _name, _eol in (("01_basic_commands.txt", b"\r\n"), ("02_variants_LF.txt", b"\n"),
                    ("15_issuer.txt", b"\n")):
    for _command in (b"find alice", b"findverbose alice", b"Find alice", b"FIND alice",
                     b"f alice", b"fv alice"):
        if _command + _eol not in dict(steps(_name)):
            continue
        DELIBERATE[(_name, _command + _eol)] = (
            _find_not_found("alice"), "the seed document's 'SoftPBX: alias X not found!' wins")
DELIBERATE[("15_issuer.txt", b"find nosuch\n")] = (
    _find_not_found("nosuch"), "the seed document's 'SoftPBX: alias X not found!' wins")
DELIBERATE[("02_variants_LF.txt", b"debug cfg RoutedMode\n")] = (
    _CFG_ROUTED, "we list the file's keys; GnuGk also lists defaults it wrote into its config "
                 "(AcceptUnregisteredCalls=0)")
DELIBERATE[("15_issuer.txt", b"disconnectip 127.0.0.9\n")] = (
    b"No endpoint to disconnect!\r\n", "GnuGk 5.15 answers nothing; we never answer with silence")
DELIBERATE[("05_misc_commands.txt", b"printcallinfo 999\n")] = (
    b"CallInfo\r\nError: no call with call ID 999\r\n;\r\n",
    "GnuGk prints an empty block; we say why inside it")
DELIBERATE[("05_misc_commands.txt", b"printeventbacklog\n")] = (
    b"Error: PrintEventBacklog is not supported by this gatekeeper\r\n",
    "no StatusEventBacklog here; GnuGk's hint names a key we do not read")
DELIBERATE[("05_misc_commands.txt", b"maintenancemode\n")] = (
    b"Error: MaintenanceMode is not supported by this gatekeeper\r\n",
    "maintenance mode needs the RAS controller to refuse registrations (not built)")
DELIBERATE[("06_maintenance_off.txt", b"maintenancemode off\n")] = (
    b"Error: MaintenanceMode is not supported by this gatekeeper\r\n",
    "maintenance mode needs the RAS controller to refuse registrations (not built)")

# Steps whose answer depends on endpoints and calls of the recorded run
# (bob registered, calls up): not replayed against empty tables.
STATEFUL = {
    ("05_misc_commands.txt", b"printendpointqos\n"),
    ("05_misc_commands.txt", b"makecall\n"),          # answer + bob's RRJ event
    ("05_misc_commands.txt", b"debug printrm\n"),
}


def make_gatekeeper() -> GatekeeperService:
    clock = Clock()
    clock.advance(1_795_702_393)   # Thu, 26 Nov 2026 14:13:13 GMT, the recording's startup
    config = parse(read_ini(RECORDED_INI, "gatekeeper.ini"))
    service = GatekeeperService(RasSettings(gatekeeper_id="GnuGk"), ListenSettings(), clock,
                                config)
    service.start_time = clock.seconds()
    service.status.log_level = 5   # GnuGk ran with trace level 5 ("debug trc" shows it)
    service.stop_program = lambda: None
    return service


class Session:
    def __init__(self, gatekeeper: GatekeeperService, port: int = 48196) -> None:
        self.clock = gatekeeper.clock
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port),
                                         hostAddress=IPv4Address("TCP", "127.0.0.1", 7000))
        self.protocol = gatekeeper.status.buildProtocol(None)
        self.protocol.makeConnection(self.transport)

    def take(self) -> bytes:
        for _ in range(10_000):            # pending listings and event batches
            if not self.clock.getDelayedCalls():
                break
            self.clock.advance(0)
        data = self.transport.value()
        self.transport.clear()
        return data


def replay(name: str) -> list[tuple[bytes, bytes, bytes]]:
    """(sent, GnuGk's answer, ours) for every replayable step."""
    gatekeeper = make_gatekeeper()
    session = Session(gatekeeper)
    session.take()
    results = []
    for sent, expected in steps(name):
        session.protocol.dataReceived(sent)
        ours = session.take()
        if (name, sent) not in STATEFUL:
            results.append((sent, expected, ours))
    return results


REPLAYED = ["01_basic_commands.txt", "02_variants_LF.txt", "03_prefix_symbols_CR.txt",
            "04_pipelined_and_ctrlD.txt", "05_misc_commands.txt", "06_maintenance_off.txt",
            "15_issuer.txt", "60_shutdown.txt"]


@pytest.mark.parametrize("name", REPLAYED)
def test_transcript_replays_byte_for_byte(name):
    mismatches = []
    for sent, expected, ours in replay(name):
        if (name, sent) in DELIBERATE:
            wanted = DELIBERATE[(name, sent)][0]
        else:
            wanted = seed_spacing(expected)
        if normalise(ours) != normalise(wanted):
            mismatches.append((sent, normalise(wanted), normalise(ours)))
    assert mismatches == []


def test_every_deliberate_difference_is_really_a_difference():
    for (name, sent), (ours, _reason) in DELIBERATE.items():
        recorded = dict(steps(name))
        assert sent in recorded, (name, sent)
        assert normalise(recorded[sent]) != normalise(ours)


def test_help_lists_exactly_gnugks_command_table():
    recorded = dict(steps("01_basic_commands.txt"))[b"help\r\n"]
    session = Session(make_gatekeeper())
    session.take()
    session.protocol.dataReceived(b"help\r\n")
    assert session.take() == recorded
    names = recorded.decode().split("\r\n")[1:-2]
    assert sorted(commands.TABLE) == names
    for name in names:       # every listed name reaches a command
        assert commands.lookup(name) is commands.TABLE[name]


def test_the_statistics_fields_agree_with_5_15_apart_from_spacing():
    recorded = dict(steps("01_basic_commands.txt"))[b"statistics\r\n"]
    session = Session(make_gatekeeper())
    session.take()
    session.protocol.dataReceived(b"statistics\r\n")
    ours = session.take()
    assert normalise(ours) == normalise(seed_spacing(recorded))
    assert normalise(ours).split() == normalise(recorded).split()


def test_the_banner_has_gnugks_frame():
    gatekeeper = make_gatekeeper()
    gatekeeper.clock.advance(25)
    session = Session(gatekeeper)
    banner = steps("01_basic_commands.txt")[0]   # the banner is received before any send
    ours = session.take()
    recorded = (TRANSCRIPTS / "01_basic_commands.txt").read_text()
    literal = re.search(r"RECV\(banner\) (b'.*')", recorded).group(1)
    assert normalise(ours) == normalise(ast.literal_eval(literal))
    assert banner[0] == b"help\r\n"
