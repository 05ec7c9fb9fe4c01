"""Q.931 messages as H.225.0 uses them for call signalling (carried in TPKT over TCP 1720).

A message is: protocol discriminator (0x08), call reference (a length octet, then 0-2 octets whose
first bit is the call reference flag), message type, then information elements (IEs).

:class:`Q931Message` keeps every IE as raw bytes (:class:`InformationElement`), in order, so
:func:`decode` then :func:`encode` gives back the same bytes, including IEs this module does not
know, single-octet IEs and codeset shifts. The typed IE classes (:class:`BearerCapability`,
:class:`Cause`, :class:`CalledPartyNumber`, ...) build and parse the content of one IE; the
message's accessors parse on demand, so a malformed IE only fails when someone asks for it.

Wire rules used here (Q.931 section 4, H.225.0 section 7):

* A single-octet IE has bit 8 of its identifier set and no length (shift, more data, sending
  complete, congestion level, repeat indicator); its value lives in the identifier octet.
* Every other IE is identifier, one length octet, content; except User-user (0x7E) in codeset 0,
  whose length is two octets, big-endian (H.225.0).
* A locking shift (1001 0ccc) moves every following IE to codeset ccc; a non-locking shift
  (1001 1ccc) moves only the next IE. Typed accessors look at codeset 0 only.

Typed parsers are lenient about bits that carry no information (spare bits, and extension bits
Q.931 fixes to 1) and build canonical encodings, so ``X.from_content(c).to_content() == c`` holds
for canonical ``c``. Extension bits that announce optional octets (octets 3a/3b of numbers,
octet 3a of Cause, layer 1 octets 5a.. of Bearer capability) are followed exactly.

Only :class:`~gatekeeper.errors.DecodeError` leaves the parsing functions, whatever the input;
only :class:`~gatekeeper.errors.EncodeError` leaves the building functions for bad values.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

from gatekeeper.errors import DecodeError, EncodeError

# --- protocol discriminators -------------------------------------------------------------------

PROTOCOL_DISCRIMINATOR_Q931 = 0x08
#: User-user protocol discriminator "X.208/X.209 coded user information": H.225.0 PER follows.
UUIE_PROTOCOL_X208 = 0x05

# --- message types (Q.931 table 4-2; the ones H.225.0 uses and a few more) ---------------------

ALERTING = 0x01
CALL_PROCEEDING = 0x02
PROGRESS = 0x03
SETUP = 0x05
CONNECT = 0x07
SETUP_ACK = 0x0D
CONNECT_ACK = 0x0F
USER_INFORMATION = 0x20
SUSPEND_REJECT = 0x21
RESUME_REJECT = 0x22
SUSPEND = 0x25
RESUME = 0x26
SUSPEND_ACK = 0x2D
RESUME_ACK = 0x2E
DISCONNECT = 0x45
RESTART = 0x46
RELEASE = 0x4D
RESTART_ACK = 0x4E
RELEASE_COMPLETE = 0x5A
SEGMENT = 0x60
FACILITY = 0x62
NOTIFY = 0x6E
STATUS_ENQUIRY = 0x75
CONGESTION_CONTROL = 0x79
INFORMATION = 0x7B
STATUS = 0x7D

MESSAGE_TYPE_NAMES: dict[int, str] = {
    ALERTING: "ALERTING",
    CALL_PROCEEDING: "CALL_PROCEEDING",
    PROGRESS: "PROGRESS",
    SETUP: "SETUP",
    CONNECT: "CONNECT",
    SETUP_ACK: "SETUP_ACK",
    CONNECT_ACK: "CONNECT_ACK",
    USER_INFORMATION: "USER_INFORMATION",
    SUSPEND_REJECT: "SUSPEND_REJECT",
    RESUME_REJECT: "RESUME_REJECT",
    SUSPEND: "SUSPEND",
    RESUME: "RESUME",
    SUSPEND_ACK: "SUSPEND_ACK",
    RESUME_ACK: "RESUME_ACK",
    DISCONNECT: "DISCONNECT",
    RESTART: "RESTART",
    RELEASE: "RELEASE",
    RESTART_ACK: "RESTART_ACK",
    RELEASE_COMPLETE: "RELEASE_COMPLETE",
    SEGMENT: "SEGMENT",
    FACILITY: "FACILITY",
    NOTIFY: "NOTIFY",
    STATUS_ENQUIRY: "STATUS_ENQUIRY",
    CONGESTION_CONTROL: "CONGESTION_CONTROL",
    INFORMATION: "INFORMATION",
    STATUS: "STATUS",
}

#: The message types an H.323 call signalling channel carries.
H225_MESSAGE_TYPES: frozenset[int] = frozenset({
    ALERTING, CALL_PROCEEDING, CONNECT, CONNECT_ACK, PROGRESS, SETUP, SETUP_ACK, RELEASE_COMPLETE,
    FACILITY, NOTIFY, STATUS, STATUS_ENQUIRY, INFORMATION, RELEASE,
})


def message_type_name(message_type: int) -> str:
    """Return the name of a message type, e.g. ``"SETUP"``, or ``"UNKNOWN_0xNN"``."""
    return MESSAGE_TYPE_NAMES.get(message_type, f"UNKNOWN_0x{message_type:02X}")


# --- information element identifiers (codeset 0) ---------------------------------------------

IE_SHIFT = 0x90  # single-octet, type 1: 1001 Lccc (L=1: non-locking)
IE_MORE_DATA = 0xA0  # single-octet, type 2
IE_SENDING_COMPLETE = 0xA1  # single-octet, type 2
IE_CONGESTION_LEVEL = 0xB0  # single-octet, type 1
IE_REPEAT_INDICATOR = 0xD0  # single-octet, type 1

IE_SEGMENTED_MESSAGE = 0x00
IE_BEARER_CAPABILITY = 0x04
IE_CAUSE = 0x08
IE_CALL_IDENTITY = 0x10
IE_CALL_STATE = 0x14
IE_CHANNEL_IDENTIFICATION = 0x18
IE_FACILITY = 0x1C
IE_PROGRESS_INDICATOR = 0x1E
IE_NETWORK_SPECIFIC_FACILITIES = 0x20
IE_NOTIFICATION_INDICATOR = 0x27
IE_DISPLAY = 0x28
IE_DATE_TIME = 0x29
IE_KEYPAD_FACILITY = 0x2C
IE_SIGNAL = 0x34
IE_CONNECTED_NUMBER = 0x4C
IE_CALLING_PARTY_NUMBER = 0x6C
IE_CALLING_PARTY_SUBADDRESS = 0x6D
IE_CALLED_PARTY_NUMBER = 0x70
IE_CALLED_PARTY_SUBADDRESS = 0x71
IE_REDIRECTING_NUMBER = 0x74
IE_TRANSIT_NETWORK_SELECTION = 0x78
IE_RESTART_INDICATOR = 0x79
IE_LOW_LAYER_COMPATIBILITY = 0x7C
IE_HIGH_LAYER_COMPATIBILITY = 0x7D
IE_USER_USER = 0x7E

IE_NAMES: dict[int, str] = {
    IE_MORE_DATA: "more data",
    IE_SENDING_COMPLETE: "sending complete",
    IE_SEGMENTED_MESSAGE: "segmented message",
    IE_BEARER_CAPABILITY: "bearer capability",
    IE_CAUSE: "cause",
    IE_CALL_IDENTITY: "call identity",
    IE_CALL_STATE: "call state",
    IE_CHANNEL_IDENTIFICATION: "channel identification",
    IE_FACILITY: "facility",
    IE_PROGRESS_INDICATOR: "progress indicator",
    IE_NETWORK_SPECIFIC_FACILITIES: "network-specific facilities",
    IE_NOTIFICATION_INDICATOR: "notification indicator",
    IE_DISPLAY: "display",
    IE_DATE_TIME: "date/time",
    IE_KEYPAD_FACILITY: "keypad facility",
    IE_SIGNAL: "signal",
    IE_CONNECTED_NUMBER: "connected number",
    IE_CALLING_PARTY_NUMBER: "calling party number",
    IE_CALLING_PARTY_SUBADDRESS: "calling party subaddress",
    IE_CALLED_PARTY_NUMBER: "called party number",
    IE_CALLED_PARTY_SUBADDRESS: "called party subaddress",
    IE_REDIRECTING_NUMBER: "redirecting number",
    IE_TRANSIT_NETWORK_SELECTION: "transit network selection",
    IE_RESTART_INDICATOR: "restart indicator",
    IE_LOW_LAYER_COMPATIBILITY: "low layer compatibility",
    IE_HIGH_LAYER_COMPATIBILITY: "high layer compatibility",
    IE_USER_USER: "user-user",
}


def ie_name(ie_id: int) -> str:
    """Return a readable name for a codeset-0 IE identifier (for logs)."""
    if ie_id in IE_NAMES:
        return IE_NAMES[ie_id]
    if ie_id & 0xF0 == IE_SHIFT:
        kind = "non-locking" if ie_id & 0x08 else "locking"
        return f"{kind} shift to codeset {ie_id & 0x07}"
    if ie_id & 0xF0 == IE_CONGESTION_LEVEL:
        return "congestion level"
    if ie_id & 0xF0 == IE_REPEAT_INDICATOR:
        return "repeat indicator"
    return f"IE 0x{ie_id:02X}"


def is_single_octet(ie_id: int) -> bool:
    """True for single-octet IEs (bit 8 of the identifier set): they have no length and no content."""
    return bool(ie_id & 0x80)


def is_shift(ie_id: int) -> bool:
    """True for a shift IE (locking or non-locking)."""
    return ie_id & 0xF0 == IE_SHIFT


# --- values of typed IE fields -----------------------------------------------------------------

CODING_ITU = 0  # coding standard: ITU-T
CODING_ISO = 1
CODING_NATIONAL = 2
CODING_NETWORK = 3

# Bearer capability, information transfer capability
ITC_SPEECH = 0x00
ITC_UNRESTRICTED_DIGITAL = 0x08
ITC_RESTRICTED_DIGITAL = 0x09
ITC_AUDIO_3_1_KHZ = 0x10
ITC_UNRESTRICTED_DIGITAL_WITH_TONES = 0x11
ITC_VIDEO = 0x18
# transfer mode
TRANSFER_MODE_CIRCUIT = 0
TRANSFER_MODE_PACKET = 2
# information transfer rate
RATE_PACKET_MODE = 0x00
RATE_64K = 0x10
RATE_2X64K = 0x11
RATE_384K = 0x13
RATE_1536K = 0x15
RATE_1920K = 0x17
RATE_MULTIRATE = 0x18  # 64 kbit/s times the rate multiplier (octet 4.1)
# user information layer 1 protocol
L1_V110 = 0x01
L1_G711_ULAW = 0x02
L1_G711_ALAW = 0x03
L1_G721 = 0x04
L1_H221_H242 = 0x05
L1_H223_H245 = 0x06
L1_NON_ITU = 0x07
L1_V120 = 0x08
L1_X31 = 0x09

# Cause / progress location
LOCATION_USER = 0x0
LOCATION_PRIVATE_LOCAL = 0x1
LOCATION_PUBLIC_LOCAL = 0x2
LOCATION_TRANSIT = 0x3
LOCATION_PUBLIC_REMOTE = 0x4
LOCATION_PRIVATE_REMOTE = 0x5
LOCATION_INTERNATIONAL = 0x7
LOCATION_BEYOND_INTERWORKING = 0xA

# Cause values (Q.850)
CAUSE_UNALLOCATED_NUMBER = 1
CAUSE_NO_ROUTE_TO_TRANSIT_NETWORK = 2
CAUSE_NO_ROUTE_TO_DESTINATION = 3
CAUSE_NORMAL_CALL_CLEARING = 16
CAUSE_USER_BUSY = 17
CAUSE_NO_USER_RESPONDING = 18
CAUSE_NO_ANSWER = 19
CAUSE_SUBSCRIBER_ABSENT = 20
CAUSE_CALL_REJECTED = 21
CAUSE_NUMBER_CHANGED = 22
CAUSE_DESTINATION_OUT_OF_ORDER = 27
CAUSE_INVALID_NUMBER_FORMAT = 28
CAUSE_FACILITY_REJECTED = 29
CAUSE_STATUS_ENQUIRY_RESPONSE = 30
CAUSE_NORMAL_UNSPECIFIED = 31
CAUSE_NO_CIRCUIT_AVAILABLE = 34
CAUSE_NETWORK_OUT_OF_ORDER = 38
CAUSE_TEMPORARY_FAILURE = 41
CAUSE_SWITCHING_EQUIPMENT_CONGESTION = 42
CAUSE_REQUESTED_CHANNEL_NOT_AVAILABLE = 44
CAUSE_RESOURCES_UNAVAILABLE = 47
CAUSE_QUALITY_OF_SERVICE_UNAVAILABLE = 49
CAUSE_BEARER_CAPABILITY_NOT_AUTHORIZED = 57
CAUSE_BEARER_CAPABILITY_NOT_AVAILABLE = 58
CAUSE_SERVICE_NOT_AVAILABLE = 63
CAUSE_BEARER_CAPABILITY_NOT_IMPLEMENTED = 65
CAUSE_INVALID_CALL_REFERENCE = 81
CAUSE_INCOMPATIBLE_DESTINATION = 88
CAUSE_INVALID_MESSAGE = 95
CAUSE_MANDATORY_IE_MISSING = 96
CAUSE_MESSAGE_TYPE_NONEXISTENT = 97
CAUSE_IE_NONEXISTENT = 99
CAUSE_INVALID_IE_CONTENTS = 100
CAUSE_MESSAGE_NOT_COMPATIBLE_WITH_STATE = 101
CAUSE_RECOVERY_ON_TIMER_EXPIRY = 102
CAUSE_PROTOCOL_ERROR = 111
CAUSE_INTERWORKING = 127

# Progress description
PROGRESS_NOT_END_TO_END_ISDN = 1
PROGRESS_DESTINATION_NOT_ISDN = 2
PROGRESS_ORIGINATION_NOT_ISDN = 3
PROGRESS_RETURNED_TO_ISDN = 4
PROGRESS_INTERWORKING = 5
PROGRESS_INBAND_AVAILABLE = 8

# Party numbers: type of number
TON_UNKNOWN = 0
TON_INTERNATIONAL = 1
TON_NATIONAL = 2
TON_NETWORK_SPECIFIC = 3
TON_SUBSCRIBER = 4
TON_ABBREVIATED = 6
# numbering plan
NPI_UNKNOWN = 0x0
NPI_ISDN = 0x1  # E.164
NPI_DATA = 0x3  # X.121
NPI_TELEX = 0x4  # F.69
NPI_NATIONAL = 0x8
NPI_PRIVATE = 0x9
# presentation indicator
PRESENTATION_ALLOWED = 0
PRESENTATION_RESTRICTED = 1
PRESENTATION_NOT_AVAILABLE = 2
# screening indicator
SCREENING_USER_NOT_SCREENED = 0
SCREENING_USER_VERIFIED_PASSED = 1
SCREENING_USER_VERIFIED_FAILED = 2
SCREENING_NETWORK_PROVIDED = 3
# reason for redirection
REDIRECTION_UNKNOWN = 0x0
REDIRECTION_BUSY = 0x1
REDIRECTION_NO_REPLY = 0x2
REDIRECTION_DTE_OUT_OF_ORDER = 0x9
REDIRECTION_BY_CALLED_DTE = 0xA
REDIRECTION_UNCONDITIONAL = 0xF


# --- raw information elements and messages -----------------------------------------------------

@dataclass(frozen=True, slots=True)
class InformationElement:
    """One IE as it is on the wire: identifier octet and content (empty for single-octet IEs)."""

    id: int
    content: bytes = b""

    @property
    def single_octet(self) -> bool:
        """True when the IE is just its identifier octet (no length, no content)."""
        return bool(self.id & 0x80)


def shift(codeset: int, locking: bool = True) -> InformationElement:
    """Build a shift IE to ``codeset`` (locking, or non-locking for the next IE only)."""
    if not 0 <= codeset <= 7:
        raise EncodeError(f"codeset {codeset} out of range", "shift")
    return InformationElement(IE_SHIFT | (0 if locking else 0x08) | codeset)


SENDING_COMPLETE = InformationElement(IE_SENDING_COMPLETE)
MORE_DATA = InformationElement(IE_MORE_DATA)


class _Codesets:
    """Tracks the active codeset while walking IEs in order (shared by decoder and encoder)."""

    __slots__ = ("locked", "current")

    def __init__(self) -> None:
        self.locked = 0
        self.current = 0

    def after(self, ie_id: int) -> None:
        """Update the state after the IE with identifier ``ie_id``."""
        if ie_id & 0xF0 == IE_SHIFT:
            self.current = ie_id & 0x07
            if not ie_id & 0x08:
                self.locked = self.current
        else:
            self.current = self.locked


@dataclass
class Q931Message:
    """A Q.931 message: header fields and the ordered list of its information elements.

    ``call_reference`` is the call reference value without its flag bit (15 bits when
    ``call_reference_length`` is 2, 7 bits when 1, always 0 for the dummy call reference of
    length 0). ``from_destination`` is the call reference flag: False on messages sent by the
    side that allocated the call reference (the caller), True on messages sent towards it.
    """

    message_type: int
    call_reference: int = 0
    from_destination: bool = False
    ies: list[InformationElement] = field(default_factory=list)
    protocol_discriminator: int = PROTOCOL_DISCRIMINATOR_Q931
    call_reference_length: int = 2

    @property
    def name(self) -> str:
        """The message type's name, e.g. ``"SETUP"``."""
        return message_type_name(self.message_type)

    def iter_ies(self) -> Iterator[tuple[int, InformationElement]]:
        """Yield ``(codeset, ie)`` for every IE in order; a shift IE reports the codeset before it."""
        codesets = _Codesets()
        for ie in self.ies:
            yield codesets.current, ie
            codesets.after(ie.id)

    def get_ie(self, ie_id: int, codeset: int = 0) -> InformationElement | None:
        """Return the first IE with this identifier in ``codeset``, or None."""
        for ie_codeset, ie in self.iter_ies():
            if ie.id == ie_id and ie_codeset == codeset:
                return ie
        return None

    def get_ies(self, ie_id: int, codeset: int = 0) -> list[InformationElement]:
        """Return every IE with this identifier in ``codeset`` (IEs may repeat), in order."""
        return [ie for ie_codeset, ie in self.iter_ies() if ie.id == ie_id and ie_codeset == codeset]

    def get_typed(self, ie_type: type[_T]) -> _T | None:
        """Parse the first codeset-0 IE of a typed IE class, or return None if it is absent.

        Raises DecodeError if the IE is present but its content is malformed.
        """
        ie = self.get_ie(ie_type.IE_ID)
        return None if ie is None else ie_type.from_content(ie.content)

    def set_ie(self, ie: InformationElement | TypedIE) -> None:
        """Replace the first codeset-0 IE with the same identifier, or insert it where Q.931 wants it.

        Codeset-0 variable-length IEs go in ascending identifier order, before any shift; a new
        single-octet IE (e.g. :data:`SENDING_COMPLETE`) goes first. Shift IEs cannot be set.
        """
        if isinstance(ie, TypedIE):
            ie = ie.to_ie()
        if is_shift(ie.id):
            raise EncodeError("set_ie does not place shift IEs", "q931")
        limit = len(self.ies)
        insert_at: int | None = None
        for index, (codeset, old) in enumerate(self.iter_ies()):
            if codeset != 0 or is_shift(old.id):
                limit = index
                break
            if old.id == ie.id:
                self.ies[index] = ie
                return
            if insert_at is None and not old.single_octet and old.id > ie.id:
                insert_at = index
        if ie.single_octet:
            insert_at = 0
        self.ies.insert(limit if insert_at is None else insert_at, ie)

    def remove_ie(self, ie_id: int) -> int:
        """Remove every codeset-0 IE with this identifier; return how many were removed."""
        keep = [ie for codeset, ie in self.iter_ies() if not (ie.id == ie_id and codeset == 0)]
        removed = len(self.ies) - len(keep)
        self.ies[:] = keep
        return removed

    @property
    def user_user(self) -> bytes | None:
        """The user information of the User-user IE (for H.225.0 the PER-encoded
        H323-UserInformation), without its protocol discriminator; None if there is no such IE.
        Use ``get_typed(UserUser)`` to see the protocol discriminator."""
        uu = self.get_typed(UserUser)
        return None if uu is None else uu.data

    @property
    def bearer_capability(self) -> BearerCapability | None:
        """The parsed Bearer capability IE, or None."""
        return self.get_typed(BearerCapability)

    @property
    def called_party_number(self) -> CalledPartyNumber | None:
        """The parsed Called party number IE, or None."""
        return self.get_typed(CalledPartyNumber)

    @property
    def calling_party_number(self) -> CallingPartyNumber | None:
        """The parsed Calling party number IE, or None."""
        return self.get_typed(CallingPartyNumber)

    @property
    def display(self) -> str | None:
        """The text of the Display IE, or None."""
        ie = self.get_typed(Display)
        return None if ie is None else ie.text

    @property
    def cause(self) -> Cause | None:
        """The parsed Cause IE, or None (``.value`` is the Q.850 cause value)."""
        return self.get_typed(Cause)


