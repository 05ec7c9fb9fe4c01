"""Oracle tests (issue 11): tshark decodes every byte the routed-mode relay writes.

Calls run through the real SignallingServer / CallRelay / H245Relay exactly as in
test_signalling_relay.py (its ``Gatekeeper`` helper: a routed RasController, FakeEndpoints,
calls admitted by ARQ, legs on StringTransports over a MemoryReactorClock).  Nothing the test
parties send goes into the pcap: only what the gatekeeper wrote, ``transport.value()`` of each
leg, which is TPKT-framed.  Each leg becomes one TCP connection (handshake, consistent
sequence numbers) with the real addresses of its transport, so the callee legs run from the
gatekeeper's port to 1720 and the caller legs from 1720 back to the caller:

* a whole H245Routed call: the forwarded Setup (fastStart, tunnelled H.245 in h245Control),
  CallProceeding, Alerting, Connect with the gatekeeper's h245Address, Facility, Information,
  the forwarded ReleaseComplete, and the H.245 frames (MasterSlaveDetermination,
  TerminalCapabilitySet and their acks, encoded with pycrate's H.245 module) the H245Relay
  passed on, on the two H.245 connections;
* the gatekeeper's own ReleaseCompletes: Signal timeout (cause 18) on both legs, an undecodable
  UUIE (cause 100) on both legs, an unreachable callee (cause 3, unreachableDestination) and a
  Setup for no admitted call (cause 31, callerNotRegistered).

tshark must report nothing malformed, no expert error, no bad checksum, and show what the relay
meant: message types, per-leg CRVs and flags, addresses, call identifiers, causes and reasons.
A second pcap carries the same streams cut into odd-sized segments, so the messages only come
out of tshark's TCP/TPKT reassembly.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from gatekeeper.h225 import callsignal, q931, ras, tpkt
from gatekeeper.h225.q931 import Q931Message, UserUser
from gatekeeper.signalling.makecall import MakeCalls
from gatekeeper.signalling.relay import SignallingSettings
from gatekeeper.testing import VENDOR

from oracles import (
    CHECK_CHECKSUMS,
    PdmlField,
    TcpConversation,
    assert_no_malformed,
    requires_tshark,
    run_tshark,
    tshark_pdml,
    write_pcap,
)
from test_signalling_relay import (
    CALLER_CRV,
    FAST_START,
    GK_HOST,
    SETTINGS,
    Gatekeeper,
    Party,
    connect_message,
    relayed_kinds,
    setup_message,
    signal,
)

pytestmark = requires_tshark

#: The port the gatekeeper's H.245 relay listens on (MemoryReactorClock would report 0).
H245_LISTEN_PORT = 41000
CALLEE_H245 = ("10.0.0.2", 40002)
#: The far H.245 connection goes to the callee's own h245Address, which only the callee's Connect
#: (not in the pcap: the gatekeeper did not write it) names, so tshark is told by port.
DECODE_FAR_H245 = ("-d", f"tcp.port=={CALLEE_H245[1]},h245")
#: Segment sizes of the reassembly pcap.  The first segment of each connection must hold a
#: whole Q.931 header: tshark's Q.931-over-TPKT heuristic looks at it before it reassembles.
CUT = (37, 5, 1, 3, 250)

#: H.245 MultimediaSystemControlMessages, aligned PER, made with pycrate_asn1dir.H245:
#: request masterSlaveDetermination {terminalType 50, statusDeterminationNumber 123456};
#: request terminalCapabilitySet {sequenceNumber 1, H.245 v13, h2250Capability, one
#: g711Alaw64k (20) entry, one descriptor}; response masterSlaveDeterminationAck {slave};
#: response terminalCapabilitySetAck {sequenceNumber 1}.
H245_MSD = bytes.fromhex("0100328001e240")
H245_TCS = bytes.fromhex("0270010600088175000d800d00003c000100000100000100000080000020401300800000000000")
H245_MSD_ACK = bytes.fromhex("20a0")
H245_TCS_ACK = bytes.fromhex("218001")

Address = tuple[str, int]


@dataclass
class Stream:
    """What the gatekeeper wrote on one TCP connection."""

    label: str
    client: Address
    server: Address
    gatekeeper_is_client: bool
    data: bytes
    expected: list[dict]            # per TPKT frame, in order


def split_tpkt(data: bytes) -> list[bytes]:
    """Cut a byte stream into TPKT frames by their own length fields (RFC 1006)."""
    frames = []
    while data:
        assert len(data) >= 4 and data[0] == 3 and data[1] == 0, data[:8].hex()
        length = struct.unpack("!H", data[2:4])[0]
        assert 4 <= length <= len(data), (length, len(data))
        frames.append(data[:length])
        data = data[length:]
    return frames


def _address(address) -> Address:
    return (address.host, address.port)


def signalling_stream(label: str, party: Party, gatekeeper_is_client: bool,
                      expected: list[dict]) -> Stream:
    host, peer = _address(party.transport.getHost()), _address(party.transport.getPeer())
    client, server = (host, peer) if gatekeeper_is_client else (peer, host)
    return Stream(label, client, server, gatekeeper_is_client, party.transport.value(), expected)


def rc(crv: int, flag: bool, cause: int | None, reason: str | None, call_id: bytes | None) -> dict:
    return {"type": q931.RELEASE_COMPLETE, "body": "releaseComplete", "crv": crv, "flag": flag,
            "cause": cause, "reason": reason, "call_id": call_id}


def _callee(gk: Gatekeeper, local_port: int) -> Party:
    return gk.accept_callee(local_port=local_port)


_gatekeepers = 0


def new_gatekeeper(settings: SignallingSettings = SETTINGS) -> Gatekeeper:
    """A Gatekeeper whose caller legs use ports no other one in the pcap uses (one TCP
    connection per 4-tuple, or tshark sees retransmissions)."""
    global _gatekeepers
    _gatekeepers += 1
    gk = Gatekeeper(settings)
    gk._next_port = 50000 + 100 * _gatekeepers
    return gk


# --- the calls -----------------------------------------------------------------------------------

def routed_call_streams() -> tuple[list[Stream], dict]:
    """A whole H245Routed call; the streams the gatekeeper wrote and facts about the call."""
    gk = new_gatekeeper(SignallingSettings(setup_timeout=8.0, signal_timeout=30.0,
                                       alerting_timeout=180.0, h245_routed=True))
    listen = gk.reactor.listenTCP

    def listen_on_a_real_port(port, factory, backlog=50, interface=""):
        return listen(port or H245_LISTEN_PORT, factory, backlog, interface)

    gk.reactor.listenTCP = listen_on_a_real_port
    call_id = gk.admit(1, 2)
    caller = gk.connect_caller("10.0.0.1")
    setup = setup_message(call_id, "1002")
    setup.pdu["h245Control"] = [H245_MSD, H245_TCS]
    setup.touch()
    caller.send(setup)
    callee = _callee(gk, 40001)
    callee_crv = gk.server.relays[gk.calls.find_call_id(call_id).number].callee_crv
    kinds = relayed_kinds(call_id)
    for index in (0, 1):            # CallProceeding, Alerting
        message_type, body, content, ies = kinds[index]
        callee.send(signal(message_type, callee_crv, True, body, content, ies))
    callee.send(connect_message(call_id, callee_crv, h245=CALLEE_H245))
    for index in (3, 5):            # Facility, Information from the caller
        message_type, body, content, ies = kinds[index]
        caller.send(signal(message_type, CALLER_CRV, False, body, content, ies))
    message_type, body, content, ies = kinds[5]
    callee.send(signal(message_type, callee_crv, True, body, content, ies))

    # The H.245 relay: the caller connects to the announced port, the relay to the callee.
    _port, accept, _backlog, _interface = gk.reactor.tcpServers[-1]
    near_peer = ("10.0.0.1", 50123)
    near = accept.buildProtocol(IPv4Address("TCP", *near_peer))
    near_transport = StringTransport(hostAddress=IPv4Address("TCP", GK_HOST, H245_LISTEN_PORT),
                                     peerAddress=IPv4Address("TCP", *near_peer))
    near.makeConnection(near_transport)
    host, port, connect, _timeout, _bind = gk.reactor.tcpClients[-1]
    far = connect.buildProtocol(IPv4Address("TCP", host, port))
    far_transport = StringTransport(hostAddress=IPv4Address("TCP", GK_HOST, 41001),
                                    peerAddress=IPv4Address("TCP", host, port))
    far.makeConnection(far_transport)
    near.dataReceived(tpkt.frame(H245_MSD) + tpkt.frame(H245_TCS))
    far.dataReceived(tpkt.frame(H245_MSD_ACK) + tpkt.frame(H245_TCS_ACK)[:2])
    far.dataReceived(tpkt.frame(H245_TCS_ACK)[2:])

    caller.send(callsignal.release_complete(CALLER_CRV, False, q931.CAUSE_NORMAL_CALL_CLEARING, call_id))

    def relayed(body: str, message_type: int, crv: int, flag: bool, **more) -> dict:
        return {"type": message_type, "body": body, "crv": crv, "flag": flag, "call_id": call_id,
                **more}

    to_callee = [
        relayed("setup", q931.SETUP, callee_crv, False, fast_start=len(FAST_START),
                h245_control=2),
        relayed("facility", q931.FACILITY, callee_crv, False, reason="callForwarded"),
        relayed("information", q931.INFORMATION, callee_crv, False),
        rc(callee_crv, False, q931.CAUSE_NORMAL_CALL_CLEARING, None, call_id),
    ]
    to_caller = [
        relayed("callProceeding", q931.CALL_PROCEEDING, CALLER_CRV, True, fast_start=1),
        relayed("alerting", q931.ALERTING, CALLER_CRV, True),
        relayed("connect", q931.CONNECT, CALLER_CRV, True, fast_start=1,
                h245_address=(GK_HOST, H245_LISTEN_PORT)),
        relayed("information", q931.INFORMATION, CALLER_CRV, True),
    ]
    streams = [
        signalling_stream("routed callee leg", callee, True, to_callee),
        signalling_stream("routed caller leg", caller, False, to_caller),
        Stream("h245 near (to the caller)", near_peer, (GK_HOST, H245_LISTEN_PORT), False,
               near_transport.value(), [{"h245": "response"}, {"h245": "response"}]),
        Stream("h245 far (to the callee)", (GK_HOST, 41001), CALLEE_H245, True,
               far_transport.value(), [{"h245": "request"}, {"h245": "request"}]),
    ]
    facts = {"call_id": call_id, "callee_crv": callee_crv, "callee_local": (GK_HOST, 40001),
             "callee": gk.phones[2].signal_address, "setup": setup}
    return streams, facts


def own_release_streams() -> list[Stream]:
    """Calls the gatekeeper ends itself, each on a gatekeeper of its own."""
    streams: list[Stream] = []

    # Signal timeout: no Alerting from the callee.
    gk = new_gatekeeper()
    call_id = gk.admit(1, 2)
    caller = gk.connect_caller("10.0.0.1")
    caller.send(setup_message(call_id, "1002"))
    callee = _callee(gk, 40011)
    callee_crv = gk.server.relays[gk.calls.find_call_id(call_id).number].callee_crv
    gk.reactor.advance(SETTINGS.signal_timeout + 1)
    streams.append(signalling_stream("timeout callee leg", callee, True, [
        {"type": q931.SETUP, "body": "setup", "crv": callee_crv, "flag": False, "call_id": call_id,
         "fast_start": len(FAST_START)},
        rc(callee_crv, False, q931.CAUSE_NO_USER_RESPONDING, None, call_id)]))
    streams.append(signalling_stream("timeout caller leg", caller, False, [
        rc(CALLER_CRV, True, q931.CAUSE_NO_USER_RESPONDING, None, call_id)]))

    # An undecodable UUIE from the callee.
    gk = new_gatekeeper()
    call_id = gk.admit(3, 4)
    caller = gk.connect_caller("10.0.0.3")
    caller.send(setup_message(call_id, "1004", source=("10.0.0.3", 1720)))
    callee = _callee(gk, 40012)
    callee_crv = gk.server.relays[gk.calls.find_call_id(call_id).number].callee_crv
    broken = Q931Message(q931.ALERTING, callee_crv, True, [UserUser(b"\xff\xfe\x00garbage").to_ie()])
    callee.send_bytes(tpkt.frame(q931.encode(broken)))
    streams.append(signalling_stream("bad uuie callee leg", callee, True, [
        {"type": q931.SETUP, "body": "setup", "crv": callee_crv, "flag": False, "call_id": call_id,
         "fast_start": len(FAST_START)},
        rc(callee_crv, False, q931.CAUSE_INVALID_IE_CONTENTS, None, call_id)]))
    streams.append(signalling_stream("bad uuie caller leg", caller, False, [
        rc(CALLER_CRV, True, q931.CAUSE_INVALID_IE_CONTENTS, None, call_id)]))

    # The callee cannot be reached.
    gk = new_gatekeeper()
    call_id = gk.admit(1, 2)
    caller = gk.connect_caller("10.0.0.1")
    caller.send(setup_message(call_id, "1002"))
    _host, _port, factory, _timeout, _bind = gk.reactor.tcpClients[-1]
    factory.clientConnectionFailed(gk.reactor.connectors[-1], Failure(ConnectionRefusedError()))
    streams.append(signalling_stream("unreachable caller leg", caller, False, [
        rc(CALLER_CRV, True, q931.CAUSE_NO_ROUTE_TO_DESTINATION, "unreachableDestination",
           call_id)]))

    # A Setup for no admitted call.
    gk = new_gatekeeper()
    unknown = ras.new_guid()
    caller = gk.connect_caller("10.0.0.1")
    caller.send(setup_message(unknown, "1002", crv=0x0123))
    streams.append(signalling_stream("refused setup", caller, False, [
        rc(0x0123, True, q931.CAUSE_NORMAL_UNSPECIFIED, "callerNotRegistered", unknown)]))
    return streams


def own_message_streams() -> list[Stream]:
    """The gatekeeper's own messages on a call it relays: its CallProceeding
    (GenerateCallProceeding), the callee's CallProceeding passed on as Facility
    forwardedElements, and TransferCall's Facility callForwarded to each party."""
    gk = new_gatekeeper(SignallingSettings(setup_timeout=SETTINGS.setup_timeout,
                                           signal_timeout=SETTINGS.signal_timeout,
                                           alerting_timeout=SETTINGS.alerting_timeout,
                                           generate_call_proceeding=True))
    call_id = gk.admit(1, 2)
    caller = gk.connect_caller("10.0.0.1")
    caller.send(setup_message(call_id, "1002"))
    callee = _callee(gk, 40021)
    call = gk.calls.find_call_id(call_id)
    callee_crv = gk.server.relays[call.number].callee_crv
    proceeding = {"protocolIdentifier": ras.PROTOCOL_IDENTIFIER, "callIdentifier": {"guid": call_id},
                  "destinationInfo": ras.endpoint_type_value("terminal", VENDOR),
                  "h245Address": ras.transport_to_asn(("10.0.0.2", 30000)),
                  "fastStart": FAST_START[:1], "multipleCalls": False, "maintainConnection": False}
    callee.send(signal(q931.CALL_PROCEEDING, callee_crv, True, "callProceeding", proceeding))
    callee.send(connect_message(call_id, callee_crv))
    assert gk.server.transfer(call, "callee", (ras.Alias("dialledDigits", "1003"),)) is None
    assert gk.server.transfer(call, "caller", (ras.Alias("h323-ID", "carol"),)) is None
    own = {"crv": CALLER_CRV, "flag": True, "call_id": call_id}
    return [
        signalling_stream("generated caller leg", caller, False, [
            {"type": q931.CALL_PROCEEDING, "body": "callProceeding", **own},
            {"type": q931.FACILITY, "body": "facility", "fast_start": 1, **own},
            {"type": q931.CONNECT, "body": "connect", "fast_start": 1, **own},
            {"type": q931.FACILITY, "body": "facility", **own}]),
        signalling_stream("generated callee leg", callee, True, [
            {"type": q931.SETUP, "body": "setup", "crv": callee_crv, "flag": False,
             "call_id": call_id, "fast_start": len(FAST_START)},
            {"type": q931.FACILITY, "body": "facility", "crv": callee_crv, "flag": False,
             "call_id": call_id}]),
    ]


