"""The H.225.0 codec: round trips, the asn1tools fixes A1-A4, errors, cache."""

from __future__ import annotations

import os
import random
import shutil

import pytest

from gatekeeper.errors import DecodeError, EncodeError
from gatekeeper.h225 import codec, ras

from asn1_values import compiled, full_ras, make_value, minimal_ras, ras_alternatives

RAS_KINDS = ras_alternatives()
UUIE_BODIES = [m.name for m in compiled("H323-UU-PDU").root_members[0].root_index_to_member.values()] + [
    m.name for m in compiled("H323-UU-PDU").root_members[0].additions_index_to_member.values()]


def uuie_with_body(body: str, seed: int, full: bool):
    """An H323-UserInformation whose message body is ``body``."""
    rng = random.Random(seed)
    value = make_value(compiled("H323-UserInformation"), rng, full)
    choice = compiled("H323-UU-PDU").root_members[0]
    members = list(choice.root_index_to_member.values())
    members += list(choice.additions_index_to_member.values())
    member = next(m for m in members if m.name == body)
    value["h323-uu-pdu"]["h323-message-body"] = (body, make_value(member, rng, full, 2))
    return value


def test_the_modules_define_every_ras_message_of_h225_v7():
    assert len(RAS_KINDS) == 33
    assert {"gatekeeperRequest", "registrationRequest", "admissionRequest", "infoRequestResponse",
            "serviceControlIndication", "admissionConfirmSequence"} <= set(RAS_KINDS)
    assert len(UUIE_BODIES) == 13


