"""Oracle tests: tshark (an independent Q.931/TPKT decoder) decodes what our codec encodes.

Our messages go into a pcap as TPKT over TCP port 1720. tshark must report nothing malformed
and the field values it decodes must equal the values we encoded.

The User-user IEs here carry opaque bytes that are not a valid PER H323-UserInformation, which
tshark's H.225 dissector would report as malformed. These tests therefore run tshark with
``--disable-protocol h225``: the User-user IE header (two-octet length, protocol discriminator)
is still dissected by Q.931, and the user information then shows up as ``data.data``, which lets
us check its exact bytes (and so the two-octet length). H.225.0 UUIE oracle tests, with real
H323-UserInformation content and the H.225 dissector enabled, live elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gatekeeper.h225 import q931
from gatekeeper.h225.q931 import (
    BearerCapability,
    CalledPartyNumber,
    CallingPartyNumber,
    CallState,
    Cause,
    Display,
    InformationElement,
    KeypadFacility,
    NotificationIndicator,
    ProgressIndicator,
    Q931Message,
    RedirectingNumber,
    Signal,
    UserUser,
    encode,
)
from gatekeeper.h225.tpkt import frame
from oracles import (
    CHECK_CHECKSUMS,
    assert_no_malformed,
    requires_tshark,
    run_tshark,
    tshark_fields,
    tshark_pdml,
    write_q931_pcap,
    write_tcp_pcap,
    write_udp_pcap,
)
from testdata import OOH323C_VECTORS

pytestmark = requires_tshark

NO_H225 = ("--disable-protocol", "h225")

CALL_REFERENCE = 0x2A5B
UU_SETUP = bytes.fromhex("deadbeef0102")
UU_CONNECT = bytes.fromhex("00112233")
UU_FACILITY = bytes.fromhex("c0ffee")

# (sent by the caller, message): a routed call as the gatekeeper would relay it.
CALL_FLOW: list[tuple[bool, Q931Message]] = [
    (True, Q931Message(q931.SETUP, CALL_REFERENCE, False, [
        BearerCapability(q931.ITC_UNRESTRICTED_DIGITAL, q931.RATE_MULTIRATE, q931.L1_H221_H242,
                         rate_multiplier=6).to_ie(),
        Display("Alice Example").to_ie(),
        CallingPartyNumber("1001", q931.TON_NATIONAL, q931.NPI_ISDN, q931.PRESENTATION_ALLOWED,
                           q931.SCREENING_NETWORK_PROVIDED).to_ie(),
        CalledPartyNumber("4930123456", q931.TON_INTERNATIONAL, q931.NPI_ISDN).to_ie(),
        UserUser(UU_SETUP).to_ie(),
    ])),
    (False, Q931Message(q931.ALERTING, CALL_REFERENCE, True, [
        ProgressIndicator(q931.PROGRESS_INBAND_AVAILABLE, q931.LOCATION_PRIVATE_REMOTE).to_ie(),
        UserUser(b"\x01").to_ie(),
    ])),
    (False, Q931Message(q931.CONNECT, CALL_REFERENCE, True, [
        BearerCapability(q931.ITC_SPEECH, q931.RATE_64K, q931.L1_G711_ALAW).to_ie(),
        Display("Bob").to_ie(),
        UserUser(UU_CONNECT).to_ie(),
    ])),
    (True, Q931Message(q931.FACILITY, CALL_REFERENCE, False, [UserUser(UU_FACILITY).to_ie()])),
    (False, Q931Message(q931.RELEASE_COMPLETE, CALL_REFERENCE, True, [
        Cause(q931.CAUSE_USER_BUSY, q931.LOCATION_PUBLIC_REMOTE).to_ie(),
        UserUser(b"\x02\x03").to_ie(),
    ])),
]

FIELDS = [
    "tpkt.length", "q931.disc", "q931.call_ref_len", "q931.call_ref", "q931.call_ref_flag",
    "q931.message_type", "q931.information_transfer_capability", "q931.information_transfer_rate",
    "q931.bearer_capability.rate_multiplier", "q931.uil1", "q931.display_information",
    "q931.calling_party_number.digits", "q931.called_party_number.digits", "q931.number_type",
    "q931.numbering_plan", "q931.presentation_ind", "q931.screening_ind", "q931.cause_value",
    "q931.cause_location", "q931.progress_indicator.description", "q931.progress_indicator.location",
    "q931.user.protocol_discriminator", "data.data",
]


def _ints(values: list[str]) -> list[int]:
    """tshark prints integer fields as decimal or 0x-hex depending on the field's base."""
    return [int(value, 0) for value in values]


