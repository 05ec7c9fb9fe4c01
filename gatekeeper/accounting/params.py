"""GnuGk's parametrized accounting strings: the parameters and their expansion.

A template holds ``%x`` (one letter) and ``%{name}`` parameters; ``%%`` is a
percent sign; a parameter without a value becomes the empty string, as in
GnuGk.  The parameter names and their meaning follow GnuGk's FileAcct,
SQLAcct and StatusAcct documentation; ``%{release-reason}`` (the H.225
disengage reason as text) is ours.
"""

from __future__ import annotations

import re
import time
from typing import Callable, Iterable, Mapping

from gatekeeper import events as ev
from gatekeeper.h225.ras import Address, Alias, format_aliases, guid_spaced
from gatekeeper.status.formats import rfc822

Params = dict[str, str]
Timestamp = Callable[[float], str]

_PARAMETER = re.compile(r"%(\{[^}]*\}|.)", re.DOTALL)
_NAME_ALIASES = ("h323-ID", "email-ID", "url-ID")


def expand(template: str, params: Mapping[str, str]) -> str:
    """Replace every parameter of ``template`` by its value."""
    def value(match: re.Match) -> str:
        token = match.group(1)
        if token == "%":
            return "%"
        if token == "{":                      # "%{" without a closing brace stays
            return match.group(0)
        name = token[1:-1] if token.startswith("{") else token
        return params.get(name, "")
    return _PARAMETER.sub(value, template)


# -- timestamps ----------------------------------------------------------------


def timestamp_formatter(name: str) -> Timestamp:
    """GnuGk's ``TimestampFormat``: RFC822, ISO8601, Cisco, MySQL or a
    strftime string (where ``%u`` is the milliseconds), in local time."""
    lowered = name.lower()
    if lowered == "rfc822":
        return rfc822
    if lowered == "iso8601":
        return _iso8601
    pattern = {"cisco": "%H:%M:%S.%u %Z %a %b %d %Y", "mysql": "%Y-%m-%d %H:%M:%S"}.get(
        lowered, name)
    return lambda when: _strftime(pattern, when)


def _strftime(pattern: str, when: float) -> str:
    milliseconds = f"{int(round(when * 1000)) % 1000:03d}"
    return time.strftime(pattern.replace("%u", milliseconds), time.localtime(when))


def _iso8601(when: float) -> str:
    moment = time.localtime(when)
    offset = moment.tm_gmtoff
    sign = "+" if offset >= 0 else "-"
    offset = abs(offset)
    return (time.strftime("%Y-%m-%dT%H:%M:%S", moment)
            + f"{sign}{offset // 3600:02d}:{offset % 3600 // 60:02d}")


# -- parameters ----------------------------------------------------------------


def call_params(record: ev.CallDetailRecord, timestamp: Timestamp) -> Params:
    """The parameters of a finished call (the ``stop`` event)."""
    params = _common_call_params(
        number=record.call_number, gatekeeper=record.gatekeeper_name, call_id=record.call_id,
        caller=record.caller_signal_address, callee=record.callee_signal_address,
        source=record.source_info, destination=record.destination_info,
        bandwidth=record.bandwidth)
    params.update({
        "d": str(record.duration),
        "t": str(max(0, int(record.disconnect_time - record.setup_time))),
        "ConfId": guid_spaced(record.conference_id),
        "setup-time": timestamp(record.setup_time),
        "disconnect-time": timestamp(record.disconnect_time),
        "release-reason": record.release_reason,
    })
    if record.connect_time is not None:
        params["connect-time"] = timestamp(record.connect_time)
    if record.release_reason.isdigit():     # a Q.931 cause, when the events carry one
        params["c"] = record.release_reason
    if not params.get("caller-ip") and record.caller_ip:
        params["caller-ip"] = record.caller_ip
    if not params.get("callee-ip") and record.callee_ip:
        params["callee-ip"] = record.callee_ip
    _set_if(params, "caller-epid", record.caller_endpoint_id)
    _set_if(params, "callee-epid", record.callee_endpoint_id)
    return params