def decode(data: bytes) -> Q931Message:
    """Decode one Q.931 message (a TPKT payload). Raises DecodeError for anything malformed."""
    data = bytes(data)
    size = len(data)
    if size < 3:
        raise DecodeError("message shorter than its header", "q931")
    discriminator = data[0]
    length_octet = data[1]
    if length_octet & 0xF0:
        raise DecodeError("spare bits set in call reference length octet", "q931")
    cr_length = length_octet
    if cr_length > 2:
        raise DecodeError(f"unsupported call reference length {cr_length}", "q931")
    position = 2 + cr_length
    if position >= size:
        raise DecodeError("call reference or message type missing", "q931")
    if cr_length == 0:
        call_reference, flag = 0, False
    elif cr_length == 1:
        call_reference, flag = data[2] & 0x7F, bool(data[2] & 0x80)
    else:
        call_reference, flag = ((data[2] & 0x7F) << 8) | data[3], bool(data[2] & 0x80)
    message_type = data[position]
    position += 1
    kind = MESSAGE_TYPE_NAMES.get(message_type, "q931")
    ies: list[InformationElement] = []
    append = ies.append
    codesets = _Codesets()
    while position < size:
        ie_id = data[position]
        if ie_id & 0x80:
            append(InformationElement(ie_id))
            position += 1
        else:
            if ie_id == IE_USER_USER and codesets.current == 0:
                if position + 3 > size:
                    raise DecodeError("user-user IE length truncated", kind)
                length = (data[position + 1] << 8) | data[position + 2]
                start = position + 3
            else:
                if position + 2 > size:
                    raise DecodeError(f"IE 0x{ie_id:02X} length missing", kind)
                length = data[position + 1]
                start = position + 2
            position = start + length
            if position > size:
                raise DecodeError(f"IE 0x{ie_id:02X} content truncated", kind)
            append(InformationElement(ie_id, data[start:position]))
        codesets.after(ie_id)
    return Q931Message(
        message_type=message_type,
        call_reference=call_reference,
        from_destination=flag,
        ies=ies,
        protocol_discriminator=discriminator,
        call_reference_length=cr_length,
    )


