"""Call signalling messages as the relay sees them: a Q.931 message and the
H.225.0 ``H323-UserInformation`` of its User-user IE, decoded together.

Pure functions over bytes, like the rest of the codec: :func:`parse` takes one
TPKT payload, :func:`serialize` gives it back.  The User-user IE is encoded
again only when the relay changed the decoded value (``SignalMessage.touch``),
so a message the gatekeeper only passes on keeps the caller's exact bytes,
fast start elements, tunnelled H.245 and extensions we do not model included.

Only :class:`~gatekeeper.errors.DecodeError` leaves :func:`parse`; only
:class:`~gatekeeper.errors.EncodeError` leaves the builders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gatekeeper.errors import DecodeError, EncodeError
from gatekeeper.h225 import codec, q931
from gatekeeper.h225.q931 import Cause, Q931Message, UserUser
from gatekeeper.h225.ras import PROTOCOL_IDENTIFIER, Address, transport_from_asn, transport_to_asn

#: The UUIE body each Q.931 message type carries (H.225.0 section 7.3).
BODY_FOR_TYPE = {
    q931.SETUP: "setup",
    q931.CALL_PROCEEDING: "callProceeding",
    q931.ALERTING: "alerting",
    q931.CONNECT: "connect",
    q931.RELEASE_COMPLETE: "releaseComplete",
    q931.FACILITY: "facility",
    q931.PROGRESS: "progress",
    q931.INFORMATION: "information",
    q931.STATUS: "status",
    q931.STATUS_ENQUIRY: "statusInquiry",
    q931.SETUP_ACK: "setupAcknowledge",
    q931.NOTIFY: "notify",
}

#: H.225.0 Table 5: the Q.850 cause that goes with each ReleaseCompleteReason
#: (used when a ReleaseComplete has a reason and no Cause IE, and back).
CAUSE_FOR_REASON = {
    "noBandwidth": q931.CAUSE_NO_CIRCUIT_AVAILABLE,
    "gatekeeperResources": q931.CAUSE_RESOURCES_UNAVAILABLE,
    "unreachableDestination": q931.CAUSE_NO_ROUTE_TO_DESTINATION,
    "destinationRejection": q931.CAUSE_NORMAL_CALL_CLEARING,
    "invalidRevision": q931.CAUSE_INCOMPATIBLE_DESTINATION,
    "noPermission": q931.CAUSE_PROTOCOL_ERROR,
    "unreachableGatekeeper": q931.CAUSE_NETWORK_OUT_OF_ORDER,
    "gatewayResources": q931.CAUSE_SWITCHING_EQUIPMENT_CONGESTION,
    "badFormatAddress": q931.CAUSE_INVALID_NUMBER_FORMAT,
    "adaptiveBusy": q931.CAUSE_TEMPORARY_FAILURE,
    "inConf": q931.CAUSE_USER_BUSY,
    "undefinedReason": q931.CAUSE_NORMAL_UNSPECIFIED,
    "facilityCallDeflection": q931.CAUSE_NORMAL_CALL_CLEARING,
    "securityDenied": q931.CAUSE_NORMAL_UNSPECIFIED,
    "calledPartyNotRegistered": q931.CAUSE_SUBSCRIBER_ABSENT,
    "callerNotRegistered": q931.CAUSE_NORMAL_UNSPECIFIED,
    "newConnectionNeeded": q931.CAUSE_RESOURCES_UNAVAILABLE,
}

#: UUIE bodies that may carry an h245Address (H.225.0 section 7.3-7.4).
H245_BODIES = frozenset(("setup", "callProceeding", "alerting", "connect", "facility",
                         "progress"))


@dataclass(slots=True)
class SignalMessage:
    """One call signalling message: the Q.931 message (its IEs as on the
    wire) and the decoded H323-UserInformation (None: no User-user IE)."""

    q931: Q931Message
    uuie: dict | None = None
    _dirty: bool = field(default=False, repr=False)

    @property
    def message_type(self) -> int:
        return self.q931.message_type

    @property
    def name(self) -> str:
        return self.q931.name

    @property
    def crv(self) -> int:
        return self.q931.call_reference

    @property
    def body_kind(self) -> str | None:
        """``setup``, ``connect``, ... (None without a UUIE)."""
        if self.uuie is None:
            return None
        return self.uuie["h323-uu-pdu"]["h323-message-body"][0]

    @property
    def body(self) -> dict | None:
        """The UUIE body's fields (None for ``empty`` or without a UUIE)."""
        if self.uuie is None:
            return None
        content = self.uuie["h323-uu-pdu"]["h323-message-body"][1]
        return content if isinstance(content, dict) else None

    @property
    def pdu(self) -> dict | None:
        """The H323-UU-PDU (h245Tunnelling, h245Control, ...)."""
        return None if self.uuie is None else self.uuie["h323-uu-pdu"]

    @property
    def call_id(self) -> bytes | None:
        body = self.body
        if body is None:
            return None
        value = body.get("callIdentifier")
        return value.get("guid") if isinstance(value, dict) else None

    def address(self, name: str) -> Address | None:
        """A transport address field of the body (None when absent or not IP)."""
        body = self.body
        value = body.get(name) if body is not None else None
        if value is None:
            return None
        try:
            return transport_from_asn(value)
        except (KeyError, TypeError, ValueError, OSError):
            return None

    def set_address(self, name: str, address: Address | None) -> None:
        """Set (or, with None, remove) a transport address field of the body."""
        body = self.body
        if body is None:
            return
        if address is None:
            if body.pop(name, None) is not None:
                self._dirty = True
            return
        body[name] = transport_to_asn(address)
        self._dirty = True

    def touch(self) -> None:
        """Say that the UUIE value was changed: it is encoded again."""
        self._dirty = True

    @property
    def cause(self) -> int | None:
        """The Q.850 cause: the Cause IE, else the ReleaseComplete reason's
        (H.225.0 Table 5); None when neither says."""
        try:
            cause = self.q931.cause
        except DecodeError:
            cause = None
        if cause is not None:
            return cause.value
        body = self.body
        reason = body.get("reason") if body is not None else None
        if isinstance(reason, tuple):
            return CAUSE_FOR_REASON.get(reason[0])
        return None


