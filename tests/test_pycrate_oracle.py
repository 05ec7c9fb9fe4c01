"""Oracle tests: pycrate's compiled ITU-T H.225.0 module decodes what we encode to the same value.

pycrate (test-only dependency) ships its own compilation of the Recommendation's ASN.1
(``pycrate_asn1dir.H225``), independent of our modules and of asn1tools. Its aligned-PER
*decoder* is the oracle here (its encoder is not trusted: it writes a stray 0x00 before extension
additions, so nothing below uses it). Every encoding must be decoded by pycrate without error,
consume the whole buffer (only the padding of the last octet may remain), and give the value we
encoded, after both value forms are brought to one (:func:`ours` / :func:`theirs`):

=====================  ============================  ================================
ASN.1                  ours (asn1tools)              pycrate
=====================  ============================  ================================
NULL                   None                          0
OBJECT IDENTIFIER      "0.0.8.2250.0.7"              (0, 0, 8, 2250, 0, 7)
BIT STRING             (bytes, number of bits)       (int value, number of bits)
open type              bytes (our OCTET STRING)      ("_unk_NNN", bytes) when unresolved
=====================  ============================  ================================

Covered: every RAS message kind with everything filled in (including the H.235 SIGNED{} values
tshark cannot dissect) and minimal, several seeds; every H323-UU-PDU message body alternative,
full and minimal; every message the gatekeeper builds (the builder set of test_ras_tshark.py);
the realistic call flow of test_uuie_tshark.py; and, the other way round, the real endpoint
datagrams in tests/data/vectors/ decode to the same value with both decoders.

pycrate keeps global decoder state; after a failed decode it must be reset
(``ASN1CodecPER._off = []``), which :func:`pycrate_decode` does.
"""

from __future__ import annotations

import functools
import random
from typing import Any

import pytest

pytest.importorskip("pycrate_asn1dir", reason="pycrate is the test-only H.225.0 oracle")

from pycrate_asn1dir import H225  # noqa: E402
from pycrate_asn1rt.codecs import ASN1CodecPER  # noqa: E402
from pycrate_asn1rt.utils import Charpy  # noqa: E402

from gatekeeper.h225 import codec  # noqa: E402

from asn1_values import compiled, full_ras, make_value, minimal_ras, ras_alternatives  # noqa: E402
from testdata import VECTORS  # noqa: E402

RAS_TYPE = H225.H323_MESSAGES.RasMessage
UUIE_TYPE = H225.H323_MESSAGES.H323_UserInformation

RAS_KINDS = ras_alternatives()
SEEDS = (0, 1, 2)

_BODY_CHOICE = compiled("H323-UU-PDU").root_members[0]
UUIE_BODIES = [m.name for m in _BODY_CHOICE.root_index_to_member.values()] + [
    m.name for m in _BODY_CHOICE.additions_index_to_member.values()]


# --- pycrate and the two value forms -----------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _full(kind: str, seed: int) -> Any:
    return full_ras(kind, seed)  # built once, shared by the tests below (nothing changes it)


def pycrate_decode(asn_type: Any, data: bytes) -> Any:
    """Decode with pycrate; check the whole buffer was used; reset pycrate after a failure."""
    buffer = Charpy(data)
    try:
        asn_type.from_aper(buffer)
        value = asn_type.get_val()
    except Exception:
        ASN1CodecPER._off = []
        raise
    left = buffer.len_bit()
    assert left < 8, f"pycrate left {left} bits of {len(data) * 8} undecoded"
    return value


def _is_oid(text: str) -> bool:
    parts = text.split(".")
    return len(parts) >= 2 and all(part.isdigit() for part in parts)


def ours(value: Any) -> Any:
    """Our (asn1tools) value form -> the common form."""
    if value is None:
        return 0
    if isinstance(value, dict):
        return {key: ours(item) for key, item in value.items()}
    if isinstance(value, list):
        return [ours(item) for item in value]
    if isinstance(value, tuple) and len(value) == 2:
        first, second = value
        if isinstance(first, (bytes, bytearray)) and isinstance(second, int):  # BIT STRING
            bits = int.from_bytes(first, "big") >> (len(first) * 8 - second) if second else 0
            return (bits, second)
        if isinstance(first, str):  # CHOICE
            return (first, ours(second))
    if isinstance(value, str) and _is_oid(value):
        return tuple(int(part) for part in value.split("."))
    if isinstance(value, bytearray):
        return bytes(value)
    return value