def encode(message: Q931Message) -> bytes:
    """Encode a message to bytes (the TPKT payload). Raises EncodeError for out-of-range values."""
    _check_byte(message.message_type, "message type", "q931")
    kind = MESSAGE_TYPE_NAMES.get(message.message_type, "q931")
    _check_byte(message.protocol_discriminator, "protocol discriminator", kind)
    out = bytearray((message.protocol_discriminator,))
    length = message.call_reference_length
    value = message.call_reference
    flag = 0x80 if message.from_destination else 0
    if not isinstance(value, int) or isinstance(value, bool):
        raise EncodeError("call reference must be an int", kind)
    if length == 0:
        if value != 0 or flag:
            raise EncodeError("dummy call reference (length 0) has no value or flag", kind)
        out.append(0)
    elif length == 1:
        if not 0 <= value <= 0x7F:
            raise EncodeError(f"call reference {value} does not fit in 7 bits", kind)
        out += bytes((1, flag | value))
    elif length == 2:
        if not 0 <= value <= 0x7FFF:
            raise EncodeError(f"call reference {value} does not fit in 15 bits", kind)
        out += bytes((2, flag | (value >> 8), value & 0xFF))
    else:
        raise EncodeError(f"unsupported call reference length {length!r}", kind)
    out.append(message.message_type)
    codesets = _Codesets()
    for ie in message.ies:
        if not isinstance(ie, InformationElement):
            raise EncodeError(f"not an InformationElement: {ie!r}", kind)
        ie_id = ie.id
        _check_byte(ie_id, "IE identifier", kind)
        content = ie.content
        if not isinstance(content, (bytes, bytearray, memoryview)):
            raise EncodeError(f"content of IE 0x{ie_id:02X} is not bytes", kind)
        if ie_id & 0x80:
            if len(content):
                raise EncodeError(f"single-octet IE 0x{ie_id:02X} cannot have content", kind)
            out.append(ie_id)
        elif ie_id == IE_USER_USER and codesets.current == 0:
            if len(content) > 0xFFFF:
                raise EncodeError("user-user IE content longer than 65535 octets", kind)
            out += bytes((ie_id, len(content) >> 8, len(content) & 0xFF))
            out += content
        else:
            if len(content) > 0xFF:
                raise EncodeError(f"IE 0x{ie_id:02X} content longer than 255 octets", kind)
            out += bytes((ie_id, len(content)))
            out += content
        codesets.after(ie_id)
    return bytes(out)


