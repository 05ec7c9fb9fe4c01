"""Typed helpers over H.225.0 RAS values.

The codec speaks asn1tools' value form (dicts, ``(name, value)`` tuples for a
CHOICE).  Nothing outside ``gatekeeper.h225`` should: this module turns
incoming messages into frozen dataclasses (:func:`parse` / :func:`read`),
builds every message the gatekeeper sends (:func:`gcf`, :func:`rcf`, ...), and
converts aliases, transport addresses and identifiers to and from the text
forms GnuGk uses on its status port (``800:dialedDigits``, ``Wei:h323_ID``,
``10.0.0.1:1720``, ``c4 20 2c ...`` / ``c4-20-2c-...``).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass, field
from typing import Any, Iterable, NamedTuple, Sequence

from gatekeeper.errors import DecodeError, EncodeError
from gatekeeper.h225 import codec

# H.225.0 version 7: itu-t(0) recommendation(0) h(8) 2250 version(0) 7
PROTOCOL_IDENTIFIER = "0.0.8.2250.0.7"

#: The (ip, port) form of a transport address used everywhere above the codec.
Address = tuple[str, int]

# ---------------------------------------------------------------------------
# Aliases
# ---------------------------------------------------------------------------

#: ASN.1 alternative of AliasAddress -> GnuGk's tag in text form.
ALIAS_TAGS: dict[str, str] = {
    "dialledDigits": "dialedDigits",
    "h323-ID": "h323_ID",
    "url-ID": "url_ID",
    "transportID": "transportID",
    "email-ID": "email_ID",
    "partyNumber": "partyNumber",
    "mobileUIM": "mobileUIM",
    "isupNumber": "isupNumber",
}
_TAG_TO_KIND = {tag.lower(): kind for kind, tag in ALIAS_TAGS.items()}
# Spellings people also write in configuration files.
_TAG_TO_KIND.update({"dialleddigits": "dialledDigits", "h323-id": "h323-ID",
                     "url-id": "url-ID", "email-id": "email-ID", "transport_id": "transportID"})

_DIGITS = frozenset("0123456789#*,")

# GnuGk (through H323Plus) writes a partyNumber as "<Kind>:<digits>".
_PARTY_PREFIX = {
    "e164Number": "E164",
    "dataPartyNumber": "Data",
    "telexPartyNumber": "Telex",
    "privateNumber": "Private",
    "nationalStandardPartyNumber": "NationalStandard",
}
_PARTY_KIND = {text.lower(): kind for kind, text in _PARTY_PREFIX.items()}


@dataclass(frozen=True, slots=True)
class Alias:
    """An H.225.0 AliasAddress: its ASN.1 alternative and its text value.

    ``raw`` keeps the decoded ASN.1 value of the structured kinds (partyNumber,
    mobileUIM, isupNumber) and of opaque aliases (:func:`opaque_alias`) so they
    re-encode exactly; it takes no part in equality or hashing.
    """

    kind: str
    value: str
    raw: Any = field(default=None, compare=False, hash=False, repr=False)

    def __str__(self) -> str:
        return f"{self.value}:{ALIAS_TAGS.get(self.kind, self.kind)}"

    @property
    def is_digits(self) -> bool:
        """True for dialled digits and E.164 party numbers (prefix-routable)."""
        if self.kind == "dialledDigits":
            return not self.value.startswith("?")    # "?": opaque (no digit is "?")
        return (self.kind == "partyNumber" and isinstance(self.raw, tuple) and bool(self.raw)
                and self.raw[0] == "e164Number" and _party_digits(self.raw) is not None)

    @property
    def digits(self) -> str | None:
        """The digits of a digit alias, else None (also for an opaque alias)."""
        if self.kind == "dialledDigits":
            return None if self.value.startswith("?") else self.value
        if self.kind == "partyNumber" and self.raw is not None:
            return _party_digits(self.raw)
        return None


def dialled_digits(digits: str) -> Alias:
    return Alias("dialledDigits", digits)


def h323_id(name: str) -> Alias:
    return Alias("h323-ID", name)


def _party_digits(party: Any) -> str | None:
    """The digits of a PartyNumber value, or None for a shape without digits
    (an extension alternative this codec does not know)."""
    if not (isinstance(party, tuple) and len(party) == 2):
        return None
    kind, value = party
    if kind == "e164Number" and isinstance(value, dict):
        digits = value.get("publicNumberDigits")
    elif kind == "privateNumber" and isinstance(value, dict):
        digits = value.get("privateNumberDigits")
    else:
        digits = value
    return digits if isinstance(digits, str) else None


#: Longest text made of an opaque alias's content (a peer chooses its size).
_OPAQUE_TEXT_LIMIT = 256


def _opaque_text(content: Any) -> str:
    """A stable text for content this module does not model: ``?`` and the
    hex of its octets (``?`` keeps it from ever reading as digits or as a
    prefix), or ``?`` alone when it holds no octets."""
    octets = content[1] if isinstance(content, tuple) and len(content) == 2 else content
    if isinstance(octets, (bytes, bytearray)):
        return "?" + bytes(octets[:_OPAQUE_TEXT_LIMIT // 2]).hex()
    return "?"


def opaque_alias(kind: str, content: Any) -> Alias:
    """An alias read as-is: an alternative of AliasAddress (or of one of its
    structured kinds) that this module does not model.  ``raw`` keeps the
    decoded value, so it re-encodes to the very octets it came as; its text is
    :func:`_opaque_text`, so two different opaque aliases never look alike."""
    return Alias(kind, _opaque_text(content), content)


def _string_alias(kind: str, content: Any) -> Alias | None:
    return Alias(kind, content) if isinstance(content, str) else None


def _transport_alias(kind: str, content: Any) -> Alias | None:
    address = transport_from_asn(content)
    if address is None:
        return None
    return Alias(kind, format_address(address), content)


def _party_alias(kind: str, content: Any) -> Alias | None:
    sub, _ = content
    digits = _party_digits(content)
    prefix = _PARTY_PREFIX.get(sub)
    if prefix is None or digits is None:
        return None
    return Alias(kind, f"{prefix}:{digits}", content)


def _isup_alias(kind: str, content: Any) -> Alias | None:
    sub, inner = content
    digits = inner.get("address") if isinstance(inner, dict) else inner
    if sub not in _PARTY_PREFIX or not isinstance(digits, str):
        return None
    return Alias(kind, digits, content)


def _mobile_alias(kind: str, content: Any) -> Alias | None:
    sub, inner = content
    if sub not in ("ansi-41-uim", "gsm-uim") or not isinstance(inner, dict):
        return None
    parts = [f"{k}={v}" for k, v in inner.items() if isinstance(v, str)]
    return Alias(kind, ",".join(parts), content)


#: AliasAddress alternative -> its reader; a reader returns None for a value
#: of a shape it does not know, which then reads as an opaque alias.
_ALIAS_READERS = {
    "dialledDigits": _string_alias,
    "h323-ID": _string_alias,
    "url-ID": _string_alias,
    "email-ID": _string_alias,
    "transportID": _transport_alias,
    "partyNumber": _party_alias,
    "isupNumber": _isup_alias,
    "mobileUIM": _mobile_alias,
}


def alias_from_asn(value: Any) -> Alias:
    """AliasAddress (asn1tools form) -> :class:`Alias`.

    Total over what the decoder hands over: an alternative not modelled here,
    an unknown extension alternative (``("?extension-N", octets)``, at the top
    or inside partyNumber, mobileUIM, isupNumber, transportID) or any other
    unexpected shape reads as an :func:`opaque_alias`, never as an error.
    """
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        kind, content = value
    else:
        return opaque_alias("?", value)
    reader = _ALIAS_READERS.get(kind)
    if reader is not None:
        try:
            alias = reader(kind, content)
        except (TypeError, ValueError, KeyError, AttributeError, IndexError):
            alias = None
        if alias is not None:
            return alias
    return opaque_alias(kind, content)


def alias_to_asn(alias: Alias) -> tuple:
    """:class:`Alias` -> AliasAddress (asn1tools form)."""
    kind = alias.kind
    if alias.raw is not None:
        return (kind, alias.raw)
    if kind in ("dialledDigits", "h323-ID", "url-ID", "email-ID"):
        return (kind, alias.value)
    if kind == "transportID":
        return (kind, transport_to_asn(parse_address(alias.value, 1720)))
    if kind == "partyNumber":
        prefix, _, digits = alias.value.partition(":")
        party = _PARTY_KIND.get(prefix.lower())
        if party is None or not digits:
            party, digits = "e164Number", alias.value
        if party == "e164Number":
            return (kind, (party, {"publicTypeOfNumber": ("unknown", None),
                                   "publicNumberDigits": digits}))
        if party == "privateNumber":
            return (kind, (party, {"privateTypeOfNumber": ("unknown", None),
                                   "privateNumberDigits": digits}))
        return (kind, (party, digits))
    if kind == "isupNumber":
        return (kind, ("e164Number", {"natureOfAddress": ("unknown", None), "address": alias.value}))
    raise EncodeError(f"cannot build an alias of kind {kind!r} from text")


def parse_alias(text: str) -> Alias:
    """Read GnuGk's text form (``800:dialedDigits``, ``Wei:h323_ID``).

    Without a known tag, all-digit text is dialled digits and anything else
    an H.323 ID, as GnuGk does for aliases typed on the status port.
    """
    text = text.strip()
    if not text:
        raise ValueError("empty alias")
    value, sep, tag = text.rpartition(":")
    if sep:
        kind = _TAG_TO_KIND.get(tag.lower())
        if kind is not None and value:
            if kind == "dialledDigits" and not set(value) <= _DIGITS:
                raise ValueError(f"{value!r} is not valid dialled digits")
            return Alias(kind, value)
    if set(text) <= _DIGITS:
        return Alias("dialledDigits", text)
    if "@" in text and not text.startswith("@"):
        # user@host is what people mean by an email-ID alias... but GnuGk
        # keeps it an H.323 ID unless tagged; stay compatible.
        return Alias("h323-ID", text)
    return Alias("h323-ID", text)


def format_aliases(aliases: Iterable[Alias]) -> str:
    """GnuGk's list form: ``800:dialedDigits=Wei:h323_ID``."""
    return "=".join(str(alias) for alias in aliases)


