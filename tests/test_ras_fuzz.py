"""Mutated RAS datagrams through the real RasProtocol and RasController.

test_codec_robustness.py checks that the decoder only ever raises DecodeError; this module
checks what happens after a datagram decodes: the typed readers, the controller, the encoders of
the answers and the send path, on a Clock, behind a real ``twisted.internet.udp.Port`` whose
socket is a stand-in (``KernelSocket``), so Twisted's own address checks run (``InvalidAddressError``
for IPv6 on an IPv4 port, ...) and nothing leaves the process.

The inputs are the mutators of test_codec_robustness applied to the real endpoint datagrams, to
our encodings of every RAS message kind and to the requests of registered endpoints (so that the
handlers get past "not registered"), from a seeded generator.  Valid sessions of fresh endpoints
are interleaved and must go on working.  Every datagram that ``ras.parse`` accepts and that is a
request must get its answer; no failure may be logged, no observer of the bus may fail, and the
log stays small.  The two failures seen fuzzing the running gatekeeper have their own tests.
"""

from __future__ import annotations

import errno
import random
import socket
import time
from collections import Counter

import pytest
from twisted.internet import udp
from twisted.internet.error import InvalidAddressError
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactor
from twisted.logger import LogLevel, Logger, formatEvent
from twisted.python.failure import Failure

from gatekeeper import events as ev
from gatekeeper.errors import DecodeError
from gatekeeper.h225 import codec, ras
from gatekeeper.ras.controller import ANSWERS, NOT_FOR_US, RasController, RasSettings, Reply
from gatekeeper.ras.protocol import RasProtocol
from gatekeeper.ratelimit import RateLimitedLog
from gatekeeper.status import formats
from gatekeeper.testing import FakeEndpoint

from asn1_values import full_ras
from test_codec_robustness import REAL_VECTORS, _ras_encodings, mutate

SEED = 0x5241_5346
CASES = 8000
START = 1_800_000_000
GK = ("192.0.2.1", 1719)

#: What the gatekeeper may answer to each request it serves.
REPLIES = {
    "gatekeeperRequest": {"gatekeeperConfirm", "gatekeeperReject"},
    "registrationRequest": {"registrationConfirm", "registrationReject"},
    "unregistrationRequest": {"unregistrationConfirm", "unregistrationReject"},
    "admissionRequest": {"admissionConfirm", "admissionReject"},
    "bandwidthRequest": {"bandwidthConfirm", "bandwidthReject"},
    "disengageRequest": {"disengageConfirm", "disengageReject"},
    "locationRequest": {"locationConfirm", "locationReject"},
    "resourcesAvailableIndicate": {"resourcesAvailableConfirm"},
    "infoRequestResponse": {"infoRequestAck", "infoRequestNak"},
}
#: Never answered: answers to requests of ours, and what only a gatekeeper sends.
SILENT = (set(NOT_FOR_US) | {kind for answers in ANSWERS.values() for kind in answers}
          | {"infoRequestAck", "infoRequestNak"}) - {"infoRequestResponse"}
#: Requests the gatekeeper sends of its own accord.
OURS = set(ANSWERS)


class KernelSocket:
    """The socket under a real ``udp.Port``: records what is sent and refuses what Linux
    refuses (a port outside 0-65535, port 0, the broadcast address without SO_BROADCAST)."""

    def __init__(self, host: tuple) -> None:
        self.host = host
        self.sent: list[tuple[bytes, tuple]] = []

    def sendto(self, data: bytes, address: tuple) -> int:
        host, port = address
        if not isinstance(port, int):
            raise TypeError(f"'{type(port).__name__}' object cannot be interpreted as an integer")
        if not 0 <= port <= 65535:
            raise OverflowError("sendto(): port must be 0-65535.")
        if port == 0:
            raise OSError(errno.EINVAL, "Invalid argument")
        if host == "255.255.255.255":
            raise PermissionError(errno.EACCES, "Permission denied")
        self.sent.append((bytes(data), (host, port)))
        return len(data)

    def getsockname(self) -> tuple:
        return self.host

    def take(self) -> list[tuple[bytes, tuple]]:
        sent, self.sent = self.sent, []
        return sent


