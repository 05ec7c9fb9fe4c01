"""Tests for gatekeeper.h225.q931: the Q.931 message codec and the typed IEs H.323 uses.

The byte strings marked "by hand" were worked out from the octet layouts of Q.931 (section 4)
and H.225.0 (User-user length of two octets), not produced by this codec.
"""

from __future__ import annotations

import random
import time

from timing import slowest

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gatekeeper.errors import DecodeError, EncodeError
from gatekeeper.h225 import q931
from gatekeeper.h225.q931 import (
    BearerCapability,
    CalledPartyNumber,
    CallingPartyNumber,
    CallState,
    Cause,
    Display,
    Facility,
    InformationElement,
    KeypadFacility,
    NotificationIndicator,
    ProgressIndicator,
    Q931Message,
    RedirectingNumber,
    Signal,
    TypedIE,
    UserUser,
    decode,
    encode,
)

IE = InformationElement

# --- known encodings, by hand --------------------------------------------------------------------

# SETUP, call reference 0x1234 sent by the originating side:
#   08            protocol discriminator Q.931
#   02 12 34      call reference length 2; flag 0, value 0x1234
#   05            message type SETUP
#   04 03 88 90 a5   bearer capability: 1 00 01000 (ext, ITU, unrestricted digital),
#                    1 00 10000 (ext, circuit mode, 64 kbit/s), 1 01 00101 (ext, layer 1, H.221)
#   28 05 "Alice"    display
#   70 05 81 "1002"  called party number: 1 000 0001 (ext, unknown type, ISDN/E.164 plan), digits
#   7e 00 04 05 aa bb cc   user-user, 2-octet length 4, protocol discriminator 5 (X.208/X.209)
SETUP_BYTES = bytes.fromhex("0802123405" "04038890a5" "2805") + b"Alice" + bytes.fromhex("700581") + b"1002" \
    + bytes.fromhex("7e000405aabbcc")
SETUP_MESSAGE = Q931Message(
    message_type=q931.SETUP,
    call_reference=0x1234,
    from_destination=False,
    ies=[
        BearerCapability(q931.ITC_UNRESTRICTED_DIGITAL, q931.RATE_64K, q931.L1_H221_H242).to_ie(),
        Display("Alice").to_ie(),
        CalledPartyNumber("1002", q931.TON_UNKNOWN, q931.NPI_ISDN).to_ie(),
        UserUser(b"\xaa\xbb\xcc").to_ie(),
    ],
)

# RELEASE COMPLETE to the originating side (flag set: 0x92 = 1 0010010), cause:
#   08 02 80 90   1 00 0 0000 (ext, ITU, spare, location user), 1 0010000 (ext, cause 16 normal)
RELEASE_COMPLETE_BYTES = bytes.fromhex("080292345a" "08028090")

# ALERTING from the destination with progress indicator 1 00 0 0000 (user), 1 0001000 (in-band):
ALERTING_BYTES = bytes.fromhex("0802923401" "1e028088")


def test_setup_encodes_to_the_hand_built_bytes() -> None:
    assert encode(SETUP_MESSAGE) == SETUP_BYTES


def test_hand_built_setup_decodes_to_the_expected_fields() -> None:
    message = decode(SETUP_BYTES)
    assert message == SETUP_MESSAGE
    assert message.protocol_discriminator == 0x08
    assert message.call_reference_length == 2
    assert message.name == "SETUP"
    assert message.user_user == b"\xaa\xbb\xcc"
    assert message.display == "Alice"
    assert message.called_party_number == CalledPartyNumber("1002", q931.TON_UNKNOWN, q931.NPI_ISDN)
    assert message.calling_party_number is None
    assert message.cause is None
    assert message.bearer_capability == BearerCapability()