def makecall_streams() -> list[Stream]:
    """MakeCall's pseudo endpoint: its own Setup to the source and, once the
    source answered, the Facility callForwarded naming an address; a second
    pseudo call released unanswered (cause 18)."""
    gk = new_gatekeeper()
    calls = MakeCalls(gk.admission, gk.reactor, gk.reactor, bind_address=GK_HOST,
                      signal_address=lambda: (GK_HOST, 1720))
    gk.bus.subscribe(calls)
    assert calls.make_call(ras.Alias("dialledDigits", "1002"),
                           ("198.51.100.9", 1722)).startswith("MakeCall: calling 1002")
    source = _callee(gk, 40031)
    pseudo = next(iter(calls.calls.values()))
    crv, call_id = pseudo.crv, pseudo.call.call_id
    body = {"protocolIdentifier": ras.PROTOCOL_IDENTIFIER, "callIdentifier": {"guid": call_id},
            "destinationInfo": ras.endpoint_type_value("terminal", VENDOR),
            "multipleCalls": False, "maintainConnection": False}
    source.send(signal(q931.ALERTING, crv, True, "alerting", body))
    source.send(connect_message(call_id, crv))
    source.send(callsignal.release_complete(crv, True, q931.CAUSE_NORMAL_CALL_CLEARING, call_id,
                                            "facilityCallDeflection"))
    assert calls.make_call(ras.Alias("h323-ID", "user3"), ras.Alias("h323-ID", "carol")) \
        .startswith("MakeCall: calling user3")
    unanswered = _callee(gk, 40032)
    second = next(iter(calls.calls.values()))
    gk.reactor.advance(600)
    mine = {"flag": False}
    return [
        signalling_stream("makecall answered", source, True, [
            {"type": q931.SETUP, "body": "setup", "crv": crv, "call_id": call_id, **mine},
            {"type": q931.FACILITY, "body": "facility", "crv": crv, "call_id": call_id,
             **mine}]),
        signalling_stream("makecall unanswered", unanswered, True, [
            {"type": q931.SETUP, "body": "setup", "crv": second.crv,
             "call_id": second.call.call_id, **mine},
            rc(second.crv, False, q931.CAUSE_NO_USER_RESPONDING, None, second.call.call_id)]),
    ]


