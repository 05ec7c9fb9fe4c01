"""The event bus and the typed events the RAS and call services publish.

Events are frozen snapshots: they never hold a live registry or call record,
so an observer may keep them as long as it likes.  Each event class says the
lowest status-port trace level at which it is shown (``trace_level``); the
GnuGk text of an event is made in one place, ``gatekeeper.status.formats``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from gatekeeper.h225.ras import Address, Alias
from gatekeeper.interfaces import IEventBus
from gatekeeper.ratelimit import RateLimitedLog

Observer = Callable[[object], None]


@implementer(IEventBus)
class EventBus:
    """Delivers each event synchronously to every observer, in order.

    An observer that raises is logged and skipped; the others still get the
    event (the model is ``twisted.logger.LogPublisher``).  Observers may
    subscribe or unsubscribe at any time, even from inside a delivery.
    Given a clock, failures are logged at a bounded rate (a peer's message
    that trips an observer may come a million times).
    """

    log = Logger()

    def __init__(self, clock: IReactorTime | None = None) -> None:
        self._observers: tuple[Observer, ...] = ()
        self.failures = 0
        self._trouble = RateLimitedLog(self.log, clock) if clock is not None else None

    def subscribe(self, observer: Observer) -> None:
        if not callable(observer):
            raise TypeError(f"observer is not callable: {observer!r}")
        if observer not in self._observers:
            self._observers = self._observers + (observer,)

    def unsubscribe(self, observer: Observer) -> None:
        self._observers = tuple(o for o in self._observers if o != observer)

    @property
    def observers(self) -> tuple[Observer, ...]:
        return self._observers

    def publish(self, event: object) -> None:
        for observer in self._observers:  # a snapshot: changes apply to the next event
            try:
                observer(event)
            except Exception:
                self.failures += 1
                text = "event observer {observer!r} failed on {event!r}"
                if self._trouble is not None:
                    self._trouble.failure("observer", text, observer=observer,
                                          event=type(event).__name__)
                else:
                    self.log.failure(text, observer=observer, event=type(event).__name__)


# ---------------------------------------------------------------------------
# RAS events (trace level 2)
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GatekeeperConfirmed:
    """GCF sent for a GRQ."""

    trace_level: ClassVar[int] = 2
    source: Address
    aliases: tuple[Alias, ...]
    endpoint_type: str


@dataclass(frozen=True, slots=True)
class GatekeeperRejected:
    trace_level: ClassVar[int] = 2
    source: Address
    aliases: tuple[Alias, ...]
    endpoint_type: str
    reason: str


@dataclass(frozen=True, slots=True)
class EndpointRegistered:
    """RCF sent: a new registration, a re-registration or a keepalive."""

    trace_level: ClassVar[int] = 2
    signal_address: Address | None
    ras_address: Address | None
    aliases: tuple[Alias, ...]
    endpoint_type: str
    endpoint_id: str
    keepalive: bool = False
    new: bool = True
    vendor: str = ""


@dataclass(frozen=True, slots=True)
class RegistrationRejected:
    trace_level: ClassVar[int] = 2
    source: Address
    aliases: tuple[Alias, ...]
    endpoint_type: str
    reason: str


@dataclass(frozen=True, slots=True)
class EndpointUnregistered:
    """An endpoint left the registry: UCF sent to its URQ, or removed by us
    (forced unregistration, TTL expiry); ``reason`` says which."""

    trace_level: ClassVar[int] = 2
    source: Address | None
    endpoint_id: str
    aliases: tuple[Alias, ...]
    reason: str = "endpoint request"
    signal_address: Address | None = None
    endpoint_type: str = "terminal"


@dataclass(frozen=True, slots=True)
class UnregistrationRejected:
    trace_level: ClassVar[int] = 2
    source: Address
    endpoint_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class UnregistrationRequested:
    """URQ sent by the gatekeeper."""

    trace_level: ClassVar[int] = 2
    ras_address: Address
    endpoint_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class InfoRequested:
    """IRQ sent by the gatekeeper."""

    trace_level: ClassVar[int] = 2
    ras_address: Address
    endpoint_id: str


@dataclass(frozen=True, slots=True)
class AdmissionConfirmed:
    trace_level: ClassVar[int] = 2
    caller_signal_address: Address | None
    endpoint_id: str
    call_reference: int
    destination: tuple[Alias, ...]
    source: tuple[Alias, ...]
    answer_call: bool
    call_id: bytes
    routed: bool
    call_number: int
    dest_signal_address: Address | None = None
    bandwidth: int = 0
    #: What asked: an ARQ, or (a caller not registered) its Setup. The status
    #: port shows an ACF line for an ARQ only, as GnuGk.
    origin: str = "ARQ"


@dataclass(frozen=True, slots=True)
class AdmissionRejected:
    trace_level: ClassVar[int] = 2
    caller_signal_address: Address | None
    destination: tuple[Alias, ...]
    source: tuple[Alias, ...]
    answer_call: bool
    reason: str
    call_id: bytes | None
    endpoint_id: str = ""
    origin: str = "ARQ"                 # ARQ, or Setup (no ARJ line for it)


@dataclass(frozen=True, slots=True)
class DisengageConfirmed:
    trace_level: ClassVar[int] = 2
    source: Address
    endpoint_id: str
    call_reference: int
    reason: str
    call_id: bytes | None


@dataclass(frozen=True, slots=True)
class DisengageRejected:
    trace_level: ClassVar[int] = 2
    source: Address
    endpoint_id: str
    call_reference: int
    reason: str
    call_id: bytes | None


@dataclass(frozen=True, slots=True)
class DisengageRequested:
    """DRQ sent by the gatekeeper to one side of a call."""

    trace_level: ClassVar[int] = 2
    ras_address: Address
    endpoint_id: str
    call_reference: int
    reason: str
    call_id: bytes


@dataclass(frozen=True, slots=True)
class BandwidthConfirmed:
    trace_level: ClassVar[int] = 2
    source: Address
    endpoint_id: str
    bandwidth: int


@dataclass(frozen=True, slots=True)
class BandwidthRejected:
    trace_level: ClassVar[int] = 2
    source: Address
    endpoint_id: str
    bandwidth: int
    reason: str


@dataclass(frozen=True, slots=True)
class LocationConfirmed:
    trace_level: ClassVar[int] = 2
    source: Address
    endpoint_id: str
    destination: tuple[Alias, ...]
    source_info: tuple[Alias, ...]
    signal_address: Address | None = None


@dataclass(frozen=True, slots=True)
class LocationRejected:
    trace_level: ClassVar[int] = 2
    source: Address
    destination: tuple[Alias, ...]
    source_info: tuple[Alias, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class InfoResponseReceived:
    """An IRR from a registered endpoint (answer to our IRQ, or unsolicited)."""

    trace_level: ClassVar[int] = 2
    source: Address
    endpoint_id: str
    unsolicited: bool


@dataclass(frozen=True, slots=True)
class ResourcesAvailable:
    """RAI received (and RAC sent)."""

    trace_level: ClassVar[int] = 2
    source: Address
    endpoint_id: str
    almost_out_of_resources: bool


# ---------------------------------------------------------------------------
# Calls (trace level 1) and notices (trace level 0)
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallDetailRecord:
    """A call ended: everything GnuGk's CDR line and accounting need."""

    trace_level: ClassVar[int] = 1
    call_number: int
    call_id: bytes
    conference_id: bytes
    setup_time: float                    # seconds since the epoch (admission)
    connect_time: float | None           # None: never connected
    disconnect_time: float
    caller_signal_address: Address | None
    caller_endpoint_id: str
    callee_signal_address: Address | None
    callee_endpoint_id: str
    destination_info: tuple[Alias, ...]
    source_info: tuple[Alias, ...]
    gatekeeper_name: str
    bandwidth: int = 0
    release_reason: str = ""
    caller_ip: str = ""
    callee_ip: str = ""

    @property
    def duration(self) -> int:
        """Whole seconds connected (0 for a call that never connected)."""
        if self.connect_time is None:
            return 0
        return max(0, int(self.disconnect_time - self.connect_time))