def _expected_fields(message: Q931Message) -> dict[str, list[int] | list[str]]:
    """The field values tshark must show for one message, derived from the message object."""
    data = encode(message)
    expected: dict[str, list[int] | list[str]] = {
        "tpkt.length": [len(data) + 4],
        "q931.disc": [message.protocol_discriminator],
        "q931.call_ref_len": [message.call_reference_length],
        "q931.message_type": [message.message_type],
        "q931.call_ref_flag": [int(message.from_destination)],
        "q931.call_ref": [message.call_reference],
    }
    bearer = message.bearer_capability
    if bearer is not None:
        expected["q931.information_transfer_capability"] = [bearer.transfer_capability]
        expected["q931.information_transfer_rate"] = [bearer.transfer_rate]
        expected["q931.uil1"] = [bearer.layer1_protocol] if bearer.layer1_protocol is not None else []
        expected["q931.bearer_capability.rate_multiplier"] = (
            [bearer.rate_multiplier] if bearer.rate_multiplier is not None else [])
    expected["q931.display_information"] = [message.display] if message.display is not None else []
    numbers = [n for n in (message.calling_party_number, message.called_party_number) if n is not None]
    expected["q931.number_type"] = [n.type_of_number for n in numbers]
    expected["q931.numbering_plan"] = [n.numbering_plan for n in numbers]
    calling = message.calling_party_number
    expected["q931.calling_party_number.digits"] = [calling.digits] if calling else []
    if calling is not None and calling.presentation is not None:
        expected["q931.presentation_ind"] = [calling.presentation]
        expected["q931.screening_ind"] = [calling.screening]
    called = message.called_party_number
    expected["q931.called_party_number.digits"] = [called.digits] if called else []
    cause = message.cause
    expected["q931.cause_value"] = [cause.value] if cause else []
    expected["q931.cause_location"] = [cause.location] if cause else []
    progress = message.get_typed(ProgressIndicator)
    expected["q931.progress_indicator.description"] = [progress.description] if progress else []
    expected["q931.progress_indicator.location"] = [progress.location] if progress else []
    uu = message.get_typed(UserUser)
    if uu is not None:
        expected["q931.user.protocol_discriminator"] = [uu.protocol_discriminator]
        expected["data.data"] = [uu.data.hex()]
    return expected


def _check_fields(row: dict[str, list[str]], expected: dict[str, list[int] | list[str]]) -> None:
    for name, want in expected.items():
        got = row[name]
        if name == "q931.call_ref":
            got_values: list[int] | list[str] = [int(value.replace(":", ""), 16) for value in got]
        elif name == "data.data":
            got_values = [value.replace(":", "") for value in got]
        elif want and isinstance(want[0], int):
            got_values = _ints(got)
        else:
            got_values = got
        assert got_values == want, f"{name}: tshark shows {got!r}, we encoded {want!r}"


@pytest.fixture(scope="module")
def call_flow_pcap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("q931") / "call_flow.pcap"
    return write_q931_pcap(path, [(from_caller, encode(message)) for from_caller, message in CALL_FLOW])


