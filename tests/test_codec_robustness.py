"""Robustness of the decoders against hostile input: only DecodeError escapes, and fast.

Every input here is junk a peer could send: truncations, bit flips, overwritten, inserted and
deleted bytes, splices and appended garbage, derived from the real endpoint datagrams in
tests/data/vectors/ and from our own encodings of every RAS message kind (full_ras and
minimal_ras values), of H323-UserInformation values and of whole Q.931 messages carrying them;
plus plain random bytes. Everything is drawn from seeded generators, so a failure reproduces.

Three entry points are fed:

* ``codec.decode_ras`` (the RAS socket), followed by ``ras.read`` on whatever decodes, which is
  what ``ras.parse`` does (``ras.parse(data) == ras.read(codec.decode_ras(data))``);
* ``codec.decode_uuie`` on its own;
* the call signalling path: ``q931.decode`` of the TPKT payload, then ``decode_uuie`` of the
  User-user IE's user information.

Each test asserts that nothing but ``gatekeeper.errors.DecodeError`` leaves them (any other
exception fails with the input in hex and where it was raised) and that no single input takes
longer than 50 ms. The time of an input is measured with ``time.perf_counter``; an input over
5 ms is timed twice more and its fastest run counts, so a scheduler hiccup or a garbage
collection on a busy machine is not mistaken for a slow input (a slow input is slow every time),
and the maximum reported is the inputs' own cost.

The total is >= 100,000 inputs (see ``PLAN``), not 100,000 per entry point: at today's
100-1500 us per decode that would take minutes. The RAS decoder, which faces unauthenticated UDP,
gets about two thirds; the UUIE decoder and the Q.931 path share the rest.
"""

from __future__ import annotations

import random
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gatekeeper.errors import DecodeError
from gatekeeper.h225 import codec, q931, ras
from gatekeeper.h225.q931 import (
    BearerCapability,
    CalledPartyNumber,
    CallingPartyNumber,
    Cause,
    Display,
    Q931Message,
    UserUser,
)

from asn1_values import compiled, full_ras, full_value, make_value, minimal_ras, ras_alternatives
from testdata import VECTORS

TIME_LIMIT = 0.050  # seconds, per input
RETIME_ABOVE = 0.005  # an input slower than this is timed twice more; its best run counts
SEED = 0x4832_3235

RAS_KINDS = ras_alternatives()

# How many inputs each test feeds (the truncation test feeds every prefix of every vector).
PLAN = {
    "ras_vector_truncations": None,   # every prefix of every real datagram: ~7,000
    "ras_vector_mutations": 42_000,
    "ras_encoding_mutations": 12_000,
    "ras_random": 10_000,
    "uuie_mutations": 16_000,
    "q931_mutations": 16_000,
}


# --- the corpus --------------------------------------------------------------------------------

def _load(path: Path) -> bytes:
    return bytes.fromhex("".join(path.read_text().split()))


REAL_VECTORS: list[bytes] = [_load(path) for path in sorted(VECTORS.rglob("*.hex"))]


def _ras_encodings() -> list[bytes]:
    """Our encodings of every RAS kind: everything filled in (two seeds) and minimal (three).

    The full ones are large (0.5-13 KB, ~1.5 ms a decode today), hence the minimal majority."""
    encodings = []
    for kind in RAS_KINDS:
        for seed in (0, 1):
            encodings.append(codec.encode_ras(full_ras(kind, seed)))
        for seed in (0, 1, 2):
            encodings.append(codec.encode_ras(minimal_ras(kind, seed)))
    return encodings


GUID_CALL = bytes.fromhex("c4202c1e5b7a11efa0b3000c29d1e2f4")
GUID_CONF = bytes.fromhex("0a1b2c3d4e5f60718293a4b5c6d7e8f9")
PROTOCOL = ras.PROTOCOL_IDENTIFIER
# Two H.245 OpenLogicalChannel encodings (G.711 A-law / u-law), checked by tshark elsewhere.
FAST_START = [bytes.fromhex("0000000c2013800a04000100c000020a1389"),
              bytes.fromhex("0000010c6013801114000100c000020a138a00c000020a138b")]