# --- pcaps and tshark ----------------------------------------------------------------------------

def _chunks(data: bytes, sizes: tuple[int, ...]) -> list[bytes]:
    out, index, turn = [], 0, 0
    while index < len(data):
        size = sizes[turn % len(sizes)]
        out.append(data[index:index + size])
        index += size
        turn += 1
    return out


def build_pcap(path, streams: list[Stream], cut: tuple[int, ...] | None = None) -> list[int]:
    """Write the streams, one TCP connection each; the frame numbers (1-based) of the data
    segments, one per TPKT frame unless ``cut`` gives segment sizes."""
    packets: list[bytes] = []
    data_frames: list[int] = []
    for stream in streams:
        conversation = TcpConversation(client=stream.client, server=stream.server, handshake=True)
        segments = split_tpkt(stream.data) if cut is None else _chunks(stream.data, cut)
        for segment in segments:
            conversation.send(segment, from_client=stream.gatekeeper_is_client)
            data_frames.append(len(packets) + len(conversation.packets))
        packets.extend(conversation.packets)
    write_pcap(path, packets)
    return data_frames


@dataclass
class Decoded:
    streams: list[Stream]
    facts: dict
    text: str
    pdml: list[list[PdmlField]]
    data_frames: list[int]
    labels: list[str]
    expected: list[dict]

    def packet(self, index: int) -> list[PdmlField]:
        return self.pdml[self.data_frames[index] - 1]