def test_call_flow_is_dissected_without_malformed_packets(call_flow_pcap: Path) -> None:
    text = run_tshark(call_flow_pcap, (*NO_H225, *CHECK_CHECKSUMS))
    assert_no_malformed(text)
    assert "[Checksum Status: Good]" in text
    assert text.count("\nQ.931\n") == len(CALL_FLOW)
    for name in ("SETUP", "ALERTING", "CONNECT", "FACILITY", "RELEASE COMPLETE"):
        assert f"Message type: {name} (" in text


def test_call_flow_field_values_equal_what_we_encoded(call_flow_pcap: Path) -> None:
    rows = tshark_fields(call_flow_pcap, FIELDS, NO_H225)
    assert len(rows) == len(CALL_FLOW)
    for row, (_, message) in zip(rows, CALL_FLOW):
        _check_fields(row, _expected_fields(message))


def test_setup_fields_spelled_out(call_flow_pcap: Path) -> None:
    """The same check without the expected-value helper, for the Setup alone."""
    setup = tshark_fields(call_flow_pcap, FIELDS, NO_H225)[0]
    assert _ints(setup["q931.message_type"]) == [0x05]
    assert [int(value, 16) for value in setup["q931.call_ref"]] == [CALL_REFERENCE]
    assert _ints(setup["q931.call_ref_flag"]) == [0]
    assert setup["q931.called_party_number.digits"] == ["4930123456"]
    assert setup["q931.calling_party_number.digits"] == ["1001"]
    assert setup["q931.display_information"] == ["Alice Example"]
    assert _ints(setup["q931.bearer_capability.rate_multiplier"]) == [6]
    assert [value.replace(":", "") for value in setup["data.data"]] == [UU_SETUP.hex()]


def test_every_h225_message_type_is_dissected_with_its_type_and_call_reference(tmp_path: Path) -> None:
    types = sorted(q931.H225_MESSAGE_TYPES)
    messages = [Q931Message(message_type, 0x100 + index, bool(index % 2), [Display(f"m{index}").to_ie()])
                for index, message_type in enumerate(types)]
    path = write_q931_pcap(tmp_path / "types.pcap", [encode(message) for message in messages])
    assert_no_malformed(run_tshark(path, NO_H225))
    rows = tshark_fields(path, ["q931.message_type", "q931.call_ref", "q931.call_ref_flag",
                                "q931.display_information"], NO_H225)
    assert [_ints(row["q931.message_type"]) for row in rows] == [[message_type] for message_type in types]
    assert [int(row["q931.call_ref"][0], 16) for row in rows] == [0x100 + index for index in range(len(types))]
    assert [_ints(row["q931.call_ref_flag"]) for row in rows] == [[index % 2] for index in range(len(types))]
    assert [row["q931.display_information"] for row in rows] == [[f"m{index}"] for index in range(len(types))]


