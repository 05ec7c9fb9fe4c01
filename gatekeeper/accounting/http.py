"""HttpAcct: accounting events sent to a web server, through a bounded queue.

GnuGk's ``[HttpAcct]`` keys say where each event goes (``StopURL``,
``StopBody``, ``RegisterURL``, ...) and how (``Method=POST`` or ``GET``).
As in GnuGk, a POST with an empty body sends the URL's query string as the
body, as ``text/plain``.  Parameter values put into a URL are percent-encoded.

Delivery never blocks the reactor: ``submit`` only appends to a queue.  One
request is in flight at a time, so the server sees the events in order.  A
refused connection, a timeout, or an answer 5xx, 408 or 429 is retried with
exponential backoff (``RetryMin`` doubling up to ``RetryMax``); nothing is
dropped while the queue has room.  Any other 4xx answer will not improve by
retrying: that entry is logged with its body and counted as failed.  When the
queue is full a new entry is dropped, logged with its body, and counted.

The HTTP client is injected: anything with treq's
``request(method, url, data=..., headers=...)`` returning a Deferred of a
response with ``.code`` and ``.content()``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from gatekeeper import events as ev
from gatekeeper.accounting.params import (Params, admission_params, call_params, endpoint_params,
                                    expand, gatekeeper_params, snapshot_params,
                                    timestamp_formatter)
from gatekeeper.accounting.settings import HttpAcctSettings

#: Answers worth retrying besides 5xx: request timeout, too many requests.
RETRY_CODES = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One queued delivery; ``label`` names it in log lines (``CDR of call 7``)."""

    method: str
    url: str
    body: str
    label: str


def build_request(settings: HttpAcctSettings, event: str, params: Params,
                  label: str) -> HttpRequest | None:
    """The request for one event, or None when no URL is set for it."""
    target = settings.target(event)
    if target is None:
        return None
    url = expand(target.url, {name: quote(value, safe="") for name, value in params.items()})
    url = url.replace(" ", "%20")
    body = expand(target.body, params)
    if settings.method == "POST" and not body and "?" in url:
        url, body = url.split("?", 1)
    return HttpRequest(settings.method, url, body, label)


