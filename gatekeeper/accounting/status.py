"""StatusAcct: accounting events as lines on the status port.

The lines are GnuGk's ``[StatusAcct]`` templates (``CALL|Start|...``,
``CALL|Alert|...``, ``CALL|Connect|...``, ``CALL|Update|...``,
``CALL|Stop|...``, ``EP|Register|...``, ``EP|Unregister|...`` by default).
Each method returns True when it sent a line, None when the event's template
is empty (GnuGk's "next": nothing to log).
As in GnuGk, ``%{CallId}`` is written with dashes between the bytes here.
This module does not know the status port: it hands each line (without a
line ending) to ``emit``, which the service wires to the status broadcast at
GnuGk's CDR trace level (1).
"""

from __future__ import annotations

from typing import Callable

from twisted.internet.interfaces import IReactorTime

from gatekeeper import events as ev
from gatekeeper.accounting.params import (Params, admission_params, call_params, endpoint_params,
                                    expand, snapshot_params, timestamp_formatter)
from gatekeeper.accounting.settings import StatusAcctSettings

#: The status-port trace level GnuGk sends StatusAcct lines at (STATUS_TRACE_LEVEL_CDR).
TRACE_LEVEL = 1


class StatusAcct:
    """Turns call and registration events into status-port lines."""

    def __init__(self, settings: StatusAcctSettings, emit: Callable[[str], None],
                 clock: IReactorTime, gatekeeper_name: str = "") -> None:
        self.settings = settings
        self.emit = emit
        self.clock = clock
        self.gatekeeper_name = gatekeeper_name
        self.sent = 0
        self._timestamp = timestamp_formatter(settings.timestamp_format)

    def start(self, event: ev.AdmissionConfirmed) -> bool | None:
        return self._send("start", admission_params(event, self.clock.seconds(),
                                                    self.gatekeeper_name, self._timestamp))

    def alert(self, call: ev.CallSnapshot, now: float) -> bool | None:
        return self._send("alert", self._call_params(call, now))

    def connect(self, call: ev.CallSnapshot, now: float) -> bool | None:
        return self._send("connect", self._call_params(call, now))

    def update(self, call: ev.CallSnapshot, now: float) -> bool | None:
        return self._send("update", self._call_params(call, now))

    def stop(self, record: ev.CallDetailRecord) -> bool | None:
        return self._send("stop", call_params(record, self._timestamp))

    def register(self, event: ev.EndpointRegistered) -> bool | None:
        return self._send("register", endpoint_params(event.signal_address, event.endpoint_id,
                                                      event.aliases, self.gatekeeper_name))

    def unregister(self, event: ev.EndpointUnregistered) -> bool | None:
        return self._send("unregister", endpoint_params(event.signal_address, event.endpoint_id,
                                                        event.aliases, self.gatekeeper_name))

    def _call_params(self, call: ev.CallSnapshot, now: float) -> Params:
        return snapshot_params(call, now, self.gatekeeper_name, self._timestamp)

    def _send(self, event: str, params: Params) -> bool | None:
        template = self.settings.template(event)
        if not template:            # an empty template switches the event off (GnuGk)
            return None
        if "CallId" in params:
            params["CallId"] = params["CallId"].replace(" ", "-")
        self.emit(expand(template, params))
        self.sent += 1
        return True