def aliases_from_asn(values: Iterable[tuple] | None) -> tuple[Alias, ...]:
    return tuple(alias_from_asn(v) for v in values or ())


def aliases_to_asn(aliases: Iterable[Alias]) -> list[tuple]:
    return [alias_to_asn(a) for a in aliases]


# ---------------------------------------------------------------------------
# Transport addresses
# ---------------------------------------------------------------------------


def transport_to_asn(address: Address) -> tuple:
    """``(ip, port)`` -> TransportAddress (ipAddress or ip6Address)."""
    host, port = address
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise EncodeError(f"port out of range: {port}")
    try:
        return ("ipAddress", {"ip": socket.inet_pton(socket.AF_INET, host), "port": port})
    except (OSError, TypeError):
        pass
    try:
        return ("ip6Address", {"ip": socket.inet_pton(socket.AF_INET6, host), "port": port})
    except (OSError, TypeError):
        raise EncodeError(f"not an IP address: {host!r}") from None


_IP_FAMILIES = {"ipAddress": socket.AF_INET, "ipSourceRoute": socket.AF_INET,
                "ip6Address": socket.AF_INET6}


def transport_from_asn(value: Any) -> Address | None:
    """TransportAddress -> ``(ip, port)``, or None for anything else: the
    non-IP kinds, an unknown extension alternative, an unexpected shape."""
    if not (isinstance(value, tuple) and len(value) == 2):
        return None
    family = _IP_FAMILIES.get(value[0])
    content = value[1]
    if family is None or not isinstance(content, dict):
        return None
    try:
        host = socket.inet_ntop(family, content["ip"])
    except (KeyError, TypeError, ValueError, OSError):
        return None
    port = content.get("port")
    if not isinstance(port, int):
        return None
    return (host, port)


def transports_from_asn(values: Iterable[tuple] | None) -> tuple[Address, ...]:
    result = []
    for value in values or ():
        address = transport_from_asn(value)
        if address is not None:
            result.append(address)
    return tuple(result)


def format_address(address: Address) -> str:
    """``ip:port`` (``[ip6]:port`` for IPv6), as GnuGk prints addresses."""
    host, port = address
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def parse_address(text: str, default_port: int) -> Address:
    """Read ``ip``, ``ip:port``, ``[ip6]`` or ``[ip6]:port``."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"not an IP address: {text!r}") from None
    port = default_port
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) <= 65535:
            raise ValueError(f"bad port in {text!r}")
        port = int(port_text)
    return (str(ip), port)


# ---------------------------------------------------------------------------
# Identifiers
# ---------------------------------------------------------------------------


def new_guid() -> bytes:
    """A fresh 16-octet GloballyUniqueID."""
    return os.urandom(16)


def guid_spaced(guid: bytes) -> str:
    """``c4 20 2c ...``: GnuGk's form in PrintCurrentCalls and CDR lines."""
    return guid.hex(" ")


def guid_dashed(guid: bytes) -> str:
    """``c4-20-2c-...``: GnuGk's form in RAS event lines."""
    return guid.hex("-")


def parse_guid(text: str) -> bytes:
    """Read a GUID written spaced, dashed or as 32 plain hex digits."""
    cleaned = text.strip().replace(" ", "").replace("-", "").replace(":", "")
    if len(cleaned) != 32:
        raise ValueError(f"a call identifier has 16 octets: {text!r}")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise ValueError(f"not hexadecimal: {text!r}") from None


# ---------------------------------------------------------------------------
# Endpoint types and vendors
# ---------------------------------------------------------------------------

ENDPOINT_KINDS = ("gatekeeper", "gateway", "mcu", "terminal")


def endpoint_kind(endpoint_type: dict) -> str:
    """GnuGk's name for an EndpointType: terminal, gateway, mcu, gatekeeper
    or undefined (a gateway that is also an MCU is a gateway)."""
    for kind in ("gateway", "mcu", "gatekeeper", "terminal"):
        if kind in endpoint_type:
            return kind
    return "undefined"


