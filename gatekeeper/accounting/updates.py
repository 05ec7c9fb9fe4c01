"""The periodic ``update`` accounting events of connected calls.

GnuGk's ``[CallTable] AcctUpdateInterval``: a connected call gets an
accounting update as soon as ``interval`` seconds have passed since its last
one, the first counted from the call's setup (admission).  So a call
connected early gets its first update ``interval`` seconds after setup, one
connected later than that gets one at once, and then every ``interval``
seconds.  The timer here looks at the call table (read-only) once a second
on the injected clock, as GnuGk's call table check does, and publishes a
:class:`~gatekeeper.events.CallUpdate` for each call due.

The time of each call's last update is kept here, rebuilt at every tick
from the calls still connected (an ended call leaves no trace).  A timer
started by a reload does not know the old one's times: the calls connected
at that moment get their next update ``interval`` seconds after it.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

from gatekeeper import events as ev

#: The call table's ``connected_snapshots``: a filter (call number, setup
#: time, connect time) -> bool, or None for every connected call.
CallFilter = Callable[[int, float, float], bool]
ConnectedCalls = Callable[[CallFilter | None], list[ev.CallSnapshot]]

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
        start = clock.seconds()
        self._last: dict[int, float] = {}       # call number -> its last update

        def already_connected(number: int, setup_time: float, connect_time: float) -> bool:
            self._last[number] = start
            return False

        connected_calls(already_connected)
        self._loop = LoopingCall(self._tick)
        self._loop.clock = clock
        self._loop.start(TICK, now=False)

    @property
    def running(self) -> bool:
        return self._loop.running

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def _tick(self) -> None:
        now = self.clock.seconds()
        last, self._last = self._last, {}

        def due(number: int, setup_time: float, connect_time: float) -> bool:
            previous = last.get(number, setup_time)
            if now - previous >= self.interval:
                self._last[number] = now
                return True
            self._last[number] = previous
            return False

        for call in self.connected_calls(due):
            self.published += 1
            self.publish(ev.CallUpdate(call, now))
