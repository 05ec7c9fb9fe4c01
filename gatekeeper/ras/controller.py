"""RAS message -> core -> reply.

:class:`RasController` holds no socket: the protocol hands it typed messages
(``gatekeeper.h225.ras``) with their source address and writes back what it
returns; requests the gatekeeper itself sends (URQ, IRQ, DRQ) go out through
the ``send`` callable the protocol attaches, and are retransmitted until the
endpoint answers.  Every confirm and reject is published on the event bus.
"""

from __future__ import annotations

import socket
from collections import Counter, OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from gatekeeper import events as ev
from gatekeeper.core.bandwidth import BandwidthPool
from gatekeeper.core.calls import Call, CallTable
from gatekeeper.core.registry import Endpoint, Registry
from gatekeeper.core.rewrite import RewriteRule, rewrite_destination
from gatekeeper.core.routing import Router, RoutingRequest, default_router
from gatekeeper.h225 import codec, ras
from gatekeeper.h225.ras import Address
from gatekeeper.interfaces import IEventBus
from gatekeeper.ratelimit import RateLimitedLog  # noqa: F401 - also imported from here
from gatekeeper.ras.keepalive import KeepaliveReplies
from gatekeeper.ras.policy import RasPolicy

#: What a handler answers: a typed message for the request's source, a
#: :class:`Reply` for another address, or :class:`Encoded` bytes.
Message = ras.OutgoingMessage

#: Sends a message; the third argument, when given, is the request it answers
#: as (source, kind, seq), so that retransmissions of that request get it too.
Send = Callable[..., None]


@dataclass(frozen=True, slots=True)
class RasSettings:
    """What the RAS service needs from ``[Gatekeeper::Main]`` and friends."""

    gatekeeper_id: str = "gatekeeper"
    time_to_live: int | None = None          # [Gatekeeper::Main] TimeToLive; None: off
    minimum_time_to_live: int = 60
    total_bandwidth: int | None = None       # units of 100 bit/s; None: unlimited
    irq_poll_count: int = 1                  # IRQs before a silent endpoint is dropped
    irq_poll_interval: float = 10.0
    require_discovery: bool = False          # RRQ only after a GRQ from that address
    discovery_memory: float = 600.0          # how long a GCF counts as discovery
    request_retries: int = 3                 # sends of each URQ/IRQ/DRQ we originate
    request_interval: float = 2.0
    routed: bool = False
    signal_address: Address | None = None    # the gatekeeper's own, for routed mode
    endpoint_id_suffix: str = "_endp"


@dataclass(slots=True)
class Reply:
    """A reply for an address other than the request's source."""

    message: ras.OutgoingMessage
    address: Address


@dataclass(slots=True)
class Encoded:
    """A reply already encoded (keepalive RCFs come from a template)."""

    data: bytes


Answer = Message | Reply | Encoded


@dataclass(slots=True)
class _Held:
    """A request answered with RequestInProgress while its route is sought."""

    message: Any
    source: Address          # where the final answer goes
    endpoint_id: str | None
    seq: int                 # the latest sequence number it was asked with
    reply_to: Address | None = None   # an LRQ's replyAddress, if not the source
    earlier: list[int] = field(default_factory=list)   # other sequence numbers it came with


@dataclass(slots=True)
class _Outgoing:
    kind: str
    message: ras.OutgoingMessage
    address: Address
    tries_left: int
    timer: IDelayedCall | None = None
    on_answer: Callable[[ras.RasPdu], None] | None = None


#: What answers each request the gatekeeper sends.
ANSWERS = {
    "unregistrationRequest": ("unregistrationConfirm", "unregistrationReject"),
    "disengageRequest": ("disengageConfirm", "disengageReject"),
    "infoRequest": ("infoRequestResponse",),
}

#: Messages only a gatekeeper sends (or answers to requests we never send).
#: Received, they are counted as unexpected and never answered: answering an
#: UnknownMessageResponse with another would ping-pong between two gatekeepers.
NOT_FOR_US = (
    "gatekeeperConfirm", "gatekeeperReject", "registrationConfirm", "registrationReject",
    "admissionConfirm", "admissionReject", "admissionConfirmSequence", "bandwidthConfirm",
    "bandwidthReject", "locationConfirm", "locationReject", "infoRequest",
    "unknownMessageResponse", "requestInProgress", "resourcesAvailableConfirm",
    "serviceControlResponse",
)


#: Tells whether an LRQ comes from a configured neighbour gatekeeper
#: ([RasSrv::Neighbors]); the neighbour table plugs in here.
NeighbourCheck = Callable[[ras.LocationRequest, Address], bool]


def no_neighbours(lrq: ras.LocationRequest, source: Address) -> bool:
    """The neighbour check while no neighbours are configured."""
    return False


def usable_address(address: Address | None) -> bool:
    """An address an endpoint can really be reached at (not 0.0.0.0, not
    multicast, a real port)."""
    if address is None:
        return False
    host, port = address
    if not 0 < port <= 65535:
        return False
    try:
        octets = socket.inet_pton(socket.AF_INET, host)
    except (OSError, TypeError):
        try:
            octets = socket.inet_pton(socket.AF_INET6, host)
        except (OSError, TypeError):
            return False
        return octets != bytes(16) and octets[0] != 0xFF
    return octets != b"\0\0\0\0" and not 224 <= octets[0] <= 239