@pytest.fixture(scope="module")
def decoded(tmp_path_factory) -> Decoded:
    streams, facts = routed_call_streams()
    streams += own_release_streams()
    streams += own_message_streams()
    streams += makecall_streams()
    labels, expected = [], []
    for stream in streams:
        frames = split_tpkt(stream.data)
        assert len(frames) == len(stream.expected), (stream.label, len(frames), len(stream.expected))
        labels += [f"{stream.label} #{n}" for n in range(len(frames))]
        expected += stream.expected
    pcap = tmp_path_factory.mktemp("relay") / "relay.pcap"
    data_frames = build_pcap(pcap, streams)
    text = run_tshark(pcap, CHECK_CHECKSUMS + DECODE_FAR_H245)
    pdml = tshark_pdml(pcap, DECODE_FAR_H245)
    return Decoded(streams, facts, text, pdml, data_frames, labels, expected)


def shown(fields: list[PdmlField], name: str) -> list[str]:
    return [f.show for f in fields if f.name == name]


_SHOWNAME = re.compile(r"^[^:]+: (.*) \((\d+)\)$")


def alternatives(fields: list[PdmlField], name: str) -> list[str]:
    return [_SHOWNAME.match(f.showname).group(1) for f in fields if f.name == name]


def crv(shown_value: str) -> int:
    """q931.call_ref is shown as octets, ``2a:5b``."""
    return int(shown_value.replace(":", ""), 16)