@pytest.mark.parametrize("kind", RAS_KINDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_ras_message_round_trips_with_everything_filled_in(kind, seed):
    value = full_ras(kind, seed)
    data = codec.encode_ras(value)
    assert codec.decode_ras(data) == value


@pytest.mark.parametrize("kind", RAS_KINDS)
def test_every_ras_message_round_trips_minimal(kind):
    value = minimal_ras(kind)
    assert codec.decode_ras(codec.encode_ras(value)) == value


@pytest.mark.parametrize("body", UUIE_BODIES)
@pytest.mark.parametrize("full", [True, False], ids=["full", "minimal"])
def test_every_uuie_round_trips(body, full):
    value = uuie_with_body(body, 1, full)
    assert codec.decode_uuie(codec.encode_uuie(value)) == value


def test_full_values_really_carry_extension_additions():
    value = full_ras("registrationRequest")[1]
    for name in ("keepAlive", "supportsAltGK", "multipleCalls", "language", "transportQOS"):
        assert name in value
    decoded = codec.decode_ras(codec.encode_ras(("registrationRequest", value)))[1]
    assert set(decoded) == set(value)


# --- A1: empty extension additions and alternatives are one zero octet ---------------------

def test_a1_null_extension_reason_encodes_as_one_zero_octet():
    rrj = codec.encode_ras(ras.rrj(7, "securityDenial"))
    arj = codec.encode_ras(ras.arj(7, "securityDenial"))
    assert rrj.endswith(bytes([0x83, 0x01, 0x00]))   # extension index 3, length 1, 00
    assert arj.endswith(bytes([0x80, 0x01, 0x00]))   # extension index 0, length 1, 00
    assert codec.decode_ras(rrj)[1]["rejectReason"] == ("securityDenial", None)
    assert codec.decode_ras(arj)[1]["rejectReason"] == ("securityDenial", None)


def _rrq(**extra):
    fields = {
        "requestSeqNum": 9, "protocolIdentifier": ras.PROTOCOL_IDENTIFIER,
        "discoveryComplete": True,
        "callSignalAddress": [ras.transport_to_asn(("10.0.0.5", 1720))],
        "rasAddress": [ras.transport_to_asn(("10.0.0.5", 1719))],
        "terminalType": ras.endpoint_type_value("terminal"),
        "endpointVendor": {"vendor": {"t35CountryCode": 9, "t35Extension": 0, "manufacturerCode": 61}},
        "keepAlive": False, "willSupplyUUIEs": False, "maintainConnection": False,
        "supportsAssignedGK": False,
    }
    fields.update(extra)
    return ("registrationRequest", fields)


def test_a1_null_extension_addition_encodes_as_one_zero_octet():
    with_null = codec.encode_ras(_rrq(supportsAltGK=None))
    without = codec.encode_ras(_rrq())
    # The supportsAltGK open type is the only difference: length 1, content 00.
    assert len(with_null) == len(without) + 2
    assert b"\x01\x00" in with_null[len(without) - 4:]


# --- A2: a correct NULL addition does not shift later additions ----------------------------

def test_a2_supports_alt_gk_then_multiple_calls_decodes_multiple_calls_true():
    data = codec.encode_ras(_rrq(supportsAltGK=None, multipleCalls=True))
    decoded = codec.decode_ras(data)[1]
    assert decoded["multipleCalls"] is True
    assert decoded["supportsAltGK"] is None
    assert ras.read(("registrationRequest", decoded)).multiple_calls is True


def test_a2_an_addition_that_overruns_its_open_type_is_refused():
    kind, fields = _rrq(multipleCalls=True)
    del fields["supportsAssignedGK"]   # so that multipleCalls is the last addition
    data = bytearray(codec.encode_ras((kind, fields)))
    # The last open type is multipleCalls: "01 80". Claim a length of 0 for it:
    # the BOOLEAN then reads past its open type.
    assert data[-2:] == b"\x01\x80"
    data[-2] = 0x00
    with pytest.raises(DecodeError):
        codec.decode_ras(bytes(data) + b"\x00")


# --- A3: a missing mandatory addition never silently drops later ones -----------------------

def test_a3_missing_mandatory_addition_before_a_present_one_is_refused():
    kind, fields = ras.rcf(1, [("10.0.0.1", 1720)], "1_endp", "GK", time_to_live=60,
                           supports_additive=True)
    del fields["willRespondToIRR"]
    with pytest.raises(EncodeError, match="willRespondToIRR"):
        codec.encode_ras((kind, fields))


def test_a3_additions_before_the_first_mandatory_one_encode_without_it():
    kind, fields = ras.rcf(1, [("10.0.0.1", 1720)], "1_endp", "GK", time_to_live=60)
    del fields["willRespondToIRR"]
    del fields["maintainConnection"]
    decoded = codec.decode_ras(codec.encode_ras((kind, fields)))[1]
    assert decoded["timeToLive"] == 60


# --- A4: constraints are checked when encoding -------------------------------------------

@pytest.mark.parametrize("change", [
    {"requestSeqNum": 0},
    {"requestSeqNum": 65536},
    {"rasAddress": [("ipAddress", {"ip": b"\x01\x02\x03\x04", "port": 70000})]},
    {"rasAddress": [("ipAddress", {"ip": b"\x01\x02\x03", "port": 1719})]},
    {"terminalAlias": [("dialledDigits", "12a4")]},
    {"terminalAlias": [("h323-ID", "x" * 257)]},
    {"timeToLive": 0},
    {"gatekeeperIdentifier": ""},
], ids=["seq0", "seq-too-big", "port", "ip-size", "digit-alphabet", "id-too-long", "ttl0", "empty-gkid"])
def test_a4_out_of_range_values_are_refused(change):
    kind, fields = _rrq()
    fields.update(change)
    with pytest.raises(EncodeError):
        codec.encode_ras((kind, fields))


def test_encode_error_names_the_message_kind():
    with pytest.raises(EncodeError) as info:
        codec.encode_ras(("gatekeeperConfirm", {"requestSeqNum": 1}))
    assert info.value.kind == "gatekeeperConfirm"


# --- unknown extensions from newer peers -------------------------------------------------

def test_unknown_sequence_additions_are_skipped():
    # UnknownMessageResponse seq 16, with 6 additions of which the 4th
    # (messageNotUnderstood) and two unknown later ones are present.
    data = bytes.fromhex("62000f0a3803020102" "02abcd" "0100")
    kind, value = codec.decode_ras(data)
    assert kind == "unknownMessageResponse"
    assert value == {"requestSeqNum": 16, "messageNotUnderstood": b"\x01\x02"}


def test_unknown_choice_alternative_is_kept_and_reencodes_to_the_same_bytes():
    data = bytes.fromhex("9403aabbcc")   # RasMessage extension alternative 20
    kind, value = codec.decode_ras(data)
    assert kind == codec.UNKNOWN_ALTERNATIVE_PREFIX + "20"
    assert value == b"\xaa\xbb\xcc"
    assert codec.encode_ras((kind, value)) == data
    assert ras.read((kind, value)).seq == 0


# --- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [b"", b"\x00", b"\xff" * 3, b"\x0e\xc0", bytes(200), b"\xff" * 70000])
def test_garbage_raises_decode_error_only(data):
    with pytest.raises(DecodeError):
        codec.decode_ras(data)


def test_decode_error_names_the_kind_when_it_could_be_read():
    data = codec.encode_ras(_rrq())
    with pytest.raises(DecodeError) as info:
        codec.decode_ras(data[:12])
    assert info.value.kind == "registrationRequest"
    assert "truncated" in info.value.reason


def test_decode_of_non_bytes_is_a_decode_error():
    with pytest.raises(DecodeError):
        codec.decode_ras("not bytes")  # type: ignore[arg-type]


# --- the compiled-spec cache ------------------------------------------------------------------

def test_cache_is_rebuilt_when_a_module_changes(tmp_path, monkeypatch):
    sources = tmp_path / "asn1"
    sources.mkdir()
    for path in codec.ASN1_FILES:
        shutil.copy(path, sources / path.name)
    cache = tmp_path / "cache"
    monkeypatch.setenv("GATEKEEPER_CACHE_DIR", str(cache))
    monkeypatch.setattr(codec, "ASN1_FILES", tuple(sources / p.name for p in codec.ASN1_FILES))

    spec = codec._load_specification()
    first = sorted(cache.glob("*.pickle"))
    assert len(first) == 1
    assert spec.encode("RequestSeqNum", 5) == b"\x00\x04"
    # Loading again reuses the pickle.
    codec._load_specification()
    assert sorted(cache.glob("*.pickle")) == first
    # Any edit of a module makes a new one.
    with open(sources / "h225.asn", "a") as handle:
        handle.write("\n-- edited\n")
    codec._load_specification()
    assert len(list(cache.glob("*.pickle"))) == 2


def test_cache_is_not_used_in_a_directory_others_can_write(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    monkeypatch.setenv("GATEKEEPER_CACHE_DIR", str(shared))
    assert not codec._safe_dir(shared)
    os.chmod(shared, 0o700)
    assert codec._safe_dir(shared)


def test_compiled_tree_uses_the_fixed_classes_everywhere():
    from asn1tools.codecs import per

    count = 0
    for node in codec.compiled_nodes(codec.specification()):
        assert type(node) not in (per.Sequence, per.Set, per.Choice, per.AdditionGroup), node
        count += 1
    assert count > 1000


@pytest.mark.parametrize("seed", range(40))
def test_rcf_with_seq_equals_a_fresh_encoding(seed):
    kind, value = (full_ras if seed % 2 else minimal_ras)("registrationConfirm", seed)
    template = codec.encode_ras((kind, value))
    for seq in (1, 2, 255, 256, 4097, 65535):
        value["requestSeqNum"] = seq
        assert ras.rcf_with_seq(template, seq) == codec.encode_ras((kind, value))
    with pytest.raises(EncodeError):
        ras.rcf_with_seq(template, 0)