def endpoint_type_value(kind: str, vendor: dict | None = None) -> dict:
    """EndpointType for our own messages, e.g. ``endpoint_type_value('gatekeeper')``."""
    value: dict = {"mc": False, "undefinedNode": kind == "undefined"}
    if kind in ENDPOINT_KINDS:
        value[kind] = {}
    if vendor is not None:
        value["vendor"] = vendor
    return value


def supported_prefixes(endpoint_type: dict) -> tuple[Alias, ...]:
    """Gateway/MCU prefixes announced in an EndpointType's protocol list."""
    prefixes: list[Alias] = []
    for kind in ("gateway", "mcu"):
        info = endpoint_type.get(kind)
        if not isinstance(info, dict):
            continue
        # Each protocol is a SupportedProtocols CHOICE; an unknown extension
        # alternative carries octets, not a dict, and announces nothing.
        for _, caps in info.get("protocol", ()):
            if isinstance(caps, dict):
                for prefix in caps.get("supportedPrefixes", ()):
                    prefixes.append(alias_from_asn(prefix["prefix"]))
    return tuple(prefixes)


def _text(octets: bytes | None) -> str:
    if not octets:
        return ""
    return bytes(octets).rstrip(b"\x00").decode("latin-1")


@dataclass(frozen=True, slots=True)
class Vendor:
    """What a VendorIdentifier says: T.35 codes, product and version."""

    country: int
    extension: int
    manufacturer: int
    product: str = ""
    version: str = ""

    def __str__(self) -> str:
        return f"{self.product} {self.version}".strip()


def vendor_from_asn(value: dict | None) -> Vendor | None:
    if not value:
        return None
    code = value["vendor"]
    return Vendor(code["t35CountryCode"], code["t35Extension"], code["manufacturerCode"],
                  _text(value.get("productId")), _text(value.get("versionId")))


# ---------------------------------------------------------------------------
# Incoming messages, typed
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RasPdu:
    """Any RAS message: its kind (ASN.1 alternative name), sequence number
    and the decoded value; the typed readers below extend it."""

    kind: str
    seq: int
    raw: Any = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class GatekeeperRequest(RasPdu):
    ras_address: Address | None
    endpoint_type: str
    gatekeeper_id: str | None
    aliases: tuple[Alias, ...]
    supports_alt_gk: bool


@dataclass(frozen=True, slots=True)
class RegistrationRequest(RasPdu):
    discovery_complete: bool
    call_signal_addresses: tuple[Address, ...]
    ras_addresses: tuple[Address, ...]
    endpoint_type: str
    aliases: tuple[Alias, ...]
    gatekeeper_id: str | None
    vendor: Vendor | None
    time_to_live: int | None
    keep_alive: bool
    endpoint_id: str | None
    prefixes: tuple[Alias, ...]
    additive: bool
    supports_alt_gk: bool
    multiple_calls: bool | None


@dataclass(frozen=True, slots=True)
class UnregistrationRequest(RasPdu):
    call_signal_addresses: tuple[Address, ...]
    aliases: tuple[Alias, ...]
    endpoint_id: str | None
    gatekeeper_id: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class AdmissionRequest(RasPdu):
    endpoint_id: str
    call_type: str
    call_model: str | None
    destination_info: tuple[Alias, ...]
    dest_call_signal_address: Address | None
    dest_extra_call_info: tuple[Alias, ...]
    src_info: tuple[Alias, ...]
    src_call_signal_address: Address | None
    bandwidth: int
    call_reference: int
    conference_id: bytes
    answer_call: bool
    call_id: bytes | None
    gatekeeper_id: str | None
    can_map_alias: bool


@dataclass(frozen=True, slots=True)
class BandwidthRequest(RasPdu):
    endpoint_id: str
    conference_id: bytes
    call_reference: int
    bandwidth: int
    call_id: bytes | None
    answered_call: bool


@dataclass(frozen=True, slots=True)
class DisengageRequest(RasPdu):
    endpoint_id: str
    conference_id: bytes
    call_reference: int
    reason: str
    call_id: bytes | None
    gatekeeper_id: str | None
    answered_call: bool


@dataclass(frozen=True, slots=True)
class LocationRequest(RasPdu):
    endpoint_id: str | None
    destination_info: tuple[Alias, ...]
    reply_address: Address | None
    source_info: tuple[Alias, ...]
    gatekeeper_id: str | None
    hop_count: int | None
    call_id: bytes | None
    can_map_alias: bool


@dataclass(frozen=True, slots=True)
class InfoRequestResponse(RasPdu):
    endpoint_type: str
    endpoint_id: str
    ras_address: Address | None
    call_signal_addresses: tuple[Address, ...]
    aliases: tuple[Alias, ...]
    calls: tuple[tuple[int, bytes | None], ...]   # (call reference, call id)
    need_response: bool
    unsolicited: bool


@dataclass(frozen=True, slots=True)
class ResourcesAvailableIndicate(RasPdu):
    endpoint_id: str
    almost_out_of_resources: bool


@dataclass(frozen=True, slots=True)
class Response(RasPdu):
    """A confirm or reject an endpoint sends back to one of our requests."""

    reason: str | None


def _guid(value: dict | None) -> bytes | None:
    return bytes(value["guid"]) if value else None


def _choice_name(value: tuple | None) -> str | None:
    return value[0] if value else None


def _read_grq(kind: str, v: dict) -> RasPdu:
    return GatekeeperRequest(
        kind, v["requestSeqNum"], v,
        ras_address=transport_from_asn(v["rasAddress"]),
        endpoint_type=endpoint_kind(v["endpointType"]),
        gatekeeper_id=v.get("gatekeeperIdentifier"),
        aliases=aliases_from_asn(v.get("endpointAlias")),
        supports_alt_gk="supportsAltGK" in v,
    )


def _read_rrq(kind: str, v: dict) -> RasPdu:
    return RegistrationRequest(
        kind, v["requestSeqNum"], v,
        discovery_complete=v["discoveryComplete"],
        call_signal_addresses=transports_from_asn(v["callSignalAddress"]),
        ras_addresses=transports_from_asn(v["rasAddress"]),
        endpoint_type=endpoint_kind(v["terminalType"]),
        aliases=aliases_from_asn(v.get("terminalAlias")),
        gatekeeper_id=v.get("gatekeeperIdentifier"),
        vendor=vendor_from_asn(v.get("endpointVendor")),
        time_to_live=v.get("timeToLive"),
        keep_alive=v.get("keepAlive", False),
        endpoint_id=v.get("endpointIdentifier"),
        prefixes=supported_prefixes(v["terminalType"]),
        additive="additiveRegistration" in v,
        supports_alt_gk="supportsAltGK" in v,
        multiple_calls=v.get("multipleCalls"),
    )


def _read_urq(kind: str, v: dict) -> RasPdu:
    return UnregistrationRequest(
        kind, v["requestSeqNum"], v,
        call_signal_addresses=transports_from_asn(v["callSignalAddress"]),
        aliases=aliases_from_asn(v.get("endpointAlias")),
        endpoint_id=v.get("endpointIdentifier"),
        gatekeeper_id=v.get("gatekeeperIdentifier"),
        reason=_choice_name(v.get("reason")),
    )


