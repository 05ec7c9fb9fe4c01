"""Registration rules: who may register, renew, unregister, and for how long.

:class:`Registration` takes typed requests (:class:`RegisterRequest` for a
full RRQ, :class:`KeepaliveRequest` for a lightweight one,
:class:`UnregisterRequest` for a URQ, :class:`DiscoveryRequest` for a GRQ)
and returns a decision; it keeps the registry, publishes the events and asks
its :class:`~gatekeeper.core.admission.EndpointNotifier` to tell endpoints
what the gatekeeper decided on its own (a URQ when a registration is replaced
or expires, an IRQ to poll a silent one).  It knows nothing of RAS encoding:
the RAS controller maps messages to these requests and decisions back.

GnuGk's rules kept here: a registration is renewed only from where it was
made; a signalling address registered from another host is never taken over;
conflicting aliases are refused (``duplicateAlias``) unless
``OverwriteEPOnSameAddress`` lets the new registration replace the old ones
(never a permanent one); ``TimeToLive`` is off unless configured, never above
it and never below the minimum; with ``RequireDiscovery`` a new registration
needs a GRQ from its host first.

Registrations an alternate gatekeeper forwards to us (``SendTo`` there,
:mod:`gatekeeper.core.failover`) are kept as *copies*: registered under the
identifier that gatekeeper gave, at the addresses it names, so that the
endpoint can ask admission here at once if it fails over; a copy never
blocks the endpoint's own registration here (it is replaced), expires
silently (no IRQ, no URQ: the endpoint is not ours), and becomes ours the
moment the endpoint itself renews it here. ``RedirectGK`` refuses new
registrations (and GRQs) with ``resourceUnavailable`` and the alternates.
"""

from __future__ import annotations

import socket
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Callable, NamedTuple

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from gatekeeper import events as ev
from gatekeeper.core.admission import EndpointNotifier, NoNotifier
from gatekeeper.core.failover import REDIRECT_REASON, RedirectRule
from gatekeeper.core.registry import Endpoint, Registry
from gatekeeper.h225.ras import Address, Alias, Vendor, format_address
from gatekeeper.interfaces import IEventBus
from gatekeeper.ratelimit import RateLimitedLog


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


@dataclass(frozen=True, slots=True)
class RegistrationSettings:
    """The registration rules' part of ``[Gatekeeper::Main]`` and friends."""

    gatekeeper_id: str = "gatekeeper"
    time_to_live: int | None = None          # None or 0: registrations never expire
    minimum_time_to_live: int = 60
    require_discovery: bool = False
    discovery_memory: float = 600.0          # how long a GCF counts as discovery
    irq_poll_count: int = 1                  # IRQs before a silent endpoint is dropped
    irq_poll_interval: float = 10.0
    #: [RasSrv::RRQFeatures] OverwriteEPOnSameAddress
    overwrite_ep_on_same_address: bool = False
    #: [Gatekeeper::Main] RedirectGK
    redirect: RedirectRule = RedirectRule()


# -- requests ------------------------------------------------------------------


class DiscoveryRequest(NamedTuple):
    """A GRQ: who asks, for which gatekeeper."""

    source: Address
    ras_address: Address | None
    gatekeeper_id: str | None
    aliases: tuple[Alias, ...]
    endpoint_type: str
    multicast: bool = False


class RegisterRequest(NamedTuple):
    """A full registration (or its renewal)."""

    source: Address
    signal_addresses: tuple[Address, ...]   # usable ones only, in the request's order
    ras_addresses: tuple[Address, ...]      # usable ones only
    aliases: tuple[Alias, ...]
    endpoint_type: str
    vendor: Vendor | None = None
    time_to_live: int | None = None
    endpoint_id: str | None = None
    prefixes: tuple[str, ...] = ()
    additive: bool = False
    discovery_complete: bool = False


class KeepaliveRequest(NamedTuple):
    """A lightweight RRQ: the endpoint says it is still there."""

    source: Address
    endpoint_id: str
    time_to_live: int | None = None
    aliases: tuple[Alias, ...] = ()        # for the RegistrationRejected event only
    endpoint_type: str = ""                # likewise


