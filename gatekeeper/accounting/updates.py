"""The periodic ``update`` accounting events of connected calls.

GnuGk's ``[CallTable] AcctUpdateInterval``: while a call is connected, an
accounting update is logged every ``interval`` seconds, counted from its
connect time (at connect + interval, connect + 2 * interval, ...).  The
timer here ticks once a second on the injected clock, asks the call table
(read-only) for the connected calls whose next multiple of the interval fell
in the time since the previous tick, and publishes a
:class:`~gatekeeper.events.CallUpdate` for each on the bus.

Nothing is kept per call: a tick compares the number of whole intervals
connected now and at the previous tick, so a call that ended needs no
clean-up, and a timer started by a reload goes on with the same rhythm.
If the reactor stalls over several intervals, one update is sent for them.
"""

from __future__ import annotations

import math
from typing import Callable

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

from gatekeeper import events as ev

#: The call table's ``connected_snapshots``: a filter (call number, connect
#: time) -> bool, or None for every connected call.
ConnectedCalls = Callable[[Callable[[int, float], bool] | None], list[ev.CallSnapshot]]

#: Seconds between two looks at the call table.
TICK = 1.0


class UpdateTimer:
    """Publishes the ``update`` events while it runs (from construction to :meth:`stop`)."""

    def __init__(self, clock: IReactorTime, interval: float, connected_calls: ConnectedCalls,
                 publish: Callable[[object], None]) -> None:
        if interval <= 0:
            raise ValueError(f"update interval must be positive: {interval!r}")
        self.clock = clock
        self.interval = interval
        self.connected_calls = connected_calls
        self.publish = publish
        self.published = 0
        self._previous = clock.seconds()
        self._loop = LoopingCall(self._tick)
        self._loop.clock = clock
        self._loop.start(TICK, now=False)

    @property
    def running(self) -> bool:
        return self._loop.running

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def _intervals(self, connect_time: float, at: float) -> int:
        """Whole intervals connected at time ``at`` (negative before connect)."""
        return math.floor((at - connect_time) / self.interval)

    def _tick(self) -> None:
        now = self.clock.seconds()
        previous, self._previous = self._previous, now

        def due(number: int, connect_time: float) -> bool:
            crossed = self._intervals(connect_time, now)
            return crossed >= 1 and crossed > self._intervals(connect_time, previous)

        for call in self.connected_calls(due):
            self.published += 1
            self.publish(ev.CallUpdate(call, now))