class Gatekeeper:
    """RasProtocol + RasController on a Clock, behind a real udp.Port with a KernelSocket;
    the bus also feeds the status port's formatter, so its text is made for every event."""

    def __init__(self, host: tuple = GK, **settings) -> None:
        settings.setdefault("gatekeeper_id", "GK")
        self.clock = Clock()
        self.clock.advance(START)
        self.bus = ev.EventBus()
        self.events: list[object] = []
        self.bus.subscribe(self.events.append)
        self.bus.subscribe(formats.format_event)
        self.controller = RasController(RasSettings(**settings), self.bus, self.clock)
        self.protocol = RasProtocol(self.controller, self.clock)
        self.port = udp.Port(host[1], self.protocol, interface=host[0], reactor=MemoryReactor())
        self.socket = self.port.socket = KernelSocket(host)
        self.protocol.transport = self.port
        self.protocol.startProtocol()
        self.controller.start()

    def send(self, data: bytes, source: tuple) -> list[tuple[bytes, tuple]]:
        """Deliver one datagram; what was sent because of it."""
        self.socket.take()
        self.protocol.datagramReceived(data, source)
        return self.socket.take()

    def ask(self, endpoint: FakeEndpoint, data: bytes) -> ras.RasPdu:
        [(reply, destination)] = self.send(data, endpoint.ras_address)
        assert destination == endpoint.ras_address
        return endpoint.read(reply)


def failures(logged: list[dict]) -> list[dict]:
    return [e for e in logged if "log_failure" in e or e.get("log_level") == LogLevel.critical]


def ours(logged: list[dict]) -> list[dict]:
    return [e for e in logged if str(e.get("log_namespace", "")).startswith("gatekeeper")]


def endpoint(n: int, name: str = "", digits: str = "", network: str = "10.0.0") -> FakeEndpoint:
    return FakeEndpoint([name or f"ep{n}", digits or f"77{n:04d}"],
                        signal_address=(f"{network}.{n}", 1720),
                        ras_address=(f"{network}.{n}", 1719))


# --- datagrams of our own making ------------------------------------------------------------

def grq_with_alias(alias: tuple, seq: int = 1, version: str = "0.0.8.2250.0.4") -> bytes:
    return codec.encode_ras(("gatekeeperRequest", {
        "requestSeqNum": seq, "protocolIdentifier": version,
        "rasAddress": ras.transport_to_asn(("127.0.0.1", 1719)),
        "endpointType": ras.endpoint_type_value("terminal"), "endpointAlias": [alias]}))


def lrq_replying_to(address: tuple, seq: int = 1) -> bytes:
    return codec.encode_ras(("locationRequest", {
        "requestSeqNum": seq, "destinationInfo": [("dialledDigits", "4930123")],
        "replyAddress": ras.transport_to_asn(address), "canMapAlias": False}))


#: Alias values of every shape the decoder can hand over besides the modelled ones.
ODD_ALIASES = [
    ("mobileUIM", ("?extension-0", bytes.fromhex("0060a4"))),
    ("mobileUIM", ("?extension-5", b"")),
    ("partyNumber", ("?extension-2", b"\x01\x02")),
    ("isupNumber", ("?extension-0", b"\x07")),
    ("transportID", ("?extension-1", b"\x05\x06")),
    ("transportID", ("netBios", b"NETBIOSNAME12345")),
    ("transportID", ("nsap", b"\x49\x00\x01")),
    ("?extension-6", b"\x42"),
    ("?extension-63", b"\x00" * 40),
]


