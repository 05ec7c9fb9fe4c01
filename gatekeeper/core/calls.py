"""Calls admitted by the gatekeeper, and the call detail record of each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, NamedTuple

from gatekeeper.events import CallAlerting, CallConnected, CallDetailRecord, CallSnapshot
from gatekeeper.h225.ras import Address, Alias


@dataclass(slots=True, eq=False)
class Call:
    """One call from admission of its first side until it ends."""

    number: int
    call_id: bytes
    conference_id: bytes
    caller_endpoint_id: str
    caller_signal_address: Address | None
    caller_crv: int
    callee_endpoint_id: str
    callee_signal_address: Address | None
    destination_info: tuple[Alias, ...]
    source_info: tuple[Alias, ...]
    bandwidth: int
    admission_time: float
    callee_crv: int | None = None
    connect_time: float | None = None
    answered: bool = False
    routed: bool = False
    alerting_time: float | None = None
    #: "neighbor" or "parent" for a call whose Setup came from another zone's
    #: gatekeeper (routed mode, no ARQ here), else "".
    zone: str = ""

    @property
    def connected(self) -> bool:
        return self.connect_time is not None

    def endpoint_ids(self) -> tuple[str, ...]:
        return tuple(e for e in (self.caller_endpoint_id, self.callee_endpoint_id) if e)

    def crv_for(self, endpoint_id: str) -> int | None:
        if endpoint_id == self.caller_endpoint_id:
            return self.caller_crv
        if endpoint_id == self.callee_endpoint_id:
            return self.callee_crv
        return None


class EndpointCalls(NamedTuple):
    """An endpoint's call counters, as ``PrintAllRegistrationsVerbose``
    shows them: ``C(active/connected/total)``."""

    active: int                 # its calls in progress
    connected: int              # its calls that were answered, ever
    total: int                  # its calls admitted, ever


NO_CALLS = EndpointCalls(0, 0, 0)


class CallTable:
    """The calls in progress, indexed by number, call identifier and endpoint.

    It is the one owner of the per-endpoint call counters: an endpoint's
    active calls are its calls in the table; its connected and total calls
    are counted here when a call that has it as a party connects, and when
    it becomes a party (admitted, or joined by its answering ARQ).  The
    cumulative counts live as long as the registration:
    :meth:`forget_endpoint` drops them when it ends.
    """

    def __init__(self) -> None:
        self._by_number: dict[int, Call] = {}
        self._by_call_id: dict[bytes, Call] = {}
        self._by_endpoint: dict[str, set[int]] = {}
        #: endpoint id -> [total, connected] (cumulative, per registration)
        self._tallies: dict[str, list[int]] = {}
        self._next_number = 0
        self.total = 0
        self.total_connected = 0
        self.total_routed = 0               # calls signalled through the gatekeeper
        #: calls that came from a neighbour's / the parent's zone, ever
        self.total_from = {"neighbor": 0, "parent": 0}
        self.peak = 0                       # the most calls at once ...
        self.peak_time: float | None = None  # ... and when (None: since start)

    def __len__(self) -> int:
        return len(self._by_number)

    def __iter__(self) -> Iterator[Call]:
        return iter(sorted(self._by_number.values(), key=lambda c: c.number))

    def get(self, number: int) -> Call | None:
        return self._by_number.get(number)

    def find_call_id(self, call_id: bytes | None) -> Call | None:
        return self._by_call_id.get(call_id) if call_id else None

    def find(self, endpoint_id: str, call_id: bytes | None, conference_id: bytes | None,
             crv: int | None) -> Call | None:
        """The call an endpoint's DRQ/BRQ names: by call identifier when it
        has one, else by conference identifier and call reference."""
        call = self.find_call_id(call_id)
        if call is not None:
            return call
        for number in self._by_endpoint.get(endpoint_id, ()):
            candidate = self._by_number[number]
            if candidate.conference_id == conference_id and candidate.crv_for(endpoint_id) == crv:
                return candidate
        return None

    def of_endpoint(self, endpoint_id: str) -> list[Call]:
        return [self._by_number[n] for n in sorted(self._by_endpoint.get(endpoint_id, ()))]

    def active_count(self, endpoint_id: str) -> int:
        """How many calls in progress have this endpoint as a party."""
        numbers = self._by_endpoint.get(endpoint_id)
        return len(numbers) if numbers is not None else 0

    def counts(self, endpoint_id: str) -> EndpointCalls:
        """The endpoint's counters: active, connected (ever), total (ever)."""
        tally = self._tallies.get(endpoint_id)
        if tally is None:
            return EndpointCalls(self.active_count(endpoint_id), 0, 0)
        return EndpointCalls(self.active_count(endpoint_id), tally[1], tally[0])

    def forget_endpoint(self, endpoint_id: str) -> EndpointCalls:
        """The registration ended: its counters as they stand, and its
        cumulative counts dropped (its calls still in progress stay in the
        table until they end, and count for it no more)."""
        counts = self.counts(endpoint_id)
        self._tallies.pop(endpoint_id, None)
        return counts

    def _party(self, endpoint_id: str, number: int) -> None:
        """``endpoint_id`` becomes a party of call ``number``."""
        numbers = self._by_endpoint.get(endpoint_id)
        if numbers is None:
            self._by_endpoint[endpoint_id] = {number}
        elif number in numbers:
            return
        else:
            numbers.add(number)
        tally = self._tallies.get(endpoint_id)
        if tally is None:
            self._tallies[endpoint_id] = [1, 0]
        else:
            tally[0] += 1

    def active_bandwidth(self) -> int:
        return sum(call.bandwidth for call in self._by_number.values())

    def add(self, call: Call) -> Call:
        """Keep a new call (its admission time counts for the peak)."""
        number = call.number
        self._by_number[number] = call
        self._by_call_id[call.call_id] = call
        if call.caller_endpoint_id:
            self._party(call.caller_endpoint_id, number)
        if call.callee_endpoint_id:
            self._party(call.callee_endpoint_id, number)
        self.total += 1
        if call.routed:
            self.total_routed += 1
        if len(self._by_number) > self.peak:
            self.peak = len(self._by_number)
            self.peak_time = call.admission_time
        return call

    def next_number(self) -> int:
        self._next_number += 1
        return self._next_number

    def join(self, call: Call, endpoint_id: str, signal_address: Address | None, crv: int) -> None:
        """The called side's ARQ (answerCall) joins the call."""
        call.callee_endpoint_id = endpoint_id
        call.callee_crv = crv
        if signal_address is not None:
            call.callee_signal_address = signal_address
        call.answered = True
        self._party(endpoint_id, call.number)

    def from_zone(self, call: Call, zone: str) -> None:
        """The call came from another zone (``"neighbor"`` or ``"parent"``):
        it counts as "From Neighbor" / "From Parent" from now on."""
        if call.zone or zone not in self.total_from:
            return
        call.zone = zone
        self.total_from[zone] += 1

    def reset_counters(self) -> None:
        """``ResetCallCounters``: totals to zero, the peak to the calls up now
        (the endpoints' own counters are not reset, as in GnuGk)."""
        self.total = 0
        self.total_connected = 0
        self.total_from = {"neighbor": 0, "parent": 0}
        self.peak, self.peak_time = len(self._by_number), None

    def mark_connected(self, call: Call, now: float) -> None:
        if call.connect_time is None:
            call.connect_time = now
            self.total_connected += 1
            caller, callee = call.caller_endpoint_id, call.callee_endpoint_id
            for endpoint_id in (caller, callee) if callee != caller else (caller,):
                tally = self._tallies.get(endpoint_id) if endpoint_id else None
                if tally is not None:     # None: no such party, or its registration ended
                    tally[1] += 1

    def alerting_event(self, call: Call, now: float | None = None) -> CallAlerting:
        """The event published when a routed call's callee rings; given
        ``now``, the first Alerting's time is kept with the call."""
        if now is not None and call.alerting_time is None:
            call.alerting_time = now
        return CallAlerting(call.number, call.call_id, self.snapshot(call))

    def connected_event(self, call: Call) -> CallConnected:
        """The event published when a routed call is answered."""
        return CallConnected(call.number, call.call_id, call.connect_time, self.snapshot(call))

    @staticmethod
    def snapshot(call: Call) -> CallSnapshot:
        """A frozen copy of the call's parameters (for events and accounting)."""
        return CallSnapshot(
            call_number=call.number,
            call_id=call.call_id,
            conference_id=call.conference_id,
            setup_time=call.admission_time,
            connect_time=call.connect_time,
            caller_signal_address=call.caller_signal_address,
            caller_endpoint_id=call.caller_endpoint_id,
            callee_signal_address=call.callee_signal_address,
            callee_endpoint_id=call.callee_endpoint_id,
            destination_info=call.destination_info,
            source_info=call.source_info,
            bandwidth=call.bandwidth,
            routed=call.routed,
            alerting_time=call.alerting_time,
        )

    def connected_snapshots(self, due: Callable[[int, float, float], bool] | None = None
                            ) -> list[CallSnapshot]:
        """Read-only: snapshots of the connected calls, in call-number order;
        with ``due``, only of those for which ``due(number, setup_time,
        connect_time)`` is true (so that a periodic reader copies only what
        it will use)."""
        chosen = [call for call in self._by_number.values()
                  if call.connect_time is not None
                  and (due is None or due(call.number, call.admission_time, call.connect_time))]
        chosen.sort(key=lambda call: call.number)
        return [self.snapshot(call) for call in chosen]

    def end(self, call: Call, now: float, gatekeeper_name: str, reason: str = "") -> CallDetailRecord:
        """Remove the call and return its detail record."""
        self._by_number.pop(call.number, None)
        if self._by_call_id.get(call.call_id) is call:
            del self._by_call_id[call.call_id]
        for endpoint_id in call.endpoint_ids():
            numbers = self._by_endpoint.get(endpoint_id)
            if numbers is not None:
                numbers.discard(call.number)
                if not numbers:
                    del self._by_endpoint[endpoint_id]
        return CallDetailRecord(
            call_number=call.number,
            call_id=call.call_id,
            conference_id=call.conference_id,
            setup_time=call.admission_time,
            connect_time=call.connect_time,
            disconnect_time=now,
            caller_signal_address=call.caller_signal_address,
            caller_endpoint_id=call.caller_endpoint_id,
            callee_signal_address=call.callee_signal_address,
            callee_endpoint_id=call.callee_endpoint_id,
            destination_info=call.destination_info,
            source_info=call.source_info,
            gatekeeper_name=gatekeeper_name,
            bandwidth=call.bandwidth,
            release_reason=reason,
            caller_ip=call.caller_signal_address[0] if call.caller_signal_address else "",
            callee_ip=call.callee_signal_address[0] if call.callee_signal_address else "",
        )