def guid(octets: bytes) -> str:
    h = octets.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def signalling(decoded: Decoded):
    for index, (label, expected) in enumerate(zip(decoded.labels, decoded.expected)):
        if "type" in expected:
            yield label, expected, decoded.packet(index)


def by_label(decoded: Decoded, label: str) -> list[PdmlField]:
    return decoded.packet(decoded.labels.index(label))


# --- the tests -----------------------------------------------------------------------------------

def test_the_gatekeeper_wrote_every_leg_it_should(decoded):
    counts = {stream.label: len(split_tpkt(stream.data)) for stream in decoded.streams}
    assert counts == {
        "routed callee leg": 4, "routed caller leg": 4,
        "h245 near (to the caller)": 2, "h245 far (to the callee)": 2,
        "timeout callee leg": 2, "timeout caller leg": 1,
        "bad uuie callee leg": 2, "bad uuie caller leg": 1,
        "unreachable caller leg": 1, "refused setup": 1,
        "generated caller leg": 4, "generated callee leg": 2,
        "makecall answered": 2, "makecall unanswered": 2,
    }


def test_tshark_finds_nothing_malformed_and_no_expert_error(decoded):
    assert_no_malformed(decoded.text)
    assert "Bad checksum" not in decoded.text
    assert decoded.text.count("H.225.0 CS") >= sum(1 for _ in signalling(decoded))