def test_every_typed_ie_is_dissected_with_the_values_we_encoded(tmp_path: Path) -> None:
    message = Q931Message(q931.SETUP, 0x0777, False, [
        q931.SENDING_COMPLETE,
        BearerCapability(q931.ITC_SPEECH, q931.RATE_64K, q931.L1_G711_ULAW).to_ie(),
        Cause(q931.CAUSE_NO_ROUTE_TO_DESTINATION, q931.LOCATION_TRANSIT, recommendation=0,
              diagnostics=b"\x05").to_ie(),
        CallState(10).to_ie(),
        ProgressIndicator(q931.PROGRESS_NOT_END_TO_END_ISDN, q931.LOCATION_PUBLIC_LOCAL).to_ie(),
        NotificationIndicator(1).to_ie(),
        Display("caf\u00e9").to_ie(),
        KeypadFacility("12#").to_ie(),
        Signal(0x01).to_ie(),
        CallingPartyNumber("1001", presentation=q931.PRESENTATION_RESTRICTED,
                           screening=q931.SCREENING_USER_VERIFIED_PASSED).to_ie(),
        CalledPartyNumber("1002", q931.TON_SUBSCRIBER, q931.NPI_PRIVATE).to_ie(),
        RedirectingNumber("555", q931.TON_NATIONAL, presentation=q931.PRESENTATION_ALLOWED,
                          screening=q931.SCREENING_NETWORK_PROVIDED, reason=q931.REDIRECTION_NO_REPLY).to_ie(),
        UserUser(b"\x99").to_ie(),
    ])
    path = write_q931_pcap(tmp_path / "ies.pcap", [encode(message)])
    text = run_tshark(path, NO_H225)
    assert_no_malformed(text)
    assert "Sending complete" in text
    fields = ["q931.information_transfer_capability", "q931.uil1", "q931.cause_value", "q931.cause_location",
              "q931.cause.recommendation", "q931.call_state", "q931.progress_indicator.description",
              "q931.progress_indicator.location", "q932.nd", "q931.display_information",
              "q931.keypad_facility", "q931.signal", "q931.calling_party_number.digits",
              "q931.called_party_number.digits", "q931.redirecting_number.digits", "q931.number_type",
              "q931.numbering_plan", "q931.presentation_ind", "q931.screening_ind", "q931.extension.reason",
              "data.data"]
    (row,) = tshark_fields(path, fields, NO_H225)
    assert _ints(row["q931.information_transfer_capability"]) == [q931.ITC_SPEECH]
    assert _ints(row["q931.uil1"]) == [q931.L1_G711_ULAW]
    assert _ints(row["q931.cause_value"]) == [q931.CAUSE_NO_ROUTE_TO_DESTINATION]
    assert _ints(row["q931.cause_location"]) == [q931.LOCATION_TRANSIT]
    assert _ints(row["q931.cause.recommendation"]) == [0]
    assert _ints(row["q931.call_state"]) == [10]
    assert _ints(row["q931.progress_indicator.description"]) == [q931.PROGRESS_NOT_END_TO_END_ISDN]
    assert _ints(row["q931.progress_indicator.location"]) == [q931.LOCATION_PUBLIC_LOCAL]
    assert _ints(row["q932.nd"]) == [1]  # tshark hands this IE to its Q.932 dissector
    # Display is IA5 in Q.931 and tshark shows a latin-1 octet as a replacement character, so
    # compare the raw octets from PDML instead of the shown text.
    (pdml,) = tshark_pdml(path, NO_H225)
    display_octets = [item.value for item in pdml if item.name == "q931.display_information"]
    assert display_octets == ["caf\u00e9".encode("latin-1").hex()]
    assert row["q931.keypad_facility"] == ["12#"]
    assert _ints(row["q931.signal"]) == [1]
    assert row["q931.calling_party_number.digits"] == ["1001"]
    assert row["q931.called_party_number.digits"] == ["1002"]
    assert row["q931.redirecting_number.digits"] == ["555"]
    # calling, called, redirecting, in message order
    assert _ints(row["q931.number_type"]) == [q931.TON_UNKNOWN, q931.TON_SUBSCRIBER, q931.TON_NATIONAL]
    assert _ints(row["q931.numbering_plan"]) == [q931.NPI_ISDN, q931.NPI_PRIVATE, q931.NPI_ISDN]
    assert _ints(row["q931.presentation_ind"]) == [q931.PRESENTATION_RESTRICTED, q931.PRESENTATION_ALLOWED]
    assert _ints(row["q931.screening_ind"]) == [q931.SCREENING_USER_VERIFIED_PASSED,
                                                q931.SCREENING_NETWORK_PROVIDED]
    assert _ints(row["q931.extension.reason"]) == [q931.REDIRECTION_NO_REPLY]
    assert [value.replace(":", "") for value in row["data.data"]] == ["99"]