def _endpoint(kind: str = "terminal") -> dict:
    return {"vendor": {"vendor": {"t35CountryCode": 9, "t35Extension": 0, "manufacturerCode": 61},
                       "productId": b"gatekeeper-test", "versionId": b"1.0"},
            kind: {}, "mc": False, "undefinedNode": False}


def realistic_uuie(body: str) -> dict:
    """An H323-UserInformation such as an endpoint sends, with message body ``body``."""
    call_id = {"guid": GUID_CALL}
    if body == "setup":
        content = {
            "protocolIdentifier": PROTOCOL,
            "sourceAddress": [("h323-ID", "alice"), ("dialledDigits", "1001")],
            "sourceInfo": _endpoint(),
            "destinationAddress": [("dialledDigits", "4930123456"), ("url-ID", "h323:bob@example.com")],
            "destCallSignalAddress": ras.transport_to_asn(("192.0.2.20", 1720)),
            "activeMC": False,
            "conferenceID": GUID_CONF,
            "conferenceGoal": ("create", None),
            "callType": ("pointToPoint", None),
            "sourceCallSignalAddress": ras.transport_to_asn(("192.0.2.10", 1720)),
            "callIdentifier": call_id,
            "fastStart": list(FAST_START),
            "mediaWaitForConnect": False,
            "canOverlapSend": False,
            "endpointIdentifier": "ep-1234",
            "multipleCalls": True,
            "maintainConnection": False,
        }
    elif body in ("callProceeding", "alerting"):
        content = {"protocolIdentifier": PROTOCOL, "destinationInfo": _endpoint("gateway"),
                   "callIdentifier": call_id, "multipleCalls": False, "maintainConnection": False}
    elif body == "connect":
        content = {"protocolIdentifier": PROTOCOL,
                   "h245Address": ras.transport_to_asn(("192.0.2.20", 40002)),
                   "destinationInfo": _endpoint(), "conferenceID": GUID_CONF,
                   "callIdentifier": call_id, "fastStart": FAST_START[:1],
                   "multipleCalls": False, "maintainConnection": False}
    elif body == "facility":
        content = {"protocolIdentifier": PROTOCOL,
                   "alternativeAddress": ras.transport_to_asn(("192.0.2.1", 1720)),
                   "conferenceID": GUID_CONF, "reason": ("routeCallToGatekeeper", None),
                   "callIdentifier": call_id, "multipleCalls": False, "maintainConnection": False}
    elif body == "releaseComplete":
        content = {"protocolIdentifier": PROTOCOL, "reason": ("calledPartyNotRegistered", None),
                   "callIdentifier": call_id}
    elif body == "information":
        content = {"protocolIdentifier": PROTOCOL, "callIdentifier": call_id}
    elif body == "progress":
        content = {"protocolIdentifier": PROTOCOL, "destinationInfo": _endpoint(),
                   "callIdentifier": call_id, "multipleCalls": False, "maintainConnection": False}
    elif body == "empty":
        content = None
    else:  # status, statusInquiry, setupAcknowledge, notify
        content = {"protocolIdentifier": PROTOCOL, "callIdentifier": call_id}
    return {"h323-uu-pdu": {"h323-message-body": (body, content), "h245Tunnelling": True}}


UUIE_BODIES = ["setup", "callProceeding", "connect", "alerting", "information", "releaseComplete",
               "facility", "progress", "empty", "status", "statusInquiry", "setupAcknowledge",
               "notify"]


def _uuie_encodings() -> list[bytes]:
    encodings = [codec.encode_uuie(realistic_uuie(body)) for body in UUIE_BODIES]
    # Random values of every body alternative, minimal and full, and two whole full values.
    choice = compiled("H323-UU-PDU").root_members[0]
    members = list(choice.root_index_to_member.values()) + list(choice.additions_index_to_member.values())
    for index, member in enumerate(members):
        for full in (False, True):
            rng = random.Random(index)
            value = make_value(compiled("H323-UserInformation"), rng, full)
            value["h323-uu-pdu"]["h323-message-body"] = (member.name, make_value(member, rng, full, 2))
            encodings.append(codec.encode_uuie(value))
    encodings += [codec.encode_uuie(full_value("H323-UserInformation", seed)) for seed in (0, 1)]
    return encodings