class UnregisterRequest(NamedTuple):
    """A URQ: by endpoint identifier, else by signalling address."""

    source: Address
    endpoint_id: str | None
    signal_addresses: tuple[Address, ...] = ()


class ForwardedRegistration(NamedTuple):
    """An RRQ (full or keepalive) another gatekeeper forwarded to us: the
    endpoint as registered there, under the identifier it gave."""

    source: Address                         # the gatekeeper that forwarded it
    endpoint_id: str
    signal_addresses: tuple[Address, ...]   # usable ones only
    ras_addresses: tuple[Address, ...]      # usable ones only
    aliases: tuple[Alias, ...] = ()
    endpoint_type: str = "terminal"
    vendor: Vendor | None = None
    time_to_live: int | None = None         # as that gatekeeper granted it
    prefixes: tuple[str, ...] = ()
    keep_alive: bool = False


# -- decisions -----------------------------------------------------------------


class DiscoveryConfirmed(NamedTuple):
    pass


class DiscoveryRefused(NamedTuple):
    reason: str
    redirect: bool = False                  # RedirectGK: the GRJ names the alternates


class Registered(NamedTuple):
    """Confirm: the endpoint as registered now, and the time to live granted."""

    endpoint: Endpoint
    time_to_live: int | None
    new: bool = False


class RegistrationRefused(NamedTuple):
    """Reject with its H.225.0 RegistrationRejectReason; ``duplicates``: the
    aliases taken, for ``duplicateAlias``."""

    reason: str
    duplicates: tuple[Alias, ...] = ()
    redirect: bool = False                  # RedirectGK: the RRJ names the alternates


class ForwardIgnored(NamedTuple):
    """A forwarded registration or unregistration not taken, and why (no
    answer goes back; it is counted and logged)."""

    why: str


class Unregistered(NamedTuple):
    endpoint: Endpoint


class UnregistrationRefused(NamedTuple):
    reason: str


