"""Oracle tests: tshark decodes the H323-UserInformation we encode inside Q.931 call signalling.

Q.931 messages (Setup, Call Proceeding, Alerting, Connect, Release Complete, Facility, Progress,
Information, Status, Status Enquiry, Setup Acknowledge, Notify) carry our encoded
H323-UserInformation in their User-user IE, TPKT-framed over TCP port 1720, all in one pcap
that tshark reads once. tshark must report nothing malformed and no expert error, and show the
values we encoded: the message body kind (``h225.h323_message_body``), the call identifier
(``h225.guid``), ``h225.conferenceID``, source and destination aliases (``h225.sourceAddress`` /
``h225.destinationAddress`` item counts, ``h225.h323_ID``, ``h225.dialledDigits``,
``h225.url_ID``, ``h225.email_ID``), addresses (``h225.destCallSignalAddress``,
``h225.h245Address``: kind from the showname, ``h225.ipV4`` / ``h225.ipV4_port``, and
``h225.h245Ip`` / ``h225.h245IpPort`` for the H.245 address),
``h225.h245Tunnelling``, the number of fast start elements (``h225.fastStart``, and one H.245
``h245.forwardLogicalChannelNumber`` per element), ``h225.reason``, and on the Q.931 side
``q931.message_type`` and ``q931.user.protocol_discriminator``. The generic comparison of
test_ras_tshark.py (every boolean, NULL, sequence number, identifier, GUID, alias text and IPv4
address in the value) runs on every message too.

Then random values of H323-UserInformation with everything filled in (``full_value``, many
seeds), each in a Setup: no malformed packet, the generic comparison again. As in the RAS
tests, SIGNED{} values are replaced (tshark cannot dissect them), and so is what tshark hands
to other dissectors and random bytes would make malformed there: ``fastStart`` elements (H.245
OpenLogicalChannel) become two real OpenLogicalChannel encodings, and ``h245Control``,
``parallelH245Control`` (H.245) and ``h4501SupplementaryService`` (H.450) are left out.
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass
from typing import Any

import pytest

from gatekeeper.h225 import codec, q931, ras
from gatekeeper.h225.q931 import (
    BearerCapability,
    CalledPartyNumber,
    CallingPartyNumber,
    CallState,
    Cause,
    Display,
    NotificationIndicator,
    ProgressIndicator,
    Q931Message,
    UserUser,
)

from asn1_values import compiled, full_value
from oracles import (
    CHECK_CHECKSUMS,
    PdmlField,
    assert_no_malformed,
    requires_tshark,
    run_tshark,
    tshark_pdml,
    write_q931_pcap,
)
from test_ras_tshark import WATCHED, compare, expected_fields, shown_fields, without_signed

pytestmark = requires_tshark

PROTOCOL = ras.PROTOCOL_IDENTIFIER
CALL_REFERENCE = 0x2A5B
CALL_ID = bytes.fromhex("c4202c1e5b7a11efa0b3000c29d1e2f4")
CONF_ID = bytes.fromhex("0a1b2c3d4e5f60718293a4b5c6d7e8f9")
CALLER = ("198.51.100.7", 1720)
CALLEE = ("203.0.113.20", 1720)

#: Two H.245 OpenLogicalChannel encodings (G.711 A-law, forward only; G.711 u-law with a media
#: channel), made with pycrate's H.245 module and checked here by tshark's H.245 dissector.
FAST_START = [bytes.fromhex("0000000c2013800a04000100c000020a1389"),
              bytes.fromhex("0000010c6013801114000100c000020a138a00c000020a138b")]

SOURCE = [("h323-ID", "Alice Ünïcödé"), ("dialledDigits", "1001"), ("email-ID", "alice@example.com")]
DESTINATION = [("dialledDigits", "4930123456"), ("url-ID", "h323:bob@example.com"),
               ("h323-ID", "bob")]


def _endpoint(kind: str) -> dict:
    return ras.endpoint_type_value(kind, {
        "vendor": {"t35CountryCode": 9, "t35Extension": 0, "manufacturerCode": 61},
        "productId": b"gatekeeper-test", "versionId": b"7.0"})


def _uu(body: str, content: Any, tunnelling: bool) -> dict:
    return {"h323-uu-pdu": {"h323-message-body": (body, content), "h245Tunnelling": tunnelling}}


def call_flow() -> list[tuple[str, bool, Q931Message, dict]]:
    """(label, sent by the caller, Q.931 message without its User-user IE, H323-UserInformation)."""
    call_id = {"guid": CALL_ID}
    setup = _uu("setup", {
        "protocolIdentifier": PROTOCOL,
        "sourceAddress": SOURCE,
        "sourceInfo": _endpoint("terminal"),
        "destinationAddress": DESTINATION,
        "destCallSignalAddress": ras.transport_to_asn(CALLEE),
        "activeMC": False,
        "conferenceID": CONF_ID,
        "conferenceGoal": ("create", None),
        "callType": ("pointToPoint", None),
        "sourceCallSignalAddress": ras.transport_to_asn(CALLER),
        "callIdentifier": call_id,
        "fastStart": list(FAST_START),
        "mediaWaitForConnect": False,
        "canOverlapSend": True,
        "endpointIdentifier": "ep-00042",
        "multipleCalls": True,
        "maintainConnection": False,
    }, True)
    common = {"protocolIdentifier": PROTOCOL, "callIdentifier": call_id}
    return [
        ("setup", True, Q931Message(q931.SETUP, CALL_REFERENCE, False, [
            BearerCapability(q931.ITC_UNRESTRICTED_DIGITAL, q931.RATE_MULTIRATE, q931.L1_H221_H242,
                             rate_multiplier=6).to_ie(),
            Display("Alice Example").to_ie(),
            CallingPartyNumber("1001", q931.TON_NATIONAL, q931.NPI_ISDN, q931.PRESENTATION_ALLOWED,
                               q931.SCREENING_NETWORK_PROVIDED).to_ie(),
            CalledPartyNumber("4930123456", q931.TON_INTERNATIONAL, q931.NPI_ISDN).to_ie(),
        ]), setup),
        ("callProceeding", False, Q931Message(q931.CALL_PROCEEDING, CALL_REFERENCE, True, []),
         _uu("callProceeding", {"protocolIdentifier": PROTOCOL, "destinationInfo": _endpoint("gateway"),
                                "callIdentifier": call_id, "fastStart": FAST_START[:1],
                                "multipleCalls": False, "maintainConnection": True}, False)),
        ("alerting", False, Q931Message(q931.ALERTING, CALL_REFERENCE, True, [
            ProgressIndicator(q931.PROGRESS_INBAND_AVAILABLE, q931.LOCATION_PRIVATE_REMOTE).to_ie()]),
         _uu("alerting", {"protocolIdentifier": PROTOCOL, "destinationInfo": _endpoint("terminal"),
                          "h245Address": ras.transport_to_asn(("203.0.113.20", 40100)),
                          "callIdentifier": call_id, "multipleCalls": True,
                          "maintainConnection": False, "alertingAddress": DESTINATION[:1]}, True)),
        ("connect", False, Q931Message(q931.CONNECT, CALL_REFERENCE, True, [Display("Bob").to_ie()]),
         _uu("connect", {"protocolIdentifier": PROTOCOL,
                         "h245Address": ras.transport_to_asn(("203.0.113.20", 40002)),
                         "destinationInfo": _endpoint("terminal"), "conferenceID": CONF_ID,
                         "callIdentifier": call_id, "fastStart": FAST_START[1:],
                         "multipleCalls": False, "maintainConnection": False,
                         "connectedAddress": DESTINATION[2:]}, True)),
        ("facility", True, Q931Message(q931.FACILITY, CALL_REFERENCE, False, []),
         _uu("facility", {"protocolIdentifier": PROTOCOL,
                          "alternativeAddress": ras.transport_to_asn(("192.0.2.1", 1720)),
                          "alternativeAliasAddress": DESTINATION[:2],
                          "conferenceID": CONF_ID, "reason": ("callForwarded", None),
                          "callIdentifier": call_id, "multipleCalls": False,
                          "maintainConnection": False}, True)),
        ("facility-empty", False, Q931Message(q931.FACILITY, CALL_REFERENCE, True, []),
         _uu("empty", None, True)),
        ("progress", False, Q931Message(q931.PROGRESS, CALL_REFERENCE, True, [
            ProgressIndicator(q931.PROGRESS_INBAND_AVAILABLE, q931.LOCATION_PUBLIC_REMOTE).to_ie()]),
         _uu("progress", {"protocolIdentifier": PROTOCOL, "destinationInfo": _endpoint("gateway"),
                          "callIdentifier": call_id, "fastStart": list(FAST_START),
                          "multipleCalls": False, "maintainConnection": True}, False)),
        ("information", True, Q931Message(q931.INFORMATION, CALL_REFERENCE, False, []),
         _uu("information", dict(common), True)),
        ("status", False, Q931Message(q931.STATUS, CALL_REFERENCE, True, [
            Cause(q931.CAUSE_STATUS_ENQUIRY_RESPONSE, q931.LOCATION_USER).to_ie(),
            CallState(10).to_ie()]),
         _uu("status", dict(common), True)),
        ("statusInquiry", True, Q931Message(q931.STATUS_ENQUIRY, CALL_REFERENCE, False, []),
         _uu("statusInquiry", dict(common), True)),
        ("setupAcknowledge", False, Q931Message(q931.SETUP_ACK, CALL_REFERENCE, True, []),
         _uu("setupAcknowledge", dict(common), True)),
        ("notify", False, Q931Message(q931.NOTIFY, CALL_REFERENCE, True, [
            NotificationIndicator(0x71).to_ie()]),
         _uu("notify", {**common, "connectedAddress": DESTINATION[:1]}, True)),
        ("releaseComplete", False, Q931Message(q931.RELEASE_COMPLETE, CALL_REFERENCE, True, [
            Cause(q931.CAUSE_USER_BUSY, q931.LOCATION_PUBLIC_REMOTE).to_ie()]),
         _uu("releaseComplete", {"protocolIdentifier": PROTOCOL, "reason": ("calledPartyNotRegistered", None),
                                 "callIdentifier": call_id, "busyAddress": DESTINATION[:1]}, False)),
    ]


# --- random values tshark can dissect ----------------------------------------------------------

_HANDED_ON = ("h245Control", "parallelH245Control", "h4501SupplementaryService")


def dissectable(value: Any) -> Any:
    """``value`` with fastStart made of real OpenLogicalChannels and H.245/H.450 payloads left
    out (see the module doc); changes ``value`` in place and returns it."""
    if isinstance(value, dict):
        for key in list(value):
            if key in _HANDED_ON:
                del value[key]
            elif key == "fastStart":
                value[key] = [FAST_START[index % 2] for index in range(len(value[key]))]
            else:
                dissectable(value[key])
    elif isinstance(value, (list, tuple)):
        for item in value:
            dissectable(item)
    return value


FULL_SEEDS = range(24)


@functools.lru_cache(maxsize=None)
def random_values() -> tuple[dict, ...]:
    node = compiled("H323-UserInformation")
    return tuple(dissectable(without_signed(node, full_value("H323-UserInformation", seed), random.Random(seed)))
                 for seed in FULL_SEEDS)


# --- running tshark ----------------------------------------------------------------------------

@dataclass
class Decoded:
    labels: list[str]
    values: list[dict]
    messages: list[Q931Message]
    frames: list[str]
    pdml: list[list[PdmlField]]


def _split_frames(text: str) -> list[str]:
    return [frame for frame in re.split(r"\n(?=Frame \d+: )", "\n" + text) if frame.strip()]


def _decode(tmp_path, items: list[tuple[str, bool, Q931Message, dict]]) -> Decoded:
    messages, wire = [], []
    for label, from_caller, message, value in items:
        message.ies.append(UserUser(codec.encode_uuie(value)).to_ie())
        messages.append(message)
        wire.append((from_caller, q931.encode(message)))
    pcap = tmp_path / "uuie.pcap"
    write_q931_pcap(pcap, wire)
    frames = _split_frames(run_tshark(pcap, CHECK_CHECKSUMS))
    pdml = tshark_pdml(pcap)
    assert len(frames) == len(pdml) == len(items), (len(frames), len(pdml), len(items))
    return Decoded([i[0] for i in items], [i[3] for i in items], messages, frames, pdml)


@pytest.fixture(scope="module")
def flow(tmp_path_factory) -> Decoded:
    return _decode(tmp_path_factory.mktemp("flow"), call_flow())


@pytest.fixture(scope="module")
def randoms(tmp_path_factory) -> Decoded:
    items = [(f"full-{seed}", True, Q931Message(q931.SETUP, 100 + seed, False, []), value)
             for seed, value in zip(FULL_SEEDS, random_values())]
    return _decode(tmp_path_factory.mktemp("random"), items)


def _shown(fields: list[PdmlField], name: str) -> list[str]:
    return [f.show for f in fields if f.name == name]


_SHOWNAME = re.compile(r"^[^:]+: (.*) \((\d+)\)$")


def _alternatives(fields: list[PdmlField], name: str) -> list[str]:
    return [_SHOWNAME.match(f.showname).group(1) for f in fields if f.name == name]


def _guid(octets: bytes) -> str:
    h = octets.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _assert_clean(decoded: Decoded) -> None:
    problems = []
    for label, frame in zip(decoded.labels, decoded.frames):
        if "H.225.0 CS" not in frame or "H323-UserInformation" not in frame:
            problems.append(f"{label}: tshark did not dissect an H.225.0 H323-UserInformation")
            continue
        try:
            assert_no_malformed(frame)
        except AssertionError as error:
            problems.append(f"{label}: {str(error)[-1500:]}")
    assert not problems, f"{len(problems)} of {len(decoded.labels)} messages:\n" + "\n\n".join(problems[:5])


def _assert_same_values(decoded: Decoded) -> None:
    problems = []
    for label, value, fields in zip(decoded.labels, decoded.values, decoded.pdml):
        expected = expected_fields(value)
        differences = compare(expected, shown_fields(fields, WATCHED | {name for name, _ in expected}))
        if differences:
            problems.append(f"{label}: " + "; ".join(differences[:6]))
    assert not problems, f"{len(problems)} of {len(decoded.labels)} differ:\n" + "\n".join(problems[:15])


# --- the tests ---------------------------------------------------------------------------------

def test_the_call_flow_has_every_uuie_body_and_every_h323_message_type():
    bodies = {value["h323-uu-pdu"]["h323-message-body"][0] for _, _, _, value in call_flow()}
    choice = compiled("H323-UU-PDU").root_members[0]
    every = {m.name for m in choice.root_index_to_member.values()}
    every |= {m.name for m in choice.additions_index_to_member.values()}
    assert bodies == every
    types = {message.message_type for _, _, message, _ in call_flow()}
    assert types == q931.H225_MESSAGE_TYPES - {q931.CONNECT_ACK, q931.RELEASE}


def test_tshark_decodes_every_call_signalling_message_without_malformed_or_errors(flow):
    _assert_clean(flow)


def test_tshark_reads_the_q931_header_and_the_user_user_protocol_discriminator(flow):
    for message, fields in zip(flow.messages, flow.pdml):
        assert [int(v, 0) for v in _shown(fields, "q931.message_type")] == [message.message_type]
        assert [int(v, 0) for v in _shown(fields, "q931.user.protocol_discriminator")] == [q931.UUIE_PROTOCOL_X208]


def test_tshark_reads_the_message_body_kind_of_every_uuie(flow):
    for label, value, fields in zip(flow.labels, flow.values, flow.pdml):
        body = value["h323-uu-pdu"]["h323-message-body"][0]
        assert _alternatives(fields, "h225.h323_message_body") == [body], label


def test_tshark_reads_call_identifier_conference_id_and_h245_tunnelling(flow):
    for label, value, fields in zip(flow.labels, flow.values, flow.pdml):
        pdu = value["h323-uu-pdu"]
        content = pdu["h323-message-body"][1] or {}
        assert _shown(fields, "h225.guid") == ([_guid(CALL_ID)] if "callIdentifier" in content else []), label
        assert _shown(fields, "h225.conferenceID") == ([_guid(CONF_ID)] if "conferenceID" in content else []), label
        assert _shown(fields, "h225.h245Tunnelling") == [str(int(pdu["h245Tunnelling"]))], label


def test_tshark_reads_source_and_destination_aliases_and_addresses_of_the_setup(flow):
    fields = flow.pdml[flow.labels.index("setup")]
    assert _shown(fields, "h225.sourceAddress") == [str(len(SOURCE))]
    assert _shown(fields, "h225.destinationAddress") == [str(len(DESTINATION))]
    assert _shown(fields, "h225.h323_ID") == ["Alice Ünïcödé", "bob"]
    assert _shown(fields, "h225.dialledDigits") == ["1001", "4930123456"]
    assert _shown(fields, "h225.email_ID") == ["alice@example.com"]
    assert _shown(fields, "h225.url_ID") == ["h323:bob@example.com"]
    assert _alternatives(fields, "h225.destCallSignalAddress") == ["ipAddress"]
    assert _alternatives(fields, "h225.sourceCallSignalAddress") == ["ipAddress"]
    # destCallSignalAddress, then sourceCallSignalAddress
    assert _shown(fields, "h225.ipV4") == [CALLEE[0], CALLER[0]]
    assert _shown(fields, "h225.ipV4_port") == [str(CALLEE[1]), str(CALLER[1])]
    assert _shown(fields, "h225.endpointIdentifier") == ["ep-00042"]
    assert _shown(fields, "h225.canOverlapSend") == ["1"]
    assert _shown(fields, "h225.multipleCalls") == ["1"]


def test_tshark_reads_h245_addresses_reasons_and_facility_aliases(flow):
    table = dict(zip(flow.labels, flow.pdml))
    assert _alternatives(table["connect"], "h225.h245Address") == ["ipAddress"]
    assert _shown(table["connect"], "h225.h245Ip") == ["203.0.113.20"]
    assert _shown(table["connect"], "h225.h245IpPort") == ["40002"]
    assert _shown(table["alerting"], "h225.h245IpPort") == ["40100"]
    assert _alternatives(table["facility"], "h225.reason") == ["callForwarded"]
    assert _alternatives(table["facility"], "h225.alternativeAddress") == ["ipAddress"]
    assert _shown(table["facility"], "h225.alternativeAliasAddress") == ["2"]
    assert _alternatives(table["releaseComplete"], "h225.reason") == ["calledPartyNotRegistered"]


def test_tshark_reads_the_number_of_fast_start_elements_and_their_channels(flow):
    for label, value, fields in zip(flow.labels, flow.values, flow.pdml):
        content = value["h323-uu-pdu"]["h323-message-body"][1] or {}
        count = len(content.get("fastStart", []))
        assert _shown(fields, "h225.fastStart") == ([str(count)] if count else []), label
        numbers = [int(v) for v in _shown(fields, "h245.forwardLogicalChannelNumber")]
        expected = [1 if element is FAST_START[0] else 2 for element in content.get("fastStart", [])]
        assert numbers == expected, label


def test_tshark_reads_the_values_we_encoded_in_every_call_signalling_message(flow):
    _assert_same_values(flow)


def test_random_values_are_built_without_signed_or_random_h245_payloads():
    for value in random_values():
        text = repr(value)
        assert "toBeSigned" not in text
        assert not any(f"'{key}'" in text for key in _HANDED_ON)


def test_tshark_decodes_full_random_h323_user_information_without_malformed_or_errors(randoms):
    _assert_clean(randoms)
    for value, fields in zip(randoms.values, randoms.pdml):
        body = value["h323-uu-pdu"]["h323-message-body"][0]
        assert _alternatives(fields, "h225.h323_message_body") == [body]


def test_tshark_reads_the_values_we_encoded_in_full_random_h323_user_information(randoms):
    _assert_same_values(randoms)