def snapshot_params(call: ev.CallSnapshot, now: float, gatekeeper: str,
                    timestamp: Timestamp) -> Params:
    """The parameters of a call in progress (the ``alert``, ``connect`` and
    ``update`` events): those of ``stop`` that are known so far, with ``%d``
    the seconds connected until ``now`` and ``%t`` the seconds since setup."""
    params = _common_call_params(
        number=call.call_number, gatekeeper=gatekeeper, call_id=call.call_id,
        caller=call.caller_signal_address, callee=call.callee_signal_address,
        source=call.source_info, destination=call.destination_info, bandwidth=call.bandwidth)
    params.update({
        "d": str(call.duration(now)),
        "t": str(max(0, int(now - call.setup_time))),
        "ConfId": guid_spaced(call.conference_id),
        "setup-time": timestamp(call.setup_time),
    })
    if call.connect_time is not None:
        params["connect-time"] = timestamp(call.connect_time)
    if call.alerting_time is not None:
        params["alerting-time"] = timestamp(call.alerting_time)
        # GnuGk: how long the callee rang, until Connect (or until now)
        end = call.connect_time if call.connect_time is not None else now
        params["ring-time"] = str(max(0, int(end - call.alerting_time)))
    _set_if(params, "caller-epid", call.caller_endpoint_id)
    _set_if(params, "callee-epid", call.callee_endpoint_id)
    return params


def gatekeeper_params(gatekeeper: str, now: float, timestamp: Timestamp) -> Params:
    """The parameters of the ``on`` / ``off`` events: the gatekeeper's name
    and, ours, ``%{timestamp}`` (when it happened)."""
    return {"g": gatekeeper, "timestamp": timestamp(now)}


def admission_params(event: ev.AdmissionConfirmed, now: float, gatekeeper: str,
                     timestamp: Timestamp) -> Params:
    """The parameters of an admitted call (the ``start`` event)."""
    params = _common_call_params(
        number=event.call_number, gatekeeper=gatekeeper, call_id=event.call_id,
        caller=event.caller_signal_address, callee=event.dest_signal_address,
        source=event.source, destination=event.destination, bandwidth=event.bandwidth)
    params.update({"d": "0", "t": "0", "setup-time": timestamp(now)})
    _set_if(params, "caller-epid", event.endpoint_id)
    return params


def endpoint_params(signal_address: Address | None, endpoint_id: str,
                    aliases: Iterable[Alias], gatekeeper: str) -> Params:
    """The parameters of a ``register`` / ``unregister`` event."""
    values = [alias.value for alias in aliases]
    params = {"epid": endpoint_id, "aliases": ",".join(values), "g": gatekeeper}
    if values:
        params["u"] = values[-1]         # GnuGk: the last alias is the user name
    if signal_address is not None:
        params["endpoint-ip"], params["endpoint-port"] = signal_address[0], str(signal_address[1])
    return params


def _common_call_params(*, number: int, gatekeeper: str, call_id: bytes,
                        caller: Address | None, callee: Address | None,
                        source: tuple[Alias, ...], destination: tuple[Alias, ...],
                        bandwidth: int) -> Params:
    params = {
        "g": gatekeeper,
        "n": str(number),
        "CallId": guid_spaced(call_id),
        "src-info": format_aliases(source),
        "dest-info": format_aliases(destination),
        "bandwidth": str(bandwidth),
        "call-attempts": "1",
        "last-cdr": "1",
    }
    _set_address(params, "caller", caller)
    _set_address(params, "callee", callee)
    calling = _first_digits(source) or _address_text(caller)
    called = _first_digits(destination) or _address_text(callee)
    _set_if(params, "Calling-Station-Id", calling)
    _set_if(params, "Called-Station-Id", called)
    _set_if(params, "Dialed-Number", called)
    _set_if(params, "u", _first_name(source) or calling)
    return params


def _set_address(params: Params, side: str, address: Address | None) -> None:
    if address is not None:
        params[f"{side}-ip"], params[f"{side}-port"] = address[0], str(address[1])


def _set_if(params: Params, name: str, value: str | None) -> None:
    if value:
        params[name] = value


def _address_text(address: Address | None) -> str:
    return f"{address[0]}:{address[1]}" if address is not None else ""


def _first_digits(aliases: Iterable[Alias]) -> str:
    return next((alias.digits for alias in aliases if alias.digits), "")


def _first_name(aliases: Iterable[Alias]) -> str:
    return next((alias.value for alias in aliases if alias.kind in _NAME_ALIASES), "")
