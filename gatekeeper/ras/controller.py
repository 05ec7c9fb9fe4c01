"""RAS message -> core -> reply.

:class:`RasController` holds no socket and decides no policy: the protocol
hands it typed messages (``gatekeeper.h225.ras``) with their source address;
it maps each to a request of the core (:class:`~gatekeeper.core.registration.
Registration` for GRQ/RRQ/URQ, :class:`~gatekeeper.core.admission.Admission`
for ARQ/BRQ/DRQ) and the decision back to a typed reply (``ras.Acf``,
``ras.Rrj``, ...), which the protocol encodes and writes.  What stays here is
RAS-specific: where answers go ([ReplyToRasAddress], LRQ replyAddress and
who may ask an LRQ), RequestInProgress for held requests and the sequence
numbers they are asked again with, the encoded keepalive RCFs
(:mod:`gatekeeper.ras.keepalive`), and the requests the gatekeeper itself
sends when the core decides something (URQ, DRQ, IRQ: this object is the
core's notifier), sent through the ``send`` callable the protocol attaches
and retransmitted until the endpoint answers.  The core publishes the
confirm and reject events.

Neighbour gatekeepers (:mod:`gatekeeper.core.neighbors`): the controller is
the ``neighbor`` policy's ILocationSender (:meth:`RasController.send_lrq`:
one LRQ, no retransmission, answers matched by seq and IP), and answers,
refuses or forwards the LRQs neighbours send (:meth:`RasController.on_lrq`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from gatekeeper import events as ev
from gatekeeper.core.admission import (
    Admission, AdmissionHeld, AdmissionRefused, AdmissionRequest, AdmissionSettings, Admitted,
    BandwidthRefused, BandwidthRequest, DisengageRefused, DisengageRequest)
from gatekeeper.core.bandwidth import BandwidthPool
from gatekeeper.core.calls import Call, CallTable
from gatekeeper.core.failover import REDIRECT_REASON, AdmissionRedirect, FailoverSettings
from gatekeeper.core.neighbors import (
    RIP_LIMIT, ILocationExchange, ILocationSender, LcfAnswer, LocationQuery, LrjAnswer, Neighbor,
    NeighborPolicy, NeighborSettings, RecentLrqs, accepts_lrq, forward_targets, forwarded_query,
    lrq_message, select_neighbors)
from gatekeeper.core.registration import (
    DiscoveryRefused, DiscoveryRequest, KeepaliveRequest, RegisterRequest, Registration,
    RegistrationRefused, RegistrationSettings, UnregisterRequest, UnregistrationRefused,
    usable_address)
from gatekeeper.core.registry import Endpoint, Registry
from gatekeeper.core.rewrite import RewriteRule
from gatekeeper.core.routing import Route, Router, RoutingRequest
from gatekeeper.h225 import codec, ras
from gatekeeper.h225.ras import Address
from gatekeeper.interfaces import IEventBus
from gatekeeper.ratelimit import RateLimitedLog  # noqa: F401 - also imported from here
from gatekeeper.ras.failover import RasForwarder
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


@dataclass(frozen=True, slots=True)
class RasConfig:
    """Everything the RAS controller and the core behind it take on reload,
    in one value (:meth:`RasController.reconfigure`)."""

    settings: RasSettings = RasSettings()
    policy: RasPolicy = RasPolicy()
    router: Router | None = None             # None: the registry's own lookups
    rewrite_rules: tuple[RewriteRule, ...] = ()   # [RasSrv::RewriteE164]
    hold_delay: float = 12.0                 # seconds a RequestInProgress asks to wait
    #: [RasSrv::Neighbors], [Neighbor::NAME], [RasSrv::LRQFeatures]: who the
    #: neighbours are (incoming LRQs) and what the ``neighbor`` policy asks.
    neighbors: NeighborSettings = NeighborSettings()
    #: [Gatekeeper::Main] AlternateGKs: in GCF and RCF when the request says
    #: supportsAltGK, and in a URQ with reason maintenance.
    alternate_gatekeepers: tuple[ras.AlternateGk, ...] = ()
    #: [Gatekeeper::Main] SendTo, SkipForwards, RedirectGK.
    failover: FailoverSettings = FailoverSettings()


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
    #: False: sent once, no retransmission (an LRQ: the neighbour policy
    #: re-sends); the timer then only forgets an entry nobody cancelled.
    retransmit: bool = True
    on_progress: Callable[[int], None] | None = None   # a RequestInProgress (delay ms)
    any_source: bool = False     # matched by seq alone (AcceptNonNeighborLCF)
    interval: float | None = None   # seconds to the next try (None: request_interval)


#: What answers each request the gatekeeper sends.
ANSWERS = {
    "unregistrationRequest": ("unregistrationConfirm", "unregistrationReject"),
    "disengageRequest": ("disengageConfirm", "disengageReject"),
    "infoRequest": ("infoRequestResponse",),
    "locationRequest": ("locationConfirm", "locationReject", "requestInProgress"),
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
#: ([RasSrv::Neighbors]); the controller's own check reads RasConfig.neighbors.
NeighbourCheck = Callable[[ras.LocationRequest, Address], bool]


def no_neighbours(lrq: ras.LocationRequest, source: Address) -> bool:
    """A neighbour check that knows no neighbours."""
    return False


@implementer(ILocationExchange)
class _LocationExchange:
    """One LRQ of ours in flight to one neighbour (see
    :meth:`RasController.send_lrq`)."""

    def __init__(self, controller: "RasController", seq: int) -> None:
        self.controller = controller
        self.seq = seq
        self.answer: Deferred = Deferred()
        self.outgoing: _Outgoing | None = None

    def resend(self) -> None:
        outgoing = self.outgoing
        if outgoing is not None and self.controller._outgoing.get(self.seq) is outgoing:
            self.controller.stats["LRQ re-sent"] += 1
            if self.controller._send is not None:
                self.controller._send(outgoing.message, outgoing.address)

    def cancel(self) -> None:
        outgoing, self.outgoing = self.outgoing, None
        if outgoing is not None:
            self.controller._forget_outgoing(self.seq, outgoing)
            self.controller._late_lrq_answers(self.seq)

    def answered(self, pdu: ras.RasPdu) -> None:
        """The neighbour's LCF or LRJ (a RIP is ``progress``)."""
        self.outgoing = None
        if self.answer.called:
            return
        if pdu.kind == "locationConfirm":
            try:
                lcf = ras.read_location_confirm(pdu)
            except Exception:      # DecodeError, or anything odd in the raw value
                lcf = None
            if lcf is not None and lcf.call_signal_address is not None:
                self.controller.stats["LCF received"] += 1
                self.answer.callback(LcfAnswer(lcf.call_signal_address, lcf.ras_address,
                                               lcf.destination_info))
                return
            self.controller.stats["LCF unusable"] += 1
            self.answer.callback(LrjAnswer("undefinedReason"))
            return
        self.controller.stats["LRJ received"] += 1
        self.answer.callback(LrjAnswer(getattr(pdu, "reason", None) or "undefinedReason"))