def parse(payload: bytes) -> SignalMessage:
    """Decode one TPKT payload (Q.931, then its User-user IE as H.225.0)."""
    message = q931.decode(payload)
    uu = message.get_ie(q931.IE_USER_USER)
    if uu is None:
        return SignalMessage(message)
    user_user = UserUser.from_content(uu.content)
    if user_user.protocol_discriminator != q931.UUIE_PROTOCOL_X208:
        raise DecodeError(f"user-user protocol discriminator {user_user.protocol_discriminator}",
                          "uuie")
    value = codec.decode_uuie(user_user.data)
    body = value.get("h323-uu-pdu", {}).get("h323-message-body") if isinstance(value, dict) else None
    if not isinstance(body, tuple) or not isinstance(body[0], str):
        raise DecodeError("no message body", "uuie")
    return SignalMessage(message, value)


def serialize(message: SignalMessage) -> bytes:
    """The TPKT payload of a message (its UUIE encoded again if it changed)."""
    if message._dirty and message.uuie is not None:
        data = codec.encode_uuie(message.uuie)
        message.q931.set_ie(UserUser(data))
        message._dirty = False
    return q931.encode(message.q931)


def _uuie(body: str, content: Any, tunnelling: bool = False) -> dict:
    return {"h323-uu-pdu": {"h323-message-body": (body, content), "h245Tunnelling": tunnelling}}


def release_complete(crv: int, from_destination: bool, cause: int,
                     call_id: bytes | None = None, reason: str | None = None) -> SignalMessage:
    """A ReleaseComplete of the gatekeeper's own, with a Cause IE and (when
    given) the H.225.0 reason."""
    if not 1 <= cause <= 127:
        raise EncodeError(f"cause {cause} out of range", "releaseComplete")
    body: dict = {"protocolIdentifier": PROTOCOL_IDENTIFIER,
                  "callIdentifier": {"guid": call_id or bytes(16)}}
    if reason is not None:
        body["reason"] = (reason, None)
    ies = [Cause(cause, q931.LOCATION_PRIVATE_LOCAL).to_ie(),
           UserUser(codec.encode_uuie(_uuie("releaseComplete", body))).to_ie()]
    return SignalMessage(Q931Message(q931.RELEASE_COMPLETE, crv, from_destination, ies))


def call_proceeding(crv: int, call_id: bytes | None, destination_info: dict,
                    tunnelling: bool = False) -> SignalMessage:
    """A CallProceeding of the gatekeeper's own (``SendProceeding``,
    ``GenerateCallProceeding``).

    It is a provisional response (H.225.0 ``provisionalRespToH245Tunnelling``):
    the caller must not read the callee's choice on H.245 tunnelling from it;
    ``tunnelling`` echoes what the caller asked for, for endpoints that
    predate the field."""
    body: dict = {"protocolIdentifier": PROTOCOL_IDENTIFIER, "destinationInfo": destination_info,
                  "multipleCalls": False, "maintainConnection": False,
                  "callIdentifier": {"guid": call_id or bytes(16)}}
    uuie = _uuie("callProceeding", body, tunnelling)
    uuie["h323-uu-pdu"]["provisionalRespToH245Tunnelling"] = None
    ies = [UserUser(codec.encode_uuie(uuie)).to_ie()]
    return SignalMessage(Q931Message(q931.CALL_PROCEEDING, crv, True, ies))