def _read_arq(kind: str, v: dict) -> RasPdu:
    dest = v.get("destCallSignalAddress")
    src = v.get("srcCallSignalAddress")
    return AdmissionRequest(
        kind, v["requestSeqNum"], v,
        endpoint_id=v["endpointIdentifier"],
        call_type=v["callType"][0],
        call_model=_choice_name(v.get("callModel")),
        destination_info=aliases_from_asn(v.get("destinationInfo")),
        dest_call_signal_address=transport_from_asn(dest) if dest else None,
        dest_extra_call_info=aliases_from_asn(v.get("destExtraCallInfo")),
        src_info=aliases_from_asn(v.get("srcInfo")),
        src_call_signal_address=transport_from_asn(src) if src else None,
        bandwidth=v["bandWidth"],
        call_reference=v["callReferenceValue"],
        conference_id=bytes(v["conferenceID"]),
        answer_call=v["answerCall"],
        call_id=_guid(v.get("callIdentifier")),
        gatekeeper_id=v.get("gatekeeperIdentifier"),
        can_map_alias=v.get("canMapAlias", False),
    )


def _read_brq(kind: str, v: dict) -> RasPdu:
    return BandwidthRequest(
        kind, v["requestSeqNum"], v,
        endpoint_id=v["endpointIdentifier"],
        conference_id=bytes(v["conferenceID"]),
        call_reference=v["callReferenceValue"],
        bandwidth=v["bandWidth"],
        call_id=_guid(v.get("callIdentifier")),
        answered_call=v.get("answeredCall", False),
    )


def _read_drq(kind: str, v: dict) -> RasPdu:
    return DisengageRequest(
        kind, v["requestSeqNum"], v,
        endpoint_id=v["endpointIdentifier"],
        conference_id=bytes(v["conferenceID"]),
        call_reference=v["callReferenceValue"],
        reason=v["disengageReason"][0],
        call_id=_guid(v.get("callIdentifier")),
        gatekeeper_id=v.get("gatekeeperIdentifier"),
        answered_call=v.get("answeredCall", False),
    )


def _read_lrq(kind: str, v: dict) -> RasPdu:
    return LocationRequest(
        kind, v["requestSeqNum"], v,
        endpoint_id=v.get("endpointIdentifier"),
        destination_info=aliases_from_asn(v.get("destinationInfo")),
        reply_address=transport_from_asn(v["replyAddress"]),
        source_info=aliases_from_asn(v.get("sourceInfo")),
        gatekeeper_id=v.get("gatekeeperIdentifier"),
        hop_count=v.get("hopCount"),
        call_id=_guid(v.get("callIdentifier")),
        can_map_alias=v.get("canMapAlias", False),
    )


def _read_irr(kind: str, v: dict) -> RasPdu:
    calls = tuple(
        (info["callReferenceValue"], _guid(info.get("callIdentifier")))
        for info in v.get("perCallInfo", ())
    )
    return InfoRequestResponse(
        kind, v["requestSeqNum"], v,
        endpoint_type=endpoint_kind(v["endpointType"]),
        endpoint_id=v["endpointIdentifier"],
        ras_address=transport_from_asn(v["rasAddress"]),
        call_signal_addresses=transports_from_asn(v["callSignalAddress"]),
        aliases=aliases_from_asn(v.get("endpointAlias")),
        calls=calls,
        need_response=v.get("needResponse", False),
        unsolicited=v.get("unsolicited", False),
    )


def _read_rai(kind: str, v: dict) -> RasPdu:
    return ResourcesAvailableIndicate(
        kind, v["requestSeqNum"], v,
        endpoint_id=v["endpointIdentifier"],
        almost_out_of_resources=v["almostOutOfResources"],
    )


def _read_response(kind: str, v: dict) -> RasPdu:
    return Response(kind, v["requestSeqNum"], v, reason=_choice_name(v.get("rejectReason")))


_READERS = {
    "gatekeeperRequest": _read_grq,
    "registrationRequest": _read_rrq,
    "unregistrationRequest": _read_urq,
    "admissionRequest": _read_arq,
    "bandwidthRequest": _read_brq,
    "disengageRequest": _read_drq,
    "locationRequest": _read_lrq,
    "infoRequestResponse": _read_irr,
    "resourcesAvailableIndicate": _read_rai,
    "unregistrationConfirm": _read_response,
    "unregistrationReject": _read_response,
    "disengageConfirm": _read_response,
    "disengageReject": _read_response,
    "gatekeeperConfirm": _read_response,
    "gatekeeperReject": _read_response,
    "registrationConfirm": _read_response,
    "registrationReject": _read_response,
    "admissionConfirm": _read_response,
    "admissionReject": _read_response,
    "bandwidthConfirm": _read_response,
    "bandwidthReject": _read_response,
    "locationConfirm": _read_response,
    "locationReject": _read_response,
    "infoRequestAck": _read_response,
    "infoRequestNak": _read_response,
}


def read(message: tuple[str, Any]) -> RasPdu:
    """Turn a decoded ``(kind, value)`` into its typed form.

    Kinds without a reader (nonStandardMessage, unknown extensions, ...)
    become a plain :class:`RasPdu`; its ``seq`` is 0 when the message has no
    readable requestSeqNum.  Raises DecodeError for values no real encoder
    produces (a requestSeqNum out of range).  Any alias, transport address or
    other CHOICE of a shape not modelled here (an unknown extension
    alternative, a non-IP address) reads as opaque or absent, not as an
    error, so the request still gets its answer.
    """
    kind, value = message
    reader = _READERS.get(kind)
    try:
        if reader is not None:
            pdu = reader(kind, value)
            # PER writes 1..65535 in 16 bits as seq - 1, so a peer can send
            # "65536", which no answer could carry.
            if not 1 <= pdu.seq <= 65535:
                raise DecodeError(f"requestSeqNum out of range: {pdu.seq}", kind)
            return pdu
        seq = value.get("requestSeqNum", 0) if isinstance(value, dict) else 0
        return RasPdu(kind, seq if isinstance(seq, int) else 0, value)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
        raise DecodeError(f"unusable field ({error})", kind) from None


def parse(data: bytes) -> RasPdu:
    """Decode a RAS datagram and read it into its typed form."""
    return read(codec.decode_ras(data))


# ---------------------------------------------------------------------------
# Reject reasons
# ---------------------------------------------------------------------------

#: Reject type -> ASN.1 type of its reason CHOICE.
REASON_TYPES = {
    "gatekeeperReject": "GatekeeperRejectReason",
    "registrationReject": "RegistrationRejectReason",
    "unregistrationReject": "UnregRejectReason",
    "unregistrationRequest": "UnregRequestReason",
    "admissionReject": "AdmissionRejectReason",
    "bandwidthReject": "BandRejectReason",
    "locationReject": "LocationRejectReason",
    "disengageRequest": "DisengageReason",
    "disengageReject": "DisengageRejectReason",
    "infoRequestNak": "InfoRequestNakReason",
}


