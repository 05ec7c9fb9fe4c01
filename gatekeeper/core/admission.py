"""Admission of a call on its Setup (gatekeeper-routed mode).

The relay hands :class:`SetupAdmission` a :class:`SetupRequest` read from a
caller's Setup and gets a decision back: :class:`SetupAdmitted` (the call and
where its other leg goes) or :class:`SetupRejected` (the Q.850 cause and the
H.225.0 reason of the ReleaseComplete).  A Setup for a call admitted by ARQ
is matched to that call by its CallIdentifier and checked to come from the
caller's host.  The relay then tells it how the call goes on (alerting,
connected, released), and the call table, the endpoints' counters and the
event bus follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from gatekeeper.core.calls import Call, CallTable
from gatekeeper.core.registry import Registry
from gatekeeper.h225 import q931
from gatekeeper.h225.ras import Address, Alias
from gatekeeper.interfaces import IEventBus


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


@dataclass(frozen=True, slots=True)
class SetupAdmitted:
    call: Call
    destination: Address                  # where the callee's leg is opened
    destination_info: tuple[Alias, ...]   # what the forwarded Setup asks for


@dataclass(frozen=True, slots=True)
class SetupRejected:
    cause: int
    reason: str                           # H.225.0 ReleaseCompleteReason


class SetupAdmission:
    """Decides on Setups and follows routed calls until they end."""

    def __init__(self, calls: CallTable, registry: Registry, bus: IEventBus,
                 end_call: Callable[[Call, str], object], now: Callable[[], float]) -> None:
        self.calls = calls
        self.registry = registry
        self.bus = bus
        self._end_call = end_call
        self._now = now
        self._relayed: set[int] = set()      # call numbers with a signalling relay

    def on_setup(self, request: SetupRequest) -> SetupAdmitted | SetupRejected:
        call = self.calls.find_call_id(request.call_id)
        if call is None:
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
        for endpoint_id in call.endpoint_ids():
            endpoint = self.registry.get(endpoint_id)
            if endpoint is not None:
                endpoint.connected_calls += 1
        self.bus.publish(self.calls.connected_event(call))

    def released(self, call: Call, cause: int) -> None:
        """The relay saw the call end (ReleaseComplete, a lost leg, a timer)."""
        self._relayed.discard(call.number)
        if self.is_live(call):
            self._end_call(call, str(cause))

    def forget(self, call: Call) -> None:
        """The call ended elsewhere (DRQ, status command): the relay is gone."""
        self._relayed.discard(call.number)
