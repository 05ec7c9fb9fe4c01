"""Virtual queues (``[CTI::Agents]``): calls routed by an external application.

A call whose destination is a virtual queue (an alias in
``VirtualQueueAliases``, a prefix in ``VirtualQueuePrefixes`` or a match of
``VirtualQueueRegex``) is held by the ``vqueue`` routing policy: a
:class:`~gatekeeper.events.RouteRequested` event goes to the status port, and
the policy's Deferred fires when an application answers with
``RouteToAlias``, ``RouteToGateway`` or ``RouteReject`` (see :meth:`answer`),
or when ``RequestTimeout`` passes, in which case the call goes on down the
routing chain as in GnuGk.

A pending request is found by (calling endpoint id, call reference), or by
call id when the answer names one. The first answer wins; later ones, and
answers for requests that timed out, get an error line.

For an LRQ, which has no call reference, the RouteRequest carries the LRQ's
sequence number as CallRef and the requester's endpoint id if it sent one,
else ``unregistered``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from gatekeeper import events as ev
from gatekeeper.configfile import ConfigError, IniFile, unknown_key
from gatekeeper.core.registry import Registry
from gatekeeper.core.routing import Route, RoutingRequest, rewritten
from gatekeeper.h225 import ras
from gatekeeper.h225.ras import Address, Alias
from gatekeeper.interfaces import IEventBus, IRoutingPolicy

SECTION = "CTI::Agents"
DEFAULT_TIMEOUT = 10.0
#: The ARJ/LRJ reason of a RouteReject that names none.
DEFAULT_REJECT_REASON = "calledPartyNotRegistered"
#: The EPID a RouteRequest names for a caller that is not registered (its
#: Setup came in with ``[RoutedMode] AcceptUnregisteredCalls=1``); answers
#: name it the same way (``RouteToAlias 1003 unregistered CRV``).
UNREGISTERED = "unregistered"


@dataclass(frozen=True, slots=True)
class VirtualQueueSettings:
    """``[CTI::Agents]``."""

    aliases: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    regex: str = ""
    request_timeout: float = DEFAULT_TIMEOUT

    @property
    def configured(self) -> bool:
        return bool(self.aliases or self.prefixes or self.regex)


def _list(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def parse_virtual_queues(ini: IniFile) -> tuple[VirtualQueueSettings, list[str]]:
    """Read ``[CTI::Agents]``; a bad regex or timeout names section, key and value."""
    values: dict[str, object] = {}
    warnings: list[str] = []
    for key, value in ini.items(SECTION):
        lowered = key.lower()
        if lowered in ("virtualqueuealiases", "virtualqueue"):   # the second: GnuGk's old name
            values["aliases"] = _list(value)
        elif lowered == "virtualqueueprefixes":
            values["prefixes"] = _list(value)
        elif lowered == "virtualqueueregex":
            try:
                re.compile(value)
            except re.error as error:
                raise ConfigError(ini.path, SECTION, key, value,
                                  f"not a regular expression: {error}") from None
            values["regex"] = value
        elif lowered == "requesttimeout":
            try:
                timeout = float(value)
            except ValueError:
                raise ConfigError(ini.path, SECTION, key, value, "not a number of seconds") from None
            if not 0 < timeout <= 3600:
                raise ConfigError(ini.path, SECTION, key, value,
                                  "must be more than 0 and at most 3600 seconds")
            values["request_timeout"] = timeout
        else:
            warnings.append(unknown_key(ini.path, SECTION, key))
    return VirtualQueueSettings(**values), warnings


@dataclass(eq=False)
class PendingRoute:
    """A call waiting in a virtual queue for an application's answer."""

    endpoint_id: str
    call_reference: int
    call_id: bytes | None
    queue: str
    request: RoutingRequest
    waiters: list[Deferred] = field(default_factory=list)
    timer: IDelayedCall | None = None

    @property
    def key(self) -> tuple:
        """How it is kept: by ``EPID CRV``; a caller that is not registered
        (a Setup) has no EPID of its own, so its call identifier is in the key."""
        if self.request.caller is None:
            return (self.endpoint_id, self.call_reference, self.call_id)
        return (self.endpoint_id, self.call_reference)


