"""Tests for gatekeeper.h225.tpkt: RFC 1006 framing and the incremental deframer."""

from __future__ import annotations

import random
import time

from timing import slowest

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gatekeeper.errors import DecodeError, EncodeError
from gatekeeper.h225.tpkt import MAX_PAYLOAD_LENGTH, TpktDeframer, frame

PAYLOADS = [b"\x08\x02\x00\x01\x05", b"", b"\x08\x02\x80\x01\x5a" + bytes(range(200))]


def _stream() -> bytes:
    return b"".join(frame(payload) for payload in PAYLOADS)


def test_frame_writes_version_reserved_and_length_including_header() -> None:
    assert frame(b"\xaa\xbb\xcc") == b"\x03\x00\x00\x07\xaa\xbb\xcc"


def test_frame_of_empty_payload_is_just_the_header() -> None:
    assert frame(b"") == b"\x03\x00\x00\x04"


def test_frame_accepts_largest_payload_and_rejects_one_more_byte() -> None:
    framed = frame(bytes(MAX_PAYLOAD_LENGTH))
    assert framed[:4] == b"\x03\x00\xff\xff"
    assert len(framed) == 0xFFFF
    with pytest.raises(EncodeError):
        frame(bytes(MAX_PAYLOAD_LENGTH + 1))


def test_deframer_returns_each_payload_of_a_joined_stream() -> None:
    assert TpktDeframer().feed(_stream()) == PAYLOADS


def test_deframer_handles_every_single_split_point_of_a_three_packet_stream() -> None:
    stream = _stream()
    for split in range(len(stream) + 1):
        deframer = TpktDeframer()
        payloads = deframer.feed(stream[:split]) + deframer.feed(stream[split:])
        assert payloads == PAYLOADS, split
        assert deframer.pending == 0


def test_deframer_handles_every_pair_of_split_points() -> None:
    stream = _stream()
    for first in range(0, len(stream) + 1, 3):
        for second in range(first, len(stream) + 1, 5):
            deframer = TpktDeframer()
            payloads = (deframer.feed(stream[:first]) + deframer.feed(stream[first:second])
                        + deframer.feed(stream[second:]))
            assert payloads == PAYLOADS, (first, second)


def test_deframer_handles_byte_by_byte_feeding() -> None:
    deframer = TpktDeframer()
    payloads: list[bytes] = []
    for byte in _stream():
        payloads += deframer.feed(bytes((byte,)))
    assert payloads == PAYLOADS


def test_pending_counts_bytes_of_the_incomplete_packet() -> None:
    deframer = TpktDeframer()
    assert deframer.pending == 0
    assert deframer.feed(b"\x03\x00\x00\x08\x01") == []
    assert deframer.pending == 5
    assert deframer.feed(b"\x02\x03\x04\x03\x00") == [b"\x01\x02\x03\x04"]
    assert deframer.pending == 2


def test_zero_length_payload_is_returned_as_empty_bytes() -> None:
    assert TpktDeframer().feed(b"\x03\x00\x00\x04") == [b""]


def test_feeding_nothing_returns_nothing() -> None:
    deframer = TpktDeframer()
    assert deframer.feed(b"") == []
    assert deframer.pending == 0


def test_bad_version_raises_decode_error_as_soon_as_the_first_byte_arrives() -> None:
    with pytest.raises(DecodeError):
        TpktDeframer().feed(b"\x04")


def test_bad_version_after_a_good_packet_raises_decode_error() -> None:
    deframer = TpktDeframer()
    assert deframer.feed(frame(b"ok")) == [b"ok"]
    with pytest.raises(DecodeError):
        deframer.feed(b"\x02\x00\x00\x05x")


@pytest.mark.parametrize("length", [0, 1, 2, 3])
def test_length_below_header_size_raises_decode_error(length: int) -> None:
    with pytest.raises(DecodeError):
        TpktDeframer().feed(bytes((3, 0, 0, length)))


def test_deframer_stays_broken_after_a_framing_error() -> None:
    deframer = TpktDeframer()
    with pytest.raises(DecodeError):
        deframer.feed(b"\x00\x00\x00\x00")
    assert deframer.broken
    with pytest.raises(DecodeError):
        deframer.feed(frame(b"fine"))


def test_reserved_byte_is_not_checked() -> None:
    assert TpktDeframer().feed(b"\x03\xff\x00\x05z") == [b"z"]


def test_many_small_feeds_of_a_large_stream_are_linear() -> None:
    """A 2 MB stream fed 7 bytes at a time must not copy the buffer on every feed."""
    payload = bytes(range(256)) * 250  # 64000 bytes
    stream = frame(payload) * 32
    deframer = TpktDeframer()
    count = 0
    started = time.perf_counter()
    for start in range(0, len(stream), 7):
        for got in deframer.feed(stream[start:start + 7]):
            assert got == payload
            count += 1
    elapsed = time.perf_counter() - started
    assert count == 32
    assert deframer.pending == 0
    assert elapsed < 5.0, f"feeding took {elapsed:.2f}s"


def test_one_large_feed_of_many_packets_is_linear() -> None:
    stream = frame(b"x" * 10) * 100_000
    started = time.perf_counter()
    payloads = TpktDeframer().feed(stream)
    assert len(payloads) == 100_000
    assert time.perf_counter() - started < 2.0


@given(st.lists(st.binary(max_size=300), max_size=8), st.data())
@settings(max_examples=200, deadline=None)
def test_any_split_of_any_packets_yields_the_payloads(payloads: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(frame(payload) for payload in payloads)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    deframer = TpktDeframer()
    got: list[bytes] = []
    previous = 0
    for cut in [*cuts, len(stream)]:
        got += deframer.feed(stream[previous:cut])
        previous = cut
    assert got == payloads
    assert deframer.pending == 0


def _mutations(rng: random.Random, count: int) -> list[list[bytes]]:
    """Streams (as lists of feed() chunks): valid, truncated, bit-flipped and random."""
    cases: list[list[bytes]] = []
    good = _stream()
    for index in range(count):
        kind = index % 4
        if kind == 0:
            data = good[:rng.randrange(len(good) + 1)]
        elif kind == 1:
            flipped = bytearray(good)
            for _ in range(rng.randint(1, 4)):
                flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
            data = bytes(flipped)
        elif kind == 2:
            data = rng.randbytes(rng.randrange(64))
        else:
            data = b"\x03\x00" + rng.randbytes(rng.randrange(2, 40))
        cuts = sorted(rng.randrange(len(data) + 1) for _ in range(rng.randrange(4)))
        chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
        cases.append(chunks)
    return cases


def test_fuzzed_streams_raise_only_decode_error_and_are_fast() -> None:
    rng = random.Random(20240531)
    cases = _mutations(rng, 100_000)

    def run(chunks) -> int:
        deframer = TpktDeframer()
        try:
            for chunk in chunks:
                deframer.feed(chunk)
        except DecodeError:
            return 1
        return 0

    errors = sum(run(chunks) for chunks in cases)
    assert errors > 1000  # the mutations did reach the error paths
    worst, _ = slowest(cases, run, 0.05)
    assert worst < 0.05, f"slowest input took {worst * 1000:.1f} ms"
