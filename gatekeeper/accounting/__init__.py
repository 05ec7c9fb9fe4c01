"""Accounting: the modules chosen by ``[Gatekeeper::Acct]``, as one bus observer.

:class:`Accounting` is subscribed to the event bus.  It turns the events into
GnuGk's accounting events and hands each to the modules that log it:

- ``start``: the caller's :class:`~gatekeeper.events.AdmissionConfirmed`
  (the callee's answering ARQ does not start a second call);
- ``alert``: a :class:`~gatekeeper.events.CallAlerting` (routed mode);
- ``connect``: a :class:`~gatekeeper.events.CallConnected` (routed mode);
- ``update``: a :class:`~gatekeeper.events.CallUpdate`, which this object
  publishes itself for each connected call every ``[CallTable]
  AcctUpdateInterval`` seconds (see :class:`~gatekeeper.accounting.updates.UpdateTimer`);
- ``stop``: a :class:`~gatekeeper.events.CallDetailRecord` (the call ended);
- ``register``: an :class:`~gatekeeper.events.EndpointRegistered` that is a
  new registration (not a keepalive, not a re-registration);
- ``unregister``: every :class:`~gatekeeper.events.EndpointUnregistered`;
- ``on`` / ``off``: :meth:`Accounting.on` and :meth:`Accounting.shutdown`,
  called by the service when the gatekeeper starts and stops.

A module gets an event only if its ``[Gatekeeper::Acct]`` line lists it (no
list: every event it supports).  A module that fails is logged and the other
modules still get the event; the control flags decide, by GnuGk's rules,
whether the event counts as logged (``gatekeeper.accounting.outcome``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from gatekeeper import events as ev
from gatekeeper.accounting.file import FileAcct
from gatekeeper.accounting.http import HttpAcct
from gatekeeper.accounting.outcome import FAIL, NEXT, OK, verdict
from gatekeeper.accounting.settings import AcctSettings, parse_acct
from gatekeeper.accounting.status import TRACE_LEVEL as STATUS_TRACE_LEVEL
from gatekeeper.accounting.status import StatusAcct
from gatekeeper.accounting.updates import ConnectedCalls, UpdateTimer
from gatekeeper.ratelimit import RateLimitedLog

__all__ = ["Accounting", "AcctSettings", "STATUS_TRACE_LEVEL", "parse_acct"]

#: How long service stop waits for HttpAcct to deliver what is queued
#: (the ``off`` event, the CDRs of the calls ended by the stop), at most.
SHUTDOWN_DRAIN = 5.0

#: The attribute that holds each module.
_KEYS = {"FileAcct": "file", "StatusAcct": "status", "HttpAcct": "http"}


class Accounting:
    """The bus observer that runs the enabled accounting modules.

    ``connected_calls`` (the call table's read-only ``connected_snapshots``)
    and ``publish`` (the bus) are needed only for the ``update`` events;
    without them, or with ``AcctUpdateInterval`` 0, there are none.
    """

    log = Logger()

    def __init__(self, settings: AcctSettings, clock: IReactorTime,
                 emit_status: Callable[[str], None], http_client: Any = None,
                 gatekeeper_name: str = "", connected_calls: ConnectedCalls | None = None,
                 publish: Callable[[object], None] | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.file = FileAcct(settings.file, clock) if settings.module("FileAcct") else None
        self.status = (StatusAcct(settings.status, emit_status, clock, gatekeeper_name)
                       if settings.module("StatusAcct") else None)
        self.http = None
        if settings.module("HttpAcct"):
            self.http = HttpAcct(settings.http, http_client or _default_client(clock), clock,
                                 gatekeeper_name)
        self.unlogged = 0          # events whose verdict (control flags) was failure
        self._trouble = RateLimitedLog(self.log, clock)
        self.updates: UpdateTimer | None = None
        if (settings.update_interval and connected_calls is not None and publish is not None
                and self._wanted("update")):
            self.updates = UpdateTimer(clock, settings.update_interval, connected_calls, publish)
        self._dispatch: dict[type, Callable[[Any], None]] = {
            ev.CallDetailRecord: self._stop,
            ev.AdmissionConfirmed: self._start,
            ev.CallAlerting: self._alert,
            ev.CallConnected: self._connect,
            ev.CallUpdate: self._update,
            ev.EndpointRegistered: self._register,
            ev.EndpointUnregistered: self._unregister,
        }

    def __call__(self, event: object) -> None:
        handler = self._dispatch.get(type(event))
        if handler is not None:
            handler(event)

    # -- gatekeeper on / off ---------------------------------------------------------

    def on(self) -> None:
        """The gatekeeper started (GnuGk's ``on`` event)."""
        now = self.clock.seconds()
        self._run("on", None, http=lambda m: m.on(now))

    def shutdown(self) -> Deferred:
        """The gatekeeper stops: the ``off`` event, then :meth:`close` once
        HttpAcct has delivered what it holds or after ``SHUTDOWN_DRAIN``
        seconds.  The Deferred fires when closed."""
        now = self.clock.seconds()
        self._run("off", None, http=lambda m: m.off(now))
        if self.updates is not None:
            self.updates.stop()
        waiting = self.http.when_empty(SHUTDOWN_DRAIN) if self.http is not None else succeed(True)
        waiting.addCallback(lambda _: self.close())
        return waiting

    def close(self) -> None:
        """Stop timers and close files (service stop, reload)."""
        if self.updates is not None:
            self.updates.stop()
        for module in (self.file, self.http):
            if module is not None:
                module.close()

    # -- counters ----------------------------------------------------------------

    @property
    def written(self) -> int:
        """CDR lines written to the file and HTTP requests delivered."""
        return _count(self.file, "written") + _count(self.http, "sent")

    @property
    def failed(self) -> int:
        """CDR lines not written and HTTP requests given up on."""
        return _count(self.file, "failed") + _count(self.http, "failed")

    @property
    def queued(self) -> int:
        """HTTP requests waiting to be delivered."""
        return _count(self.http, "queued")

    @property
    def dropped(self) -> int:
        """HTTP requests refused because the queue was full."""
        return _count(self.http, "dropped")

    def counters(self) -> dict[str, int]:
        """Every counter, per module, for the ``statistics`` command."""
        return {
            "written": self.written, "failed": self.failed, "queued": self.queued,
            "dropped": self.dropped, "unlogged_events": self.unlogged,
            "file_written": _count(self.file, "written"),
            "file_failed": _count(self.file, "failed"),
            "file_rotations": _count(self.file, "rotations"),
            "status_sent": _count(self.status, "sent"),
            "http_sent": _count(self.http, "sent"),
            "http_failed": _count(self.http, "failed"),
            "http_retries": _count(self.http, "retries"),
            "updates_published": _count(self.updates, "published"),
        }

    # -- events ------------------------------------------------------------------

    def _stop(self, record: ev.CallDetailRecord) -> None:
        self._run("stop", record.call_number, file=lambda m: m.write_cdr(record),
                  status=lambda m: m.stop(record), http=lambda m: m.stop(record))

    def _start(self, event: ev.AdmissionConfirmed) -> None:
        if not event.answer_call:
            self._run("start", event.call_number, status=lambda m: m.start(event),
                      http=lambda m: m.start(event))

    def _alert(self, event: ev.CallAlerting) -> None:
        if event.call is None:
            return
        now = self.clock.seconds()
        call = event.call
        if call.alerting_time is None:      # delivered as it happens: now is when it rang
            call = dataclasses.replace(call, alerting_time=now)
        self._progress("alert", call, now)

    def _connect(self, event: ev.CallConnected) -> None:
        if event.call is not None:
            self._progress("connect", event.call, event.connect_time)

    def _update(self, event: ev.CallUpdate) -> None:
        self._progress("update", event.call, event.time)

    def _progress(self, name: str, call: ev.CallSnapshot, now: float) -> None:
        self._run(name, call.call_number, status=lambda m: getattr(m, name)(call, now),
                  http=lambda m: getattr(m, name)(call, now))

    def _register(self, event: ev.EndpointRegistered) -> None:
        if event.new and not event.keepalive:
            self._run("register", None, status=lambda m: m.register(event),
                      http=lambda m: m.register(event))

    def _unregister(self, event: ev.EndpointUnregistered) -> None:
        self._run("unregister", None, status=lambda m: m.unregister(event),
                  http=lambda m: m.unregister(event))

    # -- running the modules -------------------------------------------------------

    def _wanted(self, name: str) -> bool:
        """Whether any module listed in ``[Gatekeeper::Acct]`` logs ``name``."""
        return any(entry.handles(name) for entry in self.settings.modules)

    def _run(self, name: str, call_number: int | None,
             **actions: Callable[[Any], bool | None]) -> bool:
        """Give the event to each module, in ``[Gatekeeper::Acct]`` order, whose
        line enables ``name``; a module that raises does not stop the others.
        True if the event counts as logged (GnuGk's control-flag rules)."""
        results: list[tuple[str, str, str]] = []      # (module, control, result)
        for entry in self.settings.modules:
            key = _KEYS.get(entry.name)
            module = getattr(self, key) if key is not None else None
            action = actions.get(key) if key is not None else None
            if module is None or action is None or not entry.handles(name):
                continue
            try:
                answer = action(module)
            except Exception:
                self.log.failure("{module} failed on the {event} event", module=entry.name,
                                 event=name)
                answer = False
            result = OK if answer else NEXT if answer is None else FAIL
            results.append((entry.name, entry.control, result))
        logged = verdict((control, result) for _, control, result in results)
        if not logged:
            self.unlogged += 1
            self._trouble("unlogged", "accounting: the {event} event{of_call} does not count "
                          "as logged by the [Gatekeeper::Acct] control flags ({results})",
                          event=name,
                          of_call="" if call_number is None else f" of call {call_number}",
                          results=", ".join(f"{module} {control}: {result}"
                                            for module, control, result in results))
        return logged


def _count(module: object | None, counter: str) -> int:
    return getattr(module, counter) if module is not None else 0


def _default_client(reactor: Any) -> Any:
    """treq on the given reactor, with a persistent connection pool."""
    from treq.client import HTTPClient
    from twisted.web.client import Agent, HTTPConnectionPool

    return HTTPClient(Agent(reactor, pool=HTTPConnectionPool(reactor)))
