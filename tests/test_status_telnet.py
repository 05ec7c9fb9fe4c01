"""Line splitting for the status port: telnet, netcat and Perl clients alike."""

from __future__ import annotations

import random

from gatekeeper.status.telnet import (
    DO, GREETING, IAC, SB, SE, WILL, Interrupt, Line, LineReader, Negotiation, TooLong)


def lines(events):
    return [e.text for e in events if isinstance(e, Line)]


def test_greeting_is_gnugks_negotiation():
    assert GREETING == bytes.fromhex("fffd03fffb05fffe01")


def test_crlf_lf_and_cr_all_end_lines():
    reader = LineReader()
    assert lines(reader.feed(b"help\r\nversion\nstatistics\rwho\r\n")) == [
        "help", "version", "statistics", "who"]


def test_cr_nul_from_telnet_is_one_line_end():
    reader = LineReader()
    assert lines(reader.feed(b"r\r\x00c\r\x00")) == ["r", "c"]


def test_an_empty_line_is_reported_so_the_session_can_ignore_it():
    assert lines(LineReader().feed(b"\n\r\n")) == ["", ""]


def test_bytes_split_anywhere_give_the_same_lines():
    stream = b"version\r\nstatistics\nfind 800\rwho\r\n" + bytes([IAC, DO, 1]) + b"r\n"
    expected = lines(LineReader().feed(stream))
    rng = random.Random(7)
    for _ in range(200):
        reader = LineReader()
        got = []
        position = 0
        while position < len(stream):
            step = rng.randint(1, 5)
            got += lines(reader.feed(stream[position:position + step]))
            position += step
        assert got == expected


def test_iac_sequences_are_consumed_and_negotiations_reported():
    reader = LineReader()
    events = reader.feed(bytes([IAC, WILL, 24, IAC, SB, 24, 0, 65, 66, IAC, SE]) + b"who\r\n")
    assert lines(events) == ["who"]
    assert Negotiation(WILL, 24) in events


def test_escaped_ff_is_data():
    assert lines(LineReader().feed(b"a" + bytes([IAC, IAC]) + b"b\n")) == ["a\xffb"]


def test_ctrl_c_and_ctrl_d_interrupt():
    assert any(isinstance(e, Interrupt) for e in LineReader().feed(b"\x04"))
    assert any(isinstance(e, Interrupt) for e in LineReader().feed(b"half a line\x03"))
    assert any(isinstance(e, Interrupt) for e in LineReader().feed(bytes([IAC, 244])))


def test_backspace_erases_like_a_terminal():
    assert lines(LineReader().feed(b"help\x08p\n")) == ["help"]
    assert lines(LineReader().feed(b"\x08\x7fr\n")) == ["r"]


def test_a_lone_nul_is_not_a_line_end():
    reader = LineReader()
    assert lines(reader.feed(b"statistics\x00")) == []
    assert lines(reader.feed(b"\n")) == ["statistics"]


def test_overlong_line_is_discarded_reported_and_reading_goes_on():
    reader = LineReader(max_line=8192)
    events = reader.feed(b"x" * 1_000_000)
    assert reader.pending <= 8192
    assert not any(isinstance(e, Line) for e in events)
    events = reader.feed(b"\nversion\n")
    assert [type(e) for e in events] == [TooLong, Line]
    assert events[0].length == 1_000_000 and events[1].text == "version"


def test_random_garbage_never_raises_and_memory_stays_bounded():
    rng = random.Random(11)
    reader = LineReader(max_line=1024)
    for _ in range(2000):
        reader.feed(bytes(rng.randrange(256) for _ in range(rng.randint(0, 200))))
        assert reader.pending <= 1024