@dataclass(frozen=True, slots=True)
class CallSnapshot:
    """A call's parameters at one moment, copied out of the call table.

    What accounting needs for the ``alert``, ``connect`` and ``update``
    events: the same fields a :class:`CallDetailRecord` has, minus the end.
    It holds values only (no live call record), so it may be kept forever.
    """

    call_number: int
    call_id: bytes
    conference_id: bytes
    setup_time: float                    # seconds since the epoch (admission)
    connect_time: float | None           # None: not connected (yet)
    caller_signal_address: Address | None
    caller_endpoint_id: str
    callee_signal_address: Address | None
    callee_endpoint_id: str
    destination_info: tuple[Alias, ...]
    source_info: tuple[Alias, ...]
    bandwidth: int = 0
    routed: bool = False
    alerting_time: float | None = None   # None: not known to have rung

    def duration(self, now: float) -> int:
        """Whole seconds connected until ``now`` (0 if not connected)."""
        if self.connect_time is None:
            return 0
        return max(0, int(now - self.connect_time))


@dataclass(frozen=True, slots=True)
class CallAlerting:
    """The called party of a routed call is ringing (its Alerting passed the gatekeeper).

    ``call`` is the call's snapshot for accounting.  Two CallAlerting events
    are equal when they name the same call: the snapshot is not compared.
    """

    trace_level: ClassVar[int] = 2
    call_number: int
    call_id: bytes
    call: CallSnapshot | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class CallConnected:
    """A routed call was answered (its Connect passed the gatekeeper).

    ``call`` is the call's snapshot (with ``connect_time`` set) for
    accounting; it is not compared, as for :class:`CallAlerting`.
    """

    trace_level: ClassVar[int] = 2
    call_number: int
    call_id: bytes
    connect_time: float
    call: CallSnapshot | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class CallUpdate:
    """A connected call is still up: the periodic accounting update
    (``[CallTable] AcctUpdateInterval``), at ``time`` (seconds since the epoch)."""

    trace_level: ClassVar[int] = 2
    call: CallSnapshot
    time: float

    @property
    def duration(self) -> int:
        """Whole seconds connected so far."""
        return self.call.duration(self.time)


