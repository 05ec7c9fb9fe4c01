"""The status port: one telnet-friendly session per client, and their factory.

The factory subscribes to the event bus.  A session reads lines
(:mod:`gatekeeper.status.telnet`), runs commands
(:mod:`gatekeeper.status.commands`) and writes CRLF-terminated lines.

Event fan-out is batched: an event's GnuGk line is formatted once and kept
until the end of the reactor turn (a saturated RAS port hands over many
datagrams in one turn); then each logged-in session whose trace level shows
it gets all of the turn's lines for its level in one write.  Any direct
output to a session (a command's answer, a broadcast, a listing) first
flushes the lines owed, so a line never overtakes an event published
before it.  A session with active filters gets its own, filtered, copy;
every other session shares the encoded bytes of its level.

Output to a client that stops reading is bounded.  The transport tells the
session (its streaming producer) when its buffer is full; from then on
output waits in the session's queue, and when the transport has drained it
is resumed and the queue written out.  Past ``max_output`` bytes waiting
the client is dropped with a log line; nothing else waits on it.  A client
that reads keeps up: each reactor turn its transport sends up to
``SEND_LIMIT`` bytes.  Twisted's default, 128 KiB, was less than one turn's
events at RAS saturation (a UDP read of 256 KiB of requests is ~1,800-3,800
events, ~0.5 s of work, ~550 KB of lines with CDRs), so a reading client fell
further behind every turn until it passed ``max_output`` and was dropped.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from twisted.internet.interfaces import IPushProducer, IReactorTime
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.logger import Logger
from zope.interface import implementer

from gatekeeper.events import EndpointRegistered
from gatekeeper.ratelimit import RateLimitedLog
from gatekeeper.status import telnet
from gatekeeper.status.auth import AuthRules, Verdict
from gatekeeper.status.formats import format_event

if TYPE_CHECKING:      # pragma: no cover - types only
    from gatekeeper.control import GatekeeperControl

# What a session waits for before it is logged in.
_USER, _PASSWORD = "user", "password"

#: Bytes a status transport may hand the kernel per reactor turn (Twisted's
#: default is 128 KiB): a session that is behind catches up in fewer turns.
SEND_LIMIT = 1 << 20


def _encode(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode("utf-8", "replace") if lines else b""


@implementer(IPushProducer)
class StatusSession(Protocol):
    """One status-port client."""

    log = Logger()

    def __init__(self, factory: "StatusFactory") -> None:
        self.factory = factory
        self.reader = telnet.LineReader(factory.max_line)
        self._trace_level = factory.default_trace_level
        self.logged_in = False
        self.user = ""
        self.peer = ""
        self.number = 0
        #: Event-line filters (gatekeeper.status.filtering) or None: a line goes
        #: to this session if ``filters is None or not filters.enabled or
        #: filters.accepts(line)``.  Built from the factory's settings; kept
        #: from the start only when they filter (the filter commands build
        #: them on first use from the same settings otherwise).
        self.filters: Any = None
        if factory.make_filters is not None:
            filters = factory.make_filters()
            if filters is not None and filters.enabled:
                self.filters = filters
        self._paused = False
        self._closing = False
        # Output not yet given to the transport, in order: bytes, or a listing
        # (an iterator of lines) produced a slice at a time.
        self._queue: deque[bytes | Iterator[str]] = deque()
        self._queued = 0                 # bytes in _queue
        self._pump_call: Any = None
        self._login_state: str | None = None
        self._tries = 0
        self._timeout: Any = None
        self._pending_reject: Any = None

    @property
    def trace_level(self) -> int:
        return self._trace_level

    @trace_level.setter
    def trace_level(self, level: int) -> None:
        self._trace_level = level
        self.factory.levels_changed()

    # -- connection ------------------------------------------------------

    def connectionMade(self) -> None:
        peer = self.transport.getPeer()
        self.peer = f"{peer.host}:{peer.port}"
        if hasattr(self.transport, "setTcpNoDelay"):
            self.transport.setTcpNoDelay(True)   # event lines are small: no Nagle delay
        if hasattr(self.transport, "SEND_LIMIT"):
            self.transport.SEND_LIMIT = max(self.transport.SEND_LIMIT, SEND_LIMIT)
        self.transport.registerProducer(self, True)
        self.factory.sessions.append(self)
        self.number = self.factory.next_number()
        self.write_raw(telnet.GREETING)
        if len(self.factory.sessions) > self.factory.max_clients:
            self.factory.refused(self)
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
        self.factory.levels_changed()
        self._login_state = None
        if self._timeout is not None and self._timeout.active():
            self._timeout.cancel()
        self.factory.banner(self)

    def _login_timed_out(self) -> None:
        # Only time counts: the timer is never pushed back by input, so a
        # client that keeps sending partial lines or telnet negotiation
        # without logging in is dropped all the same.
        if not self.logged_in and not self._closing:
            self.factory.trouble("login timeout", "status client {peer} did not log in "
                                 "within {seconds} s", peer=self.peer,
                                 seconds=self.factory.auth.login_timeout)
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
        self._closing = True
        if self in self.factory.sessions:
            self.factory.sessions.remove(self)
            self.factory.levels_changed()
        for timer in (self._timeout, self._pending_reject, self._pump_call):
            if timer is not None and timer.active():
                timer.cancel()
        self._pump_call = None
        self._queue.clear()
        self._queued = 0

    def dataReceived(self, data: bytes) -> None:
        try:
            for item in self.reader.feed(data):
                if self._closing:
                    return
                self._handle(item)
        except Exception:
            self.factory.trouble.failure("input", "status session {peer} failed on its input",
                                         peer=self.peer)
            self.send_line("Error: internal error")
        finally:
            # Events the commands caused (a reload, an unregistration) go out
            # now, not at the end of the reactor turn.
            self.factory.flush()

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
        if self._closing:
            return
        self.factory.flush()          # the lines owed so far still go out
        self._closing = True
        self.transport.loseConnection()

    # -- output ----------------------------------------------------------
    #
    # Output goes out in order. A long listing is a stream: it is written a
    # slice at a time (at most SLICE_SECONDS of work, then the reactor gets
    # the CPU back), and whatever else is said to this session meanwhile
    # (events, later replies) waits behind it, so a listing is never cut by
    # an event line. A stream also waits while the client is not reading.

    SLICE_SECONDS = 0.015
    SLICE_LINES = 4000
    CHECK_EVERY = 64                  # lines between two looks at the clock

    def send_line(self, text: str) -> None:
        self.factory.flush()          # event lines owed to everyone go first
        self.write_raw(text.encode("utf-8", "replace") + b"\r\n")

    def send_lines(self, lines: list[str]) -> None:
        if lines:
            self.factory.flush()
            self.write_raw(_encode(lines))

    def stream(self, lines: Iterable[str]) -> None:
        """Send many lines without holding the reactor for long (the first
        slice in the next reactor turn: the caller may have worked already)."""
        if self._closing:
            return
        self.factory.flush()
        self._queue.append(iter(lines))
        self._schedule_pump()

    def deliver(self, data: bytes) -> None:
        """Event lines from the factory's flush, in order."""
        self.write_raw(data)

    def write_raw(self, data: bytes) -> None:
        """Bytes after everything said before; held while the client is behind."""
        if self._closing or not data:
            return  # leaving: nothing more is owed to this client
        if not self._queue and not self._paused:
            self.transport.write(data)
            return
        self._queue.append(data)
        self._queued += len(data)
        if self._queued > self.factory.max_output:
            self._drop()

    def _drop(self) -> None:
        self.log.warn("status client {peer} is not reading: {size} bytes held, dropped",
                      peer=self.peer, size=self._queued)
        self._queue.clear()
        self._queued = 0
        self._closing = True
        if self in self.factory.sessions:
            self.factory.sessions.remove(self)
            self.factory.levels_changed()
        self.transport.abortConnection()

    def _schedule_pump(self) -> None:
        if self._pump_call is None and self._queue and not (self._paused or self._closing):
            self._pump_call = self.factory.clock.callLater(0, self._pump)

    def _pump(self) -> None:
        """Write what waits, until the transport is full or a slice's time is up."""
        self._pump_call = None
        deadline = time.perf_counter() + self.SLICE_SECONDS
        queue = self._queue
        while queue and not self._closing and not self._paused:
            job = queue[0]
            if isinstance(job, bytes):
                # held bytes: up to SEND_LIMIT at once, so one transport send
                # per turn carries as much as it can
                parts, size = [], 0
                while queue and isinstance(queue[0], bytes) and size < SEND_LIMIT:
                    part = queue.popleft()
                    parts.append(part)
                    size += len(part)
                self._queued -= size
                self.transport.write(b"".join(parts) if len(parts) > 1 else parts[0])
                continue
            chunk: list[str] = []
            check = self.CHECK_EVERY
            for line in job:
                chunk.append(line)
                if len(chunk) >= self.SLICE_LINES or (
                        len(chunk) % check == 0 and time.perf_counter() > deadline):
                    break
            else:
                queue.popleft()
            if chunk:
                self.transport.write(_encode(chunk))
            if time.perf_counter() > deadline:
                break
        if not self._paused:
            self._schedule_pump()   # time is up: the rest in a later turn

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        # The next slice in the next reactor turn, not here (inside the
        # transport's doWrite): at most one slice of a listing per turn.
        self._paused = False
        self._schedule_pump()

    def stopProducing(self) -> None:
        self._queue.clear()
        self._queued = 0