class RouteAnswerError(Exception):
    """An answer that cannot be used; the text is the status line."""


@implementer(IRoutingPolicy)
class VirtualQueuePolicy:
    """The ``vqueue`` link of the routing chain."""

    name = "vqueue"

    def __init__(self, queues: "VirtualQueues") -> None:
        self.queues = queues

    def route(self, request: RoutingRequest) -> Deferred | None:
        queue = self.queues.match(request.destination)
        if queue is None:
            return None
        return self.queues.hold(request, queue)


class VirtualQueues:
    """The pending RouteRequests and the answers to them."""

    log = Logger()

    def __init__(self, settings: VirtualQueueSettings, bus: IEventBus, clock: IReactorTime,
                 registry: Registry) -> None:
        self.bus = bus
        self.clock = clock
        self.registry = registry
        self.pending: dict[tuple, PendingRoute] = {}
        self.stats = {"requests": 0, "answered": 0, "rejected": 0, "timeouts": 0,
                      "late answers": 0}
        self.reconfigure(settings)
        self.policy = VirtualQueuePolicy(self)

    def reconfigure(self, settings: VirtualQueueSettings) -> None:
        """Take new settings (a reload); requests already waiting keep their timers."""
        self.settings = settings
        self._aliases = set(settings.aliases)
        self._regex = re.compile(settings.regex) if settings.regex else None

    # -- holding -----------------------------------------------------------

    def match(self, destination: tuple[Alias, ...]) -> str | None:
        """The virtual queue a destination dials, or None."""
        for alias in destination:
            value = alias.value
            if value in self._aliases:
                return value
            if any(value.startswith(prefix) for prefix in self.settings.prefixes):
                return value
            if self._regex is not None and self._regex.search(value):   # GnuGk: anchors are explicit
                return value
        return None

    def hold(self, request: RoutingRequest, queue: str) -> Deferred:
        """Publish a RouteRequest and wait for the answer (or the timeout)."""
        endpoint_id = request.caller.endpoint_id if request.caller else UNREGISTERED
        waiter: Deferred = Deferred()
        candidate = PendingRoute(endpoint_id, request.call_reference, request.call_id, queue,
                                 request, [waiter])
        key = candidate.key
        pending = self.pending.get(key)
        if pending is not None:
            # The same call asked again (e.g. a retransmission with a new
            # sequence number): one RouteRequest, both wait for its answer.
            pending.waiters.append(waiter)
            return waiter
        pending = candidate
        pending.timer = self.clock.callLater(self.settings.request_timeout, self._expire, key)
        self.pending[key] = pending
        self.stats["requests"] += 1
        caller_alias = request.source[0].value if request.source else ""
        caller = request.caller
        vendor = str(caller.vendor) if caller is not None and caller.vendor is not None else ""
        caller_address = request.caller_signal_address or (
            request.caller.signal_address if request.caller else None)
        self.bus.publish(ev.RouteRequested(
            caller_address, endpoint_id, request.call_reference, queue, caller_alias,
            request.call_id, request.dest_signal_address, vendor,
            request.message_from, request.message_type))
        return waiter

    def _expire(self, key: tuple) -> None:
        pending = self.pending.pop(key, None)
        if pending is None:
            return
        pending.timer = None
        self.stats["timeouts"] += 1
        self.log.info("no answer for the call of {epid} (CRV {crv}) in virtual queue {queue} "
                      "within {timeout} s; the routing chain goes on",
                      epid=pending.endpoint_id, crv=pending.call_reference,
                      queue=pending.queue, timeout=self.settings.request_timeout)
        self._fire(pending, None)

    def _fire(self, pending: PendingRoute, result: object) -> None:
        if pending.timer is not None and pending.timer.active():
            pending.timer.cancel()
        pending.timer = None
        for waiter in pending.waiters:
            waiter.callback(result)

    def stop(self) -> None:
        """Refuse every waiting call (the gatekeeper is stopping)."""
        for key in list(self.pending):
            self._fire(self.pending.pop(key), Route(None, policy="vqueue",
                                                    reject="resourceUnavailable"))

    # -- answers (the status commands) -----------------------------------------
    # The status port parses the words of RouteToAlias/RouteToGateway/
    # RouteReject; these take the values. Each returns None when the waiting
    # call was answered, else the error line to show.

    def route_to_alias(self, endpoint_id: str, crv: int, call_id: bytes | None,
                       alias: Alias) -> str | None:
        """Route the waiting call to ``alias`` (registered here, or on through
        the rest of the routing chain)."""
        pending = self._find(endpoint_id, crv, call_id)
        if pending is None:
            return self._not_pending(endpoint_id, crv)
        endpoint = self.registry.find_alias(alias)
        if endpoint is not None and endpoint.signal_address is not None:
            result: Route | RoutingRequest = Route(endpoint.signal_address, endpoint, alias.value,
                                                   "vqueue", destination=(alias,))
        else:
            result = rewritten(pending.request, (alias,))
        return self._answered(pending, result)

    def route_to_gateway(self, endpoint_id: str, crv: int, call_id: bytes | None,
                         alias: Alias, address: Address) -> str | None:
        """Route the waiting call to ``alias`` at a signalling address."""
        pending = self._find(endpoint_id, crv, call_id)
        if pending is None:
            return self._not_pending(endpoint_id, crv)
        return self._answered(pending, Route(address, self.registry.find_signal(address),
                                             alias.value, "vqueue", destination=(alias,)))

    def reject(self, endpoint_id: str, crv: int, call_id: bytes | None,
               reason: str | int | None = None) -> str | None:
        """Reject the waiting call: ``reason`` an ARJ (LRJ for an LRQ) reason
        by name or by its index, None for the default."""
        pending = self._find(endpoint_id, crv, call_id)
        if pending is None:
            return self._not_pending(endpoint_id, crv)
        try:
            name = self._reject_reason(pending, reason)
        except RouteAnswerError as error:
            return str(error)
        self.stats["rejected"] += 1
        return self._answered(pending, Route(None, policy="vqueue", reject=name))

    def _answered(self, pending: PendingRoute, result: object) -> None:
        del self.pending[pending.key]
        self.stats["answered"] += 1
        self._fire(pending, result)
        return None

    def _find(self, endpoint_id: str, crv: int, call_id: bytes | None) -> PendingRoute | None:
        """The pending request of ``EPID CRV``, or with a call identifier the
        one of that call."""
        if call_id is not None:
            for pending in self.pending.values():
                if pending.call_id == call_id:
                    return pending
            return None
        found = self.pending.get((endpoint_id, crv))
        if found is None:
            # Callers that are not registered: the first waiting with that CRV.
            found = next((p for p in self.pending.values()
                          if p.endpoint_id == endpoint_id and p.call_reference == crv), None)
        return found

    def _not_pending(self, endpoint_id: str, crv: int) -> str:
        self.stats["late answers"] += 1
        return f"Error: no RouteRequest pending for {endpoint_id} {crv}"

    def _reject_reason(self, pending: PendingRoute, reason: str | int | None) -> str:
        lrq = pending.request.message_type == "LRQ"
        kind = "LRJ" if lrq else "ARJ"
        if reason is None:
            return "requestDenied" if lrq else DEFAULT_REJECT_REASON
        reasons = ras.reasons("locationReject" if lrq else "admissionReject")
        if isinstance(reason, int):
            if 0 <= reason < len(reasons):
                return reasons[reason]
        elif reason in reasons:
            return reason
        raise RouteAnswerError(f"Error: {reason} is not an {kind} reason")