def test_release_complete_with_cause_matches_hand_built_bytes() -> None:
    message = Q931Message(q931.RELEASE_COMPLETE, 0x1234, True, [Cause(q931.CAUSE_NORMAL_CALL_CLEARING).to_ie()])
    assert encode(message) == RELEASE_COMPLETE_BYTES
    decoded = decode(RELEASE_COMPLETE_BYTES)
    assert decoded.from_destination is True
    assert decoded.call_reference == 0x1234
    assert decoded.cause is not None and decoded.cause.value == 16
    assert decoded.cause.location == q931.LOCATION_USER


def test_alerting_with_progress_indicator_matches_hand_built_bytes() -> None:
    message = Q931Message(q931.ALERTING, 0x1234, True, [ProgressIndicator(q931.PROGRESS_INBAND_AVAILABLE).to_ie()])
    assert encode(message) == ALERTING_BYTES


@pytest.mark.parametrize(("typed", "content_hex"), [
    # speech, 64 kbit/s, G.711 A-law: 1 00 00000, 1 00 10000, 1 01 00011
    (BearerCapability(q931.ITC_SPEECH, q931.RATE_64K, q931.L1_G711_ALAW), "8090a3"),
    # multirate 6 x 64 kbit/s: 1 00 11000, octet 4.1 1 0000110, then H.221
    (BearerCapability(q931.ITC_UNRESTRICTED_DIGITAL, q931.RATE_MULTIRATE, q931.L1_H221_H242, rate_multiplier=6),
     "889886a5"),
    # no layer 1 octet
    (BearerCapability(q931.ITC_UNRESTRICTED_DIGITAL, q931.RATE_384K, None), "8893"),
    # cause with octet 3a: 0 00 0 0100 (location RLN, ext 0), 1 0000000 (Q.931), 1 0010001 (busy)
    (Cause(q931.CAUSE_USER_BUSY, q931.LOCATION_PUBLIC_REMOTE, recommendation=0), "048091"),
    (Cause(q931.CAUSE_NO_ROUTE_TO_DESTINATION, diagnostics=b"\x01\x02"), "80830102"),
    # call state: 00 001010 (ITU, active)
    (CallState(10), "0a"),
    (Facility(b"\x91\xa1\x00"), "91a100"),
    # progress: 1 00 0 0010 (public network local), 1 0000001 (not end-to-end ISDN)
    (ProgressIndicator(q931.PROGRESS_NOT_END_TO_END_ISDN, q931.LOCATION_PUBLIC_LOCAL), "8281"),
    (NotificationIndicator(1), "81"),
    (Display("Zo\u00eb"), "5a6feb"),
    (KeypadFacility("*12#"), "2a313223"),
    (Signal(0x3F), "3f"),
    # calling: 0 000 0001 (ext 0: octet 3a follows), 1 00 000 11 (allowed, network provided)
    (CallingPartyNumber("1001", presentation=q931.PRESENTATION_ALLOWED, screening=q931.SCREENING_NETWORK_PROVIDED),
     "018331303031"),
    (CallingPartyNumber("1001"), "8131303031"),
    # called: 1 010 1001 (national number, private plan)
    (CalledPartyNumber("55", q931.TON_NATIONAL, q931.NPI_PRIVATE), "a93535"),
    # redirecting: 0 001 0001 (international, E.164), 0 01 000 00 (restricted, not screened),
    #              1 000 1111 (unconditional)
    (RedirectingNumber("4930", q931.TON_INTERNATIONAL, presentation=q931.PRESENTATION_RESTRICTED,
                       reason=q931.REDIRECTION_UNCONDITIONAL), "11208f34393330"),
    (RedirectingNumber("7", presentation=0, screening=1), "018137"),
    (UserUser(b"\x20\x00", protocol_discriminator=0x05), "052000"),
])
def test_typed_ie_content_matches_hand_built_bytes(typed: TypedIE, content_hex: str) -> None:
    content = bytes.fromhex(content_hex)
    assert typed.to_content() == content
    assert type(typed).from_content(content) == typed


# --- round trips ---------------------------------------------------------------------------------