CALL_REFERENCE = 0x1234


def setup_message() -> Q931Message:
    """A Setup as an H.323 endpoint sends it to the gatekeeper (TPKT payload)."""
    return Q931Message(q931.SETUP, CALL_REFERENCE, False, [
        BearerCapability(q931.ITC_UNRESTRICTED_DIGITAL, q931.RATE_MULTIRATE, q931.L1_H221_H242,
                         rate_multiplier=6).to_ie(),
        Display("Alice Example").to_ie(),
        CallingPartyNumber("1001", q931.TON_NATIONAL, q931.NPI_ISDN, q931.PRESENTATION_ALLOWED,
                           q931.SCREENING_NETWORK_PROVIDED).to_ie(),
        CalledPartyNumber("4930123456", q931.TON_INTERNATIONAL, q931.NPI_ISDN).to_ie(),
        UserUser(codec.encode_uuie(realistic_uuie("setup"))).to_ie(),
    ])


def _q931_encodings() -> list[bytes]:
    def message(message_type: int, body: str, ies: list = (), from_destination: bool = True) -> bytes:
        uu = UserUser(codec.encode_uuie(realistic_uuie(body))).to_ie()
        return q931.encode(Q931Message(message_type, CALL_REFERENCE, from_destination, [*ies, uu]))

    return [
        q931.encode(setup_message()),
        q931.encode(setup_message()),  # twice: the Setup is the message that matters most
        message(q931.CALL_PROCEEDING, "callProceeding"),
        message(q931.ALERTING, "alerting"),
        message(q931.CONNECT, "connect", [Display("Bob").to_ie()]),
        message(q931.FACILITY, "facility", from_destination=False),
        message(q931.RELEASE_COMPLETE, "releaseComplete",
                [Cause(q931.CAUSE_USER_BUSY, q931.LOCATION_PUBLIC_REMOTE).to_ie()]),
    ]


# --- mutations ---------------------------------------------------------------------------------

_SPECIAL = (0x00, 0xFF, 0x80, 0x7F, 0x01, 0x40, 0xC0, 0x3F, 0x81, 0xFE)