def reasons(kind: str) -> tuple[str, ...]:
    """Every reason the standard defines for a reject (or URQ/DRQ) kind."""
    root, extension = codec.choice_alternatives(REASON_TYPES[kind])
    return root + extension


def _reason(kind: str, reason: str, value: Any = None) -> tuple:
    type_name = REASON_TYPES[kind]
    if reason not in reasons(kind):
        raise EncodeError(f"{reason!r} is not a reason of {type_name}", kind)
    if reason in codec.null_alternatives(type_name):
        return (reason, None)
    if value is None:
        raise EncodeError(f"reason {reason!r} needs a value", kind)
    return (reason, value)


# ---------------------------------------------------------------------------
# What the gatekeeper sends, typed
# ---------------------------------------------------------------------------
#
# The controller answers with these immutable values (NamedTuples: the
# cheapest immutable record to build, which matters on the keepalive and ARQ
# paths); only ``to_asn`` (called by :func:`encode`) turns one into the
# codec's form.  Reasons are checked there.  ``with_seq`` gives the same
# message under another sequence number.


def _optional(fields: dict, name: str, value: Any) -> None:
    if value is not None:
        fields[name] = value


class AlternateGk(NamedTuple):
    """One alternate gatekeeper (H.225.0 AlternateGK), as ``[Gatekeeper::Main]
    AlternateGKs`` names it: ``ip;port;needToRegister;priority;gkid``."""

    ras_address: Address
    need_to_register: bool = False
    priority: int = 1                 # 0..127, lower is tried first
    gatekeeper_id: str | None = None

    def to_asn(self) -> dict:
        fields: dict = {"rasAddress": transport_to_asn(self.ras_address),
                        "needToRegister": self.need_to_register, "priority": self.priority}
        _optional(fields, "gatekeeperIdentifier", self.gatekeeper_id)
        return fields


def _alternates(fields: dict, alternates: Sequence[AlternateGk]) -> None:
    if alternates:
        fields["alternateGatekeeper"] = [alternate.to_asn() for alternate in alternates]


class AltGkInfo(NamedTuple):
    """H.225.0 AltGKInfo, in a reject that sends the endpoint elsewhere
    (``[Gatekeeper::Main] RedirectGK``): the alternates, and whether the
    endpoint should stay with them (``altGKisPermanent``)."""

    alternates: Sequence[AlternateGk]
    permanent: bool = False

    def to_asn(self) -> dict:
        return {"alternateGatekeeper": [alternate.to_asn() for alternate in self.alternates],
                "altGKisPermanent": self.permanent}


def _alt_gk_info(fields: dict, info: "AltGkInfo | None") -> None:
    # H.225.0 has no empty alternate list to send: no alternates, no altGKInfo.
    if info is not None and info.alternates:
        fields["altGKInfo"] = info.to_asn()


#: GnuGk's H.221 nonStandardIdentifier for "RAS message forwarded to an
#: alternate gatekeeper" (its failover-RAS extension: T.35 country 255,
#: extension 255, manufacturer 4242), carried in the nonStandardData of the
#: RRQs and URQs a gatekeeper forwards to its ``SendTo`` peers.
FAILOVER_T35 = {"t35CountryCode": 255, "t35Extension": 255, "manufacturerCode": 4242}


def failover_marker(data: bytes = b"") -> dict:
    """The nonStandardData that marks a forwarded RAS message."""
    return {"nonStandardIdentifier": ("h221NonStandard", dict(FAILOVER_T35)), "data": data}


def is_failover_marked(value: Any) -> bool:
    """Whether a decoded RRQ/URQ/GRQ value carries GnuGk's failover marker."""
    if not isinstance(value, dict):
        return False
    data = value.get("nonStandardData")
    if not isinstance(data, dict):
        return False
    identifier = data.get("nonStandardIdentifier")
    return (isinstance(identifier, tuple) and len(identifier) == 2
            and identifier[0] == "h221NonStandard" and identifier[1] == FAILOVER_T35)


def failover_endpoint_id(value: Any) -> str | None:
    """The endpoint identifier a forwarded RRQ carries: its endpointIdentifier,
    else the marker's data (where GnuGk copies it)."""
    if not isinstance(value, dict):
        return None
    endpoint_id = value.get("endpointIdentifier")
    if isinstance(endpoint_id, str) and endpoint_id:
        return endpoint_id
    data = value.get("nonStandardData", {}).get("data") if is_failover_marked(value) else None
    if data:
        text = bytes(data).decode("utf-8", "replace").strip("\x00")
        return text[:128] or None
    return None


class Gcf(NamedTuple):
    seq: int
    gatekeeper_id: str | None
    ras_address: Address
    alternates: Sequence[AlternateGk] = ()
    kind = "gatekeeperConfirm"

    def to_asn(self) -> tuple:
        fields = {"requestSeqNum": self.seq, "protocolIdentifier": PROTOCOL_IDENTIFIER,
                  "rasAddress": transport_to_asn(self.ras_address)}
        _optional(fields, "gatekeeperIdentifier", self.gatekeeper_id)
        _alternates(fields, self.alternates)
        return (self.kind, fields)


class Grj(NamedTuple):
    seq: int
    reason: str
    gatekeeper_id: str | None = None
    value: Any = None
    alt_gk_info: AltGkInfo | None = None
    kind = "gatekeeperReject"

    def to_asn(self) -> tuple:
        fields = {"requestSeqNum": self.seq, "protocolIdentifier": PROTOCOL_IDENTIFIER,
                  "rejectReason": _reason(self.kind, self.reason, self.value)}
        _optional(fields, "gatekeeperIdentifier", self.gatekeeper_id)
        _alt_gk_info(fields, self.alt_gk_info)
        return (self.kind, fields)


class Rcf(NamedTuple):
    seq: int
    call_signal_addresses: Sequence[Address]
    endpoint_id: str
    gatekeeper_id: str | None
    aliases: Sequence[Alias] | None = None
    time_to_live: int | None = None
    supports_additive: bool = False
    alternates: Sequence[AlternateGk] = ()
    kind = "registrationConfirm"

    def to_asn(self) -> tuple:
        fields = {
            "requestSeqNum": self.seq,
            "protocolIdentifier": PROTOCOL_IDENTIFIER,
            "callSignalAddress": [transport_to_asn(a) for a in self.call_signal_addresses],
            "endpointIdentifier": self.endpoint_id,
            "willRespondToIRR": False,
            "maintainConnection": False,
        }
        _optional(fields, "gatekeeperIdentifier", self.gatekeeper_id)
        if self.aliases:
            fields["terminalAlias"] = aliases_to_asn(self.aliases)
        _optional(fields, "timeToLive", self.time_to_live)
        if self.supports_additive:
            fields["supportsAdditiveRegistration"] = None
        _alternates(fields, self.alternates)
        return (self.kind, fields)


