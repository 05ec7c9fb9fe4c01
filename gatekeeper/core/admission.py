"""Admission: which calls may start, where they go, and their end.

:class:`Admission` decides on every admission request, whatever protocol
brought it: the RAS controller builds an :class:`AdmissionRequest` from an
ARQ; a Setup from an unregistered caller can build one too (``origin="Setup"``,
no ``endpoint_id``) and go through the very same routing (E.164 rewrite,
the routing chain, virtual queues) in :meth:`Admission.resolve` and the same
confirmation in :meth:`Admission.confirm`.  A decision is
:class:`Admitted` (the call and what to answer: destination address,
bandwidth, call model), :class:`AdmissionRefused` (its H.225.0 reason), or
:class:`AdmissionHeld` while a routing policy asks someone else (a virtual
queue's RouteRequest): its Deferred fires with the final decision.  The same
object ends calls (DRQ, a party gone, the gatekeeper's own DisconnectCall),
changes their bandwidth (BRQ) and publishes the events; the per-endpoint
call counters follow from the call table it keeps (``CallTable.counts``).

:class:`SetupAdmission` follows the calls the signalling relay carries: a
Setup is matched to the call admitted by ARQ by its CallIdentifier and
checked to come from the caller's host; the relay then tells it how the call
goes on (alerting, connected, released), and the call table (with the
endpoints' counters it derives) and the event bus follow.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Callable, NamedTuple, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from gatekeeper import events as ev
from gatekeeper.core.bandwidth import BandwidthPool
from gatekeeper.core.calls import Call, CallTable
from gatekeeper.core.registry import Endpoint, Registry
from gatekeeper.core.rewrite import RewriteRule, rewrite_destination
from gatekeeper.core.routing import Route, Router, RoutingRequest, default_router
from gatekeeper.h225 import q931
from gatekeeper.h225.ras import Address, Alias, new_guid
from gatekeeper.interfaces import IEventBus
from gatekeeper.ratelimit import RateLimitedLog


class EndpointNotifier(Protocol):
    """How the core tells an endpoint what the gatekeeper decided on its own
    (the RAS controller sends URQ, DRQ, IRQ and publishes that it did)."""

    def unregistration_requested(self, endpoint: Endpoint, reason: str) -> None: ...

    def disengage_requested(self, endpoint: Endpoint, call: Call, call_reference: int,
                            reason: str) -> None: ...

    def poll(self, endpoint: Endpoint) -> None: ...


class NoNotifier:
    """An :class:`EndpointNotifier` that tells nobody (tests, no RAS)."""

    def unregistration_requested(self, endpoint: Endpoint, reason: str) -> None:
        pass

    def disengage_requested(self, endpoint: Endpoint, call: Call, call_reference: int,
                            reason: str) -> None:
        pass

    def poll(self, endpoint: Endpoint) -> None:
        pass


@dataclass(frozen=True, slots=True)
class AdmissionSettings:
    """What admission needs of the configuration."""

    gatekeeper_id: str = "gatekeeper"
    routed: bool = False                     # calls signalled through the gatekeeper
    signal_address: Address | None = None    # the gatekeeper's own, for routed mode
    router: Router | None = None             # the routing chain; None: the registry's lookups
    rewrite_rules: tuple[RewriteRule, ...] = ()   # [RasSrv::RewriteE164]
    total_bandwidth: int | None = None       # TotalBandwidth, units of 100 bit/s; None: unlimited


# -- requests ------------------------------------------------------------------


class AdmissionRequest(NamedTuple):
    """A request to admit one side of a call (an ARQ, or a Setup)."""

    source: Address                       # where the request came from
    endpoint_id: str | None               # the asking endpoint's identifier (None: unregistered)
    destination_info: tuple[Alias, ...] = ()
    dest_signal_address: Address | None = None
    source_info: tuple[Alias, ...] = ()
    src_signal_address: Address | None = None
    bandwidth: int = 0
    call_reference: int = 0
    conference_id: bytes = bytes(16)
    call_id: bytes | None = None
    answer_call: bool = False
    origin: str = "ARQ"                   # the routing chain's message type: ARQ or Setup


class DisengageRequest(NamedTuple):
    """An endpoint says a call ended (DRQ)."""

    source: Address
    endpoint_id: str
    call_id: bytes | None
    conference_id: bytes
    call_reference: int
    reason: str = "normalDrop"


class BandwidthRequest(NamedTuple):
    """An endpoint asks for another bandwidth for a call (BRQ)."""

    source: Address
    endpoint_id: str
    call_id: bytes | None
    conference_id: bytes
    call_reference: int
    bandwidth: int


# -- decisions -----------------------------------------------------------------


class Admitted(NamedTuple):
    """Confirm: what to answer, and the call."""

    call: Call
    destination: Address                  # the destCallSignalAddress to answer
    bandwidth: int
    routed: bool                          # call model: gatekeeper-routed or direct
    destination_info: tuple[Alias, ...] = ()   # the destination, if routing rewrote it
    destination_type: str | None = None   # the callee's endpoint type, if registered


class AdmissionRefused(NamedTuple):
    """Reject with its H.225.0 AdmissionRejectReason."""

    reason: str


class AdmissionHeld(NamedTuple):
    """A routing policy asks someone else first.

    ``decision`` fires with :class:`Admitted`, :class:`AdmissionRefused`, or
    None (the caller left meanwhile: nobody to answer); it is None when the
    same request was already held (asked again: no second route request).
    ``key`` names the request while it is held.
    """

    key: tuple
    decision: Deferred | None


class Disengaged(NamedTuple):
    call: Call | None                     # None: no such call, confirmed all the same


class DisengageRefused(NamedTuple):
    reason: str


class BandwidthGranted(NamedTuple):
    bandwidth: int


class BandwidthRefused(NamedTuple):
    reason: str
    allowed: int = 0


AdmissionDecision = Admitted | AdmissionRefused | AdmissionHeld


class Admission:
    """Admits calls, routes them, changes and ends them."""

    log = Logger()

    def __init__(self, registry: Registry, calls: CallTable, bus: IEventBus, clock: IReactorTime,
                 settings: AdmissionSettings | None = None, router: Router | None = None,
                 bandwidth: BandwidthPool | None = None,
                 notifier: EndpointNotifier | None = None,
                 stats: Counter[str] | None = None,
                 trouble: RateLimitedLog | None = None) -> None:
        self.registry = registry
        self.calls = calls
        self.bus = bus
        self.clock = clock
        self.bandwidth = bandwidth if bandwidth is not None else BandwidthPool()
        self.notifier: EndpointNotifier = notifier if notifier is not None else NoNotifier()
        self.stats: Counter[str] = stats if stats is not None else Counter()
        self.accepting = True        # False while shutting down: no new calls
        self._pending: dict[tuple, Deferred] = {}
        #: Peer-caused log lines (rate-limited); the protocol in front may
        #: pass its own, so that its lines share one limit and namespace.
        self._trouble = trouble if trouble is not None else RateLimitedLog(self.log, clock)
        if settings is None:
            # The pool's own limit stands until a reconfigure says otherwise.
            settings = AdmissionSettings(total_bandwidth=self.bandwidth.total)
        if router is not None:
            settings = replace(settings, router=router)
        self.reconfigure(settings)

    def reconfigure(self, settings: AdmissionSettings) -> None:
        """Take new settings (a reload).  The router, the rewrite rules and
        the bandwidth limit are read from attributes on the hot path, so they
        are unpacked here; calls in progress keep their bandwidth."""
        self.settings = settings
        self.router: Router = (settings.router if settings.router is not None
                               else default_router(self.registry))
        self.rewrite_rules: tuple[RewriteRule, ...] = settings.rewrite_rules
        self.bandwidth.reconfigure(settings.total_bandwidth)

    # -- admission -------------------------------------------------------

    def admit(self, request: AdmissionRequest) -> AdmissionDecision:
        """The decision on one admission request."""
        endpoint = self.registry.get(request.endpoint_id) if request.endpoint_id else None
        if endpoint is None:
            return self._refuse(request, None, "callerNotRegistered")
        if not endpoint.is_from(request.source):
            self.stats["spoofed"] += 1
            return self._refuse(request, None, "invalidEndpointIdentifier")
        self.registry.touch(endpoint, self.clock.seconds())
        if not self.accepting:
            return self._refuse(request, endpoint, "resourceUnavailable")
        if request.answer_call:
            return self._answer(request, endpoint)
        again = self.calls.find_call_id(request.call_id)
        if again is not None and again.caller_endpoint_id == endpoint.endpoint_id:
            # A retransmission we no longer remember: same answer, no second call.
            return self._confirm_again(request, endpoint, again)
        if not request.destination_info and request.dest_signal_address is None:
            return self._refuse(request, endpoint, "requestDenied")
        key = (endpoint.endpoint_id, request.call_id or request.call_reference)
        if key in self._pending:
            # Asked again while an application decides: no second RouteRequest.
            self.stats["ARQ while held"] += 1
            return AdmissionHeld(key, None)
        request, route = self.resolve(request, endpoint)
        if isinstance(route, Deferred):
            return self._hold(key, route, request, endpoint.endpoint_id)
        return self.confirm(request, endpoint, route)

    def admit_unregistered(self, request: AdmissionRequest) -> AdmissionDecision:
        """A call whose caller is not registered (a Setup with no ARQ before
        it, ``[RoutedMode] AcceptUnregisteredCalls=1``): the same routing and
        confirmation as an ARQ, with no caller endpoint."""
        if not self.accepting:
            return self._refuse(request, None, "resourceUnavailable")
        if not request.destination_info and request.dest_signal_address is None:
            return self._refuse(request, None, "incompleteAddress")
        key = ("", request.call_id)
        if key in self._pending:
            self.stats["Setup while held"] += 1
            return AdmissionHeld(key, None)
        request, route = self.resolve(request, None)
        if isinstance(route, Deferred):
            return self._hold(key, route, request, None)
        return self.confirm(request, None, route)

    def resolve(self, request: AdmissionRequest, caller: Endpoint | None
                ) -> tuple[AdmissionRequest, Route | None | Deferred]:
        """Where a call goes: the destination rewritten ([RasSrv::RewriteE164]),
        then the routing chain (a Deferred when a policy asks someone else)."""
        if self.rewrite_rules:
            request = request._replace(destination_info=self.rewrite(request.destination_info))
        caller_signal = (caller.signal_address if caller is not None
                         else request.src_signal_address)
        route = self.router.route(RoutingRequest(
            request.destination_info, request.dest_signal_address, request.source_info, caller,
            request.origin, request.call_id, request.call_reference, request.source,
            caller_signal))
        return request, route

    def rewrite(self, destination: tuple[Alias, ...]) -> tuple[Alias, ...]:
        """``destination`` as [RasSrv::RewriteE164] rewrites it."""
        if self.rewrite_rules:
            return rewrite_destination(self.rewrite_rules, destination)
        return destination

    def confirm(self, request: AdmissionRequest, caller: Endpoint | None,
                route: Route | None) -> Admitted | AdmissionRefused:
        """Admit the call to where the routing chain says, or refuse it.
        ``caller`` None: a caller that is not registered (its Setup)."""
        if route is None or (route.reject is None and route.signal_address is None):
            return self._refuse(request, caller, "calledPartyNotRegistered")
        if route.reject is not None:
            return self._refuse(request, caller, route.reject)
        if not self.bandwidth.take(request.bandwidth):
            return self._refuse(request, caller, "resourceUnavailable")
        routed = self.settings.routed
        destination_info = route.destination or request.destination_info
        caller_signal = caller.signal_address if caller is not None \
            else request.src_signal_address
        call = self.calls.add(Call(
            number=self.calls.next_number(), call_id=request.call_id or new_guid(),
            conference_id=request.conference_id,
            caller_endpoint_id=caller.endpoint_id if caller is not None else "",
            caller_signal_address=caller_signal, caller_crv=request.call_reference,
            callee_endpoint_id=route.endpoint.endpoint_id if route.endpoint else "",
            callee_signal_address=route.signal_address,
            destination_info=destination_info,
            source_info=request.source_info or (caller.aliases if caller is not None else ()),
            bandwidth=request.bandwidth, admission_time=self.clock.seconds(), routed=routed))
        self.stats["ACF"] += 1
        self.bus.publish(ev.AdmissionConfirmed(
            caller_signal, caller.endpoint_id if caller is not None else "",
            request.call_reference, destination_info, call.source_info, False, call.call_id,
            routed, call.number, route.signal_address, request.bandwidth, request.origin))
        return Admitted(call, self._destination(route.signal_address), request.bandwidth, routed,
                        route.destination,
                        route.endpoint.endpoint_type if route.endpoint else None)

    def _confirm_again(self, request: AdmissionRequest, endpoint: Endpoint,
                       call: Call) -> Admitted | AdmissionRefused:
        callee = self.registry.get(call.callee_endpoint_id)
        destination = self._destination(call.callee_signal_address)
        if destination is None:
            return self._refuse(request, endpoint, "calledPartyNotRegistered")
        self.stats["ACF"] += 1
        self.bus.publish(ev.AdmissionConfirmed(
            endpoint.signal_address, endpoint.endpoint_id, request.call_reference,
            request.destination_info, call.source_info, False, call.call_id,
            self.settings.routed, call.number, call.callee_signal_address, call.bandwidth))
        return Admitted(call, destination, call.bandwidth, self.settings.routed, (),
                        callee.endpoint_type if callee else None)

    def _answer(self, request: AdmissionRequest, endpoint: Endpoint
                ) -> Admitted | AdmissionRefused:
        """The called endpoint asks to answer: it joins the caller's call."""
        now = self.clock.seconds()
        routed = self.settings.routed
        call = self.calls.find_call_id(request.call_id)
        own = request.dest_signal_address or endpoint.signal_address
        if call is None:
            # A call from outside (unregistered caller, another zone): admit
            # the answering side on its own.
            if not self.bandwidth.take(request.bandwidth):
                return self._refuse(request, endpoint, "resourceUnavailable")
            call = self.calls.add(Call(
                number=self.calls.next_number(), call_id=request.call_id or new_guid(),
                conference_id=request.conference_id, caller_endpoint_id="",
                caller_signal_address=request.src_signal_address, caller_crv=0,
                callee_endpoint_id=endpoint.endpoint_id, callee_signal_address=own,
                destination_info=request.destination_info, source_info=request.source_info,
                bandwidth=request.bandwidth, admission_time=now,
                callee_crv=request.call_reference, answered=True, routed=routed))
        elif call.callee_endpoint_id not in ("", endpoint.endpoint_id):
            return self._refuse(request, endpoint, "requestDenied")
        else:
            self.calls.join(call, endpoint.endpoint_id, own, request.call_reference)
        # In direct mode the gatekeeper sees no Connect: the answer is the connect.
        if not routed:
            self.calls.mark_connected(call, now)
        destination = self._destination(own)
        self.stats["ACF"] += 1
        self.bus.publish(ev.AdmissionConfirmed(
            own, endpoint.endpoint_id, request.call_reference, request.destination_info,
            request.source_info or call.source_info, True, call.call_id, routed,
            call.number, own, request.bandwidth))
        return Admitted(call, destination or own, request.bandwidth, routed)

    def _destination(self, callee: Address | None) -> Address | None:
        """Where the caller is sent: the callee, or us in routed mode."""
        if self.settings.routed and self.settings.signal_address is not None:
            return self.settings.signal_address
        return callee

    def _refuse(self, request: AdmissionRequest, caller: Endpoint | None,
                reason: str) -> AdmissionRefused:
        self.stats["ARJ"] += 1
        signal = caller.signal_address if caller is not None else request.src_signal_address
        self.bus.publish(ev.AdmissionRejected(
            signal, request.destination_info, request.source_info, request.answer_call, reason,
            request.call_id, request.endpoint_id or "", request.origin))
        return AdmissionRefused(reason)

    # -- held while a routing policy asks someone else ---------------------

    def _hold(self, key: tuple, route: Deferred, request: AdmissionRequest,
              endpoint_id: str | None) -> AdmissionHeld:
        decision: Deferred = Deferred()
        self._pending[key] = decision
        self.stats["held"] += 1
        route.addCallbacks(self._route_known, self._route_failed,
                           callbackArgs=(key, request, endpoint_id), errbackArgs=(key,))
        return AdmissionHeld(key, decision)

    def _route_known(self, route: Route | None, key: tuple, request: AdmissionRequest,
                     endpoint_id: str | None) -> None:
        decision = self._pending.pop(key, None)
        if decision is None:
            return
        endpoint = self.registry.get(endpoint_id) if endpoint_id is not None else None
        if endpoint_id is not None and endpoint is None:
            self.stats["held caller gone"] += 1
            decision.callback(None)   # unregistered meanwhile: nobody to answer
        elif not self.accepting:
            decision.callback(self._refuse(request, endpoint, "resourceUnavailable"))
        else:
            decision.callback(self.confirm(request, endpoint, route))

    def _route_failed(self, failure: object, key: tuple) -> None:
        self._trouble.failure("routing", "routing a held {kind} failed", failure,
                              kind="admissionRequest")
        decision = self._pending.pop(key, None)
        if decision is not None:
            decision.callback(AdmissionRefused("undefinedReason"))

    # -- calls ending and changing -------------------------------------------

    def end_call(self, call: Call, reason: str) -> ev.CallDetailRecord:
        """Remove a call, give back its bandwidth and publish its CDR."""
        record = self.calls.end(call, self.clock.seconds(), self.settings.gatekeeper_id, reason)
        self.bandwidth.give_back(call.bandwidth)
        self.bus.publish(record)
        return record

    def disconnect(self, call: Call, reason: str = "forcedDrop") -> ev.CallDetailRecord:
        """End a call from the gatekeeper's side: both registered parties are told."""
        for endpoint_id in call.endpoint_ids():
            endpoint = self.registry.get(endpoint_id)
            crv = call.crv_for(endpoint_id)
            if endpoint is None or endpoint.ras_address is None or crv is None:
                continue
            self.notifier.disengage_requested(endpoint, call, crv, reason)
        return self.end_call(call, reason)

    def end_calls_of(self, endpoint: Endpoint) -> None:
        """A party left: its calls end (with their CDRs), and the other side,
        if still registered, is told."""
        for call in self.calls.of_endpoint(endpoint.endpoint_id):
            self.disconnect(call, "forcedDrop")

    def disengage(self, request: DisengageRequest) -> Disengaged | DisengageRefused:
        """An endpoint ends a call (DRQ)."""
        source = request.source
        endpoint = self.registry.get(request.endpoint_id)
        if endpoint is None or not endpoint.is_from(source):
            reason = "notRegistered" if endpoint is None else "requestToDropOther"
            if endpoint is not None:
                self.stats["spoofed"] += 1
            self.bus.publish(ev.DisengageRejected(source, request.endpoint_id,
                                                  request.call_reference, reason,
                                                  request.call_id))
            return DisengageRefused(reason)
        self.registry.touch(endpoint, self.clock.seconds())
        call = self.calls.find(endpoint.endpoint_id, request.call_id, request.conference_id,
                               request.call_reference)
        if call is not None and endpoint.endpoint_id not in call.endpoint_ids():
            self.stats["spoofed"] += 1
            self.bus.publish(ev.DisengageRejected(source, request.endpoint_id,
                                                  request.call_reference, "requestToDropOther",
                                                  request.call_id))
            return DisengageRefused("requestToDropOther")
        if call is not None:
            self.end_call(call, request.reason)
        self.bus.publish(ev.DisengageConfirmed(source, endpoint.endpoint_id,
                                               request.call_reference, request.reason,
                                               request.call_id))
        return Disengaged(call)

    def change_bandwidth(self, request: BandwidthRequest) -> BandwidthGranted | BandwidthRefused:
        """An endpoint asks for another bandwidth for one of its calls (BRQ)."""
        source, wanted = request.source, request.bandwidth
        endpoint = self.registry.get(request.endpoint_id)
        if endpoint is None or not endpoint.is_from(source):
            reason = "notBound" if endpoint is None else "invalidPermission"
            self.bus.publish(ev.BandwidthRejected(source, request.endpoint_id, wanted, reason))
            return BandwidthRefused(reason)
        self.registry.touch(endpoint, self.clock.seconds())
        call = self.calls.find(endpoint.endpoint_id, request.call_id, request.conference_id,
                               request.call_reference)
        if call is None:
            self.bus.publish(ev.BandwidthRejected(source, request.endpoint_id, wanted,
                                                  "invalidConferenceID"))
            return BandwidthRefused("invalidConferenceID")
        if endpoint.endpoint_id not in call.endpoint_ids():
            self.stats["spoofed"] += 1
            self.bus.publish(ev.BandwidthRejected(source, request.endpoint_id, wanted,
                                                  "invalidPermission"))
            return BandwidthRefused("invalidPermission")
        granted = self.bandwidth.change(call.bandwidth, wanted)
        if granted != wanted:
            allowed = call.bandwidth + (self.bandwidth.available or 0)
            self.bus.publish(ev.BandwidthRejected(source, request.endpoint_id, wanted,
                                                  "insufficientResources"))
            return BandwidthRefused("insufficientResources", allowed)
        call.bandwidth = granted
        self.bus.publish(ev.BandwidthConfirmed(source, request.endpoint_id, granted))
        return BandwidthGranted(granted)