def mutate(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    """One random corruption of ``data`` (``pool`` gives the other half of splices)."""
    out = bytearray(data)
    size = len(out)
    operation = rng.randrange(10)
    if size == 0:
        return bytes(rng.randbytes(rng.randint(1, 8)))
    if operation == 0:  # truncate
        return bytes(out[:rng.randrange(size)])
    if operation == 1:  # flip 1-4 bits
        for _ in range(rng.randint(1, 4)):
            out[rng.randrange(size)] ^= 1 << rng.randrange(8)
    elif operation == 2:  # overwrite 1-3 bytes with interesting or random values
        for _ in range(rng.randint(1, 3)):
            out[rng.randrange(size)] = rng.choice(_SPECIAL) if rng.random() < 0.5 else rng.randrange(256)
    elif operation == 3:  # insert bytes
        position = rng.randrange(size + 1)
        out[position:position] = rng.randbytes(rng.randint(1, 8))
    elif operation == 4:  # delete bytes
        position = rng.randrange(size)
        del out[position:position + rng.randint(1, 8)]
    elif operation == 5:  # splice the start of this one with the end of another
        other = rng.choice(pool)
        out = out[:rng.randrange(size + 1)] + other[rng.randrange(len(other) + 1):]
    elif operation == 6:  # trailing garbage
        out += rng.randbytes(rng.randint(1, 32))
    elif operation == 7:  # flip a bit, then truncate
        out[rng.randrange(size)] ^= 1 << rng.randrange(8)
        out = out[:rng.randrange(size) + 1]
    elif operation == 8:  # repeat a slice
        start = rng.randrange(size)
        end = min(size, start + rng.randint(1, 16))
        out[end:end] = out[start:end] * rng.randint(1, 4)
    else:  # a byte where a length determinant may be: long and fragmented forms
        position = rng.randrange(size)
        out[position] = rng.choice((0x80, 0xBF, 0xC0, 0xC1, 0xC4, 0xFF)) if rng.random() < 0.7 \
            else rng.randrange(0x80, 0x100)
    return bytes(out)


def mutations(corpus: list[bytes], count: int, seed: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    for _ in range(count):
        yield mutate(rng.choice(corpus), rng, corpus)


def random_ras_inputs(count: int, seed: int) -> Iterator[bytes]:
    """Random bytes; half of them start with a valid RasMessage choice index so the decoder
    gets into a message body before it meets the junk."""
    rng = random.Random(seed)
    root, extension = codec.choice_alternatives("RasMessage")
    for index in range(count):
        body = rng.randbytes(rng.randint(0, 300))
        kind = index % 4
        if kind == 0:
            yield rng.randbytes(1) + body
        elif kind == 1:
            yield bytes((rng.randrange(len(root)) << 2 | rng.randrange(4),)) + body
        elif kind == 2:  # an extension alternative: index, then an open-type length
            alternative = rng.randrange(len(extension) + 3)  # and a few unknown ones
            yield bytes((0x80 | alternative << 1, rng.randrange(256))) + body
        else:
            yield bytes(rng.randbytes(rng.randint(0, 8)))


# --- the harness -------------------------------------------------------------------------------

@dataclass
class Report:
    count: int = 0
    decoded: int = 0
    max_seconds: float = 0.0
    slowest: bytes = b""
    failures: list[str] = field(default_factory=list)

    def check(self, expected_count: int, min_decoded: int = 0) -> None:
        assert not self.failures, (
            f"{len(self.failures)} of {self.count} inputs raised something other than DecodeError:\n"
            + "\n".join(self.failures[:10]))
        assert self.count == expected_count, f"fed {self.count} inputs, planned {expected_count}"
        assert self.max_seconds <= TIME_LIMIT, (
            f"slowest input took {self.max_seconds * 1e3:.1f} ms (limit {TIME_LIMIT * 1e3:.0f} ms, "
            f"best of 3 runs), max over {self.count} inputs; input: {self.slowest.hex()}")
        assert self.decoded >= min_decoded, (
            f"only {self.decoded} of {self.count} inputs decoded; the mutations are too destructive "
            f"to exercise the code behind a successful decode (max {self.max_seconds * 1e3:.1f} ms)")
        print(f"{self.count} inputs, {self.decoded} decoded, slowest {self.max_seconds * 1e3:.2f} ms")


def _describe(error: BaseException, data: bytes) -> str:
    frame = traceback.extract_tb(error.__traceback__)[-1]
    return (f"{type(error).__name__}: {str(error)[:200]} at {Path(frame.filename).name}:{frame.lineno}"
            f" for input {data.hex()}")


def feed(inputs: Iterable[bytes], handler: Callable[[bytes], None]) -> Report:
    """Run ``handler`` on every input; ``handler`` returns normally when the input decoded."""
    report = Report()
    clock = time.perf_counter

    def timed(data: bytes) -> float:
        start = clock()
        try:
            handler(data)
        except Exception:
            pass
        return clock() - start

    for data in inputs:
        report.count += 1
        start = clock()
        try:
            handler(data)
        except DecodeError as error:
            elapsed = clock() - start
            if not isinstance(error.reason, str) or not (error.kind is None or isinstance(error.kind, str)):
                report.failures.append(f"DecodeError with bad fields {error.reason!r}, {error.kind!r} "
                                       f"for input {data.hex()}")
        except Exception as error:  # noqa: BLE001 - the point of the test
            elapsed = clock() - start
            report.failures.append(_describe(error, data))
        else:
            elapsed = clock() - start
            report.decoded += 1
        if elapsed > RETIME_ABOVE:  # a slow input is slow every time; a hiccup is not
            elapsed = min(elapsed, timed(data), timed(data))
        if elapsed > report.max_seconds:
            report.max_seconds, report.slowest = elapsed, data
    return report


_KINDS = frozenset(RAS_KINDS)


def ras_entry(data: bytes) -> None:
    """What the RAS socket does with a datagram: decode, then read it into its typed form."""
    try:
        kind, value = codec.decode_ras(data)
    except DecodeError as error:
        if error.kind is not None and error.kind not in _KINDS:
            raise AssertionError(f"DecodeError names kind {error.kind!r}, not a RAS message") from None
        raise
    typed = ras.read((kind, value))  # == ras.parse(data)
    if typed.kind != kind or not isinstance(typed.seq, int):
        raise AssertionError(f"ras.read gave {typed.kind!r}/{typed.seq!r} for a {kind}")


def uuie_entry(data: bytes) -> None:
    value = codec.decode_uuie(data)
    if not isinstance(value, dict) or "h323-uu-pdu" not in value:
        raise AssertionError(f"decode_uuie returned {type(value).__name__}")


def q931_entry(data: bytes) -> None:
    """What the call signalling channel does with a TPKT payload."""
    message = q931.decode(data)
    user_information = message.user_user
    if user_information is None:
        raise DecodeError("no user-user IE")  # counts as not decoded
    codec.decode_uuie(user_information)


# --- the tests ---------------------------------------------------------------------------------

def test_the_plan_feeds_at_least_100000_inputs_across_the_entry_points():
    truncations = sum(len(vector) + 1 for vector in REAL_VECTORS)
    planned = truncations + sum(count for count in PLAN.values() if count)
    assert len(REAL_VECTORS) >= 80, "the real vectors in tests/data/vectors/ are missing"
    assert planned >= 100_000, planned


def test_every_truncation_of_every_real_ras_datagram_raises_only_decode_error_quickly():
    inputs = [vector[:end] for vector in REAL_VECTORS for end in range(len(vector) + 1)]
    report = feed(inputs, ras_entry)
    # Only the full-length "prefix" of each vector decodes (a PER message has no padding to lose
    # but its last octet's spare bits; some vectors survive losing nothing).
    report.check(len(inputs), min_decoded=len(REAL_VECTORS))


def test_mutated_real_ras_datagrams_raise_only_decode_error_and_parse_cleanly_and_quickly():
    count = PLAN["ras_vector_mutations"]
    report = feed(mutations(REAL_VECTORS, count, SEED), ras_entry)
    report.check(count, min_decoded=count // 5)


def test_mutated_encodings_of_every_ras_kind_raise_only_decode_error_and_parse_cleanly_and_quickly():
    count = PLAN["ras_encoding_mutations"]
    report = feed(mutations(_ras_encodings(), count, SEED + 1), ras_entry)
    report.check(count, min_decoded=count // 10)


def test_random_bytes_on_the_ras_port_raise_only_decode_error_quickly():
    count = PLAN["ras_random"]
    report = feed(random_ras_inputs(count, SEED + 2), ras_entry)
    report.check(count)


def test_mutated_h323_user_information_raises_only_decode_error_quickly():
    count = PLAN["uuie_mutations"]
    corpus = _uuie_encodings()
    rng = random.Random(SEED + 3)
    # One input in eight is plain random bytes, the rest corrupted encodings.
    inputs = (rng.randbytes(rng.randint(1, 200)) if index % 8 == 0 else mutate(rng.choice(corpus), rng, corpus)
              for index in range(count))
    report = feed(inputs, uuie_entry)
    report.check(count, min_decoded=count // 10)


def test_mutated_q931_messages_through_q931_then_uuie_raise_only_decode_error_quickly():
    count = PLAN["q931_mutations"]
    corpus = _q931_encodings()
    # The corpus itself goes through cleanly: the path is exercised, not just its error exits.
    for data in corpus:
        q931_entry(data)
    report = feed(mutations(corpus, count, SEED + 4), q931_entry)
    report.check(count, min_decoded=count // 10)


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 200_000])
def test_empty_and_oversized_inputs_raise_only_decode_error_quickly(size):
    data = random.Random(size).randbytes(size)
    for handler in (ras_entry, uuie_entry, q931_entry):
        report = feed([data], handler)
        report.check(1)