def test_unknown_and_shifted_ies_are_framed_as_tshark_frames_them(tmp_path: Path) -> None:
    # A non-locking shift to codeset 6 applies to the next IE only, whose length is one octet
    # even though its identifier is 0x7E; then codeset 0 again with an unknown IE 0x55.
    message = Q931Message(q931.INFORMATION, 1, False, [
        InformationElement(0xB1), q931.shift(6, locking=False), InformationElement(0x7E, b"\x01\x02"),
        InformationElement(0x55, b"\xaa\xbb\xcc"), KeypadFacility("5").to_ie(),
    ])
    path = write_q931_pcap(tmp_path / "unknown.pcap", [encode(message)])
    text = run_tshark(path, NO_H225)
    assert_no_malformed(text)
    assert "Non-locking shift to codeset 6" in text
    (row,) = tshark_fields(path, ["q931.data", "q931.keypad_facility"], NO_H225)
    assert [value.replace(":", "") for value in row["q931.data"]] == ["0102", "aabbcc"]
    assert row["q931.keypad_facility"] == ["5"]


@pytest.mark.parametrize(("length", "reference", "flag"), [(0, 0, False), (1, 0x55, True)])
def test_short_call_references_are_dissected(tmp_path: Path, length: int, reference: int, flag: bool) -> None:
    message = Q931Message(q931.STATUS_ENQUIRY, reference, flag, call_reference_length=length)
    path = write_q931_pcap(tmp_path / "cr.pcap", [encode(message)])
    assert_no_malformed(run_tshark(path, NO_H225))
    (row,) = tshark_fields(path, ["q931.call_ref_len", "q931.call_ref", "q931.call_ref_flag",
                                  "q931.message_type"], NO_H225)
    assert _ints(row["q931.call_ref_len"]) == [length]
    assert _ints(row["q931.message_type"]) == [q931.STATUS_ENQUIRY]
    if length:
        assert [int(value, 16) for value in row["q931.call_ref"]] == [reference]
        assert _ints(row["q931.call_ref_flag"]) == [int(flag)]


def test_our_tpkt_frames_joined_and_split_across_segments_are_reassembled(tmp_path: Path) -> None:
    first, second, third = (encode(message) for _, message in CALL_FLOW[:3])
    joined = frame(first) + frame(second)
    framed_third = frame(third)
    # segment 1: two whole TPKT packets; segments 2 and 3: the third packet cut in two
    path = write_tcp_pcap(tmp_path / "tpkt.pcap", [joined, framed_third[:9], framed_third[9:]])
    text = run_tshark(path, NO_H225)
    assert_no_malformed(text)
    rows = tshark_fields(path, ["q931.message_type", "tpkt.length"], NO_H225)
    message_types = [value for row in rows for value in _ints(row["q931.message_type"])]
    assert message_types == [q931.SETUP, q931.ALERTING, q931.CONNECT]
    lengths = [value for row in rows for value in _ints(row["tpkt.length"])]
    assert lengths == [len(first) + 4, len(second) + 4, len(third) + 4]


# --- the oracle helpers themselves -----------------------------------------------------------------

def test_udp_pcap_helper_delivers_real_ras_datagrams_to_the_ras_dissector(tmp_path: Path) -> None:
    """The RAS helper works: real endpoint datagrams decode cleanly with checksums verified."""
    files = sorted(OOH323C_VECTORS.glob("*.hex"))[:3]
    datagrams = [bytes.fromhex("".join(file.read_text().split())) for file in files]
    path = write_udp_pcap(tmp_path / "ras.pcap", datagrams)
    text = run_tshark(path, CHECK_CHECKSUMS)
    assert_no_malformed(text)
    rows = tshark_fields(path, ["udp.dstport", "h225.requestSeqNum"])
    assert [row["udp.dstport"] for row in rows] == [["1719"]] * len(datagrams)
    assert all(row["h225.requestSeqNum"] for row in rows)


def test_oracle_catches_malformed_packets(call_flow_pcap: Path) -> None:
    """With the H.225 dissector on, our opaque user-user bytes are malformed H.225: the helper
    must say so (this is why the tests above disable h225)."""
    with pytest.raises(AssertionError, match="Malformed"):
        assert_no_malformed(run_tshark(call_flow_pcap))