class HttpAcct:
    """Queues accounting events and delivers them one at a time."""

    log = Logger()

    def __init__(self, settings: HttpAcctSettings, client: Any, clock: IReactorTime,
                 gatekeeper_name: str = "") -> None:
        self.settings = settings
        self.client = client
        self.clock = clock
        self.gatekeeper_name = gatekeeper_name
        self.sent = 0          # delivered (answered below 400)
        self.failed = 0        # given up: answered 4xx
        self.dropped = 0       # refused: the queue was full
        self.retries = 0       # attempts that will be repeated
        self._queue: deque[HttpRequest] = deque()
        self._in_flight = False
        self._attempts = 0
        self._timer: IDelayedCall | None = None
        self._closed = False
        self._waiters: list[tuple[Deferred, IDelayedCall]] = []
        self._timestamp = timestamp_formatter(settings.timestamp_format)

    @property
    def queued(self) -> int:
        """Entries not delivered yet (the one in flight included)."""
        return len(self._queue)

    # -- events ----------------------------------------------------------------

    # Each returns True when the request was queued, False when the queue
    # was full (dropped), None when no URL is set for the event.

    def start(self, event: ev.AdmissionConfirmed) -> bool | None:
        params = admission_params(event, self.clock.seconds(), self.gatekeeper_name,
                                  self._timestamp)
        return self._submit_event("start", params, f"start of call {event.call_number}")

    def alert(self, call: ev.CallSnapshot, now: float) -> bool | None:
        return self._submit_event("alert", self._call_params(call, now),
                                  f"alert of call {call.call_number}")

    def connect(self, call: ev.CallSnapshot, now: float) -> bool | None:
        return self._submit_event("connect", self._call_params(call, now),
                                  f"connect of call {call.call_number}")

    def update(self, call: ev.CallSnapshot, now: float) -> bool | None:
        return self._submit_event("update", self._call_params(call, now),
                                  f"update of call {call.call_number}")

    def stop(self, record: ev.CallDetailRecord) -> bool | None:
        return self._submit_event("stop", call_params(record, self._timestamp),
                                  f"CDR of call {record.call_number}")

    def register(self, event: ev.EndpointRegistered) -> bool | None:
        params = endpoint_params(event.signal_address, event.endpoint_id, event.aliases,
                                 self.gatekeeper_name)
        return self._submit_event("register", params, f"registration of {event.endpoint_id}")

    def unregister(self, event: ev.EndpointUnregistered) -> bool | None:
        params = endpoint_params(event.signal_address, event.endpoint_id, event.aliases,
                                 self.gatekeeper_name)
        return self._submit_event("unregister", params,
                                  f"unregistration of {event.endpoint_id}")

    def on(self, now: float) -> bool | None:
        return self._submit_event("on", gatekeeper_params(self.gatekeeper_name, now,
                                                          self._timestamp), "gatekeeper on")

    def off(self, now: float) -> bool | None:
        return self._submit_event("off", gatekeeper_params(self.gatekeeper_name, now,
                                                           self._timestamp), "gatekeeper off")

    def _call_params(self, call: ev.CallSnapshot, now: float) -> Params:
        return snapshot_params(call, now, self.gatekeeper_name, self._timestamp)

    def _submit_event(self, event: str, params: Params, label: str) -> bool | None:
        request = build_request(self.settings, event, params, label)
        if request is None:
            return None
        return self.submit(request)

    # -- the queue -------------------------------------------------------------

    def submit(self, request: HttpRequest) -> bool:
        """Queue a request; False (logged, counted) if the queue is full."""
        if len(self._queue) >= self.settings.queue_size:
            self.dropped += 1
            self.log.error(
                "HttpAcct: queue full ({size} waiting), {label} DROPPED: {method} {url} {body}",
                size=len(self._queue), label=request.label, method=request.method,
                url=request.url, body=request.body)
            return False
        self._queue.append(request)
        self._pump()
        return True

    def when_empty(self, timeout: float) -> Deferred:
        """A Deferred that fires with True once nothing is queued any more, or
        with False after ``timeout`` seconds (service stop waits on it, so that
        the ``off`` event and the last CDRs get a chance to be delivered)."""
        waiting: Deferred = Deferred()
        if not self._queue or self._closed:
            waiting.callback(not self._queue)
            return waiting
        timer = self.clock.callLater(timeout, self._stop_waiting, waiting, False)
        self._waiters.append((waiting, timer))
        return waiting

    def _stop_waiting(self, waiting: Deferred, emptied: bool) -> None:
        for entry in list(self._waiters):
            if entry[0] is waiting:
                self._waiters.remove(entry)
                if entry[1].active():
                    entry[1].cancel()
                waiting.callback(emptied)

    def close(self) -> None:
        """Stop sending (service stop); what is still queued is logged with its
        body, so it can be recovered from the log."""
        self._closed = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        for waiting, _ in list(self._waiters):
            self._stop_waiting(waiting, False)
        for request in self._queue:
            self.log.error("HttpAcct: stopped before delivering {label}: {method} {url} {body}",
                           label=request.label, method=request.method, url=request.url,
                           body=request.body)

    def _pump(self) -> None:
        if self._closed or self._in_flight or self._timer is not None or not self._queue:
            return
        self._in_flight = True
        request = self._queue[0]
        sending = maybeDeferred(self.client.request, request.method, request.url,
                                **self._arguments(request))
        sending.addCallback(_read_code)
        sending.addTimeout(self.settings.timeout, self.clock)
        sending.addCallbacks(self._answered, self._unreachable,
                             callbackArgs=(request,), errbackArgs=(request,))
        sending.addErrback(self._bug, request)

    @staticmethod
    def _arguments(request: HttpRequest) -> dict[str, Any]:
        if request.method == "GET":
            return {"data": None, "headers": {}}
        return {"data": request.body.encode("utf-8"),
                "headers": {"Content-Type": ["text/plain; charset=utf-8"]}}

    def _answered(self, code: int, request: HttpRequest) -> None:
        if code < 400:
            self.sent += 1
            self._finish(request)
        elif code >= 500 or code in RETRY_CODES:
            self._retry(request, f"answered {code}")
        else:
            self.failed += 1
            self.log.error("HttpAcct: {url} answered {code} to {label}, not retried: {body}",
                           url=request.url, code=code, label=request.label, body=request.body)
            self._finish(request)

    def _unreachable(self, failure: Failure, request: HttpRequest) -> None:
        self._retry(request, failure.getErrorMessage() or failure.type.__name__)

    def _bug(self, failure: Failure, request: HttpRequest) -> None:
        self.log.failure("HttpAcct: unexpected error delivering {label}", failure,
                         label=request.label)
        self._retry(request, "unexpected error")      # the queue must not stall

    def _finish(self, request: HttpRequest) -> None:
        """The head entry is done with: take it off and go on with the next."""
        self._queue.popleft()
        self._attempts = 0
        self._in_flight = False
        if self._queue and not self._closed:
            self._timer = self.clock.callLater(0, self._resume)
        elif not self._queue:
            for waiting, _ in list(self._waiters):
                self._stop_waiting(waiting, True)

    def _retry(self, request: HttpRequest, reason: str) -> None:
        self._in_flight = False
        self.retries += 1
        doublings = min(self._attempts, 60)      # a long outage must not overflow the float
        delay = min(self.settings.retry_max, self.settings.retry_min * 2 ** doublings)
        self._attempts += 1
        self.log.warn("HttpAcct: {label} to {url} failed ({reason}); retry in {delay:.3g} s, "
                      "{waiting} waiting", label=request.label, url=request.url, reason=reason,
                      delay=delay, waiting=len(self._queue))
        if not self._closed:
            self._timer = self.clock.callLater(delay, self._resume)

    def _resume(self) -> None:
        self._timer = None
        self._pump()


def _read_code(response: Any) -> Deferred:
    """Read the body to its end (so the connection is free again), then give
    the status code; a body that cannot be read does not change the code."""
    reading = maybeDeferred(response.content)
    reading.addErrback(lambda _: None)
    reading.addCallback(lambda _: response.code)
    return reading