@dataclass(frozen=True, slots=True)
class SetupRequest:
    """What admission needs from a Setup."""

    call_id: bytes | None
    conference_id: bytes | None
    call_reference: int
    source: Address                       # the TCP peer that sent it
    destination: tuple[Alias, ...] = ()   # destinationAddress, else the called number
    dest_signal_address: Address | None = None
    source_info: tuple[Alias, ...] = ()
    source_signal_address: Address | None = None   # sourceCallSignalAddress
    local: Address | None = None          # where the connection came in (our address)


@dataclass(frozen=True, slots=True)
class SetupAdmitted:
    call: Call
    destination: Address                  # where the callee's leg is opened
    destination_info: tuple[Alias, ...]   # what the forwarded Setup asks for


@dataclass(frozen=True, slots=True)
class SetupRejected:
    cause: int
    reason: str                           # H.225.0 ReleaseCompleteReason


class SetupHeld(NamedTuple):
    """A routing policy asks someone else first (a virtual queue's
    RouteRequest); ``decision`` fires with :class:`SetupAdmitted` or
    :class:`SetupRejected`."""

    decision: Deferred


SetupDecision = SetupAdmitted | SetupRejected | SetupHeld


@dataclass(frozen=True, slots=True)
class SetupSettings:
    """What Setup admission needs of ``[RoutedMode]``."""

    accept_unregistered: bool = False     # AcceptUnregisteredCalls
    accept_neighbors_calls: bool = True   # AcceptNeighborsCalls: Setups from neighbour zones