class Rrj(NamedTuple):
    """RRJ; for ``duplicateAlias`` the value is the aliases already taken."""

    seq: int
    reason: str
    gatekeeper_id: str | None = None
    value: Any = None
    alt_gk_info: AltGkInfo | None = None
    kind = "registrationReject"

    def to_asn(self) -> tuple:
        value = self.value
        if self.reason == "duplicateAlias" and value is not None:
            value = aliases_to_asn(value) if value and isinstance(value[0], Alias) else list(value)
        fields = {"requestSeqNum": self.seq, "protocolIdentifier": PROTOCOL_IDENTIFIER,
                  "rejectReason": _reason(self.kind, self.reason, value)}
        _optional(fields, "gatekeeperIdentifier", self.gatekeeper_id)
        _alt_gk_info(fields, self.alt_gk_info)
        return (self.kind, fields)


class Ucf(NamedTuple):
    seq: int
    kind = "unregistrationConfirm"

    def to_asn(self) -> tuple:
        return (self.kind, {"requestSeqNum": self.seq})


class Urj(NamedTuple):
    seq: int
    reason: str
    value: Any = None
    kind = "unregistrationReject"

    def to_asn(self) -> tuple:
        return (self.kind, {"requestSeqNum": self.seq,
                            "rejectReason": _reason(self.kind, self.reason, self.value)})


class Urq(NamedTuple):
    seq: int
    call_signal_addresses: Sequence[Address]
    endpoint_id: str
    gatekeeper_id: str | None
    reason: str | None = None
    aliases: Sequence[Alias] | None = None
    value: Any = None
    alternates: Sequence[AlternateGk] = ()
    kind = "unregistrationRequest"

    def to_asn(self) -> tuple:
        fields: dict = {
            "requestSeqNum": self.seq,
            "callSignalAddress": [transport_to_asn(a) for a in self.call_signal_addresses],
            "endpointIdentifier": self.endpoint_id,
        }
        if self.aliases:
            fields["endpointAlias"] = aliases_to_asn(self.aliases)
        _optional(fields, "gatekeeperIdentifier", self.gatekeeper_id)
        if self.reason is not None:
            fields["reason"] = _reason(self.kind, self.reason, self.value)
        _alternates(fields, self.alternates)
        return (self.kind, fields)


def _vendor_to_asn(vendor: Vendor | None) -> dict:
    if vendor is None:
        return {"vendor": {"t35CountryCode": 181, "t35Extension": 0, "manufacturerCode": 18}}
    value: dict = {"vendor": {"t35CountryCode": vendor.country, "t35Extension": vendor.extension,
                              "manufacturerCode": vendor.manufacturer}}
    for name, text in (("productId", vendor.product), ("versionId", vendor.version)):
        if text:
            value[name] = text.encode("latin-1", "replace")[:256]
    return value


_DIGITS = frozenset("0123456789#*,")


class ForwardedRrq(NamedTuple):
    """The copy of an endpoint's registration (full, or a keepalive) a
    gatekeeper sends its ``SendTo`` alternates: built from the registration
    as it stands, under the gatekeeper's own requestSeqNum, naming the
    endpointIdentifier the gatekeeper gave, with GnuGk's failover marker
    (whose data is that identifier, as GnuGk puts it)."""

    seq: int
    endpoint_id: str
    call_signal_addresses: Sequence[Address]
    ras_address: Address
    endpoint_type: str
    aliases: Sequence[Alias] = ()
    vendor: Vendor | None = None
    time_to_live: int | None = None
    keep_alive: bool = False
    prefixes: Sequence[str] = ()
    kind = "registrationRequest"

    def to_asn(self) -> tuple:
        terminal = endpoint_type_value(self.endpoint_type)
        digits = [p for p in self.prefixes if p and set(p) <= _DIGITS and len(p) <= 128]
        if digits and self.endpoint_type in ("gateway", "mcu"):
            terminal[self.endpoint_type] = {"protocol": [("voice", {"supportedPrefixes": [
                {"prefix": ("dialledDigits", p)} for p in digits]})]}
        fields: dict = {
            "requestSeqNum": self.seq, "protocolIdentifier": PROTOCOL_IDENTIFIER,
            "discoveryComplete": False,
            "callSignalAddress": [transport_to_asn(a) for a in self.call_signal_addresses],
            "rasAddress": [transport_to_asn(self.ras_address)],
            "terminalType": terminal, "endpointVendor": _vendor_to_asn(self.vendor),
            "nonStandardData": failover_marker(self.endpoint_id.encode("utf-8")),
            "keepAlive": self.keep_alive, "endpointIdentifier": self.endpoint_id,
            "willSupplyUUIEs": False, "maintainConnection": False,
        }
        if self.aliases:
            fields["terminalAlias"] = aliases_to_asn(self.aliases)
        _optional(fields, "timeToLive", self.time_to_live)
        return (self.kind, fields)


class ForwardedUrq(NamedTuple):
    """The copy of an unregistration (the endpoint's URQ, or one of ours)
    for the ``SendTo`` alternates, with GnuGk's failover marker."""

    seq: int
    endpoint_id: str
    call_signal_addresses: Sequence[Address]
    aliases: Sequence[Alias] = ()
    kind = "unregistrationRequest"

    def to_asn(self) -> tuple:
        fields: dict = {
            "requestSeqNum": self.seq,
            "callSignalAddress": [transport_to_asn(a) for a in self.call_signal_addresses],
            "endpointIdentifier": self.endpoint_id,
            "nonStandardData": failover_marker(),
        }
        if self.aliases:
            fields["endpointAlias"] = aliases_to_asn(self.aliases)
        return (self.kind, fields)


_NO_UUIES = {name: False for name in (
    "setup", "callProceeding", "connect", "alerting", "information", "releaseComplete",
    "facility", "progress", "empty", "status", "statusInquiry", "setupAcknowledge", "notify")}


class Acf(NamedTuple):
    seq: int
    bandwidth: int
    dest_call_signal_address: Address
    routed: bool = False
    irr_frequency: int | None = None
    destination_info: Sequence[Alias] | None = None
    destination_type: str | None = None
    kind = "admissionConfirm"

    def to_asn(self) -> tuple:
        fields: dict = {
            "requestSeqNum": self.seq,
            "bandWidth": self.bandwidth,
            "callModel": ("gatekeeperRouted" if self.routed else "direct", None),
            "destCallSignalAddress": transport_to_asn(self.dest_call_signal_address),
            "willRespondToIRR": False,
            "uuiesRequested": dict(_NO_UUIES),
        }
        _optional(fields, "irrFrequency", self.irr_frequency)
        if self.destination_info:
            fields["destinationInfo"] = aliases_to_asn(self.destination_info)
        if self.destination_type is not None:
            fields["destinationType"] = endpoint_type_value(self.destination_type)
        return (self.kind, fields)


class Arj(NamedTuple):
    seq: int
    reason: str
    value: Any = None
    alt_gk_info: AltGkInfo | None = None
    kind = "admissionReject"

    def to_asn(self) -> tuple:
        fields = {"requestSeqNum": self.seq,
                  "rejectReason": _reason(self.kind, self.reason, self.value)}
        _alt_gk_info(fields, self.alt_gk_info)
        return (self.kind, fields)


class Dcf(NamedTuple):
    seq: int
    kind = "disengageConfirm"

    def to_asn(self) -> tuple:
        return (self.kind, {"requestSeqNum": self.seq})