def test_every_signalling_frame_is_one_tpkt_q931_h225_message(decoded):
    for label, expected, fields in signalling(decoded):
        assert [int(v, 0) for v in shown(fields, "q931.message_type")] == [expected["type"]], label
        assert [int(v, 0) for v in shown(fields, "q931.disc")] == [q931.PROTOCOL_DISCRIMINATOR_Q931], label
        assert alternatives(fields, "h225.h323_message_body") == [expected["body"]], label
        assert [int(v, 0) for v in shown(fields, "q931.user.protocol_discriminator")] == \
            [q931.UUIE_PROTOCOL_X208], label
        lengths = [int(v) for v in shown(fields, "tpkt.length")]
        assert len(lengths) == 1, label


def test_every_leg_has_its_own_call_reference_and_flag(decoded):
    for label, expected, fields in signalling(decoded):
        assert [int(v, 0) for v in shown(fields, "q931.call_ref_len")] == [2], label
        assert [crv(v) for v in shown(fields, "q931.call_ref")] == [expected["crv"]], label
        assert shown(fields, "q931.call_ref_flag") == [str(int(expected["flag"]))], label
    facts = decoded.facts
    assert facts["callee_crv"] != CALLER_CRV


def test_every_message_keeps_the_call_identifier(decoded):
    for label, expected, fields in signalling(decoded):
        assert shown(fields, "h225.guid") == [guid(expected["call_id"])], label