#: An admission refusal (ARJ reason) as the ReleaseComplete that tells the
#: caller: H.225.0 ReleaseCompleteReason and its Q.850 cause (H.225.0 Table 5).
_REFUSAL_RELEASE = {
    "calledPartyNotRegistered": ("calledPartyNotRegistered", q931.CAUSE_SUBSCRIBER_ABSENT),
    "resourceUnavailable": ("gatekeeperResources", q931.CAUSE_RESOURCES_UNAVAILABLE),
    "securityDenial": ("securityDenied", q931.CAUSE_NORMAL_UNSPECIFIED),
    "invalidPermission": ("noPermission", q931.CAUSE_PROTOCOL_ERROR),
    "requestDenied": ("destinationRejection", q931.CAUSE_CALL_REJECTED),
    "incompleteAddress": ("badFormatAddress", q931.CAUSE_INVALID_NUMBER_FORMAT),
    "aliasesInconsistent": ("badFormatAddress", q931.CAUSE_INVALID_NUMBER_FORMAT),
    "exceedsCallCapacity": ("gatewayResources", q931.CAUSE_SWITCHING_EQUIPMENT_CONGESTION),
    "callerNotRegistered": ("callerNotRegistered", q931.CAUSE_NORMAL_UNSPECIFIED),
}


