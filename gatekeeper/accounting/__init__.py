"""Accounting: the modules chosen by ``[Gatekeeper::Acct]``, as one bus observer.

:class:`Accounting` is subscribed to the event bus.  It turns the events into
GnuGk's accounting events and hands each to the modules that log it:

- ``stop``: a :class:`~gatekeeper.events.CallDetailRecord` (the call ended);
- ``start``: the caller's :class:`~gatekeeper.events.AdmissionConfirmed`
  (the callee's answering ARQ does not start a second call);
- ``register``: an :class:`~gatekeeper.events.EndpointRegistered` that is a
  new registration (not a keepalive, not a re-registration);
- ``unregister``: every :class:`~gatekeeper.events.EndpointUnregistered`.

A module that fails is logged and the other modules still get the event.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from gatekeeper import events as ev
from gatekeeper.accounting.file import FileAcct
from gatekeeper.accounting.http import HttpAcct
from gatekeeper.accounting.settings import AcctSettings, parse_acct
from gatekeeper.accounting.status import TRACE_LEVEL as STATUS_TRACE_LEVEL
from gatekeeper.accounting.status import StatusAcct

__all__ = ["Accounting", "AcctSettings", "STATUS_TRACE_LEVEL", "parse_acct"]


class Accounting:
    """The bus observer that runs the enabled accounting modules."""

    log = Logger()

    def __init__(self, settings: AcctSettings, clock: IReactorTime,
                 emit_status: Callable[[str], None], http_client: Any = None,
                 gatekeeper_name: str = "") -> None:
        self.settings = settings
        self.file = FileAcct(settings.file, clock) if settings.module("FileAcct") else None
        self.status = (StatusAcct(settings.status, emit_status, clock, gatekeeper_name)
                       if settings.module("StatusAcct") else None)
        self.http = None
        if settings.module("HttpAcct"):
            self.http = HttpAcct(settings.http, http_client or _default_client(clock), clock,
                                 gatekeeper_name)
        self._dispatch: dict[type, Callable[[Any], None]] = {
            ev.CallDetailRecord: self._stop,
            ev.AdmissionConfirmed: self._start,
            ev.EndpointRegistered: self._register,
            ev.EndpointUnregistered: self._unregister,
        }

    def __call__(self, event: object) -> None:
        handler = self._dispatch.get(type(event))
        if handler is not None:
            handler(event)

    def close(self) -> None:
        """Stop timers and close files (service stop)."""
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
            "dropped": self.dropped,
            "file_written": _count(self.file, "written"),
            "file_failed": _count(self.file, "failed"),
            "file_rotations": _count(self.file, "rotations"),
            "status_sent": _count(self.status, "sent"),
            "http_sent": _count(self.http, "sent"),
            "http_failed": _count(self.http, "failed"),
            "http_retries": _count(self.http, "retries"),
        }

    # -- events ------------------------------------------------------------------

    def _stop(self, record: ev.CallDetailRecord) -> None:
        self._run("stop", record, file=FileAcct.write_cdr, status=StatusAcct.stop,
                  http=HttpAcct.stop)

    def _start(self, event: ev.AdmissionConfirmed) -> None:
        if not event.answer_call:
            self._run("start", event, status=StatusAcct.start, http=HttpAcct.start)

    def _register(self, event: ev.EndpointRegistered) -> None:
        if event.new and not event.keepalive:
            self._run("register", event, status=StatusAcct.register, http=HttpAcct.register)

    def _unregister(self, event: ev.EndpointUnregistered) -> None:
        self._run("unregister", event, status=StatusAcct.unregister, http=HttpAcct.unregister)

    def _run(self, name: str, event: object, **actions: Callable[[Any, Any], Any]) -> None:
        """Give the event to each module whose ``[Gatekeeper::Acct]`` line
        enables ``name``; a module that raises does not stop the others."""
        modules = {"file": ("FileAcct", self.file), "status": ("StatusAcct", self.status),
                   "http": ("HttpAcct", self.http)}
        for key, action in actions.items():
            module_name, module = modules[key]
            entry = self.settings.module(module_name)
            if module is None or entry is None or not entry.handles(name):
                continue
            try:
                action(module, event)
            except Exception:
                self.log.failure("{module} failed on the {event} event", module=module_name,
                                 event=name)


def _count(module: object | None, counter: str) -> int:
    return getattr(module, counter) if module is not None else 0


def _default_client(reactor: Any) -> Any:
    """treq on the given reactor, with a persistent connection pool."""
    from treq.client import HTTPClient
    from twisted.web.client import Agent, HTTPConnectionPool

    return HTTPClient(Agent(reactor, pool=HTTPConnectionPool(reactor)))