def test_forwarded_setup_names_the_callee_and_the_gatekeeper_leg(decoded):
    fields = by_label(decoded, "routed callee leg #0")
    facts = decoded.facts
    assert alternatives(fields, "h225.destCallSignalAddress") == ["ipAddress"]
    assert alternatives(fields, "h225.sourceCallSignalAddress") == ["ipAddress"]
    # destCallSignalAddress, then sourceCallSignalAddress
    assert shown(fields, "h225.ipV4") == [facts["callee"][0], facts["callee_local"][0]]
    assert shown(fields, "h225.ipV4_port") == [str(facts["callee"][1]), str(facts["callee_local"][1])]
    assert shown(fields, "h225.conferenceID") == [guid(facts["call_id"])]
    assert shown(fields, "h225.dialledDigits") == ["1001", "1002"]
    assert shown(fields, "h225.h323_ID") == ["Alice Ünïcödé"]
    assert shown(fields, "q931.called_party_number.digits") == ["1002"]
    assert shown(fields, "q931.calling_party_number.digits") == ["1001"]
    assert shown(fields, "q931.display_information") == ["Alice Example"]
    assert shown(fields, "h225.h245Tunnelling") == ["1"]


def test_fast_start_and_tunnelled_h245_survive_the_relay(decoded):
    for label, expected, fields in signalling(decoded):
        count = expected.get("fast_start", 0)
        assert shown(fields, "h225.fastStart") == ([str(count)] if count else []), label
        assert len(shown(fields, "h245.forwardLogicalChannelNumber")) == count, label
    setup = by_label(decoded, "routed callee leg #0")
    assert shown(setup, "h225.h245Control") == ["2"]
    assert shown(setup, "h245.terminalType") == ["50"]
    assert shown(setup, "h245.statusDeterminationNumber") == ["123456"]
    assert alternatives(setup, "h245.request") == ["masterSlaveDetermination",
                                                   "terminalCapabilitySet"]


def test_connect_announces_the_gatekeeper_h245_relay(decoded):
    fields = by_label(decoded, "routed caller leg #2")
    assert alternatives(fields, "h225.h245Address") == ["ipAddress"]
    assert shown(fields, "h225.h245Ip") == [GK_HOST]
    assert shown(fields, "h225.h245IpPort") == [str(H245_LISTEN_PORT)]
    assert shown(fields, "q931.display_information") == ["Bob"]


def test_release_completes_carry_the_cause_and_reason_meant(decoded):
    seen = 0
    for label, expected, fields in signalling(decoded):
        if expected["type"] != q931.RELEASE_COMPLETE:
            assert shown(fields, "q931.cause_value") == [], label
            continue
        seen += 1
        assert [int(v, 0) for v in shown(fields, "q931.cause_value")] == [expected["cause"]], label
        reason = expected.get("reason")
        assert alternatives(fields, "h225.reason") == ([reason] if reason else []), label
    assert seen == 8


def test_facility_reason_is_relayed(decoded):
    assert alternatives(by_label(decoded, "routed callee leg #1"), "h225.reason") == ["callForwarded"]


