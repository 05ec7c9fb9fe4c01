"""Oracle tests: tshark (an independent H.225.0 RAS decoder) reads what our codec encodes.

Every message the gatekeeper builds (every builder of ``gatekeeper.h225.ras``, with realistic
values: aliases of every text kind, transport and party-number aliases, IPv4 addresses, every
reject reason of GRJ/RRJ/URJ/ARJ/BRJ/LRJ/DRJ, every URQ and DRQ reason), a few hand-built
requests whose booleans follow NULL extension additions, and random values with every field
filled in of every RAS message kind are written as UDP datagrams to port 1719, and tshark
decodes each pcap once (a run costs ~0.5 s). tshark must report nothing malformed, no expert
error, and read back the values we encoded.

Field values are compared generically: :func:`expected_fields` walks the value we encoded and
lists what tshark must show, :func:`shown_fields` takes the same fields from tshark's PDML, and
the two multisets must be equal. The tshark field names used (tshark 4.0):

* ``h225.RasMessage`` (the message kind, from the showname ``RasMessage: gatekeeperReject (2)``)
* ``h225.requestSeqNum``, ``h225.timeToLive``, ``h225.bandWidth``, ``h225.allowedBandWidth``,
  ``h225.callReferenceValue``, ``h225.delay``, ``h225.hopCount``, ``h225.irrFrequency``
* ``h225.endpointIdentifier``, ``h225.gatekeeperIdentifier``, ``h225.protocolIdentifier``
* aliases: ``h225.dialledDigits``, ``h225.h323_ID``, ``h225.url_ID``, ``h225.email_ID``,
  ``h225.publicNumberDigits`` (partyNumber e164Number), ``h225.privateNumberDigits``, and in the
  RCF test ``h225.AliasAddress`` (the kind of each alias, from its showname; elsewhere tshark
  names alias list items differently, e.g. ``h225.DestinationInfo_item``); transportID through
  the address fields below
* addresses: ``h225.ipV4`` and ``h225.ipV4_port`` (every ipAddress TransportAddress),
  ``h225.ipV6`` / ``h225.ipV6_port`` (ip6Address), and for an h245Address ``h225.h245Ip`` /
  ``h225.h245IpPort`` (``h225.h245Ip6`` / ``h225.h245Ip6port``)
* ``h225.conferenceID``, ``h225.guid`` (GUIDs, shown 8-4-4-4-12)
* reasons: ``h225.rejectReason`` (all seven rejects), ``h225.reason`` (URQ),
  ``h225.disengageReason`` (DRQ), ``h225.securityError``, ``h225.callModel``; each compared by
  the alternative name in its showname (``rejectReason: securityDenial (4)``)
* every BOOLEAN by its component (or alternative) name, ``h225.<name>`` (``h225.keepAlive``,
  ``h225.multipleCalls``, ``h225.willRespondToIRR``, ...), ``h235.<name>`` or ``h245.<name>``
  inside the H.235 and H.245 types H.225.0 imports; every NULL by its presence,
  ``h225.<name>_element`` (``h225.supportsAltGK_element``, ``h225.securityDenial_element``, ...).
  Every BOOLEAN and NULL tshark shows must be one we encoded, so a misplaced extension addition
  (which turns bits after it into other components) cannot go unnoticed.

tshark cannot dissect H.235 SIGNED{} values: its ToBeSigned is a stub ("something unknown
here [ToBeSigned]") that consumes nothing, so everything after it is misread and the packet
ends as malformed. Random values are therefore built without SIGNED (``cryptoEPCert``,
``cryptoGKCert``, ``cryptoFastStart``, ``cryptoSignedToken``, ``certProtectedKey``); the
pycrate oracle (test_pycrate_oracle.py) covers those.

Strings with control characters (IA5String allows them) are printed escaped by tshark; for those
only the number of occurrences of the field is compared, not the text.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import random
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any
from unittest import mock

import pytest
from asn1tools.codecs import per

from gatekeeper.h225 import codec, ras
from gatekeeper.h225.ras import Alias

from asn1_values import compiled, full_ras, make_value, minimal_ras, ras_alternatives
from oracles import (
    CHECK_CHECKSUMS,
    PdmlField,
    assert_no_malformed,
    requires_tshark,
    run_tshark,
    tshark_pdml,
    write_udp_pcap,
)

pytestmark = requires_tshark

RAS_KINDS = ras_alternatives()
GK_ID = "GK-Zürich"          # a BMPString with a non-ASCII character
EP_ID = "ep-00042_1"
GK_RAS = ("192.0.2.1", 1719)
GK_SIGNAL = ("192.0.2.1", 1720)
EP_SIGNAL = ("198.51.100.7", 1720)
EP_RAS = ("198.51.100.7", 49152)
CALL_ID = bytes.fromhex("c4202c1e5b7a11efa0b3000c29d1e2f4")
CONF_ID = bytes.fromhex("0a1b2c3d4e5f60718293a4b5c6d7e8f9")

ALIASES = [
    ras.parse_alias("800:dialedDigits"),
    ras.parse_alias("Wei:h323_ID"),
    Alias("h323-ID", "Ünïcödé €uro"),
    Alias("url-ID", "h323:alice@example.com"),
    Alias("email-ID", "alice@example.com"),
    Alias("transportID", "203.0.113.9:1721"),
    Alias("partyNumber", "E164:4930123456"),
    Alias("partyNumber", "Private:2001"),
]

REJECT_KINDS = ["gatekeeperReject", "registrationReject", "unregistrationReject",
                "admissionReject", "bandwidthReject", "locationReject", "disengageReject"]


# --- the messages ------------------------------------------------------------------------------

@dataclass
class Packet:
    label: str
    message: tuple[str, Any]
    data: bytes = b""


def reason_value(kind: str, reason: str) -> Any:
    """A realistic value for a reject reason that is not NULL."""
    if reason == "securityError":
        return ("securityWrongSyncTime", None)  # in both SecurityErrors and SecurityErrors2
    if reason == "duplicateAlias":
        return [ALIASES[0], ALIASES[1]]
    if reason == "invalidTerminalAliases":
        return {"terminalAlias": ras.aliases_to_asn(ALIASES[:2])}
    if reason in ("routeCallToSCN", "routeCalltoSCN"):
        return [("e164Number", {"publicTypeOfNumber": ("internationalNumber", None),
                                "publicNumberDigits": "4930123456"})]
    raise AssertionError(f"no value for {kind} reason {reason}")


def _reason_args(kind: str, reason: str) -> dict:
    if reason in codec.null_alternatives(ras.REASON_TYPES[kind]):
        return {}
    return {"value": reason_value(kind, reason)}


def builder_messages() -> list[tuple[str, tuple]]:
    """Every builder of ras.py, with realistic values; every reject reason of every reject."""
    seq = iter(range(1, 65536))
    out: list[tuple[str, tuple]] = [
        ("gcf", ras.gcf(next(seq), GK_ID, GK_RAS)),
        ("gcf-no-id", ras.gcf(next(seq), None, GK_RAS)),
        ("rcf", ras.rcf(next(seq), [GK_SIGNAL], EP_ID, GK_ID, ALIASES, 300, True)),
        ("rcf-minimal", ras.rcf(next(seq), [GK_SIGNAL, ("192.0.2.2", 11720)], EP_ID, None)),
        ("ucf", ras.ucf(next(seq))),
        ("acf-direct", ras.acf(next(seq), 1280, EP_SIGNAL, routed=False, irr_frequency=120,
                               destination_info=ALIASES[:3], destination_type="terminal")),
        ("acf-routed", ras.acf(next(seq), 640, GK_SIGNAL, routed=True,
                               destination_info=[ALIASES[0]], destination_type="gateway")),
        ("dcf", ras.dcf(next(seq))),
        ("bcf", ras.bcf(next(seq), 2560)),
        ("lcf", ras.lcf(next(seq), EP_SIGNAL, EP_RAS, ALIASES[:2], "mcu")),
        ("lcf-minimal", ras.lcf(next(seq), EP_SIGNAL, EP_RAS)),
        ("lrq", ras.lrq(next(seq), ALIASES[:2], GK_RAS, GK_ID, [ALIASES[4]], EP_ID, 7, CALL_ID)),
        ("lrq-minimal", ras.lrq(next(seq), [ALIASES[0]], GK_RAS)),
        ("irq", ras.irq(next(seq), 77, GK_RAS, CALL_ID)),
        ("irq-all-calls", ras.irq(next(seq))),
        ("rip", ras.rip(next(seq), 5000)),
        ("rac", ras.rac(next(seq))),
        ("iack", ras.iack(next(seq))),
        ("unknown-message-response", ras.unknown_message_response(next(seq), b"\x7f\x00\x01junk")),
        ("urq", ras.urq(next(seq), [EP_SIGNAL], EP_ID, GK_ID, None, ALIASES[:2])),
    ]
    builders = {
        "gatekeeperReject": lambda s, r, kw: ras.grj(s, r, GK_ID, **kw),
        "registrationReject": lambda s, r, kw: ras.rrj(s, r, GK_ID, **kw),
        "unregistrationReject": lambda s, r, kw: ras.urj(s, r, **kw),
        "admissionReject": lambda s, r, kw: ras.arj(s, r, **kw),
        "bandwidthReject": lambda s, r, kw: ras.brj(s, r, 640, **kw),
        "locationReject": lambda s, r, kw: ras.lrj(s, r, **kw),
        "disengageReject": lambda s, r, kw: ras.drj(s, r, **kw),
    }
    for kind in REJECT_KINDS:
        for reason in ras.reasons(kind):
            out.append((f"{kind}-{reason}", builders[kind](next(seq), reason, _reason_args(kind, reason))))
    for reason in ras.reasons("unregistrationRequest"):
        value = reason_value("unregistrationRequest", reason) if reason == "securityError" else None
        message = ras.urq(next(seq), [EP_SIGNAL], EP_ID, GK_ID, reason, value=value)
        out.append((f"unregistrationRequest-{reason}", message))
    for reason in ras.reasons("disengageRequest"):
        for answered in (False, True):
            out.append((f"disengageRequest-{reason}-{answered}",
                        ras.drq(next(seq), EP_ID, CONF_ID, 513, reason, CALL_ID, GK_ID, answered)))
    return out


def _endpoint_vendor() -> dict:
    return {"vendor": {"t35CountryCode": 9, "t35Extension": 0, "manufacturerCode": 61},
            "productId": b"gatekeeper-test", "versionId": b"7.0"}


def rrq_with_booleans_after_null_additions(seq: int, flag: bool) -> tuple:
    """An RRQ whose extension additions put BOOLEANs behind NULLs (additiveRegistration,
    supportsAltGK, restart, supportsACFSequences): one NULL misencoded shifts them all."""
    return ("registrationRequest", {
        "requestSeqNum": seq,
        "protocolIdentifier": ras.PROTOCOL_IDENTIFIER,
        "discoveryComplete": flag,
        "callSignalAddress": [ras.transport_to_asn(EP_SIGNAL)],
        "rasAddress": [ras.transport_to_asn(EP_RAS)],
        "terminalType": ras.endpoint_type_value("terminal", _endpoint_vendor()),
        "terminalAlias": ras.aliases_to_asn(ALIASES),
        "gatekeeperIdentifier": GK_ID,
        "endpointVendor": _endpoint_vendor(),
        "timeToLive": 600,
        "keepAlive": flag,
        "endpointIdentifier": EP_ID,
        "willSupplyUUIEs": not flag,
        "maintainConnection": flag,
        "additiveRegistration": None,
        "supportsAltGK": None,
        "multipleCalls": True,
        "restart": None,
        "supportsACFSequences": None,
        "supportsAssignedGK": flag,
    })


def handmade_messages() -> list[tuple[str, tuple]]:
    return [
        ("rrq-null-then-true", rrq_with_booleans_after_null_additions(4242, True)),
        ("rrq-null-then-false", rrq_with_booleans_after_null_additions(4243, False)),
        ("grq-supportsAltGK", ("gatekeeperRequest", {
            "requestSeqNum": 4244, "protocolIdentifier": ras.PROTOCOL_IDENTIFIER,
            "rasAddress": ras.transport_to_asn(EP_RAS),
            "endpointType": ras.endpoint_type_value("terminal"),
            "endpointAlias": ras.aliases_to_asn(ALIASES[:2]),
            "supportsAltGK": None, "supportsAssignedGK": True})),
        ("arq-can-map", ("admissionRequest", {
            "requestSeqNum": 4245, "callType": ("pointToPoint", None),
            "callModel": ("gatekeeperRouted", None), "endpointIdentifier": EP_ID,
            "destinationInfo": ras.aliases_to_asn(ALIASES[:1]),
            "srcInfo": ras.aliases_to_asn(ALIASES[1:2]),
            "srcCallSignalAddress": ras.transport_to_asn(EP_SIGNAL),
            "bandWidth": 1280, "callReferenceValue": 7, "conferenceID": CONF_ID,
            "activeMC": False, "answerCall": False, "canMapAlias": True,
            "callIdentifier": {"guid": CALL_ID}, "gatekeeperIdentifier": GK_ID,
            "willSupplyUUIEs": True, "canMapSrcAlias": True})),
    ]


# --- random values tshark can dissect ----------------------------------------------------------

def _inner(node: Any) -> Any:
    return node._inner if isinstance(node, per.Recursive) else node


def _is_signed(node: Any) -> bool:
    node = _inner(node)
    return isinstance(node, per.MembersType) and any(m.name == "toBeSigned" for m in node.root_members)


_NEEDS_SIGNED: dict[int, bool] = {}


def _needs_signed(node: Any, depth: int = 0) -> bool:
    """True if every value of ``node`` contains a SIGNED{} value."""
    node = _inner(node)
    known = _NEEDS_SIGNED.get(id(node))
    if known is not None:
        return known
    result = _is_signed(node)
    if not result and depth < 8 and isinstance(node, per.MembersType):
        result = any(_needs_signed(m, depth + 1) for m in node.root_members
                     if not (m.optional or m.default is not None))
    _NEEDS_SIGNED[id(node)] = result
    return result


def without_signed(node: Any, value: Any, rng: random.Random) -> Any:
    """``value`` of compiled type ``node`` with every SIGNED{} replaced (see the module doc)."""
    node = _inner(node)
    if isinstance(node, per.MembersType):
        additions = list(node.additions or [])
        for member in list(node.root_members) + additions:
            if member.name not in value:
                continue
            optional = member.optional or member.default is not None or member in additions
            if _needs_signed(member) and optional:
                del value[member.name]
            else:
                value[member.name] = without_signed(member, value[member.name], rng)
        return value
    if isinstance(node, per.Choice):
        members = list(node.root_index_to_member.values())
        members += list((node.additions_index_to_member or {}).values())
        name, inner = value
        member = next((m for m in members if m.name == name), None)
        if member is None:
            return value
        if _needs_signed(member):
            member = rng.choice([m for m in members if not _needs_signed(m)])
            inner = make_value(member, rng, True, 3)
        return (member.name, without_signed(member, inner, rng))
    if isinstance(node, per.ArrayType):
        return [without_signed(node.element_type, item, rng) for item in value]
    return value


def _contains_key(value: Any, key: str) -> bool:
    if isinstance(value, dict):
        return key in value or any(_contains_key(v, key) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_contains_key(v, key) for v in value)
    return False


FULL_SEEDS = (0, 1, 2)


@functools.lru_cache(maxsize=None)
def random_messages() -> list[tuple[str, tuple]]:
    node = compiled("RasMessage")
    out = []
    for kind in RAS_KINDS:
        for seed in FULL_SEEDS:
            value = without_signed(node, full_ras(kind, seed), random.Random(seed))
            out.append((f"full-{kind}-{seed}", value))
        out.append((f"minimal-{kind}", minimal_ras(kind, 0)))
    # Distinct sequence numbers: tshark pairs a response with the request of the same number and
    # then adds hidden fields (a "guid" read from the response's own bytes) that we did not encode.
    for index, (_, (kind, value)) in enumerate(out):
        if "requestSeqNum" in value:
            value["requestSeqNum"] = 10_000 + index
    return out


# --- expected and shown field values -----------------------------------------------------------

_INTS = {"requestSeqNum", "timeToLive", "bandWidth", "allowedBandWidth", "callReferenceValue",
         "delay", "hopCount", "irrFrequency"}
_BMP = {"endpointIdentifier", "gatekeeperIdentifier"}
_CHOICES = {"rejectReason", "reason", "disengageReason", "callModel"}
_ALIASES = {"dialledDigits": "h225.dialledDigits", "h323-ID": "h225.h323_ID",
            "url-ID": "h225.url_ID", "email-ID": "h225.email_ID"}
_BY_SHOWNAME = {"h225.RasMessage", "h225.securityError"} | {f"h225.{c}" for c in _CHOICES}
#: Fields whose every occurrence must be accounted for (anything tshark shows more fails).
WATCHED = ({f"h225.{n}" for n in _INTS | _BMP} | set(_ALIASES.values()) | _BY_SHOWNAME
           | {"h225.ipV4", "h225.ipV4_port", "h225.ipV6", "h225.ipV6_port", "h225.h245Ip",
              "h225.h245IpPort", "h225.h245Ip6", "h225.h245Ip6port", "h225.conferenceID", "h225.guid",
              "h225.publicNumberDigits", "h225.privateNumberDigits", "h225.protocolIdentifier"})

WILDCARD = "\x00<any>"


def _text(value: str) -> str:
    """The string, or WILDCARD when tshark would print it escaped (control characters)."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return WILDCARD
    return value


