"""The status port's input side: telnet-tolerant line splitting.

Clients range from ``telnet`` (which sends IAC negotiation, CR NUL or CR LF)
to netcat and Perl ``IO::Socket`` scripts (plain LF).  :class:`LineReader`
takes bytes in pieces of any size and hands back what the session must act
on: complete lines, an interrupt (Ctrl-C / Ctrl-D, which end the session as
``exit`` does), or a line that grew too long.  IAC sequences are consumed and
never reach a command; the DO/DONT/WILL/WONT a client sends are reported so
the session can answer them.  Backspace and DEL erase the previous character,
as a line-editing terminal would have.
"""

from __future__ import annotations

from dataclasses import dataclass

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
ECHO, SUPPRESS_GO_AHEAD, STATUS = 1, 3, 5
CTRL_C, CTRL_D, BACKSPACE, DELETE = 0x03, 0x04, 0x08, 0x7F
CR, LF, NUL = 0x0D, 0x0A, 0x00

#: What GnuGk sends when a client connects: DO SUPPRESS-GO-AHEAD, WILL STATUS, DONT ECHO.
GREETING = bytes([IAC, DO, SUPPRESS_GO_AHEAD, IAC, WILL, STATUS, IAC, DONT, ECHO])
ECHO_OFF = bytes([IAC, WILL, ECHO])     # the server echoes (nothing): password hidden
ECHO_ON = bytes([IAC, WONT, ECHO])


# The server asked for SUPPRESS-GO-AHEAD (DO) and offered STATUS and ECHO
# (WILL): the client's replies about those are acknowledgements and get no
# answer (RFC 1143).


def answer(request: "Negotiation") -> bytes:
    """The server's reply to a client's option request: it takes on nothing
    new (DO x -> WONT x, WILL x -> DONT x); acknowledgements of what it asked
    and refusals (DONT, WONT) are not answered."""
    if request.command == DO and request.option not in (STATUS, ECHO):
        return bytes([IAC, WONT, request.option])
    if request.command == WILL and request.option != SUPPRESS_GO_AHEAD:
        return bytes([IAC, DONT, request.option])
    return b""


@dataclass(frozen=True, slots=True)
class Line:
    text: str


@dataclass(frozen=True, slots=True)
class Interrupt:
    """Ctrl-C or Ctrl-D: the client wants out."""


@dataclass(frozen=True, slots=True)
class TooLong:
    """A line longer than the limit was discarded (up to its end)."""

    length: int


@dataclass(frozen=True, slots=True)
class Negotiation:
    """A DO/DONT/WILL/WONT option request from the client."""

    command: int
    option: int


class LineReader:
    """Turns the client's byte stream into lines and events."""

    _DATA, _IAC, _OPTION, _SUB, _SUB_IAC = range(5)

    def __init__(self, max_line: int = 8192) -> None:
        self.max_line = max_line
        self._state = self._DATA
        self._command = 0
        self._line = bytearray()
        self._discarding = 0      # >0: inside a too-long line, counting its length
        self._after_cr = False

    def feed(self, data: bytes) -> list[object]:
        out: list[object] = []
        for byte in data:
            state = self._state
            if state == self._DATA:
                self._data_byte(byte, out)
            elif state == self._IAC:
                if byte in (DO, DONT, WILL, WONT):
                    self._command = byte
                    self._state = self._OPTION
                elif byte == SB:
                    self._state = self._SUB
                elif byte == IAC:  # an escaped 0xFF data byte
                    self._state = self._DATA
                    self._append(byte, out)
                else:  # NOP, GA, AYT, IP, ...: two-byte commands
                    self._state = self._DATA
                    if byte == 244:  # IAC IP (interrupt process), as telnet sends for Ctrl-C
                        out.append(Interrupt())
            elif state == self._OPTION:
                out.append(Negotiation(self._command, byte))
                self._state = self._DATA
            elif state == self._SUB:
                if byte == IAC:
                    self._state = self._SUB_IAC
            else:  # _SUB_IAC
                self._state = self._DATA if byte == SE else self._SUB
        return out

    def _data_byte(self, byte: int, out: list[object]) -> None:
        after_cr, self._after_cr = self._after_cr, False
        if byte == IAC:
            self._state = self._IAC
        elif byte == CR:
            self._end_line(out)
            self._after_cr = True
        elif byte == LF:
            if not after_cr:
                self._end_line(out)
        elif byte == NUL:
            if not after_cr:   # CR NUL is telnet's bare CR; a lone NUL is dropped
                pass
        elif byte in (CTRL_C, CTRL_D):
            self._line.clear()
            out.append(Interrupt())
        elif byte in (BACKSPACE, DELETE):
            if self._line and not self._discarding:
                del self._line[-1]
        else:
            self._append(byte, out)

    def _append(self, byte: int, out: list[object]) -> None:
        if self._discarding:
            self._discarding += 1
            return
        self._line.append(byte)
        if len(self._line) > self.max_line:
            self._discarding = len(self._line)
            self._line.clear()

    def _end_line(self, out: list[object]) -> None:
        if self._discarding:
            out.append(TooLong(self._discarding))
            self._discarding = 0
            return
        text = self._line.decode("latin-1")
        self._line.clear()
        out.append(Line(text))

    @property
    def pending(self) -> int:
        """Bytes of an unfinished line held (never more than max_line)."""
        return len(self._line)