class RasController:
    """Answers every RAS request, in direct mode, and keeps the tables."""

    log = Logger()

    def __init__(self, settings: RasSettings, bus: IEventBus, clock: IReactorTime,
                 registry: Registry | None = None, calls: CallTable | None = None,
                 router: Router | None = None,
                 local_ras_address: Callable[[Address], Address] | None = None,
                 policy: RasPolicy | None = None) -> None:
        self.settings = settings
        self.bus = bus
        self.clock = clock
        self.registry = registry if registry is not None else Registry(settings.endpoint_id_suffix)
        self.calls = calls if calls is not None else CallTable()
        self.router = router if router is not None else default_router(self.registry)
        self.bandwidth = BandwidthPool(settings.total_bandwidth)
        self.local_ras_address = local_ras_address or (lambda source: ("127.0.0.1", 1719))
        self.stats: Counter[str] = Counter()
        self._send: Send | None = None
        self.accepting = True        # False while shutting down: no new calls
        self.hold_delay = 12.0       # seconds a RequestInProgress asks the endpoint to wait
        self.rewrite_rules: tuple[RewriteRule, ...] = ()   # [RasSrv::RewriteE164]
        self.policy = policy if policy is not None else RasPolicy()
        self.is_neighbour: NeighbourCheck = no_neighbours
        self._held: dict[tuple, _Held] = {}
        self._discovered: OrderedDict[str, float] = OrderedDict()
        self._outgoing: dict[int, _Outgoing] = {}
        self._seq = 0
        self._trouble = RateLimitedLog(self.log, clock)
        self.keepalive_replies = KeepaliveReplies(
            lambda endpoint: self.registry.get(endpoint.endpoint_id) is endpoint)
        self._sweeper = LoopingCall(self.check_registrations)
        self._sweeper.clock = clock
        self._handlers: dict[str, Callable[[Any, Address], Any]] = {
            "gatekeeperRequest": self.on_grq,
            "registrationRequest": self.on_rrq,
            "unregistrationRequest": self.on_urq,
            "admissionRequest": self.on_arq,
            "bandwidthRequest": self.on_brq,
            "disengageRequest": self.on_drq,
            "locationRequest": self.on_lrq,
            "infoRequestResponse": self.on_irr,
            "resourcesAvailableIndicate": self.on_rai,
            "unregistrationConfirm": self.on_answer,
            "unregistrationReject": self.on_answer,
            "disengageConfirm": self.on_answer,
            "disengageReject": self.on_answer,
            "infoRequestAck": self.on_answer,
            "infoRequestNak": self.on_answer,
        }
        self._handlers.update(dict.fromkeys(NOT_FOR_US, self.on_answer))

    # -- life cycle ------------------------------------------------------

    def attach(self, send: Send) -> None:
        """Give the controller a way to send its own requests."""
        self._send = send

    def start(self) -> None:
        if not self._sweeper.running:
            self._sweeper.start(1.0, now=False)

    def stop(self) -> None:
        if self._sweeper.running:
            self._sweeper.stop()
        for outgoing in self._outgoing.values():
            if outgoing.timer is not None and outgoing.timer.active():
                outgoing.timer.cancel()
        self._outgoing.clear()

    @property
    def name(self) -> str:
        return self.settings.gatekeeper_id

    def now(self) -> float:
        return self.clock.seconds()

    # -- dispatch --------------------------------------------------------

    def handle(self, pdu: ras.RasPdu, source: Address, data: bytes = b"",
               multicast: bool = False) -> Answer | None:
        """The reply to one message (None: no reply)."""
        unknown_extension = pdu.kind.startswith(codec.UNKNOWN_ALTERNATIVE_PREFIX)
        self.stats["?extension" if unknown_extension else pdu.kind] += 1
        if multicast and pdu.kind != "gatekeeperRequest":
            self.stats["ignored multicast"] += 1
            return None
        handler = self._handlers.get(pdu.kind)
        if handler is None:
            self.stats["unknown"] += 1
            return ras.Umr(pdu.seq, data)
        if pdu.kind == "gatekeeperRequest":
            return self.on_grq(pdu, source, multicast)
        return handler(pdu, source)

    def generic_reject(self, pdu: ras.RasPdu) -> Message | None:
        """What to answer when handling a request failed unexpectedly."""
        seq = pdu.seq if 1 <= pdu.seq <= 65535 else 1
        return {
            "gatekeeperRequest": lambda: ras.Grj(seq, "undefinedReason", self.name),
            "registrationRequest": lambda: ras.Rrj(seq, "undefinedReason", self.name),
            "unregistrationRequest": lambda: ras.Urj(seq, "undefinedReason"),
            "admissionRequest": lambda: ras.Arj(seq, "undefinedReason"),
            "bandwidthRequest": lambda: ras.Brj(seq, "undefinedReason", 0),
            "locationRequest": lambda: ras.Lrj(seq, "undefinedReason"),
            "disengageRequest": lambda: ras.Drj(seq, "notRegistered"),
        }.get(pdu.kind, lambda: None)()

    # -- GRQ -------------------------------------------------------------

    def answer_address(self, source: Address, ras_address: Address | None) -> Address:
        """Where the answer to a GRQ or RRQ goes: where it came from, as in
        GnuGk, unless ``[ReplyToRasAddress]`` says to use the rasAddress it
        names for requests from the source's network."""
        if ras_address is not None and ras_address != source and usable_address(ras_address) \
                and self.policy.replies_to_ras_address(source[0]):
            return ras_address
        return source

    def on_grq(self, grq: ras.GatekeeperRequest, source: Address,
               multicast: bool = False) -> Message | Reply | None:
        # Multicast or not, the answer goes to the source (GnuGk's default):
        # a rasAddress naming a third party gets nothing from us.
        reply_to = self.answer_address(source, grq.ras_address)
        if grq.gatekeeper_id and grq.gatekeeper_id != self.name:
            if multicast:
                return None  # a GRQ for another gatekeeper: not ours to refuse
            self.bus.publish(ev.GatekeeperRejected(source, grq.aliases, grq.endpoint_type,
                                                   "terminalExcluded"))
            return self._to(ras.Grj(grq.seq, "terminalExcluded", self.name), reply_to, source)
        self._remember_discovery(source[0])
        if grq.ras_address is not None:
            self._remember_discovery(grq.ras_address[0])
        message = ras.Gcf(grq.seq, self.name, self.local_ras_address(source))
        self.bus.publish(ev.GatekeeperConfirmed(source, grq.aliases, grq.endpoint_type))
        return self._to(message, reply_to, source)

    # -- RRQ -------------------------------------------------------------

    def grant_time_to_live(self, requested: int | None) -> int | None:
        """GnuGk's rule: off unless TimeToLive is set; never above it, never below 60 s."""
        configured = self.settings.time_to_live
        if not configured:
            return None
        wanted = requested if requested else configured
        return max(self.settings.minimum_time_to_live, min(configured, wanted))

    def _rrj(self, rrq: ras.RegistrationRequest, source: Address, reason: str,
             value: Any = None) -> Message:
        self.stats["RRJ"] += 1
        self.bus.publish(ev.RegistrationRejected(source, rrq.aliases, rrq.endpoint_type, reason))
        return ras.Rrj(rrq.seq, reason, self.name, value)

    def on_rrq(self, rrq: ras.RegistrationRequest, source: Address) -> Answer:
        ras_addresses = [a for a in rrq.ras_addresses if usable_address(a)]
        reply_to = self.answer_address(source, ras_addresses[0] if ras_addresses else None)
        now = self.now()
        if rrq.keep_alive and rrq.endpoint_id:
            return self._keepalive(rrq, source, now, reply_to)
        return self._to(self._register(rrq, source, ras_addresses, now), reply_to, source)

    def _register(self, rrq: ras.RegistrationRequest, source: Address,
                  ras_addresses: list[Address], now: float) -> Message:
        """The answer to a full RRQ: a new registration, a renewal, or RRJ."""
        signal = tuple(a for a in rrq.call_signal_addresses if usable_address(a))
        if not signal:
            return self._rrj(rrq, source, "invalidCallSignalAddress")
        if not ras_addresses:
            return self._rrj(rrq, source, "invalidRASAddress")
        existing, holder = self._existing_registration(rrq, source, signal)
        if holder is not None and not self._same_host(holder, source):
            # A signalling address registered from another host is never
            # taken over (GnuGk too wants the signalling IP to be the sender's).
            self.stats["spoofed"] += 1
            return self._rrj(rrq, source, "invalidCallSignalAddress")
        if self.settings.require_discovery and existing is None and not self._did_discovery(rrq, source, now):
            return self._rrj(rrq, source, "discoveryRequired")
        aliases = rrq.aliases
        if rrq.additive and existing is not None:
            aliases = existing.aliases + tuple(a for a in aliases if a not in existing.aliases)
        taken = self.registry.conflicting_aliases(aliases, existing)
        # The registrations this one conflicts with: the one holding its
        # signalling address (same host, other port) and the owners of its
        # aliases. GnuGk refuses (duplicateAlias) unless OverwriteEPOnSameAddress,
        # which unregisters them (URQ) and lets this one in; permanent
        # endpoints are never replaced.
        owners = [holder] if holder is not None else []
        for alias in taken:
            owner = self.registry.find_alias(alias)
            if owner is not None and owner not in owners:
                owners.append(owner)
        if owners and (not self.policy.overwrite_ep_on_same_address
                       or any(owner.permanent for owner in owners)):
            if holder is not None:
                self.stats["takeover refused"] += 1
                self._trouble("takeover", "refused an RRQ from {source} for the signalling "
                              "address of {endpoint_id}, registered from {registered}",
                              source=ras.format_address(source), endpoint_id=holder.endpoint_id,
                              registered=ras.format_address(holder.source_address
                                                            or holder.ras_address))
            if taken:
                return self._rrj(rrq, source, "duplicateAlias", ras.aliases_to_asn(taken))
            return self._rrj(rrq, source, "invalidCallSignalAddress")
        for owner in owners:
            self.stats["registrations replaced"] += 1
            self.unregister(owner, "maintenance", "replaced by a new registration")
        ttl = self.grant_time_to_live(rrq.time_to_live)
        prefixes = tuple(p.digits or p.value for p in rrq.prefixes)
        if existing is None:
            endpoint = Endpoint(
                endpoint_id=self.registry.new_endpoint_id(), aliases=aliases,
                signal_addresses=signal, ras_address=ras_addresses[0],
                endpoint_type=rrq.endpoint_type, vendor=rrq.vendor, prefixes=prefixes,
                registration_time=now, last_seen=now, time_to_live=ttl, source_address=source)
            self.registry.add(endpoint)
        else:
            endpoint = existing
            self.registry.update(endpoint, aliases=aliases, signal_addresses=signal,
                                 prefixes=prefixes, ras_address=ras_addresses[0],
                                 endpoint_type=rrq.endpoint_type, vendor=rrq.vendor,
                                 time_to_live=ttl, source_address=source, last_seen=now,
                                 irq_polls=0)
        self.stats["RCF"] += 1
        self.bus.publish(ev.EndpointRegistered(
            signal[0], endpoint.ras_address, endpoint.aliases, endpoint.endpoint_type,
            endpoint.endpoint_id, keepalive=False, new=existing is None,
            vendor=str(rrq.vendor or "")))
        return ras.Rcf(rrq.seq, signal, endpoint.endpoint_id, self.name, endpoint.aliases, ttl,
                       supports_additive=True)

    def _existing_registration(self, rrq: ras.RegistrationRequest, source: Address,
                               signal: tuple[Address, ...]
                               ) -> tuple[Endpoint | None, Endpoint | None]:
        """The registration a full RRQ renews, and the one holding a
        signalling address it asks for without being it.

        A registration is renewed only from where it was made (its RAS
        address, or the address its RRQ came from: ``Endpoint.is_from``),
        named by its identifier or by its signalling address. From anywhere
        else, even another port of the same host, the RRQ conflicts with it
        (its identifier, calls and aliases are not handed over).
        """
        renewed = None
        if rrq.endpoint_id:
            endpoint = self.registry.get(rrq.endpoint_id)
            if endpoint is not None and endpoint.is_from(source):
                renewed = endpoint
        for address in signal:
            endpoint = self.registry.find_signal(address)
            if endpoint is None or endpoint is renewed:
                continue
            if renewed is None and endpoint.is_from(source):
                renewed = endpoint
                continue
            return renewed, endpoint
        return renewed, None

    @staticmethod
    def _same_host(endpoint: Endpoint, source: Address) -> bool:
        """Whether ``source`` is on the host ``endpoint`` registered from."""
        return any(a is not None and a[0] == source[0]
                   for a in (endpoint.ras_address, endpoint.source_address))

    def _remember_discovery(self, ip: str) -> None:
        """Note a GRQ from ``ip``; forget the ones too old to count."""
        now = self.now()
        discovered = self._discovered
        discovered[ip] = now
        discovered.move_to_end(ip)
        horizon = now - self.settings.discovery_memory
        while discovered:
            oldest, when = next(iter(discovered.items()))
            if when >= horizon and len(discovered) <= 1_000_000:
                break
            del discovered[oldest]

    def _did_discovery(self, rrq: ras.RegistrationRequest, source: Address, now: float) -> bool:
        if not rrq.discovery_complete:
            return False
        when = self._discovered.get(source[0])
        return when is not None and now - when <= self.settings.discovery_memory

    def _keepalive(self, rrq: ras.RegistrationRequest, source: Address, now: float,
                   reply_to: Address | None = None) -> Answer:
        reply_to = reply_to or source
        endpoint = self.registry.get(rrq.endpoint_id or "")
        if endpoint is None:
            return self._to(self._rrj(rrq, source, "fullRegistrationRequired"), reply_to, source)
        if not endpoint.is_from(source):
            # Its own RAS address or nothing: not another port of its host.
            self.stats["spoofed"] += 1
            return self._to(self._rrj(rrq, source, "securityDenial"), reply_to, source)
        ttl = self.grant_time_to_live(rrq.time_to_live or endpoint.time_to_live)
        endpoint.time_to_live = ttl
        self.registry.touch(endpoint, now)
        self.stats["RCF"] += 1
        self.bus.publish(ev.EndpointRegistered(
            endpoint.signal_address, endpoint.ras_address, endpoint.aliases,
            endpoint.endpoint_type, endpoint.endpoint_id, keepalive=True, new=False,
            vendor=str(endpoint.vendor or "")))
        with_aliases = bool(rrq.aliases)
        if reply_to != source:   # [ReplyToRasAddress]: rare, no template
            return Reply(ras.Rcf(rrq.seq, endpoint.signal_addresses, endpoint.endpoint_id,
                                 self.name, endpoint.aliases if with_aliases else None, ttl,
                                 supports_additive=True), reply_to)
        return Encoded(self.keepalive_replies.rcf(endpoint, rrq.seq, with_aliases, ttl, self.name))

    # -- URQ -------------------------------------------------------------

    def on_urq(self, urq: ras.UnregistrationRequest, source: Address) -> Message:
        endpoint = None
        if urq.endpoint_id:
            endpoint = self.registry.get(urq.endpoint_id)
        else:
            for address in urq.call_signal_addresses:
                endpoint = self.registry.find_signal(address)
                if endpoint is not None:
                    break
        if endpoint is None:
            self.bus.publish(ev.UnregistrationRejected(source, urq.endpoint_id or "",
                                                       "notCurrentlyRegistered"))
            return ras.Urj(urq.seq, "notCurrentlyRegistered")
        if not endpoint.is_from(source):
            self.stats["spoofed"] += 1
            self.bus.publish(ev.UnregistrationRejected(source, endpoint.endpoint_id,
                                                       "permissionDenied"))
            return ras.Urj(urq.seq, "permissionDenied")
        self.registry.remove(endpoint.endpoint_id, "unregistered by endpoint", self.now())
        self.bus.publish(ev.EndpointUnregistered(
            source, endpoint.endpoint_id, endpoint.aliases, "endpoint request",
            endpoint.signal_address, endpoint.endpoint_type))
        self._end_calls_of(endpoint)
        return ras.Ucf(urq.seq)

    # -- ARQ -------------------------------------------------------------

    def _arj(self, arq: ras.AdmissionRequest, caller: Endpoint | None, reason: str) -> Message:
        self.stats["ARJ"] += 1
        signal = caller.signal_address if caller is not None else arq.src_call_signal_address
        self.bus.publish(ev.AdmissionRejected(
            signal, arq.destination_info, arq.src_info, arq.answer_call, reason, arq.call_id,
            arq.endpoint_id))
        return ras.Arj(arq.seq, reason)

    def on_arq(self, arq: ras.AdmissionRequest, source: Address) -> Message:
        now = self.now()
        endpoint = self.registry.get(arq.endpoint_id)
        if endpoint is None:
            return self._arj(arq, None, "callerNotRegistered")
        if not endpoint.is_from(source):
            self.stats["spoofed"] += 1
            return self._arj(arq, None, "invalidEndpointIdentifier")
        self.registry.touch(endpoint, now)
        if not self.accepting:
            return self._arj(arq, endpoint, "resourceUnavailable")
        if arq.answer_call:
            return self._answer_arq(arq, endpoint, now)
        again = self.calls.find_call_id(arq.call_id)
        if again is not None and again.caller_endpoint_id == endpoint.endpoint_id:
            # A retransmission we no longer remember: same answer, no second call.
            return self._confirm_again(arq, endpoint, again)
        if not arq.destination_info and arq.dest_call_signal_address is None:
            return self._arj(arq, endpoint, "requestDenied")
        if self.rewrite_rules:
            arq = replace(arq, destination_info=rewrite_destination(self.rewrite_rules,
                                                                    arq.destination_info))
        key = ("admissionRequest", endpoint.endpoint_id, arq.call_id or arq.call_reference)
        held = self._held.get(key)
        if held is not None:
            # Asked again while an application decides: no second RouteRequest.
            self.stats["ARQ while held"] += 1
            held.earlier.append(held.seq)
            held.seq = arq.seq
            return ras.Rip(arq.seq, self.hold_delay_ms)
        route = self.router.route(RoutingRequest(
            arq.destination_info, arq.dest_call_signal_address, arq.src_info, endpoint,
            "ARQ", arq.call_id, arq.call_reference, source, endpoint.signal_address))
        if isinstance(route, Deferred):
            return self._hold(key, route, arq, source, endpoint.endpoint_id)
        return self._admit(arq, endpoint, route, now)

    # -- requests held while a routing policy asks someone else ----------

    def _hold(self, key: tuple, route: Deferred, message: Any, source: Address,
              endpoint_id: str | None, reply_to: Address | None = None) -> Message:
        """Answer RequestInProgress now and the request when the route is known."""
        self._held[key] = _Held(message, source, endpoint_id, message.seq, reply_to)
        self.stats["held"] += 1
        route.addCallback(self._route_known, key)
        route.addErrback(self._route_failed, key)
        return ras.Rip(message.seq, self.hold_delay_ms)

    def _route_known(self, route: Any, key: tuple) -> None:
        held = self._held.pop(key, None)
        if held is None:
            return
        message = replace(held.message, seq=held.seq)
        if key[0] == "locationRequest":
            reply = self._lrq_answer(message, held.source, route, held.reply_to)
        else:
            endpoint = self.registry.get(held.endpoint_id)
            if endpoint is None:
                self.stats["held caller gone"] += 1
                return  # unregistered meanwhile: nobody to answer
            if not self.accepting:
                reply = self._arj(message, endpoint, "resourceUnavailable")
            else:
                reply = self._admit(message, endpoint, route, self.now())
        self.answer_later(reply, held.source, key[0], held.seq, held.earlier)

    def _route_failed(self, failure: Any, key: tuple) -> None:
        self._trouble.failure("routing", "routing a held {kind} failed", failure, kind=key[0])
        held = self._held.pop(key, None)
        if held is None:
            return
        if key[0] == "locationRequest":
            reply = self._to(ras.Lrj(held.seq, "undefinedReason"), held.reply_to or held.source,
                             held.source)
        else:
            reply = ras.Arj(held.seq, "undefinedReason")
        self.answer_later(reply, held.source, key[0], held.seq)

    def answer_later(self, reply: Message | Reply, source: Address, kind: str, seq: int,
                     earlier: list[int] = ()) -> None:
        """Send the final answer to a request answered with RIP before; the
        same answer is kept for retransmissions under the earlier sequence
        numbers the request came with."""
        message, address = (reply.message, reply.address) if isinstance(reply, Reply) \
            else (reply, source)
        if self._send is None:
            return
        self._send(message, address, (source, kind, seq))
        for number in earlier:
            self._send(message.with_seq(number), address,
                       (source, kind, number), False)

    @property
    def hold_delay_ms(self) -> int:
        """The delay a RequestInProgress announces."""
        return max(1, min(65535, int(self.hold_delay * 1000)))

    # -- admission -------------------------------------------------------

    def _admit(self, arq: ras.AdmissionRequest, endpoint: Endpoint, route: Any,
               now: float) -> Message:
        """ACF to where the routing chain says, or ARJ."""
        if route is None or (route.reject is None and route.signal_address is None):
            return self._arj(arq, endpoint, "calledPartyNotRegistered")
        if route.reject is not None:
            return self._arj(arq, endpoint, route.reject)
        if not self.bandwidth.take(arq.bandwidth):
            return self._arj(arq, endpoint, "resourceUnavailable")
        destination_info = route.destination or arq.destination_info
        call_id = arq.call_id or ras.new_guid()
        call = self.calls.add(Call(
            number=self.calls.next_number(), call_id=call_id, conference_id=arq.conference_id,
            caller_endpoint_id=endpoint.endpoint_id, caller_signal_address=endpoint.signal_address,
            caller_crv=arq.call_reference,
            callee_endpoint_id=route.endpoint.endpoint_id if route.endpoint else "",
            callee_signal_address=route.signal_address,
            destination_info=destination_info, source_info=arq.src_info or endpoint.aliases,
            bandwidth=arq.bandwidth, admission_time=now, routed=self.settings.routed))
        endpoint.active_calls += 1
        endpoint.total_calls += 1
        if route.endpoint is not None:
            route.endpoint.active_calls += 1
            route.endpoint.total_calls += 1
        destination = self._destination_for(route)
        self.stats["ACF"] += 1
        self.bus.publish(ev.AdmissionConfirmed(
            endpoint.signal_address, endpoint.endpoint_id, arq.call_reference,
            destination_info, call.source_info, False, call_id, self.settings.routed,
            call.number, route.signal_address, arq.bandwidth))
        return ras.Acf(arq.seq, arq.bandwidth, destination, routed=self.settings.routed,
                       destination_info=route.destination or None,
                       destination_type=route.endpoint.endpoint_type if route.endpoint else None)

    def _confirm_again(self, arq: ras.AdmissionRequest, endpoint: Endpoint, call: Call) -> Message:
        callee = self.registry.get(call.callee_endpoint_id)
        destination = (self.settings.signal_address if self.settings.routed
                       and self.settings.signal_address else call.callee_signal_address)
        if destination is None:
            return self._arj(arq, endpoint, "calledPartyNotRegistered")
        self.stats["ACF"] += 1
        self.bus.publish(ev.AdmissionConfirmed(
            endpoint.signal_address, endpoint.endpoint_id, arq.call_reference,
            arq.destination_info, call.source_info, False, call.call_id, self.settings.routed,
            call.number, call.callee_signal_address, call.bandwidth))
        return ras.Acf(arq.seq, call.bandwidth, destination, routed=self.settings.routed,
                       destination_type=callee.endpoint_type if callee else None)

    def _destination_for(self, route: Any) -> Address:
        if self.settings.routed and self.settings.signal_address is not None:
            return self.settings.signal_address
        return route.signal_address

    def _answer_arq(self, arq: ras.AdmissionRequest, endpoint: Endpoint, now: float) -> Message:
        """The called endpoint asks to answer: it joins the caller's call."""
        call = self.calls.find_call_id(arq.call_id)
        own = arq.dest_call_signal_address or endpoint.signal_address
        if call is None:
            # A call from outside (unregistered caller, another zone): admit
            # the answering side on its own.
            if not self.bandwidth.take(arq.bandwidth):
                return self._arj(arq, endpoint, "resourceUnavailable")
            call = self.calls.add(Call(
                number=self.calls.next_number(), call_id=arq.call_id or ras.new_guid(),
                conference_id=arq.conference_id, caller_endpoint_id="",
                caller_signal_address=arq.src_call_signal_address, caller_crv=0,
                callee_endpoint_id=endpoint.endpoint_id, callee_signal_address=own,
                destination_info=arq.destination_info, source_info=arq.src_info,
                bandwidth=arq.bandwidth, admission_time=now, callee_crv=arq.call_reference,
                answered=True, routed=self.settings.routed))
            endpoint.total_calls += 1
            endpoint.active_calls += 1
        elif call.callee_endpoint_id not in ("", endpoint.endpoint_id):
            return self._arj(arq, endpoint, "requestDenied")
        else:
            if not call.callee_endpoint_id:
                endpoint.total_calls += 1
                endpoint.active_calls += 1
            self.calls.join(call, endpoint.endpoint_id, own, arq.call_reference)
        # In direct mode the gatekeeper sees no Connect: the answer is the connect.
        if not self.settings.routed:
            if call.connect_time is None:
                endpoint.connected_calls += 1
                caller = self.registry.get(call.caller_endpoint_id)
                if caller is not None:
                    caller.connected_calls += 1
            self.calls.mark_connected(call, now)
        destination = (self.settings.signal_address if self.settings.routed
                       and self.settings.signal_address else own)
        self.stats["ACF"] += 1
        self.bus.publish(ev.AdmissionConfirmed(
            own, endpoint.endpoint_id, arq.call_reference, arq.destination_info,
            arq.src_info or call.source_info, True, call.call_id, self.settings.routed,
            call.number, own, arq.bandwidth))
        return ras.Acf(arq.seq, arq.bandwidth, destination or own, routed=self.settings.routed)

    # -- DRQ -------------------------------------------------------------

    def on_drq(self, drq: ras.DisengageRequest, source: Address) -> Message:
        endpoint = self.registry.get(drq.endpoint_id)
        if endpoint is None or not endpoint.is_from(source):
            reason = "notRegistered" if endpoint is None else "requestToDropOther"
            if endpoint is not None:
                self.stats["spoofed"] += 1
            self.bus.publish(ev.DisengageRejected(source, drq.endpoint_id, drq.call_reference,
                                                  reason, drq.call_id))
            return ras.Drj(drq.seq, reason)
        self.registry.touch(endpoint, self.now())
        call = self.calls.find(endpoint.endpoint_id, drq.call_id, drq.conference_id,
                               drq.call_reference)
        if call is not None and endpoint.endpoint_id not in call.endpoint_ids():
            self.stats["spoofed"] += 1
            self.bus.publish(ev.DisengageRejected(source, drq.endpoint_id, drq.call_reference,
                                                  "requestToDropOther", drq.call_id))
            return ras.Drj(drq.seq, "requestToDropOther")
        if call is not None:
            self.end_call(call, drq.reason)
        self.bus.publish(ev.DisengageConfirmed(source, endpoint.endpoint_id, drq.call_reference,
                                               drq.reason, drq.call_id))
        return ras.Dcf(drq.seq)

    def end_call(self, call: Call, reason: str) -> ev.CallDetailRecord:
        """Remove a call, give back its bandwidth and publish its CDR."""
        record = self.calls.end(call, self.now(), self.name, reason)
        self.bandwidth.give_back(call.bandwidth)
        for endpoint_id in call.endpoint_ids():
            endpoint = self.registry.get(endpoint_id)
            if endpoint is not None:
                endpoint.active_calls = max(0, endpoint.active_calls - 1)
        self.bus.publish(record)
        return record

    # -- BRQ -------------------------------------------------------------

    def on_brq(self, brq: ras.BandwidthRequest, source: Address) -> Message:
        endpoint = self.registry.get(brq.endpoint_id)
        if endpoint is None or not endpoint.is_from(source):
            reason = "notBound" if endpoint is None else "invalidPermission"
            self.bus.publish(ev.BandwidthRejected(source, brq.endpoint_id, brq.bandwidth, reason))
            return ras.Brj(brq.seq, reason, 0)
        self.registry.touch(endpoint, self.now())
        call = self.calls.find(endpoint.endpoint_id, brq.call_id, brq.conference_id,
                               brq.call_reference)
        if call is None:
            self.bus.publish(ev.BandwidthRejected(source, brq.endpoint_id, brq.bandwidth,
                                                  "invalidConferenceID"))
            return ras.Brj(brq.seq, "invalidConferenceID", 0)
        if endpoint.endpoint_id not in call.endpoint_ids():
            self.stats["spoofed"] += 1
            self.bus.publish(ev.BandwidthRejected(source, brq.endpoint_id, brq.bandwidth,
                                                  "invalidPermission"))
            return ras.Brj(brq.seq, "invalidPermission", 0)
        granted = self.bandwidth.change(call.bandwidth, brq.bandwidth)
        if granted != brq.bandwidth:
            allowed = call.bandwidth + (self.bandwidth.available or 0)
            self.bus.publish(ev.BandwidthRejected(source, brq.endpoint_id, brq.bandwidth,
                                                  "insufficientResources"))
            return ras.Brj(brq.seq, "insufficientResources", allowed)
        call.bandwidth = granted
        self.bus.publish(ev.BandwidthConfirmed(source, brq.endpoint_id, granted))
        return ras.Bcf(brq.seq, granted)

    # -- LRQ -------------------------------------------------------------

    def lrq_sender(self, lrq: ras.LocationRequest, source: Address) -> str | None:
        """Who sent an LRQ, as far as answering it goes (GnuGk's rules):
        ``"endpoint"`` (one of ours, naming its identifier, from its own
        address), ``"neighbour"`` (a configured neighbour gatekeeper),
        ``"non-neighbour"`` (anyone else, let in by AcceptNonNeighborLRQ=1),
        or None: a stranger, answered only with LRJ securityDenial at its
        source address."""
        if lrq.endpoint_id:
            endpoint = self.registry.get(lrq.endpoint_id)
            if endpoint is not None and endpoint.is_from(source):
                return "endpoint"
        if self.is_neighbour(lrq, source):
            return "neighbour"
        if self.policy.accept_non_neighbor_lrq:
            return "non-neighbour"
        return None

    def lrq_reply_address(self, sender: str, lrq: ras.LocationRequest,
                          source: Address) -> Address:
        """Where the answer to an accepted LRQ goes. A neighbour is answered
        at its replyAddress (as GnuGk); one of our endpoints where it asked
        from (GnuGk too), unless [ReplyToRasAddress] says otherwise; anyone
        else at its replyAddress only when that is on the sender's own host
        (or [ReplyToRasAddress] allows it), never on a third party's."""
        reply = lrq.reply_address if usable_address(lrq.reply_address) else None
        if reply is None or reply == source or sender == "neighbour":
            return reply or source
        if self.policy.replies_to_ras_address(source[0]):
            return reply
        if sender == "non-neighbour" and reply[0] == source[0]:
            return reply
        if sender == "non-neighbour":
            self.stats["LRQ replyAddress ignored"] += 1
            self._trouble("lrq reply address", "answering the LRQ from {source} there, not "
                          "at the replyAddress {reply} it names",
                          source=ras.format_address(source), reply=ras.format_address(reply))
        return source

    def on_lrq(self, lrq: ras.LocationRequest, source: Address) -> Message | Reply:
        sender = self.lrq_sender(lrq, source)
        if sender is None:
            self.stats["LRQ refused"] += 1
            self._trouble("lrq refused", "refused an LRQ from {source}: neither a registered "
                          "endpoint nor a neighbour ([RasSrv::LRQFeatures] "
                          "AcceptNonNeighborLRQ=0)", source=ras.format_address(source))
            self.bus.publish(ev.LocationRejected(source, lrq.destination_info, lrq.source_info,
                                                 "securityDenial"))
            return ras.Lrj(lrq.seq, "securityDenial")
        reply_to = self.lrq_reply_address(sender, lrq, source)
        caller = self.registry.get(lrq.endpoint_id) if sender == "endpoint" else None
        if self.rewrite_rules:
            lrq = replace(lrq, destination_info=rewrite_destination(self.rewrite_rules,
                                                                    lrq.destination_info))
        key = ("locationRequest", reply_to, lrq.seq)
        held = self._held.get(key)
        if held is not None:
            self.stats["LRQ while held"] += 1
            return self._to(ras.Rip(lrq.seq, self.hold_delay_ms), reply_to, source)
        route = self.router.route(RoutingRequest(
            lrq.destination_info, None, lrq.source_info, caller, "LRQ", lrq.call_id, lrq.seq,
            source, caller.signal_address if caller else None))
        if isinstance(route, Deferred):
            return self._to(self._hold(key, route, lrq, source, None, reply_to), reply_to, source)
        return self._lrq_answer(lrq, source, route, reply_to)

    @staticmethod
    def _to(message: Message, reply_to: Address, source: Address) -> Message | Reply:
        return Reply(message, reply_to) if reply_to != source else message

    def _lrq_answer(self, lrq: ras.LocationRequest, source: Address, route: Any,
                    reply_to: Address | None = None) -> Message | Reply:
        """LCF for a route, LRJ for none (an endpoint found by the registry
        must be reachable over RAS; one a virtual queue names need not be)."""
        reply_to = reply_to or source
        found = route.endpoint if route is not None else None
        ras_address = found.ras_address if found is not None else None
        if route is not None and route.policy == "vqueue" and route.signal_address is not None \
                and ras_address is None:
            ras_address = (route.signal_address[0], 1719)
        if route is not None and route.reject is not None:
            reason = route.reject
        elif route is None or route.signal_address is None or ras_address is None:
            reason = "notRegistered"
        else:
            reason = None
        if reason is not None:
            self.bus.publish(ev.LocationRejected(source, lrq.destination_info, lrq.source_info,
                                                 reason))
            return self._to(ras.Lrj(lrq.seq, reason), reply_to, source)
        self.bus.publish(ev.LocationConfirmed(
            source, found.endpoint_id if found else "", route.destination or lrq.destination_info,
            lrq.source_info, route.signal_address))
        signal = (self.settings.signal_address if self.settings.routed
                  and self.settings.signal_address else route.signal_address)
        message = ras.Lcf(lrq.seq, signal, ras_address,
                          route.destination or lrq.destination_info,
                          found.endpoint_type if found else None)
        return self._to(message, reply_to, source)

    # -- IRR, RAI and answers to our requests ----------------------------

    def on_irr(self, irr: ras.InfoRequestResponse, source: Address) -> Message | None:
        self._answered(irr, source)
        endpoint = self.registry.get(irr.endpoint_id)
        if endpoint is None or not endpoint.is_from(source):
            self.stats["IRR from unknown"] += 1
            if irr.need_response:
                return ras.Inak(irr.seq, "notRegistered")
            return None
        self.registry.touch(endpoint, self.now())
        self.bus.publish(ev.InfoResponseReceived(source, endpoint.endpoint_id, irr.unsolicited))
        if irr.need_response:
            return ras.Iack(irr.seq)
        return None

    def on_rai(self, rai: ras.ResourcesAvailableIndicate, source: Address) -> Message:
        endpoint = self.registry.get(rai.endpoint_id)
        if endpoint is not None and endpoint.is_from(source):
            endpoint.almost_out_of_resources = rai.almost_out_of_resources
            self.registry.touch(endpoint, self.now())
            self.bus.publish(ev.ResourcesAvailable(source, rai.endpoint_id,
                                                   rai.almost_out_of_resources))
        return ras.Rac(rai.seq)

    def on_answer(self, pdu: ras.RasPdu, source: Address) -> None:
        if not self._answered(pdu, source):
            self.stats["unexpected"] += 1
            self._trouble("unexpected", "unexpected {received} seq {seq} from {source}",
                          received=pdu.kind, seq=pdu.seq, source=ras.format_address(source))
        return None

    def _answered(self, pdu: ras.RasPdu, source: Address) -> bool:
        outgoing = self._outgoing.get(pdu.seq)
        if (outgoing is None or outgoing.address[0] != source[0]
                or pdu.kind not in ANSWERS.get(outgoing.kind, ())):
            return False
        del self._outgoing[pdu.seq]
        if outgoing.timer is not None and outgoing.timer.active():
            outgoing.timer.cancel()
        if outgoing.on_answer is not None:
            outgoing.on_answer(pdu)
        return True

    # -- requests the gatekeeper sends ------------------------------------

    def next_seq(self) -> int:
        self._seq = self._seq % 65535 + 1
        while self._seq in self._outgoing:
            self._seq = self._seq % 65535 + 1
        return self._seq

    def request(self, message: Message, address: Address,
                on_answer: Callable[[ras.RasPdu], None] | None = None) -> int:
        """Send a request of ours, retransmitting until it is answered."""
        seq = message.seq
        outgoing = _Outgoing(message.kind, message, address, self.settings.request_retries,
                             on_answer=on_answer)
        self._outgoing[seq] = outgoing
        self._transmit(seq)
        return seq

    def _transmit(self, seq: int) -> None:
        outgoing = self._outgoing.get(seq)
        if outgoing is None:
            return
        if outgoing.tries_left <= 0:
            del self._outgoing[seq]
            self.stats["unanswered " + outgoing.kind] += 1
            return
        outgoing.tries_left -= 1
        if self._send is not None:
            self._send(outgoing.message, outgoing.address)
        outgoing.timer = self.clock.callLater(self.settings.request_interval, self._transmit, seq)

    def unregister(self, endpoint: Endpoint, reason: str = "maintenance",
                   why: str = "forced") -> None:
        """Drop a registration: URQ to the endpoint, then forget it."""
        if endpoint.ras_address is not None and not endpoint.permanent:
            message = ras.Urq(self.next_seq(), endpoint.signal_addresses or (("0.0.0.0", 0),),
                              endpoint.endpoint_id, self.name, reason)
            self.request(message, endpoint.ras_address)
            self.bus.publish(ev.UnregistrationRequested(endpoint.ras_address,
                                                        endpoint.endpoint_id, reason))
        self.registry.remove(endpoint.endpoint_id, why, self.now())
        self.bus.publish(ev.EndpointUnregistered(
            endpoint.ras_address, endpoint.endpoint_id, endpoint.aliases, why,
            endpoint.signal_address, endpoint.endpoint_type))
        self._end_calls_of(endpoint)

    def _end_calls_of(self, endpoint: Endpoint) -> None:
        """A party left: its calls end (with their CDRs), and the other side,
        if still registered, gets a DRQ."""
        for call in self.calls.of_endpoint(endpoint.endpoint_id):
            self.disconnect(call, "forcedDrop")

    def disconnect(self, call: Call, reason: str = "forcedDrop") -> ev.CallDetailRecord:
        """End a call from the gatekeeper's side: DRQ to both endpoints."""
        for endpoint_id in call.endpoint_ids():
            endpoint = self.registry.get(endpoint_id)
            crv = call.crv_for(endpoint_id)
            if endpoint is None or endpoint.ras_address is None or crv is None:
                continue
            answered = endpoint_id == call.callee_endpoint_id
            message = ras.Drq(self.next_seq(), endpoint_id, call.conference_id, crv, reason,
                              call.call_id, self.name, answered)
            self.request(message, endpoint.ras_address)
            self.bus.publish(ev.DisengageRequested(endpoint.ras_address, endpoint_id, crv,
                                                   reason, call.call_id))
        return self.end_call(call, reason)

    def check_registrations(self) -> None:
        """Once a second: poll or drop endpoints whose time to live ran out."""
        now = self.now()
        for endpoint in self.registry.due(now):
            if endpoint.permanent:
                continue
            if endpoint.irq_polls < self.settings.irq_poll_count and endpoint.ras_address:
                endpoint.irq_polls += 1
                message = ras.Irq(self.next_seq(), 0, None)
                self.request(message, endpoint.ras_address)
                self.bus.publish(ev.InfoRequested(endpoint.ras_address, endpoint.endpoint_id))
                self.registry.postpone(endpoint, self.settings.irq_poll_interval, now)
            else:
                self.unregister(endpoint, "ttlExpired", "ttlExpired")