def refusal_release(reason: str) -> SetupRejected:
    """The ReleaseComplete for a call admission refused with ``reason``."""
    name, cause = _REFUSAL_RELEASE.get(reason, ("undefinedReason", q931.CAUSE_NORMAL_UNSPECIFIED))
    return SetupRejected(cause, name)


class SetupAdmission:
    """Decides on Setups and follows routed calls until they end.

    A Setup for a call admitted by ARQ is matched to it by CallIdentifier.
    With ``AcceptUnregisteredCalls`` a Setup with no such call goes through
    :meth:`Admission.admit_unregistered`: the routing chain (``OnSetup``
    chains and virtual queues included) on a request with no caller
    endpoint.  A Setup with no such call from a neighbour gatekeeper's IP
    (``is_neighbour``) or from the parent gatekeeper's (``is_parent``) is a
    call from another zone: with ``AcceptNeighborsCalls`` (the default) it
    is routed the same way, and counts as "From Neighbor" / "From Parent"
    in the call statistics.
    """

    def __init__(self, admission: Admission, settings: SetupSettings = SetupSettings(),
                 is_neighbour: Callable[[str], bool] | None = None,
                 is_parent: Callable[[str], bool] | None = None) -> None:
        self.admission = admission
        self.is_neighbour = is_neighbour or (lambda ip: False)
        self.is_parent = is_parent or (lambda ip: False)
        self.calls = admission.calls
        self.registry = admission.registry
        self.bus = admission.bus
        self.settings = settings
        self._relayed: set[int] = set()      # call numbers with a signalling relay

    def reconfigure(self, settings: SetupSettings) -> None:
        self.settings = settings

    def _now(self) -> float:
        return self.admission.clock.seconds()

    def on_setup(self, request: SetupRequest) -> SetupDecision:
        call = self.calls.find_call_id(request.call_id)
        if call is None:
            zone = self._zone(request.source[0])
            if zone and self.settings.accept_neighbors_calls:
                self.admission.stats[f"Setup from {zone}"] += 1
                return self._unregistered(request, zone=zone)
            if self.settings.accept_unregistered:
                return self._unregistered(request)
            return SetupRejected(q931.CAUSE_NORMAL_UNSPECIFIED, "callerNotRegistered")
        if call.number in self._relayed:
            return SetupRejected(q931.CAUSE_CALL_REJECTED, "destinationRejection")
        if not self._from_caller(call, request.source):
            return SetupRejected(q931.CAUSE_NORMAL_UNSPECIFIED, "securityDenied")
        destination = call.callee_signal_address
        if destination is None:
            return SetupRejected(q931.CAUSE_SUBSCRIBER_ABSENT, "calledPartyNotRegistered")
        self._relayed.add(call.number)
        call.caller_crv = request.call_reference
        return SetupAdmitted(call, destination, call.destination_info)

    # -- callers that are not registered -----------------------------------

    def originate(self, request: SetupRequest, origin: str) -> SetupDecision:
        """A call the gatekeeper places itself (``origin`` names why, e.g.
        ``MakeCall``): routed and admitted as a Setup from a caller that is
        not registered, whatever AcceptUnregisteredCalls says."""
        return self._unregistered(request, origin)

    def _zone(self, ip: str) -> str:
        """``"neighbor"`` or ``"parent"`` when ``ip`` is another zone's
        gatekeeper, else ``""``."""
        if self.is_neighbour(ip):
            return "neighbor"
        if self.is_parent(ip):
            return "parent"
        return ""

    def _unregistered(self, request: SetupRequest, origin: str = "Setup",
                      zone: str = "") -> SetupDecision:
        own = {self.admission.settings.signal_address, request.local}
        dest = request.dest_signal_address
        if dest in own:
            dest = None                    # addressed to us: route on the aliases
        signal = request.source_signal_address
        if signal is None or signal[0] != request.source[0]:
            signal = request.source        # only what the connection proves
        decision = self.admission.admit_unregistered(AdmissionRequest(
            source=request.source, endpoint_id=None, destination_info=request.destination,
            dest_signal_address=dest, source_info=request.source_info,
            src_signal_address=signal, call_reference=request.call_reference,
            conference_id=request.conference_id or bytes(16),
            call_id=request.call_id or new_guid(), origin=origin))
        if isinstance(decision, AdmissionHeld):
            if decision.decision is None:
                return SetupRejected(q931.CAUSE_CALL_REJECTED, "destinationRejection")
            return SetupHeld(decision.decision.addCallback(self._decided, request, zone))
        return self._decided(decision, request, zone)

    def _decided(self, decision: Admitted | AdmissionRefused | None,
                 request: SetupRequest, zone: str = "") -> SetupAdmitted | SetupRejected:
        if isinstance(decision, AdmissionRefused):
            return refusal_release(decision.reason)
        if decision is None:
            return SetupRejected(q931.CAUSE_NORMAL_UNSPECIFIED, "undefinedReason")
        call = decision.call
        if call.callee_signal_address is None:       # cannot happen: confirm refuses it
            self.admission.end_call(call, str(q931.CAUSE_NO_ROUTE_TO_DESTINATION))
            return SetupRejected(q931.CAUSE_NO_ROUTE_TO_DESTINATION, "unreachableDestination")
        self._relayed.add(call.number)
        if zone:
            self.calls.from_zone(call, zone)
        return SetupAdmitted(call, call.callee_signal_address, call.destination_info)

    def _from_caller(self, call: Call, source: Address) -> bool:
        hosts = set()
        if call.caller_signal_address is not None:
            hosts.add(call.caller_signal_address[0])
        caller = self.registry.get(call.caller_endpoint_id)
        if caller is not None:
            hosts.update(a[0] for a in (caller.ras_address, caller.source_address, *caller.signal_addresses) if a)
        return source[0] in hosts

    def is_live(self, call: Call) -> bool:
        return self.calls.get(call.number) is call

    def alerting(self, call: Call) -> None:
        self.bus.publish(self.calls.alerting_event(call, self._now()))

    def connected(self, call: Call) -> None:
        if call.connect_time is not None or not self.is_live(call):
            return
        self.calls.mark_connected(call, self._now())
        self.bus.publish(self.calls.connected_event(call))

    def released(self, call: Call, cause: int) -> None:
        """The relay saw the call end (ReleaseComplete, a lost leg, a timer)."""
        self._relayed.discard(call.number)
        if self.is_live(call):
            self.admission.end_call(call, str(cause))

    def forget(self, call: Call) -> None:
        """The call ended elsewhere (DRQ, status command): the relay is gone."""
        self._relayed.discard(call.number)