ALL_TYPED_IES: list[TypedIE] = [
    BearerCapability(),
    BearerCapability(q931.ITC_SPEECH, q931.RATE_64K, q931.L1_G711_ULAW),
    BearerCapability(q931.ITC_VIDEO, q931.RATE_MULTIRATE, q931.L1_H221_H242, rate_multiplier=30),
    BearerCapability(q931.ITC_AUDIO_3_1_KHZ, q931.RATE_64K, q931.L1_V110, layer1_extra=b"\x41\x8a",
                     trailing=b"\xc2"),
    BearerCapability(q931.ITC_UNRESTRICTED_DIGITAL, q931.RATE_PACKET_MODE, None,
                     transfer_mode=q931.TRANSFER_MODE_PACKET, trailing=b"\xc6"),
    Cause(),
    Cause(q931.CAUSE_INTERWORKING, q931.LOCATION_BEYOND_INTERWORKING, q931.CODING_NATIONAL, 4, b"\x7f"),
    CallState(),
    CallState(63, q931.CODING_NETWORK),
    Facility(),
    Facility(bytes(range(255))),
    ProgressIndicator(),
    ProgressIndicator(q931.PROGRESS_INTERWORKING, q931.LOCATION_TRANSIT, q931.CODING_ISO),
    NotificationIndicator(),
    NotificationIndicator(0x71, b"\xa1\x02"),
    Display(),
    Display("H.323 caller \u00e9\u00ff"),
    KeypadFacility("0123456789*#"),
    Signal(),
    Signal(0xFF),
    CallingPartyNumber(),
    CallingPartyNumber("+4930", q931.TON_SUBSCRIBER, q931.NPI_NATIONAL, q931.PRESENTATION_NOT_AVAILABLE,
                       q931.SCREENING_USER_VERIFIED_FAILED),
    CalledPartyNumber("1002"),
    CalledPartyNumber("", q931.TON_ABBREVIATED, q931.NPI_UNKNOWN),
    RedirectingNumber("99"),
    RedirectingNumber("99", presentation=q931.PRESENTATION_ALLOWED),
    RedirectingNumber("99", presentation=q931.PRESENTATION_ALLOWED, reason=q931.REDIRECTION_BUSY),
    UserUser(),
    UserUser(bytes(1000), protocol_discriminator=0x04),
]


@pytest.mark.parametrize("typed", ALL_TYPED_IES, ids=lambda typed: type(typed).__name__)
def test_every_typed_ie_round_trips_through_content_and_a_message(typed: TypedIE) -> None:
    assert type(typed).from_content(typed.to_content()) == typed
    message = Q931Message(q931.INFORMATION, 7, ies=[typed.to_ie()])
    decoded = decode(encode(message))
    assert decoded == message
    assert decoded.get_typed(type(typed)) == typed
    assert q931.parse_ie(decoded.ies[0]) == typed
    assert type(typed).from_ie(decoded.ies[0]) == typed


def test_every_typed_ie_class_is_covered_and_registered() -> None:
    covered = {type(typed) for typed in ALL_TYPED_IES}
    assert covered == set(q931.TYPED_IES.values())
    assert {cls.IE_ID for cls in covered} == {0x04, 0x08, 0x14, 0x1C, 0x1E, 0x27, 0x28, 0x2C, 0x34, 0x6C,
                                             0x70, 0x74, 0x7E}


H225_TYPES = {
    "ALERTING": 0x01, "CALL_PROCEEDING": 0x02, "CONNECT": 0x07, "CONNECT_ACK": 0x0F, "PROGRESS": 0x03,
    "SETUP": 0x05, "SETUP_ACK": 0x0D, "RELEASE_COMPLETE": 0x5A, "FACILITY": 0x62, "NOTIFY": 0x6E,
    "STATUS": 0x7D, "STATUS_ENQUIRY": 0x75, "INFORMATION": 0x7B, "RELEASE": 0x4D,
}