def crafted() -> list[bytes]:
    """Requests carrying every odd alias, and LRQs replying to IPv6 and unusable addresses."""
    data = [grq_with_alias(alias, seq) for seq, alias in enumerate(ODD_ALIASES, 1)]
    data += [lrq_replying_to(address, seq) for seq, address in enumerate(
        [("2001:db8::7", 1719), ("::ffff:10.9.9.9", 1719), ("0.0.0.0", 1719),
         ("255.255.255.255", 1719), ("10.9.9.9", 0), ("224.0.1.41", 1718)], 1)]
    return data


def endpoint_requests(endpoints: list[FakeEndpoint], gk: Gatekeeper) -> list[bytes]:
    """What registered endpoints send, with their real identifiers and calls."""
    requests = []
    for index, ep in enumerate(endpoints):
        other = endpoints[(index + 1) % len(endpoints)]
        pdu = gk.ask(ep, ep.arq([other.aliases[0]]))
        assert pdu.kind == "admissionConfirm", pdu.raw
        call_id = list(ep.calls)[-1]
        requests += [ep.grq(), ep.rrq(), ep.rrq(keepalive=True), ep.rrq(lightweight=True),
                     ep.arq([other.aliases[1]]), ep.arq([], answer_call=True, call_id=call_id),
                     ep.brq(call_id, 640), ep.drq(call_id), ep.lrq([other.aliases[0]]),
                     ep.irr(need_response=True), ep.rai(), ep.urq()]
    return requests


def valid_session(gk: Gatekeeper, n: int) -> None:
    """A fresh endpoint discovers, registers, calls itself, hangs up and leaves."""
    ep = endpoint(n % 250 + 1, f"fresh{n}", f"88{n:05d}", f"10.1.{n // 250 % 250}")
    assert gk.ask(ep, ep.grq()).kind == "gatekeeperConfirm"
    assert gk.ask(ep, ep.rrq()).kind == "registrationConfirm"
    assert gk.ask(ep, ep.arq([ep.aliases[1]])).kind == "admissionConfirm"
    call_id = list(ep.calls)[-1]
    assert gk.ask(ep, ep.drq(call_id)).kind == "disengageConfirm"
    assert gk.ask(ep, ep.urq()).kind == "unregistrationConfirm"


# --- the fuzz test --------------------------------------------------------------------------

def readable(message: tuple) -> bool:
    """Whether ``ras.read`` must take a decoded message: all do, but for a requestSeqNum of
    65536 (PER carries 1..65535 in 16 bits; no answer could carry it back)."""
    value = message[1]
    seq = value.get("requestSeqNum", 1) if isinstance(value, dict) else 1
    return 1 <= seq <= 65535