def _guid(octets: bytes) -> str:
    h = bytes(octets).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _ip_address(value: Any) -> bool:
    """True for an ipAddress or ip6Address TransportAddress."""
    return (isinstance(value, tuple) and len(value) == 2 and value[0] in ("ipAddress", "ip6Address")
            and isinstance(value[1], dict) and set(value[1]) == {"ip", "port"})


def _address_fields(value: tuple, ip4: str, port4: str, ip6: str, port6: str) -> list[tuple[str, str]]:
    kind, address = value
    if kind == "ipAddress":
        return [(ip4, str(ipaddress.IPv4Address(bytes(address["ip"])))), (port4, str(address["port"]))]
    return [(ip6, ipaddress.IPv6Address(bytes(address["ip"])).compressed), (port6, str(address["port"]))]


def expected_fields(value: Any, out: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    """(tshark field, shown value) for everything in ``value`` we compare (see the module doc)."""
    out = [] if out is None else out
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "h245Address" and _ip_address(item):
                out.extend(_address_fields(item, "h225.h245Ip", "h225.h245IpPort",
                                           "h225.h245Ip6", "h225.h245Ip6port"))
                continue
            if isinstance(item, bool):
                out.append((f"?.{key}", str(int(item))))  # h225., h235. or h245.
            elif item is None:
                out.append((f"?.{key}_element", ""))
            elif key in _INTS and isinstance(item, int):
                out.append((f"h225.{key}", str(item)))
            elif key in _BMP and isinstance(item, str):
                out.append((f"h225.{key}", _text(item)))
            elif key in ("conferenceID", "guid") and isinstance(item, (bytes, bytearray)) and len(item) == 16:
                out.append((f"h225.{key}", _guid(item)))
            elif key == "protocolIdentifier" and isinstance(item, str):
                out.append(("h225.protocolIdentifier", item))
            elif key in ("publicNumberDigits", "privateNumberDigits") and isinstance(item, str):
                out.append((f"h225.{key}", _text(item)))
            if key in _CHOICES and isinstance(item, tuple):
                out.append((f"h225.{key}", item[0]))
            if key == "securityError" and isinstance(item, tuple):
                out.append(("h225.securityError", item[0]))
            expected_fields(item, out)
    elif isinstance(value, list):
        for item in value:
            expected_fields(item, out)
    elif isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        name, item = value
        if name in _ALIASES and isinstance(item, str):
            out.append((_ALIASES[name], _text(item)))
        elif _ip_address(value):
            out.extend(_address_fields(value, "h225.ipV4", "h225.ipV4_port", "h225.ipV6", "h225.ipV6_port"))
        elif name == "securityError" and isinstance(item, tuple):
            out.append(("h225.securityError", item[0]))
        elif name == "releaseCompleteReason" and isinstance(item, tuple):
            out.append(("h225.reason", item[0]))  # tshark's name for ReleaseCompleteReason
        elif item is None:
            out.append((f"?.{name}_element", ""))
        elif isinstance(item, bool):  # a BOOLEAN alternative, e.g. GenericData content
            out.append((f"?.{name}", str(int(item))))
        expected_fields(item, out)
    return out


_SHOWNAME = re.compile(r"^[^:]+: (.*) \((\d+)\)$")


def shown_fields(packet: list[PdmlField], wanted: set[str]) -> list[tuple[str, str]]:
    """The fields of one PDML packet named in ``wanted`` ("?.x" matches h225.x and h245.x)."""
    out = []
    for item in packet:
        name = item.name
        generic = "?." + name.split(".", 1)[1] if name.startswith(("h225.", "h235.", "h245.")) else None
        if name in _BY_SHOWNAME and name in wanted:
            match = _SHOWNAME.match(item.showname)
            out.append((name, match.group(1) if match else item.showname))
        elif name in wanted:
            out.append((name, item.show))
        elif generic is not None and item.showname.endswith((": True", ": False")):
            out.append((generic, item.show))  # every BOOLEAN tshark shows, wanted or not
        elif generic is not None and generic.endswith("_element") and item.showname.endswith(": NULL"):
            out.append((generic, ""))  # every NULL tshark shows, wanted or not
    return out


def compare(expected: list[tuple[str, str]], shown: list[tuple[str, str]]) -> list[str]:
    """Differences between the multisets; WILDCARD texts match any text of their field."""
    wanted = Counter(pair for pair in expected if pair[1] != WILDCARD)
    wildcards = Counter(name for name, text in expected if text == WILDCARD)
    got = Counter(shown)
    problems = [f"missing {name} = {text!r} (x{n})" for (name, text), n in (wanted - got).items()]
    extra = got - wanted
    leftover = Counter()
    for (name, text), n in extra.items():
        leftover[name] += n
    for name, n in leftover.items():
        if n != wildcards.get(name, 0):
            shown_extra = [text for (field, text) in extra if field == name]
            problems.append(f"{name}: tshark shows {n} value(s) we did not encode {shown_extra[:5]}"
                            f" ({wildcards.get(name, 0)} escaped string(s) expected)")
    for name, n in wildcards.items():
        if name not in leftover:
            problems.append(f"{name}: {n} string(s) with control characters not shown at all")
    return problems


# --- running tshark once per pcap --------------------------------------------------------------

@dataclass
class Decoded:
    packets: list[Packet]
    frames: list[str]            # -V text of each frame
    pdml: list[list[PdmlField]]  # fields of each frame


def _split_frames(text: str) -> list[str]:
    return [frame for frame in re.split(r"\n(?=Frame \d+: )", "\n" + text) if frame.strip()]


def _decode(tmp_path_factory, name: str, messages: list[tuple[str, tuple]]) -> Decoded:
    packets = [Packet(label, message, codec.encode_ras(message)) for label, message in messages]
    pcap = tmp_path_factory.mktemp("ras") / f"{name}.pcap"
    write_udp_pcap(pcap, [packet.data for packet in packets], src=EP_RAS, dst=GK_RAS)
    frames = _split_frames(run_tshark(pcap, CHECK_CHECKSUMS))
    pdml = tshark_pdml(pcap)
    assert len(frames) == len(pdml) == len(packets), (len(frames), len(pdml), len(packets))
    return Decoded(packets, frames, pdml)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Decoded:
    return _decode(tmp_path_factory, "builders", builder_messages() + handmade_messages())


@pytest.fixture(scope="module")
def randoms(tmp_path_factory) -> Decoded:
    return _decode(tmp_path_factory, "random", random_messages())


def _assert_clean(decoded: Decoded) -> None:
    problems = []
    for packet, frame in zip(decoded.packets, decoded.frames):
        if "H.225.0 RAS" not in frame:
            problems.append(f"{packet.label}: tshark did not dissect it as H.225.0 RAS")
            continue
        try:
            assert_no_malformed(frame)
        except AssertionError as error:
            problems.append(f"{packet.label} ({packet.data.hex()}): {str(error)[-1500:]}")
    assert not problems, f"{len(problems)} of {len(decoded.packets)} packets:\n" + "\n\n".join(problems[:5])


def _assert_same_values(decoded: Decoded) -> None:
    problems = []
    for packet, fields in zip(decoded.packets, decoded.pdml):
        kind, value = packet.message
        expected = [("h225.RasMessage", kind)] + expected_fields(value)
        wanted = WATCHED | {name for name, _ in expected}
        differences = compare(expected, shown_fields(fields, wanted))
        if differences:
            problems.append(f"{packet.label}: " + "; ".join(differences[:6]))
    assert not problems, f"{len(problems)} of {len(decoded.packets)} packets differ:\n" + "\n".join(problems[:15])


def _one(fields: list[PdmlField], name: str) -> list[str]:
    return [f.show for f in fields if f.name == name]


def _by_label(decoded: Decoded) -> dict[str, tuple[Packet, list[PdmlField]]]:
    return {packet.label: (packet, fields) for packet, fields in zip(decoded.packets, decoded.pdml)}


# --- the tests ---------------------------------------------------------------------------------

#: Every function of ras.py that builds a message the gatekeeper sends.
BUILDERS = ("gcf", "grj", "rcf", "rrj", "ucf", "urj", "urq", "acf", "arj", "dcf", "drj", "drq",
            "bcf", "brj", "lcf", "lrj", "lrq", "irq", "rip", "rac", "iack", "unknown_message_response")


def test_the_builder_set_covers_every_builder_and_every_reason():
    with contextlib.ExitStack() as stack:
        spies = {name: stack.enter_context(mock.patch.object(ras, name, wraps=getattr(ras, name)))
                 for name in BUILDERS}
        labels = [label for label, _ in builder_messages()]
    assert [name for name, spy in spies.items() if not spy.called] == []
    for kind in REJECT_KINDS + ["unregistrationRequest"]:
        assert {label for label in labels if label.startswith(kind + "-")} == \
            {f"{kind}-{reason}" for reason in ras.reasons(kind)}
    for name in ("gcf", "rcf", "ucf", "acf-direct", "acf-routed", "dcf", "bcf", "lcf", "lrq",
                 "irq", "rip", "rac", "iack", "unknown-message-response", "urq"):
        assert name in labels
    assert len({label for label in labels if label.startswith("disengageRequest-")}) == 6


def test_tshark_decodes_every_message_the_gatekeeper_builds_without_malformed_or_errors(built):
    _assert_clean(built)


def test_tshark_reads_the_values_we_encoded_in_every_built_message(built):
    _assert_same_values(built)


def test_tshark_reads_the_kind_and_sequence_number_of_every_built_message(built):
    for packet, fields in _by_label(built).values():
        kind, value = packet.message
        assert _one(fields, "h225.requestSeqNum")[:1] == [str(value["requestSeqNum"])], packet.label
        shown = [f.showname for f in fields if f.name == "h225.RasMessage"]
        assert len(shown) == 1 and shown[0].startswith(f"RasMessage: {kind} ("), (packet.label, shown)


@pytest.mark.parametrize("kind", REJECT_KINDS)
def test_tshark_reads_every_reject_reason_of_the_standard(built, kind):
    rows = [(packet.label.split("-", 1)[1], fields) for packet, fields in zip(built.packets, built.pdml)
            if packet.label.startswith(kind + "-")]
    assert [reason for reason, _ in rows] == list(ras.reasons(kind))
    for reason, fields in rows:
        shown = [_SHOWNAME.match(f.showname).group(1) for f in fields if f.name == "h225.rejectReason"]
        assert shown == [reason], (kind, reason, shown)
        if reason in codec.null_alternatives(ras.REASON_TYPES[kind]):
            assert _one(fields, f"h225.{reason}_element") == [""], (kind, reason)
        if reason == "securityError":
            sub = [f.showname for f in fields if f.name == "h225.securityError"]
            assert sub and sub[0].startswith("securityError: securityWrongSyncTime"), (kind, sub)


def test_tshark_reads_every_urq_and_drq_reason(built):
    table = _by_label(built)
    for reason in ras.reasons("unregistrationRequest"):
        packet, fields = table[f"unregistrationRequest-{reason}"]
        shown = [_SHOWNAME.match(f.showname).group(1) for f in fields if f.name == "h225.reason"]
        assert shown == [reason], (reason, shown)
    for reason in ras.reasons("disengageRequest"):
        for answered in (False, True):
            packet, fields = table[f"disengageRequest-{reason}-{answered}"]
            shown = [_SHOWNAME.match(f.showname).group(1) for f in fields if f.name == "h225.disengageReason"]
            assert shown == [reason]
            assert _one(fields, "h225.answeredCall") == [str(int(answered))]
            assert _one(fields, "h225.conferenceID") == [_guid(CONF_ID)]
            assert _one(fields, "h225.guid") == [_guid(CALL_ID)]
            assert _one(fields, "h225.endpointIdentifier") == [EP_ID]
            assert _one(fields, "h225.gatekeeperIdentifier") == [GK_ID]


def test_tshark_reads_aliases_of_every_kind_and_addresses_in_an_rcf(built):
    packet, fields = _by_label(built)["rcf"]
    kinds = [_SHOWNAME.match(f.showname).group(1) for f in fields if f.name == "h225.AliasAddress"]
    assert kinds == [alias.kind for alias in ALIASES]
    assert _one(fields, "h225.dialledDigits") == ["800"]
    assert _one(fields, "h225.h323_ID") == ["Wei", "Ünïcödé €uro"]
    assert _one(fields, "h225.url_ID") == ["h323:alice@example.com"]
    assert _one(fields, "h225.email_ID") == ["alice@example.com"]
    assert _one(fields, "h225.publicNumberDigits") == ["4930123456"]
    assert _one(fields, "h225.privateNumberDigits") == ["2001"]
    # callSignalAddress, then the transportID alias
    assert _one(fields, "h225.ipV4") == ["192.0.2.1", "203.0.113.9"]
    assert _one(fields, "h225.ipV4_port") == ["1720", "1721"]
    assert _one(fields, "h225.timeToLive") == ["300"]
    assert _one(fields, "h225.endpointIdentifier") == [EP_ID]
    assert _one(fields, "h225.gatekeeperIdentifier") == [GK_ID]
    assert _one(fields, "h225.supportsAdditiveRegistration_element") == [""]


def test_tshark_reads_booleans_that_follow_null_extension_additions(built):
    table = _by_label(built)
    for label, flag in (("rrq-null-then-true", True), ("rrq-null-then-false", False)):
        packet, fields = table[label]
        for null in ("additiveRegistration", "supportsAltGK", "restart", "supportsACFSequences"):
            assert _one(fields, f"h225.{null}_element") == [""], (label, null)
        assert _one(fields, "h225.keepAlive") == [str(int(flag))], label
        assert _one(fields, "h225.willSupplyUUIEs") == [str(int(not flag))], label
        assert _one(fields, "h225.maintainConnection") == [str(int(flag))], label
        assert _one(fields, "h225.multipleCalls") == ["1"], label  # TRUE after supportsAltGK
        assert _one(fields, "h225.supportsAssignedGK") == [str(int(flag))], label
        assert _one(fields, "h225.timeToLive") == ["600"], label
        assert _one(fields, "h225.requestSeqNum") == [str(packet.message[1]["requestSeqNum"])]
    packet, fields = table["grq-supportsAltGK"]
    assert _one(fields, "h225.supportsAltGK_element") == [""]
    assert _one(fields, "h225.supportsAssignedGK") == ["1"]
    packet, fields = table["arq-can-map"]
    assert _one(fields, "h225.canMapAlias") == ["1"]
    assert _one(fields, "h225.canMapSrcAlias") == ["1"]
    assert _one(fields, "h225.willSupplyUUIEs") == ["1"]


def test_random_messages_of_every_kind_are_built_without_signed_and_cover_every_kind():
    messages = random_messages()
    assert {value[0] for _, value in messages} == set(RAS_KINDS)
    assert not any(_contains_key(value, "toBeSigned") for _, value in messages)


def test_tshark_decodes_full_random_messages_of_every_kind_without_malformed_or_errors(randoms):
    _assert_clean(randoms)


def test_tshark_reads_kind_and_sequence_number_of_every_random_message(randoms):
    for packet, fields in zip(randoms.packets, randoms.pdml):
        kind, value = packet.message
        shown = [f.showname for f in fields if f.name == "h225.RasMessage"]
        assert len(shown) == 1 and shown[0].startswith(f"RasMessage: {kind} ("), (packet.label, shown)
        if "requestSeqNum" in value:
            assert _one(fields, "h225.requestSeqNum")[:1] == [str(value["requestSeqNum"])], packet.label


def test_tshark_reads_the_values_we_encoded_in_full_random_messages(randoms):
    _assert_same_values(randoms)
