"""TPKT framing (RFC 1006) for H.225.0 call signalling over TCP.

A TPKT packet is a 4-byte header followed by the payload (here a Q.931 message):

    version (always 3) | reserved (0) | length (16 bits, big-endian, header included)

:func:`frame` wraps one payload; :class:`TpktDeframer` takes the TCP byte stream in pieces of any
size and hands back every complete payload.
"""

from __future__ import annotations

from gatekeeper.errors import DecodeError, EncodeError

__all__ = [
    "HEADER_LENGTH", "MAX_PACKET_LENGTH", "MAX_PAYLOAD_LENGTH", "TPKT_VERSION", "TpktDeframer", "frame",
]

TPKT_VERSION = 3
HEADER_LENGTH = 4
MAX_PACKET_LENGTH = 0xFFFF
MAX_PAYLOAD_LENGTH = MAX_PACKET_LENGTH - HEADER_LENGTH

# Once this many consumed bytes sit at the front of the buffer they are dropped, so the buffer does
# not grow without bound on a long-lived connection (dropping is amortised O(1) per byte).
_COMPACT_THRESHOLD = 1 << 16


def frame(payload: bytes) -> bytes:
    """Return ``payload`` wrapped in a TPKT header, ready to write to the TCP transport."""
    total = len(payload) + HEADER_LENGTH
    if total > MAX_PACKET_LENGTH:
        raise EncodeError(f"payload of {len(payload)} bytes does not fit in one TPKT packet", "tpkt")
    return bytes((TPKT_VERSION, 0, total >> 8, total & 0xFF)) + bytes(payload)


class TpktDeframer:
    """Incremental TPKT deframer for one TCP connection.

    Feed it the bytes as they arrive; it returns the payloads of all packets completed so far.
    A header with a version other than 3 or a length below 4 raises :class:`DecodeError`. The
    stream has then lost its framing and cannot be resynchronised: the deframer stays broken
    (every later :meth:`feed` raises the same error) and the connection should be closed.
    Packets completed earlier in the same :meth:`feed` call are not returned in that case.
    The reserved header byte is not checked; a length of exactly 4 yields an empty payload.
    """

    __slots__ = ("_buffer", "_offset", "_error_reason")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._offset = 0  # start of the first unconsumed byte in _buffer
        self._error_reason: str | None = None

    @property
    def pending(self) -> int:
        """Number of bytes received but not yet returned as part of a complete payload."""
        return len(self._buffer) - self._offset

    @property
    def broken(self) -> bool:
        """True once a framing error was seen; the stream is then unusable."""
        return self._error_reason is not None

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data`` from the stream and return the payloads of all newly completed packets."""
        if self._error_reason is not None:
            raise DecodeError(self._error_reason, "tpkt")
        buffer = self._buffer
        buffer += data
        offset = self._offset
        end = len(buffer)
        payloads: list[bytes] = []
        while offset < end:
            if buffer[offset] != TPKT_VERSION:
                self._fail(f"bad TPKT version {buffer[offset]}")
            if end - offset < HEADER_LENGTH:
                break
            length = (buffer[offset + 2] << 8) | buffer[offset + 3]
            if length < HEADER_LENGTH:
                self._fail(f"TPKT length {length} is shorter than its header")
            if end - offset < length:
                break
            payloads.append(bytes(buffer[offset + HEADER_LENGTH:offset + length]))
            offset += length
        if offset == end:
            buffer.clear()
            offset = 0
        elif offset >= _COMPACT_THRESHOLD:
            del buffer[:offset]
            offset = 0
        self._offset = offset
        return payloads

    def _fail(self, reason: str) -> None:
        self._error_reason = reason
        raise DecodeError(reason, "tpkt")