@pytest.mark.parametrize(("name", "value"), sorted(H225_TYPES.items()))
def test_message_type_constants_and_names(name: str, value: int) -> None:
    assert getattr(q931, name) == value
    assert q931.message_type_name(value) == name
    assert value in q931.H225_MESSAGE_TYPES


def test_unknown_message_type_has_a_readable_name() -> None:
    assert q931.message_type_name(0x77) == "UNKNOWN_0x77"


@pytest.mark.parametrize("message_type", sorted(H225_TYPES.values()))
@pytest.mark.parametrize(("length", "reference", "flag"), [(2, 0x7FFF, True), (2, 0, False), (1, 0x7F, True),
                                                           (0, 0, False)])
def test_every_message_type_round_trips(message_type: int, length: int, reference: int, flag: bool) -> None:
    message = Q931Message(message_type, reference, flag, [
        Cause(q931.CAUSE_NORMAL_UNSPECIFIED).to_ie(), Display("x").to_ie(), UserUser(b"\x10\x20").to_ie(),
    ], call_reference_length=length)
    data = encode(message)
    assert data[1] == length
    assert data[2 + length] == message_type
    decoded = decode(data)
    assert decoded == message
    assert encode(decoded) == data


def test_one_octet_call_reference_keeps_flag_and_seven_bit_value() -> None:
    message = decode(bytes.fromhex("080185" "7d"))
    assert (message.call_reference_length, message.from_destination, message.call_reference) == (1, True, 5)


def test_dummy_call_reference_has_no_value_octets() -> None:
    message = decode(bytes.fromhex("0800" "75"))
    assert (message.call_reference_length, message.call_reference, message.message_type) == (0, 0, q931.STATUS_ENQUIRY)
    assert message.ies == []


def test_fifteen_bit_call_reference_excludes_the_flag_bit() -> None:
    message = decode(bytes.fromhex("0802ffff" "05"))
    assert message.from_destination is True
    assert message.call_reference == 0x7FFF


# --- unknown, single-octet and shifted IEs --------------------------------------------------------

# SETUP with: sending complete (a1), congestion level (b1), repeat indicator (d2), unknown 0x55,
# a non-locking shift to codeset 6 (9e) applying to one 0x7e IE with a ONE-octet length,
# a user-user IE back in codeset 0 (two-octet length), a locking shift to codeset 5 (95) and
# a 0x28 IE in codeset 5 (not a display).
EXOTIC_BYTES = bytes.fromhex(
    "0802000105" "a1" "b1" "d2" "5503010203" "9e" "7e02abcd" "7e00020501" "95" "2801ff" "a0"
)


def test_unknown_single_octet_and_shifted_ies_round_trip_byte_exactly() -> None:
    message = decode(EXOTIC_BYTES)
    assert [ie.id for ie in message.ies] == [0xA1, 0xB1, 0xD2, 0x55, 0x9E, 0x7E, 0x7E, 0x95, 0x28, 0xA0]
    assert message.ies[3] == IE(0x55, b"\x01\x02\x03")
    assert message.ies[5] == IE(0x7E, b"\xab\xcd")
    assert all(ie.content == b"" for ie in message.ies if ie.single_octet)
    assert encode(message) == EXOTIC_BYTES


def test_codesets_are_tracked_and_accessors_only_see_codeset_zero() -> None:
    message = decode(EXOTIC_BYTES)
    codesets = [codeset for codeset, _ in message.iter_ies()]
    assert codesets == [0, 0, 0, 0, 0, 6, 0, 0, 5, 5]
    assert message.get_ie(0x7E, codeset=6) == IE(0x7E, b"\xab\xcd")
    assert message.user_user == b"\x01"
    assert message.display is None
    assert message.get_ie(0x28, codeset=5) == IE(0x28, b"\xff")
    assert message.get_ie(q931.IE_SENDING_COMPLETE) == q931.SENDING_COMPLETE


def test_user_user_in_another_codeset_has_a_one_octet_length() -> None:
    message = Q931Message(q931.SETUP, 1, ies=[q931.shift(7), IE(0x7E, b"\x05xyz")])
    assert encode(message) == bytes.fromhex("0802000105" "97" "7e04") + b"\x05xyz"