def test_mutated_datagrams_never_fail_and_every_decodable_request_is_answered(logged):
    gk = Gatekeeper()
    endpoints = [endpoint(n) for n in range(1, 5)]
    for ep in endpoints:
        assert gk.ask(ep, ep.rrq()).kind == "registrationConfirm"
    corpus = REAL_VECTORS + _ras_encodings() + crafted() + endpoint_requests(endpoints, gk) * 3
    sources = [ep.ras_address for ep in endpoints] + [("10.0.0.99", 1719), ("10.0.0.1", 5000)]
    rng = random.Random(SEED)
    seen: Counter[str] = Counter()
    unanswered: list[str] = []
    wrong: list[str] = []
    started = time.perf_counter()
    for case in range(CASES):
        if case % 100 == 0:
            valid_session(gk, case // 100)
        data = mutate(rng.choice(corpus), rng, corpus) if rng.random() < 0.95 else rng.choice(corpus)
        pdu = None
        try:
            message = codec.decode_ras(data)
        except DecodeError:
            message = None
        if message is not None and readable(message):
            try:
                pdu = ras.read(message)   # what decodes, the typed readers take
            except DecodeError as error:
                wrong.append(f"decoded but not read ({error}): {data.hex()}")
        gk.clock.advance(0.005)   # timers fire now, not during the datagram
        before = gk.protocol.stats["unsendable"] + gk.protocol.stats["send errors"]
        sent = gk.send(data, rng.choice(sources))
        refused = gk.protocol.stats["unsendable"] + gk.protocol.stats["send errors"] - before
        if pdu is None:
            seen["undecodable" if message is None else "seq out of range"] += 1
            if sent:
                wrong.append(f"answered an undecodable datagram: {data.hex()}")
            continue
        kind = pdu.kind
        seen["decoded"] += 1
        if kind in SILENT or (kind == "infoRequestResponse" and not pdu.need_response):
            expected = set()
        else:
            expected = REPLIES.get(kind, {"unknownMessageResponse"})
        # Besides its answer, a request may make the gatekeeper send requests of its own (a URQ
        # ending a call: DRQs to the other party).
        kinds = [ras.parse(reply).kind for reply, _ in sent]
        sent = [(reply, to) for (reply, to), sent_kind in zip(sent, kinds) if sent_kind not in OURS]
        if not expected:
            if sent:
                wrong.append(f"{kind} answered with {kinds}: {data.hex()}")
            continue
        seen["requests"] += 1
        if not sent:
            # Only a destination the peer wrote into its message may be refused.
            if not refused:
                unanswered.append(f"{kind}: {data.hex()}")
            seen["refused"] += 1
            continue
        for reply, _ in sent:
            answer = ras.parse(reply)
            if answer.kind not in expected or (answer.seq != pdu.seq and pdu.seq):
                wrong.append(f"{kind} seq {pdu.seq} answered {answer.kind} seq {answer.seq}")
    elapsed = time.perf_counter() - started
    assert not failures(logged), [e.get("log_failure") for e in failures(logged)][:3]
    assert unanswered == [], unanswered[:10]
    assert wrong == [], wrong[:10]
    assert gk.protocol.stats["errors"] == 0
    assert gk.bus.failures == 0
    # The fuzz reaches past the decoder: many requests decode and are answered.
    assert seen["decoded"] >= CASES // 4 and seen["requests"] >= CASES // 5, seen
    # About 15 s of Clock time: a few lines per kind of trouble, not one per datagram.
    assert len(ours(logged)) <= 40, Counter(e.get("log_format") for e in ours(logged))
    # The gatekeeper still works.
    valid_session(gk, 9999)
    print(f"{CASES} cases in {elapsed:.1f} s: {dict(seen)}, {len(ours(logged))} log lines")


# --- issue 10: a GRQ whose mobileUIM alias is an unknown extension ---------------------------

def test_grq_with_a_mobile_uim_alias_of_an_unknown_extension_gets_its_gcf(logged):
    data = grq_with_alias(("mobileUIM", ("?extension-0", bytes.fromhex("0060a4"))))
    # The shape of the datagram in the report: 00200000060008914a0004007f...0060a4
    assert data.hex().startswith("00200000060008914a0004007f") and data.hex().endswith("0060a4")
    gk = Gatekeeper()
    [(reply, destination)] = gk.send(data, ("10.0.0.1", 1719))
    assert destination == ("10.0.0.1", 1719)
    assert ras.parse(reply).kind == "gatekeeperConfirm"
    assert not failures(logged)
    [confirmed] = [e for e in gk.events if isinstance(e, ev.GatekeeperConfirmed)]
    [alias] = confirmed.aliases
    assert (alias.kind, alias.value) == ("mobileUIM", "?0060a4")
    assert formats.format_event(confirmed) == "GCF|10.0.0.1|?0060a4|terminal;"


def test_an_opaque_alias_registers_and_comes_back_in_the_rcf_as_it_was_sent():
    odd = ("mobileUIM", ("?extension-3", b"\x01\x02\x03"))
    ep = FakeEndpoint([ras.alias_from_asn(odd), "alice"], ("10.0.0.1", 1720), ("10.0.0.1", 1719))
    gk = Gatekeeper()
    rcf = gk.ask(ep, ep.rrq())
    assert rcf.kind == "registrationConfirm"
    assert rcf.raw["terminalAlias"] == [odd, ("h323-ID", "alice")]
    # Another endpoint with other octets in the same unknown alternative is another alias.
    other = FakeEndpoint([ras.alias_from_asn(("mobileUIM", ("?extension-3", b"\x09")))],
                         ("10.0.0.2", 1720), ("10.0.0.2", 1719))
    assert gk.ask(other, other.rrq()).kind == "registrationConfirm"


@pytest.mark.parametrize("value", ODD_ALIASES + [
    ("h323-ID", b"octets, not text"), ("dialledDigits", None), ("mobileUIM", b"\x01"),
    ("mobileUIM", ("gsm-uim", b"\x01")), ("partyNumber", ("e164Number", b"\x01")),
    ("isupNumber", ("privateNumber", {"x": 1})), ("transportID", b""), ("mobileUIM",), b"",
    None, ("partyNumber", ("e164Number", {"publicTypeOfNumber": ("unknown", None)})),
], ids=repr)
def test_any_alias_shape_reads_as_an_alias_and_never_raises(value):
    alias = ras.alias_from_asn(value)
    assert isinstance(alias, ras.Alias) and isinstance(alias.value, str)
    assert alias.value.startswith("?")            # opaque: never digits, never a prefix
    assert alias.digits is None and not alias.is_digits
    assert str(alias).startswith("?")
    if value in ODD_ALIASES:                      # what the decoder gives re-encodes as it came
        assert ras.alias_to_asn(alias) == value
        assert ras.aliases_from_asn(ras.aliases_to_asn([alias])) == (alias,)


def test_opaque_aliases_with_different_octets_differ_and_their_text_is_bounded():
    first = ras.alias_from_asn(("?extension-6", b"\x01"))
    second = ras.alias_from_asn(("?extension-6", b"\x02"))
    assert first != second
    assert len(ras.alias_from_asn(("?extension-6", b"\xff" * 5000)).value) <= 257


@pytest.mark.parametrize("value", [
    ("?extension-7", b"\x01"), ("netBios", b"x" * 16), ("nsap", b"\x01"),
    ("ipxAddress", {"node": b"\0" * 6, "netnum": b"\0" * 4, "port": b"\0\0"}),
    ("ipAddress", b"\x7f\0\0\1"), ("ipAddress", {"ip": b"\x7f\0\0", "port": 1}),
    ("ipAddress", {"ip": b"\x7f\0\0\1"}), ("ip6Address", {"ip": b"\0" * 4, "port": 1}),
    None, b"", ("ipAddress",),
], ids=repr)
def test_any_transport_address_shape_reads_as_none(value):
    assert ras.transport_from_asn(value) is None


ALIAS_KINDS = set(sum(codec.choice_alternatives("AliasAddress"), ()))
ADDRESS_FIELDS = ("rasAddress", "replyAddress", "destCallSignalAddress", "srcCallSignalAddress",
                  "callSignalAddress")


def test_every_ras_reader_is_total_over_odd_aliases_and_addresses():
    """Each typed message, everything filled in, with every alias list and transport address
    replaced by the odd shapes, reads cleanly: aliases become opaque, addresses absent."""
    odd_address = ("?extension-3", b"\x01")
    replaced: Counter[str] = Counter()
    for kind in ras._READERS:
        fields = dict(full_ras(kind)[1])
        for name, field in fields.items():
            if isinstance(field, list) and field and isinstance(field[0], tuple) \
                    and field[0][0] in ALIAS_KINDS:
                fields[name] = list(ODD_ALIASES)
                replaced[kind] += 1
        for name in ADDRESS_FIELDS:
            if name in fields:
                fields[name] = [odd_address] if isinstance(fields[name], list) else odd_address
                replaced[kind] += 1
        fields["requestSeqNum"] = 7
        typed = ras.read(codec.decode_ras(codec.encode_ras((kind, fields))))
        assert typed.kind == kind and typed.seq == 7
        for name in ("aliases", "destination_info", "source_info", "src_info",
                     "dest_extra_call_info"):
            assert all(a.value.startswith("?") for a in getattr(typed, name, ()))
        for name in ("ras_address", "reply_address", "dest_call_signal_address",
                     "src_call_signal_address"):
            assert getattr(typed, name, None) is None
        for name in ("call_signal_addresses", "ras_addresses"):
            assert getattr(typed, name, ()) == ()
    for kind in ("gatekeeperRequest", "registrationRequest", "unregistrationRequest",
                 "admissionRequest", "locationRequest", "infoRequestResponse"):
        assert replaced[kind] >= 2, (kind, replaced)


def test_a_request_sequence_number_out_of_range_is_malformed_not_a_failure(logged):
    """PER carries 1..65535 as 16 bits of seq - 1: a peer can write 65536, which no answer
    could carry back."""
    data = bytearray(FakeEndpoint(["alice"]).rrq())
    data[2:4] = b"\xff\xff"
    with pytest.raises(DecodeError, match="requestSeqNum"):
        ras.parse(bytes(data))
    gk = Gatekeeper()
    assert gk.send(bytes(data), ("10.0.0.1", 1719)) == []
    assert gk.protocol.stats["malformed"] == 1
    assert not failures(logged)


# --- issue 10: LRQs whose replyAddress is IPv6, on an IPv4 socket ----------------------------

def test_500_lrqs_replying_to_ipv6_on_an_ipv4_socket_raise_nothing_and_log_one_line(logged):
    gk = Gatekeeper()
    # A neighbour gatekeeper: answered at the replyAddress it names, here an IPv6 one.
    gk.controller.is_neighbour = lambda lrq, source: True
    source = ("10.0.0.1", 1719)
    for seq in range(1, 501):
        assert gk.send(lrq_replying_to(("2001:db8::1", 1719), seq), source) == []
    assert gk.protocol.stats["unsendable"] == 500
    assert gk.protocol.stats["errors"] == 0
    assert not failures(logged)
    [line] = ours(logged)
    assert line["log_level"] == LogLevel.warn and line["address"] == "[2001:db8::1]:1719"
    gk.clock.advance(10)
    gk.send(lrq_replying_to(("2001:db8::1", 1719), 501), source)
    assert ours(logged)[-1]["skipped"] == 499


def test_a_reply_for_any_address_is_counted_never_raised(logged, monkeypatch):
    """Whatever destination the controller hands back for an answer (it took it from the
    request), the protocol survives it."""
    gk = Gatekeeper()
    source = ("10.0.0.1", 1719)
    addresses = PEER_ADDRESSES + [("2001:db8::1", 1719)]
    for seq, address in enumerate(addresses, 1):
        monkeypatch.setattr(gk.controller, "handle",
                            lambda pdu, src, data=b"", multicast=False, to=address:
                            Reply(ras.lrj(pdu.seq, "notRegistered"), to))
        gk.send(lrq_replying_to(("10.0.0.1", 1719), seq), source)
    stats = gk.protocol.stats
    assert stats["unsendable"] + stats["send errors"] == len(addresses)
    assert stats["errors"] == 0 and gk.socket.sent == []
    assert not failures(logged)
    assert len(ours(logged)) <= 2


def test_the_invalid_address_error_of_twisted_is_caught_and_counted(logged):
    """The exact failure of the report: udp.Port.write raising InvalidAddressError."""
    gk = Gatekeeper()
    with pytest.raises(InvalidAddressError):
        gk.port.write(b"x", ("2001:db8::1", 1719))   # what _write used to let through
    for _ in range(500):
        gk.protocol._write(b"x", ("2001:db8::1", 1719), from_socket=True)
    assert gk.protocol.stats["send errors"] == 500
    assert not failures(logged)
    [line] = ours(logged)
    assert line["log_level"] == LogLevel.warn and "InvalidAddressError" in line["error"]


#: Addresses no socket can send to (IPv6 on an IPv4 socket is tested apart).
PEER_ADDRESSES = [
    ("10.0.0.7", 0), ("10.0.0.7", 65536), ("10.0.0.7", 1 << 40),
    ("10.0.0.7", -1), ("255.255.255.255", 1719), ("0.0.0.0", 1719), ("::", 1719),
    ("224.0.1.41", 1719), ("ff02::1", 1719), ("gatekeeper.example.com", 1719),
    ("localhost", 1719), ("", 1719), ("", 0), ("<broadcast>", 1719), ("10.0.0.7", "1719"),
    ("10.0.0.7", None), ("10.0.0.7", 1719.0), ("10.0.0.7", True), (None, 1719),
    (b"10.0.0.7", 1719), ("10.0.0.7\x00", 1719), ("10.0.0.7",), ("10.0.0.7", 1719, 0, 0),
    None, "10.0.0.7:1719", ("fe80::1%eth0", 1719),
]


@pytest.mark.parametrize("family_host", [("192.0.2.1", 1719), ("2001:db8::fe", 1719)],
                         ids=["IPv4 socket", "IPv6 socket"])
@pytest.mark.parametrize("address", PEER_ADDRESSES, ids=repr)
def test_no_address_a_peer_can_write_makes_a_send_raise(address, family_host, logged):
    gk = Gatekeeper(host=family_host)
    gk.protocol.send_message(ras.ucf(1), address)
    gk.protocol.send_message(ras.ucf(2), address, answering=(("10.0.0.1", 1719), "x", 2))
    stats = gk.protocol.stats
    assert stats["unsendable"] + stats["send errors"] == 2
    assert gk.socket.sent == []
    assert not failures(logged)


@pytest.mark.parametrize("address, on_the_wire", [
    (("10.0.0.7", 1719), ("::ffff:10.0.0.7", 1719)),
    (("::ffff:10.0.0.7", 1719), ("::ffff:10.0.0.7", 1719)),
    (("2001:db8::7", 1719), ("2001:db8::7", 1719)),
])
def test_ipv4_on_an_ipv6_socket_is_sent_v4_mapped(address, on_the_wire):
    gk = Gatekeeper(host=("::", 1719))
    gk.protocol.send_message(ras.ucf(1), address)
    assert [to for _, to in gk.socket.sent] == [on_the_wire]


def test_a_v4_mapped_address_on_an_ipv4_socket_is_sent_as_ipv4():
    gk = Gatekeeper()
    gk.protocol.send_message(ras.ucf(1), ("::ffff:10.0.0.7", 1719))
    assert [to for _, to in gk.socket.sent] == [("10.0.0.7", 1719)]


# --- failures while answering: one traceback, then summaries --------------------------------

def test_a_handler_failing_on_every_request_logs_one_traceback_and_answers_each(logged, monkeypatch):
    gk = Gatekeeper()

    def broken(grq, source, multicast=False):
        raise RuntimeError("boom")

    monkeypatch.setattr(gk.controller, "on_grq", broken)
    ep = endpoint(1)
    for _ in range(1000):
        [(reply, _)] = gk.send(ep.grq(), ep.ras_address)
        assert ras.parse(reply).kind == "gatekeeperReject"
    gk.clock.advance(11)
    gk.send(ep.grq(), ep.ras_address)
    assert gk.protocol.stats["errors"] == 1001
    tracebacks = [e for e in logged if "log_failure" in e]
    assert len(tracebacks) == 1 and tracebacks[0]["log_failure"].check(RuntimeError)
    summaries = [e for e in ours(logged) if "log_failure" not in e]
    assert len(summaries) == 1
    assert summaries[0]["log_level"] == LogLevel.error
    assert summaries[0]["skipped"] == 999 and "RuntimeError: boom" in summaries[0]["exception"]


def test_datagram_received_failures_are_rate_limited(logged, monkeypatch):
    gk = Gatekeeper()

    def broken(data, source, multicast=False):
        raise ValueError("broken")

    monkeypatch.setattr(gk.protocol, "received", broken)
    for _ in range(500):
        gk.protocol.datagramReceived(b"\x00", ("10.0.0.1", 1719))
    assert gk.protocol.stats["errors"] == 500
    assert len([e for e in logged if "log_failure" in e]) == 1
    assert len(ours(logged)) == 1


# --- RateLimitedLog ---------------------------------------------------------------------------

def _raise(error: Exception) -> Failure:
    try:
        raise error
    except Exception:
        return Failure()


def test_rate_limited_log_warns_once_per_interval_and_counts_what_it_held_back(logged):
    clock = Clock()
    trouble = RateLimitedLog(Logger(namespace="gatekeeper.test"), clock, interval=10)
    for n in range(100):
        trouble("malformed", "bad datagram {n} from {source}", n=n, source="10.0.0.1:1719")
    clock.advance(10)
    trouble("malformed", "bad datagram {n} from {source}", n=100, source="10.0.0.1:1719")
    assert [(e["n"], e["skipped"]) for e in logged] == [(0, 0), (100, 99)]
    assert trouble.seen["malformed"] == 101
    # The first says nothing of lines held back (there were none); the next does.
    assert [formatEvent(e) for e in logged] == [
        "bad datagram 0 from 10.0.0.1:1719",
        "bad datagram 100 from 10.0.0.1:1719 (99 more like it not logged)"]


def test_rate_limited_log_kinds_are_independent_and_any_field_name_is_free(logged):
    trouble = RateLimitedLog(Logger(namespace="gatekeeper.test"), Clock())
    trouble("a", "{kind} {text}", kind="k", text="t")
    trouble("b", "{kind} {text}", kind="k", text="t")
    trouble.failure("c", "{kind} {text}", _raise(KeyError("x")), kind="k", text="t")
    assert len(logged) == 3 and all(e["kind"] == "k" and e["text"] == "t" for e in logged)


def test_rate_limited_failure_shows_each_distinct_traceback_once(logged):
    clock = Clock()
    trouble = RateLimitedLog(Logger(namespace="gatekeeper.test"), clock, interval=10)
    for _ in range(50):
        try:
            {}["missing"]
        except KeyError:
            trouble.failure("answer", "failed to answer {source}", source="s")
    try:
        raise ZeroDivisionError("other bug")
    except ZeroDivisionError:
        trouble.failure("answer", "failed to answer {source}", source="s")
    tracebacks = [e for e in logged if "log_failure" in e]
    assert [t["log_failure"].type for t in tracebacks] == [KeyError, ZeroDivisionError]
    assert tracebacks[1]["skipped"] == 49
    clock.advance(10)
    trouble.failure("answer", "failed to answer {source}", _raise(KeyError("missing")), source="s")
    [summary] = [e for e in logged[2:]]
    # A Failure made elsewhere raised at another line: a new traceback, not a summary.
    assert "log_failure" in summary


def test_rate_limited_failure_caps_the_tracebacks_it_ever_shows(logged):
    trouble = RateLimitedLog(Logger(namespace="gatekeeper.test"), Clock(), interval=0,
                             tracebacks=2)
    for n in range(5):
        trouble.failure("x", "failed", _raise(type(f"E{n}", (Exception,), {})()))
    assert len([e for e in logged if "log_failure" in e]) == 2
    assert len(logged) == 5
    assert all(e["log_level"] == LogLevel.error for e in logged[2:])


def test_the_old_import_path_of_rate_limited_log_still_works():
    from gatekeeper.ras import controller
    assert controller.RateLimitedLog is RateLimitedLog