@dataclass(frozen=True, slots=True)
class StatusSettings:
    """What a reload changes on the status port: who may log in and how
    (``[GkStatus::Auth]``), the filters new sessions start with
    (``[GkStatus::Filtering]``), ``StatusTraceLevel`` and ``MaxStatusClients``."""

    auth: AuthRules = field(default_factory=AuthRules)
    filtering: Any = None                 # StatusFilteringSettings; None: no filters
    default_trace_level: int = 2
    max_clients: int = 20


class StatusFactory(ServerFactory):
    """All status sessions, fed from the event bus."""

    log = Logger()

    #: Builds a new session's filters (None: sessions have none).
    make_filters: Callable[[], Any] | None = None
    #: ``[GkStatus::Filtering] NewRCFOnly``: no RCF line for keepalives and
    #: re-registrations, only for new registrations.
    new_rcf_only = False

    def __init__(self, control: GatekeeperControl, clock: IReactorTime,
                 default_trace_level: int = 2,
                 max_clients: int = 20, max_line: int = 8192,
                 max_output: int = 4 * 1024 * 1024, auth: AuthRules | None = None) -> None:
        self.control = control
        self.clock = clock
        self.auth = auth if auth is not None else AuthRules()
        self.default_trace_level = default_trace_level
        self.max_clients = max_clients
        self.max_line = max_line
        self.max_output = max_output
        self.sessions: list[StatusSession] = []
        self.log_level = 1          # GnuGk's "debug trc": the verbosity of the log
        self._number = 0
        # Lines owed to the sessions since the last flush, in order:
        # (trace level needed, line, subject to the session's filters).
        self._pending: list[tuple[int, str, bool]] = []
        self._flush_call: Any = None
        self._top_level: int | None = None   # highest level of a logged-in session
        #: Log lines a client can cause (connecting, not logging in) go
        #: through here, at a bounded rate.
        self.trouble = RateLimitedLog(self.log, clock)
        from gatekeeper.status import commands  # the table refers back to sessions
        self.commands = commands

    def reconfigure(self, settings: StatusSettings) -> None:
        """A reload: new sessions get the new rules; sessions logged in stay."""
        self.auth = settings.auth
        self.default_trace_level = settings.default_trace_level
        self.max_clients = settings.max_clients
        filtering = settings.filtering
        if filtering is None:
            self.make_filters = None
            self.new_rcf_only = False
        else:
            from gatekeeper.status.filtering import StatusFilters
            self.make_filters = lambda: StatusFilters.from_settings(filtering)
            self.new_rcf_only = filtering.new_rcf_only

    def buildProtocol(self, addr: Any) -> StatusSession:
        return StatusSession(self)

    def refused(self, session: StatusSession) -> None:
        """``MaxStatusClients`` turns ``session`` away: say so, with the count."""
        self.trouble("max clients", "status client {peer} refused: {count} clients connected "
                     "already, MaxStatusClients={limit}", peer=session.peer,
                     count=len(self.sessions) - 1, limit=self.max_clients)

    def next_number(self) -> int:
        self._number += 1
        return self._number

    def levels_changed(self) -> None:
        """A session logged in, left or changed its trace level."""
        self._top_level = None

    def _top(self) -> int:
        if self._top_level is None:
            self._top_level = max((s.trace_level for s in self.sessions if s.logged_in),
                                  default=-1)
        return self._top_level

    # -- events ----------------------------------------------------------

    def __call__(self, event: object) -> None:
        """Bus observer: the event's line is owed to every session whose level
        shows it; it goes out with the rest of this reactor turn's lines."""
        level = getattr(event, "trace_level", 2)
        if level > self._top():
            return       # nobody would see it: not even formatted
        if self.new_rcf_only and isinstance(event, EndpointRegistered) and not event.new:
            return
        line = format_event(event)
        if line is None:
            return
        self._pending.append((level, line, True))
        if self._flush_call is None:
            self._flush_call = self.clock.callLater(0, self.flush)

    def broadcast(self, text: str, level: int = 0) -> None:
        """A line to every logged-in session whose trace level is at least
        ``level`` (by default: every one), after the event lines owed."""
        self._pending.append((level, text, False))
        self.flush()

    def flush(self) -> None:
        """Write the lines owed to the sessions now: one write per session."""
        if self._flush_call is not None:
            if self._flush_call.active():
                self._flush_call.cancel()
            self._flush_call = None
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        shared: dict[int, bytes] = {}     # trace level -> the lines it sees, encoded
        for session in list(self.sessions):
            if not session.logged_in or session._closing:
                continue
            level = session.trace_level
            filters = session.filters
            try:
                if filters is not None and filters.enabled:
                    data = _encode([line for needed, line, filtered in batch
                                    if needed <= level
                                    and (not filtered or filters.accepts(line))])
                else:
                    data = shared.get(level)
                    if data is None:
                        data = shared[level] = _encode(
                            [line for needed, line, _ in batch if needed <= level])
                session.deliver(data)
            except Exception:
                self.trouble.failure("delivery", "status session {peer}: event lines not "
                                     "delivered", peer=session.peer)

    # -- commands --------------------------------------------------------

    def banner(self, session: StatusSession) -> None:
        session.send_lines(self.commands.version_lines(self))

    def run_command(self, session: StatusSession, line: str) -> None:
        self.commands.run(self, session, line)

    def gatekeeper_name(self) -> str:
        return self.control.gatekeeper_name()

    def start_time(self) -> float:
        return self.control.start_time()