def test_ie_names_are_readable() -> None:
    assert q931.ie_name(0x70) == "called party number"
    assert q931.ie_name(0x9E) == "non-locking shift to codeset 6"
    assert q931.ie_name(0x96) == "locking shift to codeset 6"
    assert q931.ie_name(0x55) == "IE 0x55"


# --- message helpers ------------------------------------------------------------------------------

def test_set_ie_replaces_an_existing_ie() -> None:
    message = decode(SETUP_BYTES)
    message.set_ie(CalledPartyNumber("2000"))
    assert message.called_party_number == CalledPartyNumber("2000")
    assert len(message.ies) == 4


def test_set_ie_inserts_in_ascending_order_before_shifts() -> None:
    message = Q931Message(q931.SETUP, 1, ies=[
        q931.SENDING_COMPLETE, BearerCapability().to_ie(), UserUser(b"").to_ie(), q931.shift(6), IE(0x28, b"z"),
    ])
    message.set_ie(Display("d"))
    message.set_ie(CallingPartyNumber("1"))
    message.set_ie(IE(0x7F, b"e"))
    assert [ie.id for ie in message.ies] == [0xA1, 0x04, 0x28, 0x6C, 0x7E, 0x7F, 0x96, 0x28]
    assert message.display == "d"


def test_set_ie_puts_a_new_single_octet_ie_first() -> None:
    message = Q931Message(q931.SETUP, 1, ies=[BearerCapability().to_ie()])
    message.set_ie(q931.SENDING_COMPLETE)
    assert message.ies[0] == q931.SENDING_COMPLETE
    with pytest.raises(EncodeError):
        message.set_ie(q931.shift(5))


def test_remove_ie_removes_every_codeset_zero_instance() -> None:
    message = Q931Message(q931.SETUP, 1, ies=[Display("a").to_ie(), Display("b").to_ie(), q931.shift(6),
                                              IE(0x28, b"c")])
    assert message.remove_ie(q931.IE_DISPLAY) == 2
    assert message.ies == [q931.shift(6), IE(0x28, b"c")]


def test_get_ies_returns_repeated_ies_in_order() -> None:
    message = Q931Message(q931.SETUP, 1, ies=[BearerCapability().to_ie(), q931.InformationElement(0xD2),
                                              BearerCapability(q931.ITC_SPEECH).to_ie()])
    assert [BearerCapability.from_ie(ie).transfer_capability for ie in message.get_ies(0x04)] == [8, 0]


def test_accessors_return_none_when_the_ie_is_absent() -> None:
    message = Q931Message(q931.CONNECT, 3)
    assert (message.user_user, message.display, message.cause, message.called_party_number,
            message.calling_party_number, message.bearer_capability) == (None,) * 6


def test_accessor_raises_decode_error_for_a_malformed_ie() -> None:
    message = Q931Message(q931.RELEASE_COMPLETE, 3, ies=[IE(q931.IE_CAUSE, b"\x00")])
    with pytest.raises(DecodeError):
        message.cause  # noqa: B018


def test_from_ie_rejects_another_identifier() -> None:
    with pytest.raises(DecodeError):
        Cause.from_ie(Display("x").to_ie())


# --- octet extension bits in numbers ---------------------------------------------------------------

def test_calling_number_octet_3a_is_not_taken_for_a_digit() -> None:
    number = CallingPartyNumber.from_content(bytes.fromhex("21") + b"\xa0" + b"123")
    assert number == CallingPartyNumber("123", q931.TON_NATIONAL, q931.NPI_ISDN, q931.PRESENTATION_RESTRICTED, 0)


def test_calling_number_without_octet_3a_has_no_presentation() -> None:
    number = CallingPartyNumber.from_content(b"\x81123")
    assert number.presentation is None
    assert number.digits == "123"