def forwarded_elements(message: SignalMessage) -> SignalMessage | None:
    """The callee's CallProceeding, once the gatekeeper has sent its own, as
    the Facility (reason ``forwardedElements``) that carries on what the caller
    still needs from it: fast start elements, the H.245 address, tunnelled
    H.245.  None when it carries none of them (it is then dropped)."""
    body = message.body or {}
    pdu = message.pdu or {}
    keep = {name: body[name] for name in ("fastStart", "h245Address", "destinationInfo",
                                          "fastConnectRefused", "featureSet")
            if name in body}
    if not any(name in keep for name in ("fastStart", "h245Address", "fastConnectRefused")) \
            and not pdu.get("h245Control"):
        return None
    facility: dict = {"protocolIdentifier": body.get("protocolIdentifier", PROTOCOL_IDENTIFIER),
                      "reason": ("forwardedElements", None),
                      "callIdentifier": body.get("callIdentifier", {"guid": bytes(16)}),
                      "multipleCalls": False, "maintainConnection": False, **keep}
    uu_pdu = dict(pdu)
    uu_pdu["h323-message-body"] = ("facility", facility)
    uu_pdu.pop("provisionalRespToH245Tunnelling", None)
    result = SignalMessage(Q931Message(q931.FACILITY, message.crv, message.q931.from_destination,
                                       [ie for codeset, ie in message.q931.iter_ies()
                                        if codeset == 0
                                        and ie.id in (q931.IE_DISPLAY, q931.IE_USER_USER)]),
                           {**message.uuie, "h323-uu-pdu": uu_pdu})
    result.q931.call_reference_length = message.q931.call_reference_length
    result.touch()
    return result


def facility_forward(crv: int, from_destination: bool, call_id: bytes | None,
                     conference_id: bytes, aliases: list[tuple],
                     address: Address | None = None) -> SignalMessage:
    """A Facility with reason callForwarded: "call this alias (or this
    address) instead" (what GnuGk's TransferCall sends to the party that stays)."""
    body: dict = {"protocolIdentifier": PROTOCOL_IDENTIFIER,
                  "conferenceID": conference_id, "reason": ("callForwarded", None),
                  "multipleCalls": False, "maintainConnection": False}
    if aliases:
        body["alternativeAliasAddress"] = aliases
    body["callIdentifier"] = {"guid": call_id or bytes(16)}
    if address is not None:
        body["alternativeAddress"] = transport_to_asn(address)
    ies = [UserUser(codec.encode_uuie(_uuie("facility", body))).to_ie()]
    return SignalMessage(Q931Message(q931.FACILITY, crv, from_destination, ies))


def setup(crv: int, call_id: bytes, conference_id: bytes, source_aliases: list[tuple],
          destination_aliases: list[tuple], destination: Address,
          source: Address | None, source_info: dict, tunnelling: bool = True,
          display: str | None = None, digits: str | None = None) -> SignalMessage:
    """A Setup of the gatekeeper's own (MakeCall's pseudo endpoint calling
    the source party): no fastStart, no H.245 address; the called party
    opens H.245 (tunnelled) if it wants to."""
    body: dict = {"protocolIdentifier": PROTOCOL_IDENTIFIER, "sourceInfo": source_info,
                  "activeMC": False, "conferenceID": conference_id,
                  "conferenceGoal": ("create", None), "callType": ("pointToPoint", None),
                  "callIdentifier": {"guid": call_id}, "mediaWaitForConnect": False,
                  "canOverlapSend": False, "multipleCalls": False, "maintainConnection": False,
                  "destCallSignalAddress": transport_to_asn(destination)}
    if source_aliases:
        body["sourceAddress"] = source_aliases
    if destination_aliases:
        body["destinationAddress"] = destination_aliases
    if source is not None:
        body["sourceCallSignalAddress"] = transport_to_asn(source)
    ies = [q931.BearerCapability(q931.ITC_UNRESTRICTED_DIGITAL, q931.RATE_MULTIRATE,
                                 q931.L1_H221_H242, rate_multiplier=6).to_ie()]
    if display:
        ies.append(q931.Display(display).to_ie())
    if digits:
        ies.append(q931.CalledPartyNumber(digits, q931.TON_UNKNOWN, q931.NPI_ISDN).to_ie())
    ies.append(UserUser(codec.encode_uuie(_uuie("setup", body, tunnelling))).to_ie())
    return SignalMessage(Q931Message(q931.SETUP, crv, False, ies))
