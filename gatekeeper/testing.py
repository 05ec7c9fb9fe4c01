"""Test doubles for the gatekeeper's users and its own tests.

:class:`FakeEndpoint` is a scriptable RAS endpoint: it builds the requests a
real H.323 endpoint sends (discover, register, keep alive, ask admission,
disengage, unregister), reads the gatekeeper's answers into its state, and
answers the gatekeeper's own requests (URQ, DRQ, IRQ).  It moves bytes only,
so the same object drives a controller in a unit test, a real socket in an
integration test, or a benchmark.  :class:`FakeDatagramTransport` records
what a datagram protocol writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from twisted.internet.address import IPv4Address

from gatekeeper.h225 import codec, ras
from gatekeeper.h225.ras import Address, Alias

VENDOR = {"vendor": {"t35CountryCode": 181, "t35Extension": 0, "manufacturerCode": 18},
          "productId": b"gatekeeper.testing", "versionId": b"1"}


@dataclass
class FakeCall:
    call_id: bytes
    conference_id: bytes
    crv: int
    answered: bool = False


class FakeEndpoint:
    """One simulated endpoint; ``aliases`` in GnuGk's text form or as Alias."""

    def __init__(self, aliases: list[str | Alias] | tuple = (),
                 signal_address: Address = ("127.0.0.1", 1720),
                 ras_address: Address = ("127.0.0.1", 1719),
                 gatekeeper_id: str | None = None, time_to_live: int | None = None,
                 endpoint_type: str = "terminal", prefixes: tuple[str, ...] = ()) -> None:
        self.aliases = tuple(a if isinstance(a, Alias) else ras.parse_alias(a) for a in aliases)
        self.signal_address = signal_address
        self.ras_address = ras_address
        self.gatekeeper_id = gatekeeper_id
        self.time_to_live = time_to_live
        self.endpoint_type = endpoint_type
        self.prefixes = prefixes
        self.endpoint_id: str | None = None
        self.granted_ttl: int | None = None
        self.calls: dict[bytes, FakeCall] = {}
        self.answers: list[ras.RasPdu] = []
        self._seq = 0
        self._crv = 100

    # -- requests ---------------------------------------------------------

    def next_seq(self) -> int:
        self._seq = self._seq % 65535 + 1
        return self._seq

    def _terminal_type(self) -> dict:
        value = ras.endpoint_type_value(self.endpoint_type, VENDOR)
        if self.prefixes and self.endpoint_type in ("gateway", "mcu"):
            value[self.endpoint_type] = {"protocol": [("voice", {"supportedPrefixes": [
                {"prefix": ("dialledDigits", p)} for p in self.prefixes]})]}
        return value

    def grq_message(self) -> tuple:
        fields = {
            "requestSeqNum": self.next_seq(), "protocolIdentifier": ras.PROTOCOL_IDENTIFIER,
            "rasAddress": ras.transport_to_asn(self.ras_address),
            "endpointType": self._terminal_type(),
        }
        if self.gatekeeper_id:
            fields["gatekeeperIdentifier"] = self.gatekeeper_id
        if self.aliases:
            fields["endpointAlias"] = ras.aliases_to_asn(self.aliases)
        return ("gatekeeperRequest", fields)

    def grq(self) -> bytes:
        return codec.encode_ras(self.grq_message())

    def rrq_message(self, keepalive: bool = False, lightweight: bool = False,
                    discovery_complete: bool = True) -> tuple:
        seq = self.next_seq()
        if lightweight:
            fields = {
                "requestSeqNum": seq, "protocolIdentifier": ras.PROTOCOL_IDENTIFIER,
                "discoveryComplete": False, "callSignalAddress": [], "rasAddress": [],
                "terminalType": self._terminal_type(), "endpointVendor": VENDOR,
                "keepAlive": True, "endpointIdentifier": self.endpoint_id or "",
                "willSupplyUUIEs": False, "maintainConnection": False,
            }
            if self.gatekeeper_id:
                fields["gatekeeperIdentifier"] = self.gatekeeper_id
            if self.time_to_live:
                fields["timeToLive"] = self.time_to_live
            return ("registrationRequest", fields)
        fields = {
            "requestSeqNum": seq, "protocolIdentifier": ras.PROTOCOL_IDENTIFIER,
            "discoveryComplete": discovery_complete,
            "callSignalAddress": [ras.transport_to_asn(self.signal_address)],
            "rasAddress": [ras.transport_to_asn(self.ras_address)],
            "terminalType": self._terminal_type(), "endpointVendor": VENDOR,
            "keepAlive": keepalive, "willSupplyUUIEs": False, "maintainConnection": False,
        }
        if self.aliases:
            fields["terminalAlias"] = ras.aliases_to_asn(self.aliases)
        if self.gatekeeper_id:
            fields["gatekeeperIdentifier"] = self.gatekeeper_id
        if self.time_to_live:
            fields["timeToLive"] = self.time_to_live
        if keepalive and self.endpoint_id:
            fields["endpointIdentifier"] = self.endpoint_id
        return ("registrationRequest", fields)

    def rrq(self, keepalive: bool = False, lightweight: bool = False,
            discovery_complete: bool = True) -> bytes:
        return codec.encode_ras(self.rrq_message(keepalive, lightweight, discovery_complete))

    def urq(self) -> bytes:
        fields = {"requestSeqNum": self.next_seq(),
                  "callSignalAddress": [ras.transport_to_asn(self.signal_address)]}
        if self.aliases:
            fields["endpointAlias"] = ras.aliases_to_asn(self.aliases)
        if self.endpoint_id:
            fields["endpointIdentifier"] = self.endpoint_id
        return codec.encode_ras(("unregistrationRequest", fields))

    def arq(self, destination: list[str | Alias] | tuple = (), answer_call: bool = False,
            call_id: bytes | None = None, conference_id: bytes | None = None,
            dest_signal_address: Address | None = None, bandwidth: int = 1280,
            crv: int | None = None, source: tuple[Alias, ...] | None = None) -> bytes:
        """ARQ for a new call (or, with ``answer_call``, to answer ``call_id``)."""
        if crv is None:
            self._crv = self._crv % 32767 + 1
            crv = self._crv
        call_id = call_id or ras.new_guid()
        conference_id = conference_id or call_id
        self.calls[call_id] = FakeCall(call_id, conference_id, crv, answer_call)
        dest = tuple(a if isinstance(a, Alias) else ras.parse_alias(a) for a in destination)
        fields = {
            "requestSeqNum": self.next_seq(), "callType": ("pointToPoint", None),
            "callModel": ("direct", None), "endpointIdentifier": self.endpoint_id or "",
            "srcInfo": ras.aliases_to_asn(source if source is not None else self.aliases)
            or [("h323-ID", "anonymous")],
            "bandWidth": bandwidth, "callReferenceValue": crv, "conferenceID": conference_id,
            "activeMC": False, "answerCall": answer_call, "canMapAlias": True,
            "callIdentifier": {"guid": call_id}, "willSupplyUUIEs": False,
            "canMapSrcAlias": False,
        }
        if dest:
            fields["destinationInfo"] = ras.aliases_to_asn(dest)
        if answer_call:
            fields["destCallSignalAddress"] = ras.transport_to_asn(self.signal_address)
        elif dest_signal_address is not None:
            fields["destCallSignalAddress"] = ras.transport_to_asn(dest_signal_address)
        if self.gatekeeper_id:
            fields["gatekeeperIdentifier"] = self.gatekeeper_id
        return codec.encode_ras(("admissionRequest", fields))

    def drq(self, call_id: bytes, reason: str = "normalDrop") -> bytes:
        call = self.calls[call_id]
        fields = {
            "requestSeqNum": self.next_seq(), "endpointIdentifier": self.endpoint_id or "",
            "conferenceID": call.conference_id, "callReferenceValue": call.crv,
            "disengageReason": (reason, None), "callIdentifier": {"guid": call_id},
            "answeredCall": call.answered,
        }
        return codec.encode_ras(("disengageRequest", fields))

    def brq(self, call_id: bytes, bandwidth: int) -> bytes:
        call = self.calls[call_id]
        fields = {
            "requestSeqNum": self.next_seq(), "endpointIdentifier": self.endpoint_id or "",
            "conferenceID": call.conference_id, "callReferenceValue": call.crv,
            "bandWidth": bandwidth, "callIdentifier": {"guid": call_id},
            "answeredCall": call.answered,
        }
        return codec.encode_ras(("bandwidthRequest", fields))

    def lrq(self, destination: list[str | Alias]) -> bytes:
        dest = [a if isinstance(a, Alias) else ras.parse_alias(a) for a in destination]
        return codec.encode_ras(ras.lrq(self.next_seq(), dest, self.ras_address))

    def irr(self, seq: int | None = None, need_response: bool = False,
            unsolicited: bool = True) -> bytes:
        fields = {
            "requestSeqNum": seq or self.next_seq(), "endpointType": self._terminal_type(),
            "endpointIdentifier": self.endpoint_id or "",
            "rasAddress": ras.transport_to_asn(self.ras_address),
            "callSignalAddress": [ras.transport_to_asn(self.signal_address)],
            "needResponse": need_response, "unsolicited": unsolicited,
        }
        if self.aliases:
            fields["endpointAlias"] = ras.aliases_to_asn(self.aliases)
        return codec.encode_ras(("infoRequestResponse", fields))

    def rai(self, almost_out_of_resources: bool = True) -> bytes:
        fields = {
            "requestSeqNum": self.next_seq(), "protocolIdentifier": ras.PROTOCOL_IDENTIFIER,
            "endpointIdentifier": self.endpoint_id or "", "protocols": [("voice", {
                "supportedPrefixes": []})],
            "almostOutOfResources": almost_out_of_resources,
        }
        return codec.encode_ras(("resourcesAvailableIndicate", fields))

    # -- answers ----------------------------------------------------------

    def read(self, data: bytes) -> ras.RasPdu:
        """Read an answer from the gatekeeper and update what the endpoint knows."""
        pdu = ras.parse(data)
        self.answers.append(pdu)
        value = pdu.raw
        if pdu.kind == "gatekeeperConfirm" and not self.gatekeeper_id:
            self.gatekeeper_id = value.get("gatekeeperIdentifier")
        elif pdu.kind == "registrationConfirm":
            self.endpoint_id = value["endpointIdentifier"]
            self.granted_ttl = value.get("timeToLive")
        elif pdu.kind == "unregistrationConfirm":
            self.endpoint_id = None
        return pdu

    def answer(self, data: bytes) -> bytes | None:
        """Answer a request the gatekeeper sent (URQ, DRQ, IRQ) as a real endpoint would."""
        pdu = ras.parse(data)
        self.answers.append(pdu)
        if pdu.kind == "unregistrationRequest":
            self.endpoint_id = None
            return codec.encode_ras(ras.ucf(pdu.seq))
        if pdu.kind == "disengageRequest":
            self.calls.pop(pdu.raw.get("callIdentifier", {}).get("guid", b""), None)
            return codec.encode_ras(ras.dcf(pdu.seq))
        if pdu.kind == "infoRequest":
            return self.irr(pdu.seq, unsolicited=False)
        return None


@dataclass
class FakeDatagramTransport:
    """Records what a DatagramProtocol writes; ``host`` is what getHost() says."""

    host: Address = ("127.0.0.1", 1719)
    written: list[tuple[bytes, Address]] = field(default_factory=list)

    def write(self, data: bytes, address: tuple) -> None:
        self.written.append((bytes(data), (address[0], address[1])))

    def getHost(self) -> IPv4Address:
        return IPv4Address("UDP", self.host[0], self.host[1])

    def take(self) -> list[tuple[bytes, Address]]:
        """Everything written since the last take()."""
        written, self.written = self.written, []
        return written