def test_redirecting_number_reads_octets_3a_and_3b() -> None:
    number = RedirectingNumber.from_content(b"\x01\x03\x8a" + b"77")
    assert (number.presentation, number.screening, number.reason, number.digits) == (0, 3, 0xA, "77")


def test_redirecting_number_with_only_octet_3a() -> None:
    number = RedirectingNumber.from_content(b"\x01\x83" + b"77")
    assert (number.presentation, number.screening, number.reason, number.digits) == (0, 3, None, "77")


@pytest.mark.parametrize(("cls", "content"), [
    (CalledPartyNumber, b"\x01\x8312"),  # called party number has no octet 3a
    (CallingPartyNumber, b"\x01\x03\x8f1"),  # calling party number has no octet 3b
    (RedirectingNumber, b"\x01\x03\x0f\x8f1"),  # no octet 3c
    (CallingPartyNumber, b"\x01"),  # octet 3a announced but missing
    (RedirectingNumber, b"\x01\x03"),  # octet 3b announced but missing
    (CalledPartyNumber, b""),  # octet 3 missing
    (CalledPartyNumber, b"\x81\xb1"),  # digit with bit 8 set
])
def test_malformed_numbers_raise_decode_error(cls: type[TypedIE], content: bytes) -> None:
    with pytest.raises(DecodeError):
        cls.from_content(content)


# --- typed IE errors and leniency --------------------------------------------------------------------

@pytest.mark.parametrize(("cls", "content"), [
    (BearerCapability, b""),
    (BearerCapability, b"\x88"),
    (BearerCapability, b"\x08\x90"),  # octet 3a does not exist in bearer capability
    (BearerCapability, b"\x88\x10\xa5"),  # octets 4a/4b
    (BearerCapability, b"\x88\x98"),  # multirate without octet 4.1
    (BearerCapability, b"\x88\x90\x21"),  # layer 1 octet 5a announced but missing
    (Cause, b""),
    (Cause, b"\x80"),
    (Cause, b"\x00\x80"),  # octet 3a present, cause value missing
    (CallState, b""),
    (CallState, b"\x01\x02"),
    (ProgressIndicator, b"\x80"),
    (ProgressIndicator, b"\x80\x88\x00"),
    (NotificationIndicator, b""),
    (KeypadFacility, b"\x81"),
    (Signal, b""),
    (Signal, b"\x01\x01"),
    (UserUser, b""),
])
def test_malformed_typed_content_raises_decode_error(cls: type[TypedIE], content: bytes) -> None:
    with pytest.raises(DecodeError):
        cls.from_content(content)


def test_bearer_capability_accepts_multirate_octet_4_with_extension_bit_clear() -> None:
    # Some stacks send octet 4 = 0 00 11000 before octet 4.1; it still means multirate.
    parsed = BearerCapability.from_content(bytes.fromhex("881886a5"))
    assert (parsed.transfer_rate, parsed.rate_multiplier, parsed.layer1_protocol) == (q931.RATE_MULTIRATE, 6, 5)
    assert parsed.to_content() == bytes.fromhex("889886a5")


def test_cause_ignores_spare_bit_and_keeps_diagnostics() -> None:
    parsed = Cause.from_content(b"\x90\x9f\x01")
    assert (parsed.value, parsed.location, parsed.diagnostics) == (31, 0, b"\x01")


@pytest.mark.parametrize("typed", [
    BearerCapability(transfer_capability=32),
    BearerCapability(transfer_rate=q931.RATE_MULTIRATE),
    BearerCapability(rate_multiplier=2),
    BearerCapability(layer1_protocol=None, layer1_extra=b"\x81"),
    BearerCapability(layer1_extra=b"\x81\x81"),
    BearerCapability(layer1_protocol=None, trailing=b"\xa5"),
    Cause(value=128),
    Cause(location=16),
    CallState(value=64),
    ProgressIndicator(description=200),
    NotificationIndicator(description=-1),
    Display("\u20ac"),
    Display("x" * 256),
    KeypadFacility("\u00e9"),
    Signal(256),
    CalledPartyNumber("\u00e9"),
    CalledPartyNumber("1", type_of_number=8),
    CallingPartyNumber("1", screening=1),
    CallingPartyNumber("1", presentation=4),
    RedirectingNumber("1", reason=1),
    UserUser(protocol_discriminator=256),
    UserUser(bytes(65535)),
    Facility("text"),  # type: ignore[arg-type]
])
def test_out_of_range_typed_values_raise_encode_error(typed: TypedIE) -> None:
    with pytest.raises(EncodeError):
        typed.to_content()