def test_relayed_h245_frames_are_decoded_as_h245(decoded):
    # tshark learns the near side from the h245Address of the gatekeeper's own Connect;
    # the far side (the callee's address) from nothing we wrote, so it is decoded by port.
    requests = {"h245 far (to the callee) #0": ("masterSlaveDetermination", "request"),
                "h245 far (to the callee) #1": ("terminalCapabilitySet", "request"),
                "h245 near (to the caller) #0": ("masterSlaveDeterminationAck", "response"),
                "h245 near (to the caller) #1": ("terminalCapabilitySetAck", "response")}
    for label, (kind, side) in requests.items():
        fields = by_label(decoded, label)
        assert alternatives(fields, f"h245.{side}") == [kind], label
        assert shown(fields, "q931.message_type") == [], label
    far_tcs = by_label(decoded, "h245 far (to the callee) #1")
    assert shown(far_tcs, "h245.sequenceNumber") == ["1"]
    assert shown(far_tcs, "h245.capabilityTableEntryNumber") == ["1"]
    assert shown(by_label(decoded, "h245 far (to the callee) #0"), "h245.terminalType") == ["50"]
    assert alternatives(by_label(decoded, "h245 near (to the caller) #0"), "h245.decision") == ["slave"]


def test_reassembled_streams_decode_to_the_same_messages(decoded, tmp_path):
    pcap = tmp_path / "cut.pcap"
    build_pcap(pcap, decoded.streams, cut=CUT)
    text = run_tshark(pcap, CHECK_CHECKSUMS + DECODE_FAR_H245)
    assert_no_malformed(text)
    assert "[TCP segment of a reassembled PDU]" in text or "Reassembled TCP" in text
    pdml = tshark_pdml(pcap, DECODE_FAR_H245)
    types = [int(v, 0) for packet in pdml for v in shown(packet, "q931.message_type")]
    assert types == [e["type"] for _, e, _ in signalling(decoded)]
    crvs = [crv(v) for packet in pdml for v in shown(packet, "q931.call_ref")]
    assert crvs == [e["crv"] for _, e, _ in signalling(decoded)]
    h245 = [a for packet in pdml for name in ("h245.request", "h245.response")
            for a in alternatives(packet, name) if not shown(packet, "q931.message_type")]
    assert sorted(h245) == sorted(["masterSlaveDetermination", "terminalCapabilitySet",
                                   "masterSlaveDeterminationAck", "terminalCapabilitySetAck"])


def test_the_gatekeepers_call_proceeding_is_a_provisional_response(decoded):
    fields = by_label(decoded, "generated caller leg #0")
    names = {f.name for f in fields}
    assert any("provisionalRespToH245Tunnelling" in name for name in names), sorted(names)
    assert shown(fields, "h225.h245Tunnelling") == ["True"] or \
        shown(fields, "h225.h245Tunnelling") == ["1"]


def test_forwarded_elements_and_transfers_are_decoded_as_meant(decoded):
    forwarded = by_label(decoded, "generated caller leg #1")
    assert alternatives(forwarded, "h225.reason") == ["forwardedElements"]
    assert shown(forwarded, "h225.h245Ip") == ["10.0.0.2"]
    assert shown(forwarded, "h225.h245IpPort") == ["30000"]
    to_caller = by_label(decoded, "generated caller leg #3")
    assert alternatives(to_caller, "h225.reason") == ["callForwarded"]
    assert "carol" in shown(to_caller, "h225.h323_ID")
    to_callee = by_label(decoded, "generated callee leg #1")
    assert alternatives(to_callee, "h225.reason") == ["callForwarded"]
    assert "1003" in shown(to_callee, "h225.dialledDigits")


def test_makecall_setup_and_transfer_are_decoded_as_meant(decoded):
    setup = by_label(decoded, "makecall answered #0")
    assert "InternalMakeCallEP" in shown(setup, "h225.h323_ID")
    assert "1002" in shown(setup, "h225.dialledDigits")
    assert shown(setup, "q931.called_party_number.digits") == ["1002"]
    assert not any("fastStart" in f.name for f in setup)
    facility = by_label(decoded, "makecall answered #1")
    assert alternatives(facility, "h225.reason") == ["callForwarded"]
    assert shown(facility, "h225.ipV4") == ["198.51.100.9"]
    assert shown(facility, "h225.ipV4_port") == ["1722"]
    assert not any("alternativeAliasAddress" in f.name for f in facility)
    second = by_label(decoded, "makecall unanswered #0")
    assert "user3" in shown(second, "h225.h323_ID")
