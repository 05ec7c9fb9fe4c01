"""Test doubles for the gatekeeper's users and its own tests.

:class:`FakeEndpoint` is a scriptable RAS endpoint: it builds the requests a
real H.323 endpoint sends (discover, register, keep alive, ask admission,
disengage, unregister), reads the gatekeeper's answers into its state, and
answers the gatekeeper's own requests (URQ, DRQ, IRQ).  It moves bytes only,
so the same object drives a controller in a unit test, a real socket in an
integration test, or a benchmark.  :class:`FakeDatagramTransport` records
what a datagram protocol writes.

The call signalling side (gatekeeper-routed calls) is made of Twisted
protocols over TPKT-framed Q.931: :class:`CalleeFactory` listens where the
endpoint's RRQ says (:meth:`FakeEndpoint.listen_signalling`) and answers each
Setup as its :class:`CalleeScript` says (CallProceeding, Alerting, Connect
after chosen delays, or a refusal with ReleaseComplete); a
:class:`CallerLeg` (:meth:`FakeEndpoint.place_call`) opens TCP to the call
signalling address of the ACF and sends a Setup carrying the ACF's call.
Both ends record what they receive (:class:`Received`) and say what is wrong
with it (``problems()``).  :class:`RasClient` carries an endpoint's RAS over
UDP on a reactor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import ClientFactory, DatagramProtocol, Protocol, ServerFactory
from twisted.python.failure import Failure

from gatekeeper.errors import DecodeError
from gatekeeper.h225 import callsignal, codec, q931, ras, tpkt
from gatekeeper.h225.callsignal import SignalMessage
from gatekeeper.h225.q931 import BearerCapability, CalledPartyNumber, Display, Q931Message, UserUser
from gatekeeper.h225.ras import Address, Alias

VENDOR = {"vendor": {"t35CountryCode": 181, "t35Extension": 0, "manufacturerCode": 18},
          "productId": b"gatekeeper.testing", "versionId": b"1"}


@dataclass
class FakeCall:
    call_id: bytes
    conference_id: bytes
    crv: int
    answered: bool = False
    destination: tuple[Alias, ...] = ()
    #: From the ACF: where to send the Setup (the gatekeeper's call
    #: signalling address in routed mode), and the call model it named.
    signal_address: Address | None = None
    call_model: str | None = None
    admitted: bool | None = None        # None: no ACF/ARJ read yet


class FakeEndpoint:
    """One simulated endpoint; ``aliases`` in GnuGk's text form or as Alias."""

    def __init__(self, aliases: list[str | Alias] | tuple = (),
                 signal_address: Address = ("127.0.0.1", 1720),
                 ras_address: Address = ("127.0.0.1", 1719),
                 gatekeeper_id: str | None = None, time_to_live: int | None = None,
                 endpoint_type: str = "terminal", prefixes: tuple[str, ...] = (),
                 supports_alt_gk: bool = False) -> None:
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
        self._arq_seq: dict[int, bytes] = {}     # ARQ sequence number -> call id
        self.callee: CalleeFactory | None = None
        #: Say supportsAltGK in GRQ/RRQ; the alternates the gatekeeper named
        #: (GCF, RCF, URQ) are kept in ``alternates`` as (ras address, need
        #: to register, priority, gatekeeper id), best priority first.
        self.supports_alt_gk = supports_alt_gk
        self.alternates: list[tuple[Address, bool, int, str | None]] = []

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
        if self.supports_alt_gk:
            fields["supportsAltGK"] = None
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
            if self.supports_alt_gk:
                fields["supportsAltGK"] = None
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
        if self.supports_alt_gk:
            fields["supportsAltGK"] = None
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
        dest = tuple(a if isinstance(a, Alias) else ras.parse_alias(a) for a in destination)
        self.calls[call_id] = FakeCall(call_id, conference_id, crv, answer_call, dest)
        seq = self.next_seq()
        self._arq_seq[seq] = call_id
        fields = {
            "requestSeqNum": seq, "callType": ("pointToPoint", None),
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

    # -- call signalling (routed calls) -----------------------------------

    def listen_signalling(self, reactor: Any, script: CalleeScript | None = None,
                          port: int = 0, decode: bool = True,
                          on_setup: Callable[[CalleeLeg], Any] | None = None) -> CalleeFactory:
        """Listen for call signalling on this endpoint's host (port 0: any
        free port) and make the bound address the one its RRQs carry; each
        Setup is answered as ``script`` says.  Call before :meth:`rrq`."""
        factory = CalleeFactory(self, reactor, script or CalleeScript(), decode, on_setup)
        factory.port = reactor.listenTCP(port, factory, backlog=1024,
                                         interface=self.signal_address[0])
        self.signal_address = (self.signal_address[0], factory.port.getHost().port)
        self.callee = factory
        return factory

    def setup(self, call_id: bytes, fast_start: list[bytes] | None = None,
              destination: tuple[Alias, ...] | None = None,
              h245_tunnelling: bool = False) -> SignalMessage:
        """The Setup of a call this endpoint asked admission for: the ACF's
        call identifier, conference id and address, the ARQ's destination."""
        call = self.calls[call_id]
        return setup_message(call.crv, call.call_id, call.conference_id,
                             destination if destination is not None else call.destination,
                             self.aliases, self.signal_address, call.signal_address,
                             fast_start=fast_start, h245_tunnelling=h245_tunnelling,
                             endpoint_type=self._terminal_type())

    def place_call(self, reactor: Any, call_id: bytes, fast_start: list[bytes] | None = None,
                   decode: bool = True, setup: SignalMessage | bytes | None = None,
                   timeout: float = 10.0, bind: bool = True) -> CallerLeg:
        """Open TCP to the call signalling address the ACF named and send the
        Setup (``setup``: another message or TPKT payload instead); with
        ``bind`` the connection is made from the endpoint's signalling host."""
        call = self.calls[call_id]
        if call.signal_address is None:
            raise ValueError("no ACF with a call signalling address read for this call")
        if setup is None:
            setup = self.setup(call_id, fast_start)
        factory = CallerFactory(self, reactor, call, setup, decode)
        host, port = call.signal_address
        reactor.connectTCP(host, port, factory, timeout=timeout,
                           bindAddress=(self.signal_address[0], 0) if bind else None)
        return factory.leg

    # -- answers ----------------------------------------------------------

    def read(self, data: bytes) -> ras.RasPdu:
        """Read an answer from the gatekeeper and update what the endpoint knows."""
        pdu = ras.parse(data)
        self.answers.append(pdu)
        value = pdu.raw
        if pdu.kind in ("gatekeeperConfirm", "registrationConfirm") and \
                "alternateGatekeeper" in value:
            self._keep_alternates(value["alternateGatekeeper"])
        if pdu.kind == "gatekeeperConfirm" and not self.gatekeeper_id:
            self.gatekeeper_id = value.get("gatekeeperIdentifier")
        elif pdu.kind == "registrationConfirm":
            self.endpoint_id = value["endpointIdentifier"]
            self.granted_ttl = value.get("timeToLive")
        elif pdu.kind == "unregistrationConfirm":
            self.endpoint_id = None
        elif pdu.kind in ("admissionConfirm", "admissionReject"):
            call = self.calls.get(self._arq_seq.pop(pdu.seq, b""))
            if call is not None:
                call.admitted = pdu.kind == "admissionConfirm"
                if call.admitted:
                    call.signal_address = ras.transport_from_asn(
                        value.get("destCallSignalAddress"))
                    model = value.get("callModel")
                    call.call_model = model[0] if isinstance(model, tuple) else None
        return pdu

    def _keep_alternates(self, alternates: list) -> None:
        found = [(ras.transport_from_asn(a["rasAddress"]), bool(a["needToRegister"]),
                  int(a["priority"]), a.get("gatekeeperIdentifier")) for a in alternates]
        self.alternates = sorted((a for a in found if a[0] is not None), key=lambda a: a[2])

    def answer(self, data: bytes) -> bytes | None:
        """Answer a request the gatekeeper sent (URQ, DRQ, IRQ) as a real endpoint would."""
        pdu = ras.parse(data)
        self.answers.append(pdu)
        if pdu.kind == "unregistrationRequest":
            self.endpoint_id = None
            if "alternateGatekeeper" in pdu.raw:
                self._keep_alternates(pdu.raw["alternateGatekeeper"])
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


# -- call signalling ----------------------------------------------------------

#: The answers a callee can send to a Setup, by UUIE body name.
ANSWER_TYPES = {"callProceeding": q931.CALL_PROCEEDING, "alerting": q931.ALERTING,
                "connect": q931.CONNECT, "progress": q931.PROGRESS}


def _with_uuie(message_type: int, crv: int, from_destination: bool, body: str, content: Any,
               ies: list | tuple = (), tunnelling: bool = False, **pdu: Any) -> SignalMessage:
    uuie = {"h323-uu-pdu": {"h323-message-body": (body, content), "h245Tunnelling": tunnelling,
                            **pdu}}
    message = Q931Message(message_type, crv, from_destination, list(ies))
    message.set_ie(UserUser(codec.encode_uuie(uuie)))
    return SignalMessage(message, uuie)


def setup_message(crv: int, call_id: bytes, conference_id: bytes,
                  destination: tuple[Alias, ...] | list, source: tuple[Alias, ...] | list,
                  source_signal_address: Address | None, dest_signal_address: Address | None,
                  fast_start: list[bytes] | None = None, h245_tunnelling: bool = False,
                  endpoint_type: dict | None = None,
                  h245_address: Address | None = None) -> SignalMessage:
    """A caller's Setup (H.225.0 7.3.1) with a Bearer capability, a Display
    and, for a dialled-digits destination, a Called party number."""
    body: dict = {
        "protocolIdentifier": ras.PROTOCOL_IDENTIFIER,
        "sourceInfo": endpoint_type or ras.endpoint_type_value("terminal", VENDOR),
        "activeMC": False, "conferenceID": conference_id,
        "conferenceGoal": ("create", None), "callType": ("pointToPoint", None),
        "callIdentifier": {"guid": call_id}, "mediaWaitForConnect": False,
        "canOverlapSend": False, "multipleCalls": False, "maintainConnection": False,
    }
    if source:
        body["sourceAddress"] = ras.aliases_to_asn(tuple(source))
    if destination:
        body["destinationAddress"] = ras.aliases_to_asn(tuple(destination))
    if dest_signal_address is not None:
        body["destCallSignalAddress"] = ras.transport_to_asn(dest_signal_address)
    if source_signal_address is not None:
        body["sourceCallSignalAddress"] = ras.transport_to_asn(source_signal_address)
    if fast_start:
        body["fastStart"] = list(fast_start)
    if h245_address is not None:
        body["h245Address"] = ras.transport_to_asn(h245_address)
    ies = [BearerCapability(q931.ITC_UNRESTRICTED_DIGITAL, q931.RATE_MULTIRATE,
                            q931.L1_H221_H242, rate_multiplier=6).to_ie(),
           Display("gatekeeper.testing").to_ie()]
    digits = next((a.digits for a in destination if getattr(a, "digits", None)), None)
    if digits:
        ies.append(CalledPartyNumber(digits, q931.TON_UNKNOWN, q931.NPI_ISDN).to_ie())
    return _with_uuie(q931.SETUP, crv, False, "setup", body, ies, h245_tunnelling)


def answer_message(kind: str, crv: int, call_id: bytes | None, conference_id: bytes | None = None,
                   endpoint_type: dict | None = None, fast_start: list[bytes] | None = None,
                   h245_address: Address | None = None,
                   h245_tunnelling: bool = False) -> SignalMessage:
    """A callee's CallProceeding, Alerting, Connect or Progress
    (``kind``: a key of :data:`ANSWER_TYPES`)."""
    body: dict = {"protocolIdentifier": ras.PROTOCOL_IDENTIFIER,
                  "destinationInfo": endpoint_type or ras.endpoint_type_value("terminal", VENDOR),
                  "callIdentifier": {"guid": call_id or bytes(16)},
                  "multipleCalls": False, "maintainConnection": False}
    if kind == "connect":
        body["conferenceID"] = conference_id or call_id or bytes(16)
    if fast_start:
        body["fastStart"] = list(fast_start)
    if h245_address is not None:
        body["h245Address"] = ras.transport_to_asn(h245_address)
    return _with_uuie(ANSWER_TYPES[kind], crv, True, kind, body, (), h245_tunnelling)


def information_message(crv: int, from_destination: bool, call_id: bytes | None) -> SignalMessage:
    """An Information message (H.225.0 7.3.7): what a party sends through an
    established call without changing its state."""
    body = {"protocolIdentifier": ras.PROTOCOL_IDENTIFIER,
            "callIdentifier": {"guid": call_id or bytes(16)}}
    return _with_uuie(q931.INFORMATION, crv, from_destination, "information", body)


def facility_message(crv: int, from_destination: bool, call_id: bytes | None,
                     conference_id: bytes | None = None,
                     reason: str = "undefinedReason") -> SignalMessage:
    """A Facility with an H.225.0 reason (``undefinedReason`` by default)."""
    body = {"protocolIdentifier": ras.PROTOCOL_IDENTIFIER, "reason": (reason, None),
            "callIdentifier": {"guid": call_id or bytes(16)},
            "multipleCalls": False, "maintainConnection": False}
    if conference_id is not None:
        body["conferenceID"] = conference_id
    return _with_uuie(q931.FACILITY, crv, from_destination, "facility", body)


def peek_header(payload: bytes) -> tuple[int, int, bool]:
    """``(message type, call reference, from-destination flag)`` of a Q.931
    message without decoding the rest (cheap enough for benchmarks)."""
    if len(payload) < 3 or payload[0] != q931.PROTOCOL_DISCRIMINATOR_Q931:
        raise DecodeError("not a Q.931 message", "q931")
    length = payload[1] & 0x0F
    if len(payload) < 3 + length:
        raise DecodeError("truncated Q.931 header", "q931")
    crv_bytes = payload[2:2 + length]
    flag = bool(crv_bytes[0] & 0x80) if length else False
    crv = int.from_bytes(bytes([crv_bytes[0] & 0x7F]) + crv_bytes[1:], "big") if length else 0
    return payload[2 + length], crv, flag


@dataclass(slots=True)
class Received:
    """One message a fake leg received: its header always, the decoded
    message when the leg decodes (``decode=True``)."""

    message_type: int
    crv: int
    from_destination: bool
    at: float                              # the leg's clock, seconds
    message: SignalMessage | None = None

    @property
    def name(self) -> str:
        return q931.message_type_name(self.message_type)

    @property
    def call_id(self) -> bytes | None:
        return self.message.call_id if self.message is not None else None

    @property
    def cause(self) -> int | None:
        return self.message.cause if self.message is not None else None


class SignalLeg(Protocol):
    """One call signalling TCP connection of a fake endpoint (TPKT, Q.931).

    ``received`` lists every message in order; :meth:`wait_for` gives a
    Deferred for the n-th message of a type (already received or still to
    come); ``opened`` fires once connected, ``lost`` when the connection is
    gone.  Bad input is recorded in ``errors`` and closes the connection;
    nothing raises out of ``dataReceived``.
    """

    #: Which side of the call this leg is on: the flag its own messages carry.
    from_destination = False
    #: Message types decoded in full even when the leg does not decode.
    always_decode: frozenset[int] = frozenset()

    def __init__(self, clock: IReactorTime, decode: bool = True) -> None:
        self.clock = clock
        self.decode = decode
        self.deframer = tpkt.TpktDeframer()
        self.received: list[Received] = []
        self.errors: list[str] = []
        self.sent: list[int] = []              # message types written
        self.opened = Deferred()
        self.lost = Deferred()
        self.is_connected = False
        self.is_lost = False
        self._waiters: list[tuple[int, int, Deferred]] = []

    # -- twisted ---------------------------------------------------------

    def connectionMade(self) -> None:
        self.is_connected = True
        setter = getattr(self.transport, "setTcpNoDelay", None)
        if setter is not None:
            try:
                setter(True)
            except OSError:
                pass
        self.leg_connected()
        self.opened.callback(self)

    def dataReceived(self, data: bytes) -> None:
        try:
            payloads = self.deframer.feed(data)
        except DecodeError as error:
            self._bad(f"tpkt: {error}")
            return
        for payload in payloads:
            try:
                kind, crv, flag = peek_header(payload)
                if self.decode or kind in self.always_decode:
                    message = callsignal.parse(payload)
                    entry = Received(message.message_type, message.crv,
                                     message.q931.from_destination, self.clock.seconds(), message)
                else:
                    entry = Received(kind, crv, flag, self.clock.seconds())
            except DecodeError as error:
                self._bad(f"q931: {error}")
                return
            self.received.append(entry)
            try:
                self.message_received(entry)
            except Exception:           # a test double must not hide its own bugs either
                self.errors.append("handler: " + Failure().getErrorMessage())
            self._fire_waiters(entry)
            if self.is_lost:
                return

    def connectionLost(self, reason: Failure = None) -> None:
        self.is_connected = False
        self.is_lost = True
        for _, _, waiter in self._waiters:
            waiter.errback(Failure(ConnectionClosed(
                f"connection lost before the awaited message; received "
                f"{[r.name for r in self.received]}")))
        self._waiters.clear()
        self.leg_lost()
        self.lost.callback(self)

    # -- hooks -----------------------------------------------------------

    def leg_connected(self) -> None:
        """The TCP connection is up."""

    def message_received(self, entry: Received) -> None:
        """One message arrived (recorded already)."""

    def leg_lost(self) -> None:
        """The TCP connection is gone."""

    # -- use ---------------------------------------------------------------

    def send(self, message: SignalMessage | bytes) -> None:
        """Write one message (or a raw TPKT payload) if the leg is open."""
        if not self.is_connected or self.transport is None:
            return
        payload = message if isinstance(message, bytes) else callsignal.serialize(message)
        self.sent.append(payload[2 + (payload[1] & 0x0F)] if len(payload) > 2 else -1)
        self.transport.write(tpkt.frame(payload))

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (no TPKT header added): bad input."""
        if self.is_connected and self.transport is not None:
            self.transport.write(data)

    def types(self) -> list[int]:
        """The message types received, in order."""
        return [r.message_type for r in self.received]

    def names(self) -> list[str]:
        return [r.name for r in self.received]

    def first(self, message_type: int) -> Received | None:
        return next((r for r in self.received if r.message_type == message_type), None)

    def wait_for(self, message_type: int, nth: int = 1) -> Deferred:
        """A Deferred that fires with the ``nth`` message of this type (one
        already received fires at once); it fails if the connection is lost
        first."""
        seen = [r for r in self.received if r.message_type == message_type]
        if len(seen) >= nth:
            return succeed(seen[nth - 1])
        if self.is_lost:
            return fail(ConnectionClosed(f"connection closed; received {self.names()}"))
        waiter: Deferred = Deferred()
        self._waiters.append((message_type, nth, waiter))
        return waiter

    def _fire_waiters(self, entry: Received) -> None:
        if not self._waiters:
            return
        count = sum(1 for r in self.received if r.message_type == entry.message_type)
        ready = [w for w in self._waiters if w[0] == entry.message_type and w[1] == count]
        for item in ready:
            self._waiters.remove(item)
            item[2].callback(entry)

    def close(self) -> None:
        if self.transport is not None and self.is_connected:
            self.transport.loseConnection()

    def _bad(self, what: str) -> None:
        self.errors.append(what)
        if self.transport is not None:
            self.transport.loseConnection()

    def _check_common(self, crv: int | None, call_id: bytes | None) -> list[str]:
        """What is wrong with what this leg received, for its call: another
        call reference, the wrong direction flag, another call identifier."""
        problems = list(self.errors)
        for r in self.received:
            if crv is not None and r.crv != crv:
                problems.append(f"{r.name}: call reference {r.crv}, expected {crv}")
            if r.from_destination == self.from_destination:
                problems.append(f"{r.name}: call reference flag says it comes from "
                                f"{'the destination' if r.from_destination else 'the origin'}")
            if call_id is not None and r.message is not None and r.call_id is not None \
                    and r.call_id != call_id:
                problems.append(f"{r.name}: call identifier {r.call_id.hex()}, "
                                f"expected {call_id.hex()}")
        return problems


class ConnectionClosed(Exception):
    """A fake leg's connection closed before what was awaited arrived."""


@dataclass(frozen=True)
class CalleeScript:
    """How a fake callee answers a Setup.

    ``answers`` are sent in order, each ``delays[i]`` seconds after the one
    before (the first after the Setup, or after ``on_setup``'s Deferred);
    ``refuse``: answer with a ReleaseComplete with this Q.850 cause (and
    ``refuse_reason``) instead; ``release_after``: seconds after the last
    answer, the callee hangs up with ReleaseComplete (None: it waits).
    """

    answers: tuple[str, ...] = ("callProceeding", "alerting", "connect")
    delays: tuple[float, ...] | float = 0.0
    refuse: int | None = None
    refuse_reason: str | None = None
    release_after: float | None = None
    release_cause: int = q931.CAUSE_NORMAL_CALL_CLEARING
    fast_start: tuple[bytes, ...] = ()          # put in the first answer
    h245_address: Address | None = None         # put in Connect

    def delay(self, index: int) -> float:
        if isinstance(self.delays, (int, float)):
            return float(self.delays)
        return float(self.delays[index]) if index < len(self.delays) else 0.0


class CalleeLeg(SignalLeg):
    """A call signalling connection a fake callee accepted (from the
    gatekeeper, in routed mode): it answers the Setup as its script says."""

    from_destination = True
    always_decode = frozenset((q931.SETUP,))    # its call identifier is needed

    def __init__(self, factory: CalleeFactory) -> None:
        super().__init__(factory.clock, factory.decode)
        self.factory = factory
        self.script = factory.script
        self.setup: Received | None = None
        self.crv: int | None = None
        self.call_id: bytes | None = None
        self.released_by_me = False
        self._timers: list[Any] = []

    @property
    def peer(self) -> Address:
        peer = self.transport.getPeer()
        return (peer.host, peer.port)

    def message_received(self, entry: Received) -> None:
        if entry.message_type == q931.SETUP and self.setup is None:
            self.setup = entry
            self.crv = entry.crv
            self.call_id = entry.call_id
            if self.call_id is not None:
                self.factory.by_call_id[self.call_id] = self
            self.factory.setups += 1
            if self.factory.on_setup is not None:
                waited = maybeDeferred(self.factory.on_setup, self)
                waited.addCallbacks(lambda _: self._answer(),
                                    lambda failure: self.errors.append(
                                        "on_setup: " + failure.getErrorMessage()))
            else:
                self._answer()
        elif entry.message_type == q931.RELEASE_COMPLETE:
            self.factory.releases += 1

    def _answer(self) -> None:
        script = self.script
        if script.refuse is not None:
            self.release(script.refuse, script.refuse_reason)
            return
        at = 0.0
        for index, kind in enumerate(script.answers):
            at += script.delay(index)
            self._later(at, self._send_answer, index, kind)
        if script.release_after is not None:
            self._later(at + script.release_after, self.release, script.release_cause)

    def _later(self, seconds: float, function: Callable, *args: Any) -> None:
        if seconds <= 0:
            function(*args)
        else:
            self._timers.append(self.clock.callLater(seconds, function, *args))

    def _send_answer(self, index: int, kind: str) -> None:
        if self.is_lost or self.crv is None:
            return
        if self.factory.templates is not None:
            self.send(self.factory.templates.answer(kind, self.crv, self.call_id))
        else:
            self.send(answer_message(
                kind, self.crv, self.call_id, self.call_id,
                fast_start=list(self.script.fast_start) if index == 0 else None,
                h245_address=self.script.h245_address if kind == "connect" else None))
        if kind == "connect":
            self.factory.connected += 1

    def release(self, cause: int = q931.CAUSE_NORMAL_CALL_CLEARING,
                reason: str | None = None) -> None:
        """Hang up: ReleaseComplete, then close the connection."""
        if self.is_lost or self.crv is None:
            return
        self.released_by_me = True
        self.send(callsignal.release_complete(self.crv, True, cause, self.call_id, reason))
        self.close()

    def leg_lost(self) -> None:
        for timer in self._timers:
            if timer.active():
                timer.cancel()
        self._timers.clear()
        self.factory.legs_lost += 1

    def problems(self, call_id: bytes | None = None, source: Address | None = None,
                 destination: Address | None = None) -> list[str]:
        """What is wrong with what the gatekeeper sent on this leg: no Setup
        first, call references other than the Setup's, a wrong direction flag,
        another call identifier (``call_id``: the one expected), and, when
        given, a Setup whose sourceCallSignalAddress / destCallSignalAddress
        is not ``source`` / ``destination``."""
        if self.setup is None or not self.received or self.received[0] is not self.setup:
            return [f"the first message was not a Setup: {self.names()}"] + self.errors
        problems = self._check_common(self.crv, call_id or self.call_id)
        message = self.setup.message
        if message is not None:
            for name, expected in (("sourceCallSignalAddress", source),
                                   ("destCallSignalAddress", destination)):
                if expected is not None and message.address(name) != expected:
                    problems.append(f"Setup {name} {message.address(name)}, expected {expected}")
        return problems


class CalleeFactory(ServerFactory):
    """A fake endpoint's call signalling listener: one :class:`CalleeLeg`
    per connection, all recorded (``legs``, ``by_call_id``)."""

    noisy = False

    def __init__(self, endpoint: FakeEndpoint, clock: IReactorTime, script: CalleeScript,
                 decode: bool = True, on_setup: Callable[[CalleeLeg], Any] | None = None) -> None:
        self.endpoint = endpoint
        self.clock = clock
        self.script = script
        self.decode = decode
        self.on_setup = on_setup
        self.templates: MessageTemplates | None = None
        self.port: Any = None
        self.legs: list[CalleeLeg] = []
        self.by_call_id: dict[bytes, CalleeLeg] = {}
        self.setups = 0
        self.connected = 0
        self.releases = 0
        self.legs_lost = 0
        self._new_leg: list[Deferred] = []

    def buildProtocol(self, addr: Any) -> CalleeLeg:
        leg = CalleeLeg(self)
        self.legs.append(leg)
        waiting, self._new_leg = self._new_leg, []
        for waiter in waiting:
            waiter.callback(leg)
        return leg

    def next_leg(self) -> Deferred:
        """Fires with the next leg accepted."""
        waiter: Deferred = Deferred()
        self._new_leg.append(waiter)
        return waiter

    def stop(self) -> Deferred:
        """Stop listening and close every leg."""
        for leg in self.legs:
            if leg.is_connected:
                leg.transport.abortConnection()
        return maybeDeferred(self.port.stopListening) if self.port is not None else succeed(None)


class CallerLeg(SignalLeg):
    """A fake caller's connection to the call signalling address of its ACF:
    it sends its Setup once connected."""

    from_destination = False

    def __init__(self, factory: CallerFactory) -> None:
        super().__init__(factory.clock, factory.decode)
        self.factory = factory
        self.call = factory.call
        self.setup = factory.setup
        self.crv = factory.call.crv
        self.call_id = factory.call.call_id
        self.released_by_me = False

    def leg_connected(self) -> None:
        self.send(self.setup)

    def release(self, cause: int = q931.CAUSE_NORMAL_CALL_CLEARING,
                reason: str | None = None) -> None:
        """Hang up: ReleaseComplete, then close the connection."""
        if self.is_lost:
            return
        self.released_by_me = True
        self.send(callsignal.release_complete(self.crv, False, cause, self.call_id, reason))
        self.close()

    def information(self) -> None:
        """Send an Information message through the call."""
        self.send(information_message(self.crv, False, self.call_id))

    def problems(self) -> list[str]:
        """What is wrong with what the gatekeeper sent back: another call
        reference than the Setup's, a wrong flag, another call identifier."""
        return self._check_common(self.crv, self.call_id)


class CallerFactory(ClientFactory):
    """Opens one caller leg; a failed connection fails ``leg.opened``."""

    noisy = False

    def __init__(self, endpoint: FakeEndpoint, clock: IReactorTime, call: FakeCall,
                 setup: SignalMessage | bytes, decode: bool = True) -> None:
        self.endpoint = endpoint
        self.clock = clock
        self.call = call
        self.setup = setup
        self.decode = decode
        self.leg = CallerLeg(self)

    def buildProtocol(self, addr: Any) -> CallerLeg:
        return self.leg

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
        self.leg.errors.append("connect: " + reason.getErrorMessage())
        self.leg.opened.errback(reason)
        self.leg.connectionLost(reason)     # what waits for a message fails, ``lost`` fires


class MessageTemplates:
    """Pre-encoded answers for load generators: each kind is encoded once
    with a placeholder call identifier, then only the call reference and the
    16 octets of the identifier change (the aligned-PER octet string is
    octet-aligned, so they sit in the encoding as they are).  The result is
    the same bytes :func:`answer_message` gives."""

    PLACEHOLDER = bytes.fromhex("5a17e3c1a9d24f0b8e6c71d03b94a2f5")

    def __init__(self, kinds: tuple[str, ...] = ("callProceeding", "alerting", "connect")) -> None:
        self._payloads: dict[str, bytes] = {}
        for kind in kinds:
            message = answer_message(kind, 0x1234, self.PLACEHOLDER, self.PLACEHOLDER)
            payload = q931.encode(message.q931)
            self._payloads[kind] = payload

    def answer(self, kind: str, crv: int, call_id: bytes | None) -> bytes:
        payload = self._payloads[kind]
        # Header: discriminator, CRV length 2, CRV with the flag (destination), type.
        head = bytes((payload[0], 2, 0x80 | (crv >> 8) & 0x7F, crv & 0xFF))
        body = payload[4:]
        if call_id is not None:
            body = body.replace(self.PLACEHOLDER, call_id)
        return head + body


class RasClient(DatagramProtocol):
    """One fake endpoint's RAS over UDP on a reactor: :meth:`request` sends
    a request and fires with the answer to its sequence number; requests from
    the gatekeeper (URQ, DRQ, IRQ) are answered as the endpoint answers them
    and recorded in ``gatekeeper_requests``."""

    noisy = False

    def __init__(self, endpoint: FakeEndpoint, gatekeeper: Address, clock: IReactorTime,
                 timeout: float = 5.0, retries: int = 0) -> None:
        self.endpoint = endpoint
        self.gatekeeper = gatekeeper
        self.clock = clock
        self.timeout = timeout
        #: Times a request is sent again, ``timeout`` apart, before it fails
        #: (as endpoints retransmit RAS requests, H.225.0 7.2).
        self.retries = retries
        self.retransmitted = 0
        self.gatekeeper_requests: list[ras.RasPdu] = []
        self._waiting: dict[int, tuple[Deferred, Any]] = {}

    @classmethod
    def listen(cls, reactor: Any, endpoint: FakeEndpoint, gatekeeper: Address,
               timeout: float = 5.0, retries: int = 0) -> RasClient:
        """Bind a UDP port on the endpoint's RAS host; its RAS address becomes it."""
        client = cls(endpoint, gatekeeper, reactor, timeout, retries)
        port = reactor.listenUDP(endpoint.ras_address[1], client,
                                 interface=endpoint.ras_address[0])
        endpoint.ras_address = (endpoint.ras_address[0], port.getHost().port)
        return client

    def request(self, data: bytes) -> Deferred:
        """Send a request the endpoint built; fires with the answer (RasPdu)."""
        seq = self.endpoint._seq        # the sequence number the builder just used
        waiter: Deferred = Deferred()
        timer = self.clock.callLater(self.timeout, self._timed_out, seq, data, self.retries)
        self._waiting[seq] = (waiter, timer)
        self.transport.write(data, self.gatekeeper)
        return waiter

    def fail_over(self) -> Deferred:
        """The gatekeeper stopped answering: register (full RRQ) with the
        alternates it named (GCF/RCF alternateGatekeeper), best priority
        first, as endpoints that support alternate gatekeepers do (H.225.0
        7.2.5). Fires with the first RCF/RRJ; fails with TimeoutError if
        none answers."""
        return self._next_alternate(list(self.endpoint.alternates))

    def _next_alternate(self, alternates: list) -> Deferred:
        if not alternates:
            return fail(TimeoutError("no alternate gatekeeper answered"))
        address, _need_to_register, _priority, gatekeeper_id = alternates.pop(0)
        self.gatekeeper = address
        self.endpoint.endpoint_id = None
        self.endpoint.gatekeeper_id = gatekeeper_id
        answer = self.request(self.endpoint.rrq())

        def next_one(failure: Failure) -> Deferred:
            failure.trap(TimeoutError)
            return self._next_alternate(alternates)

        return answer.addErrback(next_one)

    def _timed_out(self, seq: int, data: bytes, retries: int) -> None:
        if seq not in self._waiting:
            return
        if retries > 0:
            waiter, _ = self._waiting[seq]
            self._waiting[seq] = (waiter, self.clock.callLater(
                self.timeout, self._timed_out, seq, data, retries - 1))
            self.retransmitted += 1
            self.transport.write(data, self.gatekeeper)
            return
        waiter, _ = self._waiting.pop(seq)
        waiter.errback(Failure(TimeoutError(f"no RAS answer to request {seq}")))

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        try:
            kind = codec.decode_ras(data)[0]
        except DecodeError:
            return
        if kind in ("unregistrationRequest", "disengageRequest", "infoRequest"):
            answer = self.endpoint.answer(data)
            self.gatekeeper_requests.append(self.endpoint.answers[-1])
            if answer is not None:
                self.transport.write(answer, addr)
            return
        pdu = self.endpoint.read(data)
        if pdu.kind == "requestInProgress":
            return
        waiter, timer = self._waiting.pop(pdu.seq, (None, None))
        if waiter is not None:
            if timer.active():
                timer.cancel()
            waiter.callback(pdu)