class Registration:
    """Decides on GRQ, RRQ and URQ; drops registrations whose time ran out."""

    log = Logger()

    def __init__(self, registry: Registry, bus: IEventBus, clock: IReactorTime,
                 end_calls_of: Callable[[Endpoint], None],
                 settings: RegistrationSettings | None = None,
                 notifier: EndpointNotifier | None = None,
                 stats: Counter[str] | None = None,
                 trouble: RateLimitedLog | None = None) -> None:
        self.registry = registry
        self.bus = bus
        self.clock = clock
        self.settings = settings if settings is not None else RegistrationSettings()
        self.notifier: EndpointNotifier = notifier if notifier is not None else NoNotifier()
        self.stats: Counter[str] = stats if stats is not None else Counter()
        self._end_calls_of = end_calls_of
        self._discovered: OrderedDict[str, float] = OrderedDict()
        #: The copies of other gatekeepers' registrations: endpoint id ->
        #: the Endpoint (checked by identity: a stale entry is ignored).
        self.forwarded: dict[str, Endpoint] = {}
        #: Peer-caused log lines (rate-limited); the protocol in front may
        #: pass its own, so that its lines share one limit and namespace.
        self._trouble = trouble if trouble is not None else RateLimitedLog(self.log, clock)

    def reconfigure(self, settings: RegistrationSettings) -> None:
        self.settings = settings

    # -- GRQ ---------------------------------------------------------------

    def discover(self, request: DiscoveryRequest
                 ) -> DiscoveryConfirmed | DiscoveryRefused | None:
        """GCF, GRJ, or None: a multicast GRQ for another gatekeeper is not
        ours to refuse."""
        name = self.settings.gatekeeper_id
        if request.gatekeeper_id and request.gatekeeper_id != name:
            if request.multicast:
                return None
            self.bus.publish(ev.GatekeeperRejected(request.source, request.aliases,
                                                   request.endpoint_type, "terminalExcluded"))
            return DiscoveryRefused("terminalExcluded")
        if self.settings.redirect.redirects_discovery():
            self.stats["GRQ redirected"] += 1
            self.bus.publish(ev.GatekeeperRejected(request.source, request.aliases,
                                                   request.endpoint_type, REDIRECT_REASON))
            return DiscoveryRefused(REDIRECT_REASON, True)
        self._remember_discovery(request.source[0])
        if request.ras_address is not None:
            self._remember_discovery(request.ras_address[0])
        self.bus.publish(ev.GatekeeperConfirmed(request.source, request.aliases,
                                                request.endpoint_type))
        return DiscoveryConfirmed()

    def _remember_discovery(self, ip: str) -> None:
        """Note a GRQ from ``ip``; forget the ones too old to count."""
        now = self.clock.seconds()
        discovered = self._discovered
        discovered[ip] = now
        discovered.move_to_end(ip)
        horizon = now - self.settings.discovery_memory
        while discovered:
            oldest, when = next(iter(discovered.items()))
            if when >= horizon and len(discovered) <= 1_000_000:
                break
            del discovered[oldest]

    def _did_discovery(self, request: RegisterRequest, now: float) -> bool:
        if not request.discovery_complete:
            return False
        when = self._discovered.get(request.source[0])
        return when is not None and now - when <= self.settings.discovery_memory

    # -- RRQ ---------------------------------------------------------------

    def grant_time_to_live(self, requested: int | None) -> int | None:
        """GnuGk's rule: off unless TimeToLive is set; never above it, never below 60 s."""
        configured = self.settings.time_to_live
        if not configured:
            return None
        wanted = requested if requested else configured
        return max(self.settings.minimum_time_to_live, min(configured, wanted))

    def _refuse(self, request: RegisterRequest | KeepaliveRequest, reason: str,
                duplicates: tuple[Alias, ...] = (), redirect: bool = False
                ) -> RegistrationRefused:
        self.stats["RRJ"] += 1
        self.bus.publish(ev.RegistrationRejected(request.source, request.aliases,
                                                 request.endpoint_type, reason))
        return RegistrationRefused(reason, duplicates, redirect)

    def register(self, request: RegisterRequest) -> Registered | RegistrationRefused:
        """A full RRQ: a new registration, a renewal, or a refusal."""
        now = self.clock.seconds()
        source, signal, kind = request.source, request.signal_addresses, request.endpoint_type
        if not signal:
            return self._refuse(request, "invalidCallSignalAddress")
        if not request.ras_addresses:
            return self._refuse(request, "invalidRASAddress")
        existing, holder = self._existing_registration(request)
        if holder is not None and self.is_copy(holder):
            # Another gatekeeper's copy never keeps the endpoint out of here.
            self._drop_copy(holder, "replaced by a registration here")
            holder = None
        if holder is not None and not self._same_host(holder, source):
            # A signalling address registered from another host is never
            # taken over (GnuGk too wants the signalling IP to be the sender's).
            self.stats["spoofed"] += 1
            return self._refuse(request, "invalidCallSignalAddress")
        if self.settings.require_discovery and existing is None \
                and not self._did_discovery(request, now):
            return self._refuse(request, "discoveryRequired")
        if existing is None and self.settings.redirect.redirects_registration(
                self.local_count()):
            self.stats["RRQ redirected"] += 1
            return self._refuse(request, REDIRECT_REASON, redirect=True)
        aliases = request.aliases
        if request.additive and existing is not None:
            aliases = existing.aliases + tuple(a for a in aliases if a not in existing.aliases)
        taken = self.registry.conflicting_aliases(aliases, existing)
        if taken and self.forwarded:
            for alias in taken:
                owner = self.registry.find_alias(alias)
                if owner is not None and self.is_copy(owner):
                    self._drop_copy(owner, "replaced by a registration here")
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
        if owners and (not self.settings.overwrite_ep_on_same_address
                       or any(owner.permanent for owner in owners)):
            if holder is not None:
                self.stats["takeover refused"] += 1
                self._trouble("takeover", "refused an RRQ from {source} for the signalling "
                              "address of {endpoint_id}, registered from {registered}",
                              source=format_address(source), endpoint_id=holder.endpoint_id,
                              registered=format_address(holder.source_address
                                                        or holder.ras_address))
            if taken:
                return self._refuse(request, "duplicateAlias", tuple(taken))
            return self._refuse(request, "invalidCallSignalAddress")
        for owner in owners:
            self.stats["registrations replaced"] += 1
            self.unregister(owner, "maintenance", "replaced by a new registration")
        ttl = self.grant_time_to_live(request.time_to_live)
        if existing is None:
            endpoint = Endpoint(
                endpoint_id=self.registry.new_endpoint_id(), aliases=aliases,
                signal_addresses=signal, ras_address=request.ras_addresses[0],
                endpoint_type=kind, vendor=request.vendor, prefixes=request.prefixes,
                registration_time=now, last_seen=now, time_to_live=ttl, source_address=source)
            self.registry.add(endpoint)
        else:
            endpoint = existing
            self.registry.update(endpoint, aliases=aliases, signal_addresses=signal,
                                 prefixes=request.prefixes, ras_address=request.ras_addresses[0],
                                 endpoint_type=kind, vendor=request.vendor,
                                 time_to_live=ttl, source_address=source, last_seen=now,
                                 irq_polls=0)
        if self.forwarded:
            self._claim(endpoint)
        self.stats["RCF"] += 1
        self.bus.publish(ev.EndpointRegistered(
            signal[0], endpoint.ras_address, endpoint.aliases, endpoint.endpoint_type,
            endpoint.endpoint_id, keepalive=False, new=existing is None,
            vendor=str(request.vendor or "")))
        return Registered(endpoint, ttl, existing is None)

    def keepalive(self, request: KeepaliveRequest) -> Registered | RegistrationRefused:
        """A lightweight RRQ: the registration's time to live starts again."""
        endpoint = self.registry.get(request.endpoint_id)
        if endpoint is None:
            return self._refuse(request, "fullRegistrationRequired")
        if not endpoint.is_from(request.source):
            # Its own RAS address or nothing: not another port of its host.
            self.stats["spoofed"] += 1
            return self._refuse(request, "securityDenial")
        if self.forwarded:
            self._claim(endpoint)
        ttl = self.grant_time_to_live(request.time_to_live or endpoint.time_to_live)
        endpoint.time_to_live = ttl
        self.registry.touch(endpoint, self.clock.seconds())
        self.stats["RCF"] += 1
        self.bus.publish(ev.EndpointRegistered(
            endpoint.signal_address, endpoint.ras_address, endpoint.aliases,
            endpoint.endpoint_type, endpoint.endpoint_id, keepalive=True, new=False,
            vendor=str(endpoint.vendor or "")))
        return Registered(endpoint, ttl)

    def _existing_registration(self, request: RegisterRequest
                               ) -> tuple[Endpoint | None, Endpoint | None]:
        """The registration a full RRQ renews, and the one holding a
        signalling address it asks for without being it.

        A registration is renewed only from where it was made (its RAS
        address, or the address its RRQ came from: ``Endpoint.is_from``),
        named by its identifier or by its signalling address. From anywhere
        else, even another port of the same host, the RRQ conflicts with it
        (its identifier, calls and aliases are not handed over).
        """
        source = request.source
        renewed = None
        if request.endpoint_id:
            endpoint = self.registry.get(request.endpoint_id)
            if endpoint is not None and endpoint.is_from(source):
                renewed = endpoint
        for address in request.signal_addresses:
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

    # -- URQ ---------------------------------------------------------------

    def unregistration_request(self, request: UnregisterRequest
                               ) -> Unregistered | UnregistrationRefused:
        """The endpoint asks to leave; its calls end."""
        source = request.source
        endpoint = None
        if request.endpoint_id:
            endpoint = self.registry.get(request.endpoint_id)
        else:
            for address in request.signal_addresses:
                endpoint = self.registry.find_signal(address)
                if endpoint is not None:
                    break
        if endpoint is None:
            self.bus.publish(ev.UnregistrationRejected(source, request.endpoint_id or "",
                                                       "notCurrentlyRegistered"))
            return UnregistrationRefused("notCurrentlyRegistered")
        if not endpoint.is_from(source):
            self.stats["spoofed"] += 1
            self.bus.publish(ev.UnregistrationRejected(source, endpoint.endpoint_id,
                                                       "permissionDenied"))
            return UnregistrationRefused("permissionDenied")
        self.forwarded.pop(endpoint.endpoint_id, None)
        self.registry.remove(endpoint.endpoint_id, "unregistered by endpoint", self.clock.seconds())
        self.bus.publish(ev.EndpointUnregistered(
            source, endpoint.endpoint_id, endpoint.aliases, "endpoint request",
            endpoint.signal_address, endpoint.endpoint_type))
        self._end_calls_of(endpoint)
        return Unregistered(endpoint)

    # -- the gatekeeper's own decisions ----------------------------------------

    def unregister(self, endpoint: Endpoint, reason: str = "maintenance",
                   why: str = "forced") -> None:
        """Drop a registration: the endpoint is told (URQ), then forgotten,
        and its calls end (a copy of another gatekeeper's registration goes
        silently: the endpoint is not ours to tell)."""
        copy = self.forwarded.pop(endpoint.endpoint_id, None) is endpoint
        if endpoint.ras_address is not None and not endpoint.permanent and not copy:
            self.notifier.unregistration_requested(endpoint, reason)
        self.registry.remove(endpoint.endpoint_id, why, self.clock.seconds())
        self.bus.publish(ev.EndpointUnregistered(
            endpoint.ras_address, endpoint.endpoint_id, endpoint.aliases, why,
            endpoint.signal_address, endpoint.endpoint_type))
        self._end_calls_of(endpoint)

    def check_registrations(self) -> None:
        """Poll (IRQ) or drop the endpoints whose time to live ran out."""
        now = self.clock.seconds()
        for endpoint in self.registry.due(now):
            if endpoint.permanent:
                continue
            if self.is_copy(endpoint):
                # As long as its own gatekeeper would keep it (the same polls'
                # grace), without asking the endpoint anything.
                if endpoint.irq_polls < self.settings.irq_poll_count:
                    endpoint.irq_polls += 1
                    self.registry.postpone(endpoint, self.settings.irq_poll_interval, now)
                else:
                    self._drop_copy(endpoint, "ttlExpired")
                continue
            if endpoint.irq_polls < self.settings.irq_poll_count and endpoint.ras_address:
                endpoint.irq_polls += 1
                self.notifier.poll(endpoint)
                self.registry.postpone(endpoint, self.settings.irq_poll_interval, now)
            else:
                self.unregister(endpoint, "ttlExpired", "ttlExpired")

    # -- copies of other gatekeepers' registrations ([Gatekeeper::Main] SendTo there)

    def is_copy(self, endpoint: Endpoint) -> bool:
        """Whether ``endpoint`` is another gatekeeper's registration, forwarded."""
        return self.forwarded.get(endpoint.endpoint_id) is endpoint

    def local_count(self) -> int:
        """Endpoints registered here, not counting the copies (RedirectGK)."""
        if self.forwarded:
            self.forwarded = {endpoint_id: endpoint for endpoint_id, endpoint
                              in self.forwarded.items()
                              if self.registry.get(endpoint_id) is endpoint}
        return len(self.registry) - len(self.forwarded)

    def _claim(self, endpoint: Endpoint) -> None:
        """The endpoint renewed its registration here itself: ours now."""
        if self.forwarded.get(endpoint.endpoint_id) is endpoint:
            del self.forwarded[endpoint.endpoint_id]
            self.stats["forwarded registration taken over"] += 1

    def _drop_copy(self, endpoint: Endpoint, why: str, source: Address | None = None) -> None:
        """Forget a copy without telling the endpoint; its calls here end."""
        self.forwarded.pop(endpoint.endpoint_id, None)
        self.registry.remove(endpoint.endpoint_id, why, self.clock.seconds())
        self.bus.publish(ev.EndpointUnregistered(
            source if source is not None else endpoint.ras_address, endpoint.endpoint_id,
            endpoint.aliases, why, endpoint.signal_address, endpoint.endpoint_type))
        self._end_calls_of(endpoint)

    def register_forwarded(self, request: ForwardedRegistration
                           ) -> Registered | ForwardIgnored:
        """Keep (or refresh) the copy of a registration another gatekeeper
        forwarded, under the identifier it gave. Not taken: an identifier
        one of our own endpoints has (unless it is that endpoint, gone back
        to the other gatekeeper), aliases or a signalling address one of ours
        holds, a keepalive for an endpoint we have no copy of and no
        addresses for."""
        now = self.clock.seconds()
        existing = self.registry.get(request.endpoint_id)
        if existing is not None and existing.permanent:
            return self._ignore("the identifier of a permanent endpoint here")
        if existing is not None and not self.is_copy(existing) \
                and existing.ras_address not in request.ras_addresses:
            return self._ignore("the identifier of another endpoint registered here")
        ttl = request.time_to_live if request.time_to_live else None
        if request.keep_alive and existing is not None:
            self.forwarded[existing.endpoint_id] = existing
            if ttl is not None:
                existing.time_to_live = ttl
            self.registry.touch(existing, now)
            self.stats["forwarded keepalive"] += 1
            return Registered(existing, existing.time_to_live)
        signal, ras_addresses = request.signal_addresses, request.ras_addresses
        if not signal or not ras_addresses:
            return self._ignore("no usable signalling and RAS address for an endpoint not "
                                "known here")
        owners: list[Endpoint] = []
        for address in signal:
            holder = self.registry.find_signal(address)
            if holder is not None and holder is not existing and holder not in owners:
                owners.append(holder)
        for alias in self.registry.conflicting_aliases(request.aliases, existing):
            owner = self.registry.find_alias(alias)
            if owner is not None and owner not in owners:
                owners.append(owner)
        for owner in owners:
            if not self.is_copy(owner):
                return self._ignore(f"its aliases or signalling address are registered here "
                                    f"by {owner.endpoint_id}")
        for owner in owners:
            self._drop_copy(owner, "replaced by a forwarded registration")
        if existing is None:
            endpoint = Endpoint(
                endpoint_id=request.endpoint_id, aliases=request.aliases,
                signal_addresses=signal, ras_address=ras_addresses[0],
                endpoint_type=request.endpoint_type, vendor=request.vendor,
                prefixes=request.prefixes, registration_time=now, last_seen=now,
                time_to_live=ttl)
            self.registry.add(endpoint)
        else:
            endpoint = existing
            self.registry.update(endpoint, aliases=request.aliases, signal_addresses=signal,
                                 prefixes=request.prefixes, ras_address=ras_addresses[0],
                                 endpoint_type=request.endpoint_type, vendor=request.vendor,
                                 time_to_live=ttl, source_address=None, last_seen=now,
                                 irq_polls=0)
        self.forwarded[endpoint.endpoint_id] = endpoint
        self.stats["forwarded registration"] += 1
        self.bus.publish(ev.EndpointRegistered(
            signal[0], endpoint.ras_address, endpoint.aliases, endpoint.endpoint_type,
            endpoint.endpoint_id, keepalive=False, new=existing is None,
            vendor=str(request.vendor or "")))
        return Registered(endpoint, ttl, existing is None)

    def unregister_forwarded(self, request: UnregisterRequest) -> Unregistered | ForwardIgnored:
        """Another gatekeeper's URQ copy: its registration's copy goes. An
        endpoint registered here itself (it failed over to us) stays."""
        endpoint = self.registry.get(request.endpoint_id) if request.endpoint_id else None
        if endpoint is None and not request.endpoint_id:
            for address in request.signal_addresses:
                endpoint = self.registry.find_signal(address)
                if endpoint is not None:
                    break
        if endpoint is None:
            return self._ignore("no copy of that registration here")
        if not self.is_copy(endpoint):
            return self._ignore("the endpoint is registered here itself")
        self.stats["forwarded unregistration"] += 1
        self._drop_copy(endpoint, "endpoint request", request.source)
        return Unregistered(endpoint)

    def _ignore(self, why: str) -> ForwardIgnored:
        self.stats["forwarded RAS ignored"] += 1
        return ForwardIgnored(why)