class Drj(NamedTuple):
    seq: int
    reason: str
    value: Any = None
    kind = "disengageReject"

    def to_asn(self) -> tuple:
        return (self.kind, {"requestSeqNum": self.seq,
                            "rejectReason": _reason(self.kind, self.reason, self.value)})


class Drq(NamedTuple):
    seq: int
    endpoint_id: str
    conference_id: bytes
    call_reference: int
    reason: str
    call_id: bytes
    gatekeeper_id: str | None
    answered_call: bool
    kind = "disengageRequest"

    def to_asn(self) -> tuple:
        fields: dict = {
            "requestSeqNum": self.seq,
            "endpointIdentifier": self.endpoint_id,
            "conferenceID": self.conference_id,
            "callReferenceValue": self.call_reference,
            "disengageReason": _reason(self.kind, self.reason),
            "callIdentifier": {"guid": self.call_id},
            "answeredCall": self.answered_call,
        }
        _optional(fields, "gatekeeperIdentifier", self.gatekeeper_id)
        return (self.kind, fields)


class Bcf(NamedTuple):
    seq: int
    bandwidth: int
    kind = "bandwidthConfirm"

    def to_asn(self) -> tuple:
        return (self.kind, {"requestSeqNum": self.seq, "bandWidth": self.bandwidth})


class Brj(NamedTuple):
    seq: int
    reason: str
    allowed_bandwidth: int
    value: Any = None
    kind = "bandwidthReject"

    def to_asn(self) -> tuple:
        return (self.kind, {"requestSeqNum": self.seq,
                            "rejectReason": _reason(self.kind, self.reason, self.value),
                            "allowedBandWidth": self.allowed_bandwidth})


class Lcf(NamedTuple):
    seq: int
    call_signal_address: Address
    ras_address: Address
    destination_info: Sequence[Alias] | None = None
    destination_type: str | None = None
    kind = "locationConfirm"

    def to_asn(self) -> tuple:
        fields: dict = {
            "requestSeqNum": self.seq,
            "callSignalAddress": transport_to_asn(self.call_signal_address),
            "rasAddress": transport_to_asn(self.ras_address),
        }
        if self.destination_info:
            fields["destinationInfo"] = aliases_to_asn(self.destination_info)
        if self.destination_type is not None:
            fields["destinationType"] = endpoint_type_value(self.destination_type)
        return (self.kind, fields)


class Lrj(NamedTuple):
    seq: int
    reason: str
    value: Any = None
    kind = "locationReject"

    def to_asn(self) -> tuple:
        return (self.kind, {"requestSeqNum": self.seq,
                            "rejectReason": _reason(self.kind, self.reason, self.value)})


class Lrq(NamedTuple):
    seq: int
    destination_info: Sequence[Alias]
    reply_address: Address
    gatekeeper_id: str | None = None
    source_info: Sequence[Alias] | None = None
    endpoint_id: str | None = None
    hop_count: int | None = None
    call_id: bytes | None = None
    kind = "locationRequest"

    def to_asn(self) -> tuple:
        fields: dict = {
            "requestSeqNum": self.seq,
            "destinationInfo": aliases_to_asn(self.destination_info),
            "replyAddress": transport_to_asn(self.reply_address),
            "canMapAlias": False,
            "canMapSrcAlias": False,
        }
        _optional(fields, "endpointIdentifier", self.endpoint_id)
        if self.source_info:
            fields["sourceInfo"] = aliases_to_asn(self.source_info)
        _optional(fields, "gatekeeperIdentifier", self.gatekeeper_id)
        _optional(fields, "hopCount", self.hop_count)
        if self.call_id is not None:
            fields["callIdentifier"] = {"guid": self.call_id}
        return (self.kind, fields)


class Irq(NamedTuple):
    seq: int
    call_reference: int = 0
    reply_address: Address | None = None
    call_id: bytes | None = None
    kind = "infoRequest"

    def to_asn(self) -> tuple:
        fields: dict = {"requestSeqNum": self.seq, "callReferenceValue": self.call_reference}
        if self.reply_address is not None:
            fields["replyAddress"] = transport_to_asn(self.reply_address)
        fields["callIdentifier"] = {"guid": self.call_id if self.call_id is not None
                                    else bytes(16)}
        return (self.kind, fields)


class Rip(NamedTuple):
    """RequestInProgress: ask the endpoint to wait ``delay_ms`` for the answer."""

    seq: int
    delay_ms: int
    kind = "requestInProgress"

    def to_asn(self) -> tuple:
        return (self.kind, {"requestSeqNum": self.seq, "delay": self.delay_ms})


class Rac(NamedTuple):
    seq: int
    kind = "resourcesAvailableConfirm"

    def to_asn(self) -> tuple:
        return (self.kind, {"requestSeqNum": self.seq, "protocolIdentifier": PROTOCOL_IDENTIFIER})


class Iack(NamedTuple):
    seq: int
    kind = "infoRequestAck"

    def to_asn(self) -> tuple:
        return (self.kind, {"requestSeqNum": self.seq})


class Inak(NamedTuple):
    seq: int
    reason: str
    value: Any = None
    kind = "infoRequestNak"

    def to_asn(self) -> tuple:
        return (self.kind, {"requestSeqNum": self.seq,
                            "nakReason": _reason(self.kind, self.reason, self.value)})


class Umr(NamedTuple):
    """UnknownMessageResponse; ``message`` is the datagram not understood."""

    seq: int
    message: bytes = b""
    kind = "unknownMessageResponse"

    def to_asn(self) -> tuple:
        seq = self.seq if 1 <= self.seq <= 65535 else 1
        return (self.kind, {"requestSeqNum": seq, "messageNotUnderstood": bytes(self.message)})


#: Every message type above: the gatekeeper's messages, typed.
OUTGOING_TYPES = (Gcf, Grj, Rcf, Rrj, Ucf, Urj, Urq, Acf, Arj, Dcf, Drj, Drq, Bcf, Brj, Lcf, Lrj,
                  Lrq, Irq, Rip, Rac, Iack, Inak, Umr, ForwardedRrq, ForwardedUrq)

#: Any of them (for type hints).
OutgoingMessage = (Gcf | Grj | Rcf | Rrj | Ucf | Urj | Urq | Acf | Arj | Dcf | Drj | Drq | Bcf
                   | Brj | Lcf | Lrj | Lrq | Irq | Rip | Rac | Iack | Inak | Umr | ForwardedRrq
                   | ForwardedUrq)


def _with_seq(self, seq: int):
    """The same message under another sequence number."""
    return self._replace(seq=seq)


for _type in OUTGOING_TYPES:
    _type.with_seq = _with_seq
del _type


def rcf_with_seq(encoded: bytes, seq: int) -> bytes:
    """An encoded RCF with another requestSeqNum.

    In an RCF the sequence number is always the third and fourth octet: the
    RasMessage index (6 bits), the RCF's extension bit and its three
    root-optional bits take 10 bits, and RequestSeqNum (1..65535) is an
    octet-aligned 16-bit field holding ``seq - 1``.
    """
    if not 1 <= seq <= 65535:
        raise EncodeError(f"requestSeqNum out of range: {seq}", "registrationConfirm")
    return encoded[:2] + (seq - 1).to_bytes(2, "big") + encoded[4:]