# --- message-level errors --------------------------------------------------------------------------

@pytest.mark.parametrize("data_hex", [
    "",
    "08",
    "0802",
    "0803000000" "05",  # call reference length 3
    "0812123405",  # spare bits in the call reference length octet
    "08021234",  # message type missing
    "080212",  # call reference truncated
    "080012" "70",  # IE length missing
    "0800127003" "8131",  # IE content truncated
    "0800127e00",  # user-user length truncated
    "0800127e0005" "05aabb",  # user-user content truncated
])
def test_truncated_or_garbage_messages_raise_decode_error(data_hex: str) -> None:
    with pytest.raises(DecodeError):
        decode(bytes.fromhex(data_hex))


@pytest.mark.parametrize("message", [
    Q931Message(q931.SETUP, 0x8000),
    Q931Message(q931.SETUP, -1),
    Q931Message(q931.SETUP, 0x80, call_reference_length=1),
    Q931Message(q931.SETUP, 1, call_reference_length=0),
    Q931Message(q931.SETUP, 0, True, call_reference_length=0),
    Q931Message(q931.SETUP, 1, call_reference_length=3),
    Q931Message(256, 1),
    Q931Message(q931.SETUP, 1, protocol_discriminator=-1),
    Q931Message(q931.SETUP, 1, ies=[IE(0x28, bytes(256))]),
    Q931Message(q931.SETUP, 1, ies=[IE(0x7E, bytes(65536))]),
    Q931Message(q931.SETUP, 1, ies=[IE(0xA1, b"x")]),
    Q931Message(q931.SETUP, 1, ies=[IE(0x100, b"")]),
    Q931Message(q931.SETUP, 1, ies=[IE(0x28, "text")]),  # type: ignore[arg-type]
    Q931Message(q931.SETUP, 1, ies=[Display("x")]),  # type: ignore[list-item]
])
def test_unencodable_messages_raise_encode_error(message: Q931Message) -> None:
    with pytest.raises(EncodeError):
        encode(message)


def test_largest_user_user_ie_round_trips() -> None:
    message = Q931Message(q931.FACILITY, 9, ies=[IE(0x7E, bytes(65535))])
    data = encode(message)
    assert data[6:8] == b"\xff\xff"
    assert decode(data) == message


# --- robustness: fuzzing ---------------------------------------------------------------------------

SEEDS = [SETUP_BYTES, RELEASE_COMPLETE_BYTES, ALERTING_BYTES, EXOTIC_BYTES,
         encode(Q931Message(q931.SETUP, 0x55, ies=[typed.to_ie() for typed in ALL_TYPED_IES[:20]]))]


def _fuzz_inputs(rng: random.Random, count: int) -> list[bytes]:
    """Truncated, bit-flipped, byte-spliced, random and header-plus-random inputs."""
    inputs: list[bytes] = []
    for index in range(count):
        seed = SEEDS[index % len(SEEDS)]
        kind = index % 5
        if kind == 0:
            data = seed[:rng.randrange(len(seed) + 1)]
        elif kind == 1:
            mutated = bytearray(seed)
            for _ in range(rng.randint(1, 6)):
                mutated[rng.randrange(len(mutated))] ^= 1 << rng.randrange(8)
            data = bytes(mutated)
        elif kind == 2:
            mutated = bytearray(seed)
            position = rng.randrange(len(mutated))
            mutated[position:position + rng.randrange(4)] = rng.randbytes(rng.randrange(4))
            data = bytes(mutated)
        elif kind == 3:
            data = rng.randbytes(rng.randrange(80))
        else:
            data = bytes((8, 2, rng.randrange(256), rng.randrange(256), rng.randrange(256))) \
                + rng.randbytes(rng.randrange(60))
        inputs.append(data)
    return inputs


