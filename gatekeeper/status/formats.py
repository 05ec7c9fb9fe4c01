"""GnuGk's text for every event, in one place.

Each function takes a frozen event from ``gatekeeper.events`` and returns the
line GnuGk's status port prints for it (without the CRLF), or None when GnuGk
prints nothing for it.  Field order follows the status-port document first;
fields newer GnuGk versions append (call identifiers, media mode) follow.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable

from gatekeeper import events as ev
from gatekeeper.h225.ras import Address, Alias, format_address, format_aliases, guid_dashed, guid_spaced


def rfc822(when: float, local: bool = True) -> str:
    """``Thu, 26 Nov 2026 14:15:43 GMT`` / ``Wed, 26 Jun 2002 17:29:55 +0800``.

    GnuGk writes times in local time, with ``GMT`` when the offset is zero.
    """
    moment = time.localtime(when) if local else time.gmtime(when)
    offset = moment.tm_gmtoff if local else 0
    text = time.strftime("%a, %d %b %Y %H:%M:%S", moment)
    if not offset:
        return f"{text} GMT"
    sign = "+" if offset > 0 else "-"
    offset = abs(offset)
    return f"{text} {sign}{offset // 3600:02d}{offset % 3600 // 60:02d}"


def ip(address: Address | None) -> str:
    return address[0] if address else ""


def ip_port(address: Address | None) -> str:
    return format_address(address) if address else ""


def plain_aliases(aliases: Iterable[Alias]) -> str:
    """Alias values without their types (GCF/GRJ lines)."""
    return "=".join(alias.value for alias in aliases)


def boolean(value: bool) -> str:
    return "true" if value else "false"


def call_id(value: bytes | None) -> str:
    return guid_dashed(value) if value else ""


def gcf(e: ev.GatekeeperConfirmed) -> str:
    return f"GCF|{ip(e.source)}|{plain_aliases(e.aliases)}|{e.endpoint_type};"


def grj(e: ev.GatekeeperRejected) -> str:
    return f"GRJ|{ip(e.source)}|{plain_aliases(e.aliases)}|{e.endpoint_type}|{e.reason};"


def rcf(e: ev.EndpointRegistered) -> str:
    return (f"RCF|{ip_port(e.signal_address)}|{format_aliases(e.aliases)}|{e.endpoint_type}|"
            f"{e.endpoint_id};")


def rrj(e: ev.RegistrationRejected) -> str:
    return f"RRJ|{ip(e.source)}|{format_aliases(e.aliases)}|{e.endpoint_type}|{e.reason};"


def ucf(e: ev.EndpointUnregistered) -> str | None:
    if e.reason != "endpoint request":
        return None  # a removal by the gatekeeper shows as its URQ line
    return f"UCF|{ip(e.source)}|{e.endpoint_id};"


def urj(e: ev.UnregistrationRejected) -> str:
    return f"URJ|{ip(e.source)}|{e.endpoint_id}|{e.reason};"


def urq(e: ev.UnregistrationRequested) -> str:
    return f"URQ|{ip_port(e.ras_address)}|{e.endpoint_id}|{e.reason};"


def irq(e: ev.InfoRequested) -> str:
    return f"IRQ|{ip_port(e.ras_address)}|{e.endpoint_id};"


def acf(e: ev.AdmissionConfirmed) -> str | None:
    if e.origin != "ARQ":
        return None            # a Setup admitted: no RAS message, no line (GnuGk)
    media = "Direct" if not e.routed else ("ToBeDecided" if not e.answer_call else " ")
    return (f"ACF|{ip_port(e.caller_signal_address)}|{e.endpoint_id}|{e.call_reference}|"
            f"{format_aliases(e.destination)}|{format_aliases(e.source)}|{boolean(e.answer_call)}|"
            f"{call_id(e.call_id)}|{media};")


def arj(e: ev.AdmissionRejected) -> str | None:
    if e.origin != "ARQ":
        return None
    return (f"ARJ|{ip_port(e.caller_signal_address)}|{format_aliases(e.destination)}|"
            f"{format_aliases(e.source)}|{boolean(e.answer_call)}|{e.reason}|{call_id(e.call_id)};")


def dcf(e: ev.DisengageConfirmed) -> str:
    return f"DCF|{ip(e.source)}|{e.endpoint_id}|{e.call_reference}|{e.reason}|{call_id(e.call_id)};"


def drj(e: ev.DisengageRejected) -> str:
    return f"DRJ|{ip(e.source)}|{e.endpoint_id}|{e.call_reference}|{e.reason}|{call_id(e.call_id)};"


def bcf(e: ev.BandwidthConfirmed) -> str:
    return f"BCF|{ip(e.source)}|{e.endpoint_id}|{e.bandwidth};"


def brj(e: ev.BandwidthRejected) -> str:
    return f"BRJ|{ip(e.source)}|{e.endpoint_id}|{e.bandwidth}|{e.reason};"


def lcf(e: ev.LocationConfirmed) -> str:
    return (f"LCF|{ip(e.source)}|{e.endpoint_id}|{format_aliases(e.destination)}|"
            f"{format_aliases(e.source_info)};")


def lrj(e: ev.LocationRejected) -> str:
    return (f"LRJ|{ip(e.source)}|{format_aliases(e.destination)}|{format_aliases(e.source_info)}|"
            f"{e.reason};")


def cdr(e: ev.CallDetailRecord) -> str:
    # The status port and FileAcct both want the line of the same record, one
    # after the other: the last one made is kept.
    global _last_cdr
    if _last_cdr[0] is e:
        return _last_cdr[1]
    start = rfc822(e.connect_time) if e.connect_time is not None else "unconnected"
    line = (f"CDR|{e.call_number}|{guid_spaced(e.call_id)}|{e.duration}|{start}|"
            f"{rfc822(e.disconnect_time)}|{ip_port(e.caller_signal_address)}|"
            f"{e.caller_endpoint_id}|{ip_port(e.callee_signal_address)}|{e.callee_endpoint_id}|"
            f"{format_aliases(e.destination_info)}|{format_aliases(e.source_info)}|"
            f"{e.gatekeeper_name};")
    _last_cdr = (e, line)
    return line


_last_cdr: tuple[object, str] = (None, "")


def route_request(e: ev.RouteRequested) -> str:
    return (f"RouteRequest|{ip_port(e.caller_address)}|{e.caller_endpoint_id}|{e.call_reference}|"
            f"{e.virtual_queue}|{e.caller_alias}|{call_id(e.call_id)}|{ip_port(e.called_address)}|"
            f"{e.vendor}|{ip_port(e.message_from)}|{e.message_type};")


def reloaded(e: ev.ConfigReloaded) -> str | None:
    """GnuGk's announcement of a ``Reload`` command (a SIGHUP reload is not
    announced); the new file's warnings come first, whatever the source."""
    lines = [f"Warning: {warning}" for warning in e.warnings]
    if e.source == "command":
        lines.append("Full Config reloaded." if e.ok else f"Reload failed: {e.detail}")
    return "\r\n".join(lines) if lines else None


def notice(e: ev.Notice) -> str:
    return e.text


FORMATS: dict[type, Callable[[object], str | None]] = {
    ev.GatekeeperConfirmed: gcf,
    ev.GatekeeperRejected: grj,
    ev.EndpointRegistered: rcf,
    ev.RegistrationRejected: rrj,
    ev.EndpointUnregistered: ucf,
    ev.UnregistrationRejected: urj,
    ev.UnregistrationRequested: urq,
    ev.InfoRequested: irq,
    ev.AdmissionConfirmed: acf,
    ev.AdmissionRejected: arj,
    ev.DisengageConfirmed: dcf,
    ev.DisengageRejected: drj,
    ev.BandwidthConfirmed: bcf,
    ev.BandwidthRejected: brj,
    ev.LocationConfirmed: lcf,
    ev.LocationRejected: lrj,
    ev.CallDetailRecord: cdr,
    ev.RouteRequested: route_request,
    ev.ConfigReloaded: reloaded,
    ev.Notice: notice,
    ev.AccountingLine: notice,
}


def format_event(event: object) -> str | None:
    """The status-port line for an event, or None if GnuGk shows none."""
    formatter = FORMATS.get(type(event))
    return formatter(event) if formatter is not None else None