@implementer(ILocationSender)
class RasController:
    """Answers every RAS request, in direct mode, and keeps the tables."""

    log = Logger()

    def __init__(self, settings: RasSettings, bus: IEventBus, clock: IReactorTime,
                 registry: Registry | None = None, calls: CallTable | None = None,
                 router: Router | None = None,
                 local_ras_address: Callable[[Address], Address] | None = None,
                 policy: RasPolicy | None = None) -> None:
        self.bus = bus
        self.clock = clock
        self.calls = calls if calls is not None else CallTable()
        self.registry = registry if registry is not None else Registry(
            settings.endpoint_id_suffix, calls=self.calls)
        self.local_ras_address = local_ras_address or (lambda source: ("127.0.0.1", 1719))
        self.stats: Counter[str] = Counter()
        self._trouble = RateLimitedLog(self.log, clock)
        #: The core: admission (ARQ, BRQ, DRQ, calls ending) and registration
        #: (GRQ, RRQ, URQ, time to live); the controller is their notifier
        #: (it sends the URQs, DRQs and IRQs they decide on).
        self.admission = Admission(self.registry, self.calls, bus, clock, router=router,
                                   bandwidth=BandwidthPool(settings.total_bandwidth),
                                   notifier=self, stats=self.stats, trouble=self._trouble)
        self.registration = Registration(self.registry, bus, clock, self.admission.end_calls_of,
                                         notifier=self, stats=self.stats, trouble=self._trouble)
        #: RRQ/URQ copies to and from alternate gatekeepers (SendTo,
        #: SkipForwards), and RedirectGK for ARQs.
        self.forwarder = RasForwarder(
            clock, lambda message, address: self._send(message, address) if self._send else None,
            self.next_seq, self.registration, self.stats, self._trouble)
        self.admission_redirect = AdmissionRedirect(self.registry, self.calls, bus, self.stats)
        self._send: Send | None = None
        #: The configuration in force (:meth:`reconfigure` replaces it whole).
        self.config: RasConfig
        #: The delay a RequestInProgress announces, in milliseconds.
        self.hold_delay_ms: int
        self._held: dict[tuple, _Held] = {}
        self._outgoing: dict[int, _Outgoing] = {}
        self._late_lrqs: dict[int, float] = {}   # seq -> until when a late answer is normal
        self._seq = 0
        #: The ``neighbor`` routing policy, with this controller as its LRQ
        #: sender (the service puts it into the routing chains).
        self.neighbor_policy = NeighborPolicy(NeighborSettings(), self, clock,
                                              settings.gatekeeper_id)
        #: LRQs forwarded lately (a copy coming back round a loop is dropped).
        self.recent_lrqs = RecentLrqs(clock, NeighborSettings().features.longest_wait)
        self.reconfigure(RasConfig(settings, policy if policy is not None else RasPolicy(),
                                   router))
        #: Whether an LRQ comes from a configured neighbour (replaceable in tests).
        self.is_neighbour: NeighbourCheck = self.from_neighbour
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
        self.forwarder.stop()
        if self._sweeper.running:
            self._sweeper.stop()
        for outgoing in self._outgoing.values():
            if outgoing.timer is not None and outgoing.timer.active():
                outgoing.timer.cancel()
        self._outgoing.clear()

    @property
    def name(self) -> str:
        return self._settings.gatekeeper_id

    def now(self) -> float:
        return self.clock.seconds()

    # -- settings, handed on to the core -----------------------------------

    def reconfigure(self, config: RasConfig) -> None:
        """Take a new configuration (at start and at every reload) and hand
        its parts on to the core: admission (name, call model, router,
        [RasSrv::RewriteE164], TotalBandwidth) and registration (time to live,
        discovery, IRQ polling, OverwriteEPOnSameAddress).  Registrations,
        calls and held requests are kept."""
        settings, policy = config.settings, config.policy
        self.config = config
        self._settings = settings
        self._policy = policy
        self.neighbor_policy.update(config.neighbors, settings.gatekeeper_id)
        self.recent_lrqs.lifetime = config.neighbors.features.longest_wait + RIP_LIMIT
        self.hold_delay_ms = max(1, min(65535, int(config.hold_delay * 1000)))
        self.admission.reconfigure(AdmissionSettings(
            settings.gatekeeper_id, settings.routed, settings.signal_address,
            config.router, config.rewrite_rules, settings.total_bandwidth))
        self.registration.reconfigure(RegistrationSettings(
            settings.gatekeeper_id, settings.time_to_live, settings.minimum_time_to_live,
            settings.require_discovery, settings.discovery_memory, settings.irq_poll_count,
            settings.irq_poll_interval, policy.overwrite_ep_on_same_address,
            config.failover.redirect))
        self.forwarder.reconfigure(config.failover, config.alternate_gatekeepers)

    @property
    def settings(self) -> RasSettings:
        return self._settings

    @property
    def policy(self) -> RasPolicy:
        return self._policy

    @property
    def hold_delay(self) -> float:
        """Seconds a RequestInProgress asks the endpoint to wait."""
        return self.config.hold_delay

    @property
    def router(self) -> Router:
        return self.admission.router

    @property
    def rewrite_rules(self) -> tuple[RewriteRule, ...]:
        return self.admission.rewrite_rules

    @property
    def accepting(self) -> bool:
        """False while shutting down: no new calls."""
        return self.admission.accepting

    @accepting.setter
    def accepting(self, accepting: bool) -> None:
        self.admission.accepting = accepting

    @property
    def bandwidth(self) -> BandwidthPool:
        return self.admission.bandwidth

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
                and self._policy.replies_to_ras_address(source[0]):
            return ras_address
        return source

    def on_grq(self, grq: ras.GatekeeperRequest, source: Address,
               multicast: bool = False) -> Message | Reply | None:
        # Multicast or not, the answer goes to the source (GnuGk's default):
        # a rasAddress naming a third party gets nothing from us.
        reply_to = self.answer_address(source, grq.ras_address)
        decision = self.registration.discover(DiscoveryRequest(
            source, grq.ras_address, grq.gatekeeper_id, grq.aliases, grq.endpoint_type,
            multicast))
        if decision is None:
            return None
        if isinstance(decision, DiscoveryRefused):
            return self._to(ras.Grj(grq.seq, decision.reason, self.name,
                                    alt_gk_info=self._alt_gk_info(decision.redirect)),
                            reply_to, source)
        return self._to(ras.Gcf(grq.seq, self.name, self.local_ras_address(source),
                                self._alternates(grq.supports_alt_gk)), reply_to, source)

    # -- RRQ -------------------------------------------------------------

    def grant_time_to_live(self, requested: int | None) -> int | None:
        return self.registration.grant_time_to_live(requested)

    def on_rrq(self, rrq: ras.RegistrationRequest, source: Address) -> Answer | None:
        if self.forwarder.is_forwarded(rrq, source):
            return self.forwarder.received_rrq(rrq, source)   # a copy: never answered
        ras_addresses = [a for a in rrq.ras_addresses if usable_address(a)]
        reply_to = self.answer_address(source, ras_addresses[0] if ras_addresses else None)
        if rrq.keep_alive and rrq.endpoint_id:
            return self._keepalive(rrq, source, reply_to)
        decision = self.registration.register(RegisterRequest(
            source, tuple([a for a in rrq.call_signal_addresses if usable_address(a)]),
            tuple(ras_addresses), rrq.aliases, rrq.endpoint_type, rrq.vendor, rrq.time_to_live,
            rrq.endpoint_id, tuple(p.digits or p.value for p in rrq.prefixes), rrq.additive,
            rrq.discovery_complete))
        if isinstance(decision, RegistrationRefused):
            return self._to(self._rrj(rrq.seq, decision), reply_to, source)
        endpoint = decision.endpoint
        self.forwarder.registered(endpoint, False)
        return self._to(ras.Rcf(rrq.seq, endpoint.signal_addresses, endpoint.endpoint_id,
                                self.name, endpoint.aliases, decision.time_to_live,
                                supports_additive=True,
                                alternates=self._alternates(rrq.supports_alt_gk)),
                        reply_to, source)

    def _alternates(self, supported: bool) -> tuple[ras.AlternateGk, ...]:
        """The alternate gatekeepers to name to an endpoint that supports them."""
        return self.config.alternate_gatekeepers if supported else ()

    def _rrj(self, seq: int, decision: RegistrationRefused) -> Message:
        return ras.Rrj(seq, decision.reason, self.name, decision.duplicates or None,
                       self._alt_gk_info(decision.redirect))

    def _alt_gk_info(self, redirect: bool) -> ras.AltGkInfo | None:
        """altGKInfo for a reject caused by RedirectGK (None otherwise)."""
        if not redirect or not self.config.alternate_gatekeepers:
            return None
        return ras.AltGkInfo(self.config.alternate_gatekeepers,
                             self.config.failover.redirect.permanent)

    def _keepalive(self, rrq: ras.RegistrationRequest, source: Address,
                   reply_to: Address) -> Answer:
        decision = self.registration.keepalive(KeepaliveRequest(
            source, rrq.endpoint_id, rrq.time_to_live, rrq.aliases, rrq.endpoint_type))
        if isinstance(decision, RegistrationRefused):
            return self._to(self._rrj(rrq.seq, decision), reply_to, source)
        endpoint, ttl = decision.endpoint, decision.time_to_live
        self.forwarder.registered(endpoint, True)
        with_aliases = bool(rrq.aliases)
        alternates = self._alternates(rrq.supports_alt_gk)
        if reply_to != source or alternates:   # [ReplyToRasAddress], AlternateGKs: no template
            rcf = ras.Rcf(rrq.seq, endpoint.signal_addresses, endpoint.endpoint_id, self.name,
                          endpoint.aliases if with_aliases else None, ttl,
                          supports_additive=True, alternates=alternates)
            return Reply(rcf, reply_to) if reply_to != source else rcf
        return Encoded(self.keepalive_replies.rcf(endpoint, rrq.seq, with_aliases, ttl, self.name))

    # -- URQ -------------------------------------------------------------

    def on_urq(self, urq: ras.UnregistrationRequest, source: Address) -> Message | None:
        if self.forwarder.is_forwarded(urq, source):
            return self.forwarder.received_urq(urq, source)   # a copy: never answered
        decision = self.registration.unregistration_request(UnregisterRequest(
            source, urq.endpoint_id, urq.call_signal_addresses))
        if isinstance(decision, UnregistrationRefused):
            return ras.Urj(urq.seq, decision.reason)
        self.forwarder.unregistered(decision.endpoint)
        return ras.Ucf(urq.seq)

    # -- ARQ -------------------------------------------------------------

    def on_arq(self, arq: ras.AdmissionRequest, source: Address) -> Message:
        rule = self.config.failover.redirect
        if rule.active and self.admission_redirect.check(
                rule, source, arq.endpoint_id, arq.destination_info, arq.src_info,
                arq.answer_call, arq.call_id) is not None:
            return ras.Arj(arq.seq, REDIRECT_REASON, alt_gk_info=self._alt_gk_info(True))
        decision = self.admission.admit(AdmissionRequest(
            source, arq.endpoint_id, arq.destination_info, arq.dest_call_signal_address,
            arq.src_info, arq.src_call_signal_address, arq.bandwidth, arq.call_reference,
            arq.conference_id, arq.call_id, arq.answer_call))
        if type(decision) is AdmissionHeld:
            key = ("admissionRequest",) + decision.key
            if decision.decision is None:
                held = self._held.get(key)
                if held is not None:
                    held.earlier.append(held.seq)
                    held.seq = arq.seq
                return ras.Rip(arq.seq, self.hold_delay_ms)
            self._held[key] = _Held(arq, source, arq.endpoint_id, arq.seq)
            decision.decision.addCallback(self._admission_known, key)
            decision.decision.addErrback(self._route_failed, key)
            return ras.Rip(arq.seq, self.hold_delay_ms)
        return self._admission_answer(arq.seq, decision)

    @staticmethod
    def _admission_answer(seq: int, decision: Admitted | AdmissionRefused) -> Message:
        if type(decision) is AdmissionRefused:
            return ras.Arj(seq, decision.reason)
        return ras.Acf(seq, decision.bandwidth, decision.destination, decision.routed, None,
                       decision.destination_info or None, decision.destination_type)

    def _admission_known(self, decision: Admitted | AdmissionRefused | None,
                         key: tuple) -> None:
        held = self._held.pop(key, None)
        if held is None or decision is None:
            return
        self.answer_later(self._admission_answer(held.seq, decision), held.source, key[0],
                          held.seq, held.earlier)

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
        """An LRQ's route is known."""
        held = self._held.pop(key, None)
        if held is None:
            return
        message = replace(held.message, seq=held.seq)
        reply = self._lrq_answer(message, held.source, route, held.reply_to)
        self.answer_later(reply, held.source, key[0], held.seq, held.earlier)

    def _route_failed(self, failure: Any, key: tuple) -> None:
        held = self._held.pop(key, None)
        if key[0] == "locationRequest":
            self._trouble.failure("routing", "routing a held {kind} failed", failure, kind=key[0])
        else:
            self._trouble.failure("answer", "answering a held {kind} failed", failure,
                                  kind=key[0])
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
            self._send(message.with_seq(number), address, (source, kind, number), False)

    # -- DRQ, BRQ --------------------------------------------------------

    def on_drq(self, drq: ras.DisengageRequest, source: Address) -> Message:
        decision = self.admission.disengage(DisengageRequest(
            source, drq.endpoint_id, drq.call_id, drq.conference_id, drq.call_reference,
            drq.reason))
        if type(decision) is DisengageRefused:
            return ras.Drj(drq.seq, decision.reason)
        return ras.Dcf(drq.seq)

    def end_call(self, call: Call, reason: str) -> ev.CallDetailRecord:
        """Remove a call, give back its bandwidth and publish its CDR."""
        return self.admission.end_call(call, reason)

    def on_brq(self, brq: ras.BandwidthRequest, source: Address) -> Message:
        decision = self.admission.change_bandwidth(BandwidthRequest(
            source, brq.endpoint_id, brq.call_id, brq.conference_id, brq.call_reference,
            brq.bandwidth))
        if type(decision) is BandwidthRefused:
            return ras.Brj(brq.seq, decision.reason, decision.allowed)
        return ras.Bcf(brq.seq, decision.bandwidth)

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
        if self._policy.accept_non_neighbor_lrq:
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
        if self._policy.replies_to_ras_address(source[0]):
            return reply
        if sender == "non-neighbour" and reply[0] == source[0]:
            return reply
        if sender == "non-neighbour":
            self.stats["LRQ replyAddress ignored"] += 1
            self._trouble("lrq reply address", "answering the LRQ from {source} there, not "
                          "at the replyAddress {reply} it names",
                          source=ras.format_address(source), reply=ras.format_address(reply))
        return source

    def from_neighbour(self, lrq: ras.LocationRequest, source: Address) -> bool:
        """Whether ``source`` is a configured neighbour's IP ([RasSrv::Neighbors])."""
        return self.config.neighbors.sender_at(source) is not None

    def on_lrq(self, lrq: ras.LocationRequest, source: Address) -> Message | Reply | None:
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
        neighbour = self.config.neighbors.sender_at(source) if sender == "neighbour" else None
        if neighbour is not None and not accepts_lrq(neighbour, lrq.destination_info,
                                                     lrq.gatekeeper_id):
            # AcceptPrefixes does not match, or AcceptForwardedLRQ=0 and the
            # LRQ names another gatekeeper as its originator.
            self.stats["LRQ not accepted"] += 1
            self._trouble("lrq not accepted", "refused an LRQ from neighbour {name} "
                          "(its AcceptPrefixes or AcceptForwardedLRQ)", name=neighbour.name)
            self.bus.publish(ev.LocationRejected(source, lrq.destination_info, lrq.source_info,
                                                 "requestDenied"))
            return self._to(ras.Lrj(lrq.seq, "requestDenied"), reply_to, source)
        caller = self.registry.get(lrq.endpoint_id) if sender == "endpoint" else None
        if self.admission.rewrite_rules:
            lrq = replace(lrq, destination_info=self.admission.rewrite(lrq.destination_info))
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
        if route is None and sender != "endpoint":
            forwarded, reply = self._forward(lrq, source, reply_to, neighbour, key)
            if forwarded:
                return reply
        return self._lrq_answer(lrq, source, route, reply_to)

    def _forward(self, lrq: ras.LocationRequest, source: Address, reply_to: Address,
                 sender: Neighbor | None, key: tuple) -> tuple[bool, Message | Reply | None]:
        """An LRQ nothing here has, to our other neighbours (forward_targets:
        ForwardLRQ, hopCount, never back to the sender).  (False, None): not
        forwarded, answer it as usual; (True, reply): forwarded, ``reply``
        (None: a copy come back round a loop, dropped) goes to the sender."""
        settings = self.config.neighbors
        if not settings.neighbors or self._send is None:
            return False, None
        forwards = forward_targets(lrq.hop_count, sender, settings, lrq.destination_info)
        if not forwards:
            return False, None
        if not self.recent_lrqs.first_time(lrq):
            self.stats["LRQ loop dropped"] += 1
            return True, None
        self.stats["LRQ forwarded"] += 1
        our_reply = sender.forward_response if sender is not None \
            else settings.features.forward_response
        if our_reply:
            # ForwardResponse=1: we ask, and answer LCF or LRJ ourselves.
            chosen = {s.neighbor.name: s for s in select_neighbors(
                settings.neighbors, lrq.destination_info, exclude=sender)}
            targets = [(chosen[f.neighbor.name], forwarded_query(lrq, f, self.name, True))
                       for f in forwards if f.neighbor.name in chosen]
            located = self.neighbor_policy.locate(targets)
            return True, self._to(self._hold(key, located, lrq, source, None, reply_to),
                                  reply_to, source)
        # ForwardResponse=0: the copies keep the originator's requestSeqNum and
        # replyAddress, so the answers go straight back to it.
        for forward in forwards:
            query = forwarded_query(lrq, forward, self.name, False)
            self._send(lrq_message(query, lrq.seq, reply_to), forward.neighbor.address)
        delay = max(1, min(65535, settings.features.neighbor_timeout * 1000))
        return True, self._to(ras.Rip(lrq.seq, delay), reply_to, source)

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
        if route is not None and route.policy == "neighbor" and ras_address is None:
            # an LCF we relay (ForwardResponse=1): the neighbour that gave it
            neighbour = self.config.neighbors.find(route.matched)
            ras_address = neighbour.address if neighbour is not None else None
        if route is not None and route.policy in ("vqueue", "neighbor") \
                and route.signal_address is not None and ras_address is None:
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
        routed = self.settings.routed and self.settings.signal_address is not None
        signal = self.settings.signal_address if routed else route.signal_address
        if routed:
            # the call comes to us, and so do its RAS questions
            ras_address = self.local_ras_address(source)
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

    def _late_lrq_answers(self, seq: int) -> None:
        """An LRQ of ours the policy stopped waiting for: its answers may
        still come for a while, and are not worth a warning."""
        now = self.clock.seconds()
        if len(self._late_lrqs) >= 4096:
            self._late_lrqs = {k: t for k, t in self._late_lrqs.items() if t > now}
            while len(self._late_lrqs) >= 4096:
                self._late_lrqs.pop(next(iter(self._late_lrqs)))
        self._late_lrqs[seq] = now + self.config.neighbors.features.longest_wait + RIP_LIMIT

    def on_answer(self, pdu: ras.RasPdu, source: Address) -> None:
        if pdu.kind in ANSWERS["locationRequest"] and pdu.seq not in self._outgoing \
                and self._late_lrqs.get(pdu.seq, 0.0) > self.clock.seconds():
            self.stats["late LRQ answer"] += 1
            return None
        if not self._answered(pdu, source) and not self.forwarder.swallow(pdu, source):
            self.stats["unexpected"] += 1
            self._trouble("unexpected", "unexpected {received} seq {seq} from {source}",
                          received=pdu.kind, seq=pdu.seq, source=ras.format_address(source))
        return None

    def _answered(self, pdu: ras.RasPdu, source: Address) -> bool:
        outgoing = self._outgoing.get(pdu.seq)
        if (outgoing is None or (outgoing.address[0] != source[0] and not outgoing.any_source)
                or pdu.kind not in ANSWERS.get(outgoing.kind, ())):
            return False
        if pdu.kind == "requestInProgress":
            # the answer comes later: keep waiting
            self.stats["RIP received"] += 1
            if outgoing.on_progress is not None:
                delay = pdu.raw.get("delay") if isinstance(pdu.raw, dict) else None
                if isinstance(delay, int):
                    outgoing.on_progress(delay)
            return True
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
                on_answer: Callable[[ras.RasPdu], None] | None = None,
                retransmit: bool = True, lifetime: float | None = None,
                on_progress: Callable[[int], None] | None = None,
                any_source: bool = False) -> _Outgoing:
        """Send a request of ours, retransmitting until it is answered (with
        ``retransmit`` False: sent once, and forgotten after ``lifetime``
        seconds unless answered or cancelled first).  The answer is matched
        by sequence number and the IP it was sent to (any IP with
        ``any_source``); ``on_progress`` gets the delay of each
        RequestInProgress."""
        seq = message.seq
        old = self._outgoing.get(seq)
        if old is not None:
            self._forget_outgoing(seq, old)
        outgoing = _Outgoing(message.kind, message, address,
                             self.settings.request_retries if retransmit else 1,
                             on_answer=on_answer, retransmit=retransmit,
                             on_progress=on_progress, any_source=any_source,
                             interval=None if retransmit else lifetime)
        self._outgoing[seq] = outgoing
        self._transmit(seq)
        return outgoing

    def _forget_outgoing(self, seq: int, outgoing: _Outgoing) -> None:
        """Stop waiting for the answer to one of our requests."""
        if self._outgoing.get(seq) is outgoing:
            del self._outgoing[seq]
        if outgoing.timer is not None and outgoing.timer.active():
            outgoing.timer.cancel()
        outgoing.timer = None

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
        interval = outgoing.interval if outgoing.interval is not None \
            else self.settings.request_interval
        outgoing.timer = self.clock.callLater(interval, self._transmit, seq)

    # -- LRQs to neighbours (the neighbor policy's ILocationSender) ---------

    def send_lrq(self, neighbor: Neighbor, query: LocationQuery,
                 on_progress: Callable[[int], None]) -> _LocationExchange:
        """Send one LRQ to ``neighbor`` under a new requestSeqNum (unless the
        query has one), with our RAS address towards it as replyAddress; no
        retransmission (the policy calls ``resend``).  Its LCF or LRJ, from
        the neighbour's IP (any IP with AcceptNonNeighborLCF), answers it."""
        seq = query.seq if query.seq is not None else self.next_seq()
        exchange = _LocationExchange(self, seq)
        if self._send is None:
            exchange.answer.errback(RuntimeError("the RAS socket is not open"))
            return exchange
        features = self.config.neighbors.features
        message = lrq_message(query, seq, self.local_ras_address(neighbor.address))
        exchange.outgoing = self.request(
            message, neighbor.address, exchange.answered, retransmit=False,
            lifetime=features.longest_wait + RIP_LIMIT + 1.0, on_progress=on_progress,
            any_source=features.accept_non_neighbor_lcf)
        self.stats["LRQ sent"] += 1
        return exchange

    def unregister(self, endpoint: Endpoint, reason: str = "maintenance",
                   why: str = "forced") -> None:
        """Drop a registration: URQ to the endpoint, then forget it."""
        self.registration.unregister(endpoint, reason, why)

    def disconnect(self, call: Call, reason: str = "forcedDrop") -> ev.CallDetailRecord:
        """End a call from the gatekeeper's side: DRQ to both endpoints."""
        return self.admission.disconnect(call, reason)

    def check_registrations(self) -> None:
        """Once a second: poll or drop endpoints whose time to live ran out."""
        self.registration.check_registrations()

    # -- the core's notifier: what it decided, told over RAS ----------------

    def unregistration_requested(self, endpoint: Endpoint, reason: str) -> None:
        message = ras.Urq(self.next_seq(), endpoint.signal_addresses or (("0.0.0.0", 0),),
                          endpoint.endpoint_id, self.name, reason,
                          alternates=(self.config.alternate_gatekeepers
                                      if reason == "maintenance" else ()))
        self.request(message, endpoint.ras_address)
        self.forwarder.unregistered(endpoint)
        self.bus.publish(ev.UnregistrationRequested(endpoint.ras_address, endpoint.endpoint_id,
                                                    reason))

    def disengage_requested(self, endpoint: Endpoint, call: Call, call_reference: int,
                            reason: str) -> None:
        endpoint_id = endpoint.endpoint_id
        answered = endpoint_id == call.callee_endpoint_id
        message = ras.Drq(self.next_seq(), endpoint_id, call.conference_id, call_reference,
                          reason, call.call_id, self.name, answered)
        self.request(message, endpoint.ras_address)
        self.bus.publish(ev.DisengageRequested(endpoint.ras_address, endpoint_id, call_reference,
                                               reason, call.call_id))

    def poll(self, endpoint: Endpoint) -> None:
        self.request(ras.Irq(self.next_seq(), 0, None), endpoint.ras_address)
        self.bus.publish(ev.InfoRequested(endpoint.ras_address, endpoint.endpoint_id))
