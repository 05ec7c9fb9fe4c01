"""The status port: one telnet-friendly session per client, and their factory.

The factory subscribes to the event bus and hands each event's GnuGk line to
every logged-in session whose trace level shows it.  A session reads lines
(:mod:`gatekeeper.status.telnet`), runs commands
(:mod:`gatekeeper.status.commands`) and writes CRLF-terminated lines.

Output to a client that stops reading is bounded: the transport tells the
session (as its producer) when its buffer is full; the session then keeps at
most ``max_output`` bytes of its own and drops the client, with a log line,
past that.  Nothing else waits on a slow client.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Iterable, Iterator

from twisted.internet.interfaces import IPushProducer, IReactorTime
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.logger import Logger
from zope.interface import implementer

from gatekeeper.status import telnet
from gatekeeper.status.auth import AuthRules, Verdict
from gatekeeper.status.formats import format_event

# What a session waits for before it is logged in.
_USER, _PASSWORD = "user", "password"


@implementer(IPushProducer)
class StatusSession(Protocol):
    """One status-port client."""

    log = Logger()

    def __init__(self, factory: "StatusFactory") -> None:
        self.factory = factory
        self.reader = telnet.LineReader(factory.max_line)
        self.trace_level = factory.default_trace_level
        self.logged_in = False
        self.user = ""
        self.peer = ""
        self.number = 0
        self._paused = False
        self._held: deque[bytes] = deque()
        self._held_size = 0
        self._closing = False
        self._jobs: deque[bytes | Iterator[str]] = deque()   # output waiting its turn
        self._pump_call: Any = None
        self._login_state: str | None = None
        self._tries = 0
        self._timeout: Any = None
        self._pending_reject: Any = None

    # -- connection ------------------------------------------------------

    def connectionMade(self) -> None:
        peer = self.transport.getPeer()
        self.peer = f"{peer.host}:{peer.port}"
        if hasattr(self.transport, "setTcpNoDelay"):
            self.transport.setTcpNoDelay(True)   # event lines are small: no Nagle delay
        self.transport.registerProducer(self, True)
        self.factory.sessions.append(self)
        self.number = self.factory.next_number()
        self.write_raw(telnet.GREETING)
        if len(self.factory.sessions) > self.factory.max_clients:
            self.forbid()
            return
        verdict = self.factory.auth.decide(peer.host)
        if verdict is Verdict.FORBID:
            self.forbid()
        elif verdict is Verdict.ALLOW:
            self._logged_in()
        else:
            self._login_state = _USER
            self._prompt()
            self._timeout = self.factory.clock.callLater(
                self.factory.auth.login_timeout, self._login_timed_out)

    def forbid(self) -> None:
        self.write_raw(b"\r\nAccess forbidden!\r\n")
        self.close()

    def _prompt(self) -> None:
        self.write_raw(f"\r\n{self.factory.gatekeeper_name()} login: ".encode("utf-8"))

    def _logged_in(self) -> None:
        self.logged_in = True
        self._login_state = None
        if self._timeout is not None and self._timeout.active():
            self._timeout.cancel()
        self.factory.banner(self)

    def _login_timed_out(self) -> None:
        if not self.logged_in and not self._closing:
            self.log.info("status client {peer} did not log in in time", peer=self.peer)
            self.forbid()

    def _login_line(self, text: str) -> None:
        if self._pending_reject is not None:
            return  # still serving DelayReject: input is ignored
        if self._login_state == _USER:
            self.user = text.strip()
            self._login_state = _PASSWORD
            self.write_raw(telnet.ECHO_OFF + b"Password: ")
            return
        self.write_raw(b"\r\n" + telnet.ECHO_ON)
        if self.factory.auth.login(self.user, text):
            self._logged_in()
            return
        self._tries += 1
        self.log.info("status client {peer}: failed login as {user!r}", peer=self.peer,
                      user=self.user)
        delay = self.factory.auth.delay_reject
        if delay > 0:
            self._pending_reject = self.factory.clock.callLater(delay, self._rejected)
        else:
            self._rejected()

    def _rejected(self) -> None:
        self._pending_reject = None
        if self._closing:
            return
        if self._tries >= self.factory.auth.tries:
            self.forbid()
            return
        self.user = ""
        self._login_state = _USER
        self._prompt()

    def connectionLost(self, reason: Any = None) -> None:
        if self in self.factory.sessions:
            self.factory.sessions.remove(self)
        self._jobs.clear()
        for timer in (self._timeout, self._pending_reject, self._pump_call):
            if timer is not None and timer.active():
                timer.cancel()
        self._held.clear()
        self._held_size = 0

    def dataReceived(self, data: bytes) -> None:
        try:
            for item in self.reader.feed(data):
                if self._closing:
                    return
                self._handle(item)
        except Exception:
            self.log.failure("status session {peer} failed on its input", peer=self.peer)
            self.send_line("Error: internal error")

    def _handle(self, item: object) -> None:
        if isinstance(item, telnet.Line):
            if self.logged_in:
                self.factory.run_command(self, item.text)
            elif self._login_state is not None:
                self._login_line(item.text)
        elif isinstance(item, telnet.Negotiation):
            answer = telnet.answer(item)
            if answer:
                self.write_raw(answer)
        elif isinstance(item, telnet.Interrupt):
            self.close()
        elif isinstance(item, telnet.TooLong):
            self.send_line(f"Error: line too long ({item.length} bytes, at most "
                           f"{self.reader.max_line})")

    def close(self) -> None:
        self._closing = True
        self.transport.loseConnection()

    # -- output ----------------------------------------------------------
    #
    # Output goes out in order. A long listing is a stream: it is written a
    # slice at a time (at most SLICE_SECONDS of work, then the reactor gets
    # the CPU back), and whatever else is said to this session meanwhile
    # (events, later replies) waits behind it, so a listing is never cut by
    # an event line. A stream also waits while the client is not reading.

    SLICE_SECONDS = 0.02
    SLICE_LINES = 4000

    def send_line(self, text: str) -> None:
        self._out(text.encode("utf-8", "replace") + b"\r\n")

    def send_lines(self, lines: list[str]) -> None:
        if lines:
            self._out(("\r\n".join(lines) + "\r\n").encode("utf-8", "replace"))

    def stream(self, lines: Iterable[str]) -> None:
        """Send many lines without holding the reactor for long (the first
        slice in the next reactor turn: the caller may have worked already)."""
        self._jobs.append(iter(lines))
        if self._pump_call is None and len(self._jobs) == 1:
            self._pump_call = self.factory.clock.callLater(0, self._pump)

    def _out(self, data: bytes) -> None:
        if self._jobs:
            self._jobs.append(data)
        else:
            self.write_raw(data)

    def _pump(self) -> None:
        self._pump_call = None
        deadline = time.perf_counter() + self.SLICE_SECONDS
        while self._jobs and not self._closing:
            if self._paused:
                return  # resumeProducing pumps again
            job = self._jobs[0]
            if isinstance(job, bytes):
                self._jobs.popleft()
                self.write_raw(job)
                continue
            chunk: list[str] = []
            for line in job:
                chunk.append(line)
                if len(chunk) >= self.SLICE_LINES or (
                        len(chunk) % 200 == 0 and time.perf_counter() > deadline):
                    break
            else:
                self._jobs.popleft()
            if chunk:
                self.write_raw(("\r\n".join(chunk) + "\r\n").encode("utf-8", "replace"))
            if self._jobs and self._jobs[0] is job:
                self._pump_call = self.factory.clock.callLater(0, self._pump)
                return
            if time.perf_counter() > deadline and self._jobs:
                self._pump_call = self.factory.clock.callLater(0, self._pump)
                return

    def write_raw(self, data: bytes) -> None:
        if self._closing:
            return  # leaving: nothing more is owed to this client
        if not self._paused:
            self.transport.write(data)
            return
        self._held.append(data)
        self._held_size += len(data)
        if self._held_size > self.factory.max_output:
            self.log.warn("status client {peer} is not reading: {size} bytes held, dropped",
                          peer=self.peer, size=self._held_size)
            self._held.clear()
            self._held_size = 0
            self._closing = True
            if self in self.factory.sessions:
                self.factory.sessions.remove(self)
            self.transport.abortConnection()

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        if self._held:
            data = b"".join(self._held)   # one write for everything held
            self._held.clear()
            self._held_size = 0
            self.transport.write(data)
        if self._jobs and not self._paused and self._pump_call is None:
            self._pump()

    def stopProducing(self) -> None:
        self._held.clear()
        self._held_size = 0


class StatusFactory(ServerFactory):
    """All status sessions, fed from the event bus."""

    log = Logger()

    def __init__(self, gatekeeper: Any, clock: IReactorTime, default_trace_level: int = 2,
                 max_clients: int = 20, max_line: int = 8192,
                 max_output: int = 4 * 1024 * 1024, auth: AuthRules | None = None) -> None:
        self.gatekeeper = gatekeeper
        self.clock = clock
        self.auth = auth if auth is not None else AuthRules()
        self.default_trace_level = default_trace_level
        self.max_clients = max_clients
        self.max_line = max_line
        self.max_output = max_output
        self.sessions: list[StatusSession] = []
        self.log_level = 1          # GnuGk's "debug trc": the verbosity of the log
        self._number = 0
        from gatekeeper.status import commands  # the table refers back to sessions
        self.commands = commands

    def buildProtocol(self, addr: Any) -> StatusSession:
        return StatusSession(self)

    def next_number(self) -> int:
        self._number += 1
        return self._number

    # -- events ----------------------------------------------------------

    def __call__(self, event: object) -> None:
        """Bus observer: one line to every session whose level shows it."""
        level = getattr(event, "trace_level", 2)
        line = None
        for session in list(self.sessions):
            if session.logged_in and session.trace_level >= level:
                if line is None:
                    line = format_event(event)
                    if line is None:
                        return
                session.send_line(line)

    def broadcast(self, text: str) -> None:
        """A line every logged-in session gets, whatever its level."""
        for session in list(self.sessions):
            if session.logged_in:
                session.send_line(text)

    # -- commands --------------------------------------------------------

    def banner(self, session: StatusSession) -> None:
        session.send_lines(self.commands.version_lines(self))

    def run_command(self, session: StatusSession, line: str) -> None:
        self.commands.run(self, session, line)

    def gatekeeper_name(self) -> str:
        settings = getattr(self.gatekeeper, "settings", None)
        return getattr(settings, "gatekeeper_id", "gatekeeper")

    def start_time(self) -> float:
        return getattr(self.gatekeeper, "start_time", 0.0)