def theirs(value: Any) -> Any:
    """pycrate's value form -> the common form."""
    if isinstance(value, dict):
        return {key: theirs(item) for key, item in value.items()}
    if isinstance(value, list):
        return [theirs(item) for item in value]
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        if value[0].startswith("_unk_"):  # an open type pycrate did not resolve: its octets
            return value[1]
        return (value[0], theirs(value[1]))
    return value


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two common-form values differ (for readable failures)."""
    if type(a) is not type(b):
        return [f"{path or '/'}: ours {a!r:.120} / pycrate {b!r:.120}"]
    if isinstance(a, dict):
        out = []
        for key in list(a) + [k for k in b if k not in a]:
            if key not in a or key not in b:
                out.append(f"{path}/{key}: only in {'ours' if key in a else 'pycrate'}")
            else:
                out += differences(a[key], b[key], f"{path}/{key}")
        return out
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items in ours, {len(b)} in pycrate"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: ours {a!r:.120} / pycrate {b!r:.120}"]


def assert_pycrate_reads(asn_type: Any, value: Any, data: bytes, label: str) -> None:
    try:
        decoded = pycrate_decode(asn_type, data)
    except Exception as error:  # noqa: BLE001 - report which encoding pycrate refused
        raise AssertionError(f"{label}: pycrate cannot decode {data.hex()}: {error!r:.300}") from None
    expected, got = ours(value), theirs(decoded)
    if expected != got:
        raise AssertionError(f"{label}: pycrate reads another value from {data.hex()[:400]}:\n"
                             + "\n".join(differences(expected, got)[:12]))


def _contains_key(value: Any, key: str) -> bool:
    if isinstance(value, dict):
        return key in value or any(_contains_key(v, key) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_contains_key(v, key) for v in value)
    return False


# --- the tests ---------------------------------------------------------------------------------

def test_the_normalisers_map_both_value_forms_to_one():
    assert ours(("a", None)) == theirs(("a", 0))
    assert ours("0.0.8.2250.0.7") == (0, 0, 8, 2250, 0, 7)
    assert ours((b"\xa0", 3)) == (5, 3) and ours((b"", 0)) == (0, 0)
    assert ours((b"\x12\x34\x50", 20)) == (0x12345, 20)
    assert theirs(("_unk_004", b"\x01")) == b"\x01"
    assert ours({"x": [("y", b"\x00")]}) == theirs({"x": [("y", b"\x00")]})
    assert ours("12") == "12" and ours("1.x") == "1.x"  # digits and dotted text are not OIDs


def test_pycrate_decoder_is_reset_after_a_failure():
    with pytest.raises(Exception):
        pycrate_decode(RAS_TYPE, b"\xff\xff")
    value = ("unregistrationConfirm", {"requestSeqNum": 7})
    assert_pycrate_reads(RAS_TYPE, value, codec.encode_ras(value), "after a failure")


def test_a_different_value_or_trailing_octets_are_detected():
    value = ("unregistrationConfirm", {"requestSeqNum": 7})
    other = ("unregistrationConfirm", {"requestSeqNum": 8})
    with pytest.raises(AssertionError, match="requestSeqNum"):
        assert_pycrate_reads(RAS_TYPE, other, codec.encode_ras(value), "changed")
    with pytest.raises(AssertionError, match="undecoded"):
        assert_pycrate_reads(RAS_TYPE, value, codec.encode_ras(value) + b"\x00\x01", "trailing")


@pytest.mark.parametrize("kind", RAS_KINDS)
def test_pycrate_reads_every_ras_kind_with_everything_filled_in(kind):
    for seed in SEEDS:
        value = _full(kind, seed)
        assert_pycrate_reads(RAS_TYPE, value, codec.encode_ras(value), f"{kind} seed {seed}")


@pytest.mark.parametrize("kind", RAS_KINDS)
def test_pycrate_reads_every_ras_kind_minimal(kind):
    for seed in SEEDS:
        value = minimal_ras(kind, seed)
        assert_pycrate_reads(RAS_TYPE, value, codec.encode_ras(value), f"minimal {kind} seed {seed}")


def test_full_values_include_signed_tokens_that_tshark_cannot_dissect():
    # The tshark oracle leaves SIGNED{} out; this file must then cover it.
    assert sum(_contains_key(_full(kind, seed), "toBeSigned") for kind in RAS_KINDS for seed in SEEDS) >= 10


def uuie_with_body(body: str, seed: int, full: bool) -> dict:
    """An H323-UserInformation whose message body is the alternative ``body``."""
    rng = random.Random(seed)
    value = make_value(compiled("H323-UserInformation"), rng, full)
    members = list(_BODY_CHOICE.root_index_to_member.values())
    members += list(_BODY_CHOICE.additions_index_to_member.values())
    member = next(m for m in members if m.name == body)
    value["h323-uu-pdu"]["h323-message-body"] = (body, make_value(member, rng, full, 2))
    return value


def test_every_uuie_body_alternative_is_covered():
    assert len(UUIE_BODIES) == 13 and {"setup", "notify", "empty"} <= set(UUIE_BODIES)


@pytest.mark.parametrize("body", UUIE_BODIES)
@pytest.mark.parametrize("full", [True, False], ids=["full", "minimal"])
def test_pycrate_reads_every_uuie_body_alternative(body, full):
    for seed in SEEDS[:2]:
        value = uuie_with_body(body, seed, full)
        assert value["h323-uu-pdu"]["h323-message-body"][0] == body
        assert_pycrate_reads(UUIE_TYPE, value, codec.encode_uuie(value), f"{body} seed {seed}")


def test_pycrate_reads_every_message_the_gatekeeper_builds():
    from test_ras_tshark import builder_messages, handmade_messages

    messages = builder_messages() + handmade_messages()
    assert len(messages) > 100
    for label, message in messages:
        assert_pycrate_reads(RAS_TYPE, message, codec.encode_ras(message), label)


def test_pycrate_reads_the_call_signalling_messages_of_a_call():
    from test_uuie_tshark import call_flow

    for label, _, _, value in call_flow():
        assert_pycrate_reads(UUIE_TYPE, value, codec.encode_uuie(value), label)


def test_pycrate_and_our_codec_read_the_real_endpoint_datagrams_alike():
    paths = sorted(VECTORS.rglob("*.hex"))
    assert len(paths) >= 80
    for path in paths:
        data = bytes.fromhex("".join(path.read_text().split()))
        assert_pycrate_reads(RAS_TYPE, codec.decode_ras(data), data, path.name)