@dataclass(frozen=True, slots=True)
class RouteRequested:
    """A call to a virtual queue waits for an external application's answer."""

    trace_level: ClassVar[int] = 1
    caller_address: Address | None
    caller_endpoint_id: str
    call_reference: int
    virtual_queue: str
    caller_alias: str
    call_id: bytes | None
    called_address: Address | None = None
    vendor: str = ""
    message_from: Address | None = None
    message_type: str = "ARQ"


@dataclass(frozen=True, slots=True)
class ConfigReloaded:
    """The configuration was re-read: by the status ``Reload`` command
    (``source="command"``, announced on the status port as GnuGk does) or by
    SIGHUP (``source="signal"``, which GnuGk does not announce)."""

    trace_level: ClassVar[int] = 0
    ok: bool = True
    detail: str = ""
    warnings: tuple[str, ...] = field(default_factory=tuple)
    source: str = "command"


@dataclass(frozen=True, slots=True)
class Notice:
    """A plain line for every status session (e.g. a configuration warning)."""

    trace_level: ClassVar[int] = 0
    text: str


@dataclass(frozen=True, slots=True)
class AccountingLine:
    """A line of the StatusAcct accounting module (``CALL|Start|...``,
    ``EP|Register|...``), shown from trace level 1 as in GnuGk."""

    trace_level: ClassVar[int] = 1
    text: str