def _exercise(data: bytes) -> bool:
    """Decode and parse every typed IE; check round trips. True if the message decoded."""
    try:
        message = decode(data)
    except DecodeError:
        return False
    assert encode(message) == data
    for codeset, ie in message.iter_ies():
        if codeset != 0:
            continue
        try:
            parsed = q931.parse_ie(ie)
        except DecodeError:
            continue
        if isinstance(parsed, TypedIE):
            # Anything we can parse we can build again, and that canonical form is stable.
            assert type(parsed).from_content(parsed.to_content()) == parsed
    for name in ("user_user", "display", "cause", "called_party_number", "calling_party_number"):
        try:
            getattr(message, name)
        except DecodeError:
            pass
    return True


def test_fuzzed_inputs_raise_only_decode_error_and_are_fast() -> None:
    rng = random.Random(0x0931)
    inputs = _fuzz_inputs(rng, 100_000)
    decoded = sum(_exercise(data) for data in inputs)
    assert 1000 < decoded < len(inputs)  # both the success and the error paths were reached
    worst, data = slowest(inputs, _exercise, 0.05)
    assert worst < 0.05, f"input {data.hex()} took {worst * 1000:.1f} ms"  # type: ignore[union-attr]


def test_fuzzed_ie_contents_raise_only_decode_error() -> None:
    rng = random.Random(0x7E)
    contents = [typed.to_content() for typed in ALL_TYPED_IES if len(typed.to_content()) < 300]
    parsed = 0
    for index in range(20_000):
        if index % 2:
            content = rng.randbytes(rng.randrange(12))
        else:
            mutated = bytearray(contents[index % len(contents)])
            if mutated:
                mutated[rng.randrange(len(mutated))] ^= 1 << rng.randrange(8)
            content = bytes(mutated[:rng.randrange(len(mutated) + 1)]) if index % 4 == 0 else bytes(mutated)
        for cls in q931.TYPED_IES.values():
            try:
                typed = cls.from_content(content)
            except DecodeError:
                continue
            parsed += 1
            assert cls.from_content(typed.to_content()) == typed
    assert parsed > 10_000


def test_decoding_a_large_message_is_linear() -> None:
    data = bytes.fromhex("0802000105") + bytes.fromhex("280178") * 2 + b"\xa1" * 100_000 \
        + bytes.fromhex("2c0131") * 50_000 + bytes.fromhex("7effff") + bytes(0xFFFF)
    started = time.perf_counter()
    message = decode(data)
    elapsed = time.perf_counter() - started
    assert len(message.ies) == 150_003
    assert elapsed < 2.0, f"decoding took {elapsed:.2f}s"


@given(st.binary(max_size=120))
@settings(max_examples=1000, deadline=None)
def test_any_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    _exercise(data)


_ie_strategy = st.one_of(
    st.builds(IE, st.integers(0x80, 0xFF)),
    st.builds(IE, st.integers(0, 0x7F), st.binary(max_size=40)),
)


@given(
    message_type=st.integers(0, 255),
    length=st.sampled_from([0, 1, 2]),
    reference=st.integers(0, 0x7FFF),
    flag=st.booleans(),
    ies=st.lists(_ie_strategy, max_size=12),
)
@settings(max_examples=500, deadline=None)
def test_any_valid_message_round_trips(message_type: int, length: int, reference: int, flag: bool,
                                       ies: list[InformationElement]) -> None:
    if length == 0:
        reference, flag = 0, False
    elif length == 1:
        reference &= 0x7F
    message = Q931Message(message_type, reference, flag, ies, call_reference_length=length)
    assert decode(encode(message)) == message