def encode(message: "OutgoingMessage | tuple") -> bytes:
    """Encode a message: a typed one above, or a value in the codec's form
    (a plain ``(kind, value)`` tuple)."""
    if type(message) is not tuple:
        message = message.to_asn()
    return codec.encode_ras(message)


def kind_of(message: "OutgoingMessage | tuple") -> str:
    """The RasMessage alternative of a message, typed or in the codec's form."""
    return message[0] if type(message) is tuple else message.kind


# ---------------------------------------------------------------------------
# The same messages in the codec's form (tests, tools and FakeEndpoint use these)
# ---------------------------------------------------------------------------


def gcf(seq: int, gatekeeper_id: str | None, ras_address: Address) -> tuple:
    return Gcf(seq, gatekeeper_id, ras_address).to_asn()


def grj(seq: int, reason: str, gatekeeper_id: str | None = None, value: Any = None) -> tuple:
    return Grj(seq, reason, gatekeeper_id, value).to_asn()


def rcf(seq: int, call_signal_addresses: Sequence[Address], endpoint_id: str,
        gatekeeper_id: str | None, aliases: Sequence[Alias] | None = None,
        time_to_live: int | None = None, supports_additive: bool = False) -> tuple:
    return Rcf(seq, call_signal_addresses, endpoint_id, gatekeeper_id, aliases, time_to_live,
               supports_additive).to_asn()


def rrj(seq: int, reason: str, gatekeeper_id: str | None = None, value: Any = None) -> tuple:
    return Rrj(seq, reason, gatekeeper_id, value).to_asn()


def ucf(seq: int) -> tuple:
    return Ucf(seq).to_asn()


def urj(seq: int, reason: str, value: Any = None) -> tuple:
    return Urj(seq, reason, value).to_asn()


def urq(seq: int, call_signal_addresses: Sequence[Address], endpoint_id: str,
        gatekeeper_id: str | None, reason: str | None = None,
        aliases: Sequence[Alias] | None = None, value: Any = None) -> tuple:
    return Urq(seq, call_signal_addresses, endpoint_id, gatekeeper_id, reason, aliases,
               value).to_asn()


def acf(seq: int, bandwidth: int, dest_call_signal_address: Address, routed: bool = False,
        irr_frequency: int | None = None, destination_info: Sequence[Alias] | None = None,
        destination_type: str | None = None) -> tuple:
    return Acf(seq, bandwidth, dest_call_signal_address, routed, irr_frequency,
               destination_info, destination_type).to_asn()


def arj(seq: int, reason: str, value: Any = None) -> tuple:
    return Arj(seq, reason, value).to_asn()


def dcf(seq: int) -> tuple:
    return Dcf(seq).to_asn()


def drj(seq: int, reason: str, value: Any = None) -> tuple:
    return Drj(seq, reason, value).to_asn()


def drq(seq: int, endpoint_id: str, conference_id: bytes, call_reference: int, reason: str,
        call_id: bytes, gatekeeper_id: str | None, answered_call: bool) -> tuple:
    return Drq(seq, endpoint_id, conference_id, call_reference, reason, call_id, gatekeeper_id,
               answered_call).to_asn()


def bcf(seq: int, bandwidth: int) -> tuple:
    return Bcf(seq, bandwidth).to_asn()


def brj(seq: int, reason: str, allowed_bandwidth: int, value: Any = None) -> tuple:
    return Brj(seq, reason, allowed_bandwidth, value).to_asn()


def lcf(seq: int, call_signal_address: Address, ras_address: Address,
        destination_info: Sequence[Alias] | None = None,
        destination_type: str | None = None) -> tuple:
    return Lcf(seq, call_signal_address, ras_address, destination_info,
               destination_type).to_asn()


def lrj(seq: int, reason: str, value: Any = None) -> tuple:
    return Lrj(seq, reason, value).to_asn()


def lrq(seq: int, destination_info: Sequence[Alias], reply_address: Address,
        gatekeeper_id: str | None = None, source_info: Sequence[Alias] | None = None,
        endpoint_id: str | None = None, hop_count: int | None = None,
        call_id: bytes | None = None) -> tuple:
    return Lrq(seq, destination_info, reply_address, gatekeeper_id, source_info, endpoint_id,
               hop_count, call_id).to_asn()


def irq(seq: int, call_reference: int = 0, reply_address: Address | None = None,
        call_id: bytes | None = None) -> tuple:
    return Irq(seq, call_reference, reply_address, call_id).to_asn()


def rip(seq: int, delay_ms: int) -> tuple:
    """RequestInProgress: ask the endpoint to wait ``delay_ms`` for the answer."""
    return Rip(seq, delay_ms).to_asn()


def rac(seq: int) -> tuple:
    return Rac(seq).to_asn()


def iack(seq: int) -> tuple:
    return Iack(seq).to_asn()


def unknown_message_response(seq: int, message: bytes = b"") -> tuple:
    """UnknownMessageResponse; ``message`` is the datagram not understood."""
    return Umr(seq, message).to_asn()


# ---------------------------------------------------------------------------
# Neighbour gatekeepers: the LRQ we send, the LCF we get back
# ---------------------------------------------------------------------------


class NeighborLrq(NamedTuple):
    """An LRQ to a neighbour gatekeeper (:mod:`gatekeeper.core.neighbors`):
    :class:`Lrq` with ``canMapAlias`` settable (GnuGk sets it for a Cisco
    neighbour and for LRQs made from a Setup)."""

    seq: int
    destination_info: Sequence[Alias]
    reply_address: Address
    gatekeeper_id: str | None = None
    source_info: Sequence[Alias] | None = None
    hop_count: int | None = None
    can_map_alias: bool = False
    call_id: bytes | None = None
    kind = "locationRequest"

    def to_asn(self) -> tuple:
        kind, fields = Lrq(self.seq, self.destination_info, self.reply_address,
                           self.gatekeeper_id, self.source_info, None, self.hop_count,
                           self.call_id).to_asn()
        fields["canMapAlias"] = bool(self.can_map_alias)
        return (kind, fields)


NeighborLrq.with_seq = _with_seq


@dataclass(frozen=True, slots=True)
class LocationConfirm:
    """What an LCF says: where the located endpoint takes calls, its RAS
    address, and the aliases it is known by (when the neighbour mapped them)."""

    seq: int
    call_signal_address: Address | None
    ras_address: Address | None
    destination_info: tuple[Alias, ...]


def read_location_confirm(pdu: RasPdu) -> LocationConfirm:
    """The fields of a received locationConfirm (a :class:`Response` from
    :func:`read`); DecodeError for anything else or an unusable value."""
    if pdu.kind != "locationConfirm" or not isinstance(pdu.raw, dict):
        raise DecodeError(f"not a locationConfirm: {pdu.kind}", pdu.kind)
    value = pdu.raw
    try:
        return LocationConfirm(pdu.seq, transport_from_asn(value.get("callSignalAddress")),
                               transport_from_asn(value.get("rasAddress")),
                               aliases_from_asn(value.get("destinationInfo")))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
        raise DecodeError(f"unusable field ({error})", pdu.kind) from None