def _check_byte(value: object, what: str, kind: str | None) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFF:
        raise EncodeError(f"{what} {value!r} is not an octet", kind)


def _check_field(value: object, bits: int, what: str, kind: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < (1 << bits):
        raise EncodeError(f"{what} {value!r} does not fit in {bits} bits", kind)
    return value


def _check_bytes(value: object, what: str, kind: str) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise EncodeError(f"{what} must be bytes", kind)
    return bytes(value)


# --- typed information elements ----------------------------------------------------------------

_T = TypeVar("_T", bound="TypedIE")


class TypedIE:
    """Base of the typed IE classes: each knows its identifier and builds/parses its content."""

    IE_ID: ClassVar[int]
    NAME: ClassVar[str]

    def to_content(self) -> bytes:
        """Build the IE content (the octets after identifier and length)."""
        raise NotImplementedError

    @classmethod
    def from_content(cls: type[_T], content: bytes) -> _T:
        """Parse the IE content; raises DecodeError if it is malformed."""
        raise NotImplementedError

    def to_ie(self) -> InformationElement:
        """Build the raw IE, ready to put in :attr:`Q931Message.ies`."""
        return InformationElement(self.IE_ID, self.to_content())

    @classmethod
    def from_ie(cls: type[_T], ie: InformationElement) -> _T:
        """Parse a raw IE of this type; raises DecodeError if the identifier does not match."""
        if ie.id != cls.IE_ID:
            raise DecodeError(f"IE 0x{ie.id:02X} is not a {cls.NAME} IE", cls.NAME)
        return cls.from_content(ie.content)


@dataclass(frozen=True)
class BearerCapability(TypedIE):
    """Bearer capability (0x04): what kind of bearer the call needs.

    The usual H.323 values: ITU coding, unrestricted digital (data/video) or speech, circuit mode,
    64 kbit/s or multirate with ``rate_multiplier`` x 64 kbit/s, layer 1 protocol H.221 (data) or
    G.711 (speech). ``layer1_extra`` keeps layer 1 octets 5a.. and ``trailing`` the layer 2/3
    octets, both verbatim.
    """

    IE_ID: ClassVar[int] = IE_BEARER_CAPABILITY
    NAME: ClassVar[str] = "bearer capability"

    transfer_capability: int = ITC_UNRESTRICTED_DIGITAL
    transfer_rate: int = RATE_64K
    layer1_protocol: int | None = L1_H221_H242
    rate_multiplier: int | None = None
    coding_standard: int = CODING_ITU
    transfer_mode: int = TRANSFER_MODE_CIRCUIT
    layer1_extra: bytes = b""
    trailing: bytes = b""

    def to_content(self) -> bytes:
        name = self.NAME
        out = bytearray()
        out.append(0x80 | _check_field(self.coding_standard, 2, "coding standard", name) << 5
                   | _check_field(self.transfer_capability, 5, "transfer capability", name))
        out.append(0x80 | _check_field(self.transfer_mode, 2, "transfer mode", name) << 5
                   | _check_field(self.transfer_rate, 5, "transfer rate", name))
        if self.transfer_rate == RATE_MULTIRATE:
            if self.rate_multiplier is None:
                raise EncodeError("multirate needs a rate multiplier", name)
            out.append(0x80 | _check_field(self.rate_multiplier, 7, "rate multiplier", name))
        elif self.rate_multiplier is not None:
            raise EncodeError("rate multiplier is only allowed with multirate", name)
        layer1_extra = _check_bytes(self.layer1_extra, "layer1_extra", name)
        if self.layer1_protocol is not None:
            if layer1_extra and not _is_ext_chain(layer1_extra):
                raise EncodeError("layer1_extra must end with the octet whose bit 8 is set", name)
            ext = 0 if layer1_extra else 0x80
            out.append(ext | 0x20 | _check_field(self.layer1_protocol, 5, "layer 1 protocol", name))
            out += layer1_extra
        elif layer1_extra:
            raise EncodeError("layer1_extra needs a layer 1 protocol", name)
        trailing = _check_bytes(self.trailing, "trailing", name)
        if trailing and self.layer1_protocol is None and trailing[0] & 0x60 == 0x20:
            raise EncodeError("trailing octets must not start with a layer 1 octet", name)
        out += trailing
        return bytes(out)

    @classmethod
    def from_content(cls, content: bytes) -> BearerCapability:
        name = cls.NAME
        if len(content) < 2:
            raise DecodeError("shorter than octets 3 and 4", name)
        octet3, octet4 = content[0], content[1]
        if not octet3 & 0x80:
            raise DecodeError("octet 3a is not defined for bearer capability", name)
        rate = octet4 & 0x1F
        position = 2
        multiplier = None
        if rate == RATE_MULTIRATE:
            # Some stacks clear bit 8 of octet 4 before octet 4.1; the rate says 4.1 follows.
            if position >= len(content):
                raise DecodeError("rate multiplier (octet 4.1) missing", name)
            multiplier = content[position] & 0x7F
            position += 1
        elif not octet4 & 0x80:
            raise DecodeError("octets 4a/4b (Q.931 1988) are not supported", name)
        layer1 = None
        layer1_extra = b""
        if position < len(content) and content[position] & 0x60 == 0x20:
            octet5 = content[position]
            layer1 = octet5 & 0x1F
            position += 1
            if not octet5 & 0x80:
                end = _ext_chain_end(content, position, name, "layer 1 octets 5a..")
                layer1_extra = bytes(content[position:end])
                position = end
        return cls(
            transfer_capability=octet3 & 0x1F,
            transfer_rate=rate,
            layer1_protocol=layer1,
            rate_multiplier=multiplier,
            coding_standard=(octet3 >> 5) & 0x03,
            transfer_mode=(octet4 >> 5) & 0x03,
            layer1_extra=layer1_extra,
            trailing=bytes(content[position:]),
        )


def _ext_chain_end(content: bytes, position: int, kind: str, what: str) -> int:
    """Return the index after the first octet from ``position`` on with bit 8 set."""
    for index in range(position, len(content)):
        if content[index] & 0x80:
            return index + 1
    raise DecodeError(f"{what} truncated", kind)


def _is_ext_chain(octets: bytes) -> bool:
    """True if only the last octet has bit 8 (the extension bit) set."""
    return bool(octets[-1] & 0x80) and not any(b & 0x80 for b in octets[:-1])


@dataclass(frozen=True)
class Cause(TypedIE):
    """Cause (0x08): why a call was cleared; ``value`` is the Q.850 cause value (1..127).

    ``recommendation`` is octet 3a when present; ``diagnostics`` are the octets after the value.
    """

    IE_ID: ClassVar[int] = IE_CAUSE
    NAME: ClassVar[str] = "cause"

    value: int = CAUSE_NORMAL_CALL_CLEARING
    location: int = LOCATION_USER
    coding_standard: int = CODING_ITU
    recommendation: int | None = None
    diagnostics: bytes = b""

    def to_content(self) -> bytes:
        name = self.NAME
        octet3 = (_check_field(self.coding_standard, 2, "coding standard", name) << 5
                  | _check_field(self.location, 4, "location", name))
        if self.recommendation is None:
            out = bytearray((0x80 | octet3,))
        else:
            out = bytearray((octet3, 0x80 | _check_field(self.recommendation, 7, "recommendation", name)))
        out.append(0x80 | _check_field(self.value, 7, "cause value", name))
        out += _check_bytes(self.diagnostics, "diagnostics", name)
        return bytes(out)

    @classmethod
    def from_content(cls, content: bytes) -> Cause:
        name = cls.NAME
        if not content:
            raise DecodeError("empty", name)
        octet3 = content[0]
        position = 1
        recommendation = None
        if not octet3 & 0x80:
            if position >= len(content):
                raise DecodeError("octet 3a missing", name)
            recommendation = content[position] & 0x7F
            position += 1
        if position >= len(content):
            raise DecodeError("cause value missing", name)
        value = content[position] & 0x7F
        return cls(
            value=value,
            location=octet3 & 0x0F,
            coding_standard=(octet3 >> 5) & 0x03,
            recommendation=recommendation,
            diagnostics=bytes(content[position + 1:]),
        )


def _single_octet_content(content: bytes, name: str) -> int:
    if len(content) != 1:
        raise DecodeError(f"content is {len(content)} octets, expected 1", name)
    return content[0]


@dataclass(frozen=True)
class CallState(TypedIE):
    """Call state (0x14): the sender's call state (e.g. in STATUS), 6 bits."""

    IE_ID: ClassVar[int] = IE_CALL_STATE
    NAME: ClassVar[str] = "call state"

    value: int = 0
    coding_standard: int = CODING_ITU

    def to_content(self) -> bytes:
        return bytes((_check_field(self.coding_standard, 2, "coding standard", self.NAME) << 6
                      | _check_field(self.value, 6, "call state", self.NAME),))

    @classmethod
    def from_content(cls, content: bytes) -> CallState:
        octet = _single_octet_content(content, cls.NAME)
        return cls(value=octet & 0x3F, coding_standard=octet >> 6)


@dataclass(frozen=True)
class Facility(TypedIE):
    """Facility (0x1C): supplementary service data, kept opaque."""

    IE_ID: ClassVar[int] = IE_FACILITY
    NAME: ClassVar[str] = "facility"

    data: bytes = b""

    def to_content(self) -> bytes:
        return _check_bytes(self.data, "data", self.NAME)

    @classmethod
    def from_content(cls, content: bytes) -> Facility:
        return cls(data=bytes(content))


@dataclass(frozen=True)
class ProgressIndicator(TypedIE):
    """Progress indicator (0x1E): e.g. description 8, in-band information now available."""

    IE_ID: ClassVar[int] = IE_PROGRESS_INDICATOR
    NAME: ClassVar[str] = "progress indicator"

    description: int = PROGRESS_INBAND_AVAILABLE
    location: int = LOCATION_USER
    coding_standard: int = CODING_ITU

    def to_content(self) -> bytes:
        name = self.NAME
        return bytes((
            0x80 | _check_field(self.coding_standard, 2, "coding standard", name) << 5
            | _check_field(self.location, 4, "location", name),
            0x80 | _check_field(self.description, 7, "progress description", name),
        ))

    @classmethod
    def from_content(cls, content: bytes) -> ProgressIndicator:
        if len(content) != 2:
            raise DecodeError(f"content is {len(content)} octets, expected 2", cls.NAME)
        return cls(description=content[1] & 0x7F, location=content[0] & 0x0F,
                   coding_standard=(content[0] >> 5) & 0x03)


@dataclass(frozen=True)
class NotificationIndicator(TypedIE):
    """Notification indicator (0x27): description (0 user suspended, 1 resumed, 2 bearer change,
    ...) and any further octets (Q.932 extensions) verbatim."""

    IE_ID: ClassVar[int] = IE_NOTIFICATION_INDICATOR
    NAME: ClassVar[str] = "notification indicator"

    description: int = 0
    data: bytes = b""

    def to_content(self) -> bytes:
        return (bytes((0x80 | _check_field(self.description, 7, "notification description", self.NAME),))
                + _check_bytes(self.data, "data", self.NAME))

    @classmethod
    def from_content(cls, content: bytes) -> NotificationIndicator:
        if not content:
            raise DecodeError("empty", cls.NAME)
        return cls(description=content[0] & 0x7F, data=bytes(content[1:]))


def _latin1(text: object, what: str, kind: str) -> bytes:
    if not isinstance(text, str):
        raise EncodeError(f"{what} must be a str", kind)
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        raise EncodeError(f"{what} is not representable in latin-1", kind) from None


def _ia5(text: object, what: str, kind: str) -> bytes:
    if not isinstance(text, str):
        raise EncodeError(f"{what} must be a str", kind)
    if not text.isascii():
        raise EncodeError(f"{what} must be IA5 (ASCII) characters", kind)
    return text.encode("ascii")


def _ia5_decode(octets: bytes, what: str, kind: str) -> str:
    if not octets.isascii():
        raise DecodeError(f"{what} octet with bit 8 set", kind)
    return octets.decode("ascii")


@dataclass(frozen=True)
class Display(TypedIE):
    """Display (0x28): a text for the user's display (IA5; latin-1 accepted)."""

    IE_ID: ClassVar[int] = IE_DISPLAY
    NAME: ClassVar[str] = "display"

    text: str = ""

    def to_content(self) -> bytes:
        octets = _latin1(self.text, "display text", self.NAME)
        if len(octets) > 0xFF:
            raise EncodeError("display text longer than 255 octets", self.NAME)
        return octets

    @classmethod
    def from_content(cls, content: bytes) -> Display:
        return cls(text=bytes(content).decode("latin-1"))


@dataclass(frozen=True)
class KeypadFacility(TypedIE):
    """Keypad facility (0x2C): digits typed by the user (IA5)."""

    IE_ID: ClassVar[int] = IE_KEYPAD_FACILITY
    NAME: ClassVar[str] = "keypad facility"

    digits: str = ""

    def to_content(self) -> bytes:
        return _ia5(self.digits, "keypad digits", self.NAME)

    @classmethod
    def from_content(cls, content: bytes) -> KeypadFacility:
        return cls(digits=_ia5_decode(bytes(content), "keypad", cls.NAME))


@dataclass(frozen=True)
class Signal(TypedIE):
    """Signal (0x34): a tone to play (0x00 dial tone, 0x01 ring back, 0x3F tones off, ...)."""

    IE_ID: ClassVar[int] = IE_SIGNAL
    NAME: ClassVar[str] = "signal"

    value: int = 0

    def to_content(self) -> bytes:
        return bytes((_check_field(self.value, 8, "signal value", self.NAME),))

    @classmethod
    def from_content(cls, content: bytes) -> Signal:
        return cls(value=_single_octet_content(content, cls.NAME))


@dataclass(frozen=True)
class UserUser(TypedIE):
    """User-user (0x7E): protocol discriminator (0x05 for H.225.0) and the user information,
    for H.225.0 the PER-encoded H323-UserInformation, kept opaque here."""

    IE_ID: ClassVar[int] = IE_USER_USER
    NAME: ClassVar[str] = "user-user"

    data: bytes = b""
    protocol_discriminator: int = UUIE_PROTOCOL_X208

    def to_content(self) -> bytes:
        _check_byte(self.protocol_discriminator, "protocol discriminator", self.NAME)
        content = bytes((self.protocol_discriminator,)) + _check_bytes(self.data, "data", self.NAME)
        if len(content) > 0xFFFF:
            raise EncodeError("user information longer than 65534 octets", self.NAME)
        return content

    @classmethod
    def from_content(cls, content: bytes) -> UserUser:
        if not content:
            raise DecodeError("protocol discriminator missing", cls.NAME)
        return cls(data=bytes(content[1:]), protocol_discriminator=content[0])


_OCTET3_NAMES = ("3", "3a", "3b")


@dataclass(frozen=True)
class _PartyNumber(TypedIE):
    """Common layout of the number IEs: octet 3 (type of number, numbering plan), optional
    octets 3a (presentation, screening) and 3b (reason for redirection), then IA5 digits.

    The extension bit (bit 8) of octet 3/3a says whether another octet 3x follows, so a number
    IE is only parsed right if those bits are followed rather than guessed from the values.
    """

    MAX_OCTET3_EXTENSIONS: ClassVar[int] = 0  # how many of octets 3a, 3b this IE may carry

    digits: str = ""
    type_of_number: int = TON_UNKNOWN
    numbering_plan: int = NPI_ISDN

    def _octet3a(self) -> int | None:
        return None

    def _octet3b(self) -> int | None:
        return None

    def to_content(self) -> bytes:
        name = self.NAME
        octets = [_check_field(self.type_of_number, 3, "type of number", name) << 4
                  | _check_field(self.numbering_plan, 4, "numbering plan", name)]
        octet3a = self._octet3a()
        octet3b = self._octet3b()
        if octet3a is not None:
            octets.append(octet3a)
        if octet3b is not None:
            octets.append(octet3b)
        octets[-1] |= 0x80
        return bytes(octets) + _ia5(self.digits, "digits", name)

    @classmethod
    def _split(cls, content: bytes) -> tuple[int, list[int], str]:
        """Return (octet 3, [octets 3a, 3b present], digits)."""
        name = cls.NAME
        if not content:
            raise DecodeError("octet 3 missing", name)
        position = 0
        extensions: list[int] = []
        while not content[position] & 0x80:
            if len(extensions) >= cls.MAX_OCTET3_EXTENSIONS:
                raise DecodeError(f"bit 8 of octet {_OCTET3_NAMES[len(extensions)]} must be set", name)
            position += 1
            if position >= len(content):
                raise DecodeError(f"octet {_OCTET3_NAMES[len(extensions) + 1]} missing", name)
            extensions.append(content[position])
        digits = _ia5_decode(bytes(content[position + 1:]), "digit", name)
        return content[0], extensions, digits


def _presentation_octet(presentation: int | None, screening: int, kind: str) -> int | None:
    """Octet 3a (without bit 8) of a number IE, or None when it is left out."""
    if presentation is None:
        if screening != SCREENING_USER_NOT_SCREENED:
            raise EncodeError("a screening indicator needs a presentation indicator", kind)
        return None
    return (_check_field(presentation, 2, "presentation indicator", kind) << 5
            | _check_field(screening, 2, "screening indicator", kind))


@dataclass(frozen=True)
class CalledPartyNumber(_PartyNumber):
    """Called party number (0x70): the dialled number."""

    IE_ID: ClassVar[int] = IE_CALLED_PARTY_NUMBER
    NAME: ClassVar[str] = "called party number"

    @classmethod
    def from_content(cls, content: bytes) -> CalledPartyNumber:
        octet3, _, digits = cls._split(content)
        return cls(digits=digits, type_of_number=(octet3 >> 4) & 0x07, numbering_plan=octet3 & 0x0F)


@dataclass(frozen=True)
class CallingPartyNumber(_PartyNumber):
    """Calling party number (0x6C): the caller's number; octet 3a (presentation and screening
    indicators) is present when ``presentation`` is not None."""

    IE_ID: ClassVar[int] = IE_CALLING_PARTY_NUMBER
    NAME: ClassVar[str] = "calling party number"
    MAX_OCTET3_EXTENSIONS: ClassVar[int] = 1

    presentation: int | None = None
    screening: int = SCREENING_USER_NOT_SCREENED

    def _octet3a(self) -> int | None:
        return _presentation_octet(self.presentation, self.screening, self.NAME)

    @classmethod
    def from_content(cls, content: bytes) -> CallingPartyNumber:
        octet3, extensions, digits = cls._split(content)
        presentation, screening = None, SCREENING_USER_NOT_SCREENED
        if extensions:
            presentation, screening = (extensions[0] >> 5) & 0x03, extensions[0] & 0x03
        return cls(digits=digits, type_of_number=(octet3 >> 4) & 0x07, numbering_plan=octet3 & 0x0F,
                   presentation=presentation, screening=screening)


@dataclass(frozen=True)
class RedirectingNumber(_PartyNumber):
    """Redirecting number (0x74): who forwarded the call; optional octet 3a (presentation and
    screening) and octet 3b (reason for redirection; 3a is then always sent)."""

    IE_ID: ClassVar[int] = IE_REDIRECTING_NUMBER
    NAME: ClassVar[str] = "redirecting number"
    MAX_OCTET3_EXTENSIONS: ClassVar[int] = 2

    presentation: int | None = None
    screening: int = SCREENING_USER_NOT_SCREENED
    reason: int | None = None

    def _octet3a(self) -> int | None:
        return _presentation_octet(self.presentation, self.screening, self.NAME)

    def _octet3b(self) -> int | None:
        if self.reason is None:
            return None
        if self.presentation is None:
            raise EncodeError("octet 3b (reason) needs octet 3a: set presentation too", self.NAME)
        return _check_field(self.reason, 4, "reason for redirection", self.NAME)

    @classmethod
    def from_content(cls, content: bytes) -> RedirectingNumber:
        octet3, extensions, digits = cls._split(content)
        presentation, screening, reason = None, SCREENING_USER_NOT_SCREENED, None
        if extensions:
            presentation, screening = (extensions[0] >> 5) & 0x03, extensions[0] & 0x03
        if len(extensions) > 1:
            reason = extensions[1] & 0x0F
        return cls(digits=digits, type_of_number=(octet3 >> 4) & 0x07, numbering_plan=octet3 & 0x0F,
                   presentation=presentation, screening=screening, reason=reason)


#: Typed IE class for each codeset-0 identifier this module understands.
TYPED_IES: dict[int, type[TypedIE]] = {
    cls.IE_ID: cls
    for cls in (BearerCapability, Cause, CallState, Facility, ProgressIndicator, NotificationIndicator,
                Display, KeypadFacility, Signal, CallingPartyNumber, CalledPartyNumber,
                RedirectingNumber, UserUser)
}


def parse_ie(ie: InformationElement) -> TypedIE | InformationElement:
    """Parse a codeset-0 IE into its typed class, or return it unchanged if there is none.

    Raises DecodeError if the IE is of a known type but malformed.
    """
    ie_type = TYPED_IES.get(ie.id)
    return ie if ie_type is None else ie_type.from_content(ie.content)
