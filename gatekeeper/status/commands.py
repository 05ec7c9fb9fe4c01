"""Status-port commands: one function each, and the table of names and aliases.

Names are case-insensitive; a unique prefix of a name or alias is accepted
and an ambiguous one is an unknown command, as in GnuGk.  Unlike GnuGk, the
commands that stop the gatekeeper or clear every registration or call
(Shutdown, UnregisterAllEndpoints, ClearCalls) run only when their name or
their GnuGk alias (``uae``, ``cc``) is typed in full: in GnuGk ``sh`` stops
the gatekeeper.  Arguments keep their case and are split on spaces and tabs.
Output formats follow the status-port document (the contract) and, where it
is silent, GnuGk 5.15.  ``help COMMAND`` (GnuGk ignores the argument) prints
that command's names and arguments in GnuGk's notation and what it does.

The table holds exactly the names and aliases GnuGk 5.15 lists for
``help``; commands for features this gatekeeper does not have answer with a
clear error line after GnuGk's own argument checks.
"""

from __future__ import annotations

import ipaddress
import platform
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import twisted

import gatekeeper
from gatekeeper.core.neighbors import DEFAULT_PRIORITY, PrefixList, parse_neighbors
from gatekeeper.h225.ras import (ALIAS_TAGS, Alias, format_address, format_aliases, guid_dashed,
                                  guid_spaced, parse_address, parse_alias, parse_guid)
from gatekeeper.status.filtering import StatusFilters
from gatekeeper.status.formats import boolean, ip_port, rfc822

if TYPE_CHECKING:
    from gatekeeper.status.protocol import StatusFactory, StatusSession

Run = Callable[["StatusFactory", "StatusSession", list[str]], None]


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    aliases: tuple[str, ...]
    run: Run
    summary: str
    #: The arguments, as ``help COMMAND`` shows them after the names.
    usage: str = ""
    #: Runs only when a name or alias is typed in full, never from a prefix.
    in_full: bool = False

    def usage_line(self) -> str:
        """``Name|alias|... ARGUMENTS``, GnuGk's notation for a usage."""
        names = "|".join((self.name, *self.aliases))
        return f"{names} {self.usage}" if self.usage else names


TABLE: dict[str, Command] = {}       # every lower-case name and alias -> command
COMMANDS: list[Command] = []


def command(name: str, *aliases: str, summary: str = "", usage: str = "",
            in_full: bool = False) -> Callable[[Run], Run]:
    def register(run: Run) -> Run:
        entry = Command(name, aliases, run, summary, usage, in_full)
        COMMANDS.append(entry)
        for key in (name, *aliases):
            TABLE[key.lower()] = entry
        return run
    return register


def _expand(word: str) -> tuple[Command | None, bool]:
    """(the command, typed in full?): the exact name or alias, else the one
    name or alias that starts with ``word``."""
    key = word.lower()
    if key in TABLE:
        return TABLE[key], True
    matches = [k for k in TABLE if k.startswith(key)]
    if len(matches) == 1:
        return TABLE[matches[0]], False
    return None, False


def lookup(word: str) -> Command | None:
    """Exact name or alias, else the one name or alias that starts with it.

    As in GnuGk, a prefix of two names is ambiguous even when both belong to
    the same command (``maint`` matches ``maintenance`` and
    ``maintenancemode``), and an ambiguous prefix is an unknown command.  The
    prefix of a command that must be typed in full (``sh``, ``clear``) is one
    too; the prefixes that were ambiguous stay so.
    """
    entry, in_full = _expand(word)
    if entry is None or (entry.in_full and not in_full):
        return None
    return entry


def unknown(session: "StatusSession", word: str, line: str) -> None:
    """GnuGk's answer to a line that names no command (it repeats the whole
    line, arguments and spaces included); for a prefix of a command that
    runs only in full, which one."""
    entry, _ = _expand(word) if word else (None, False)
    if entry is not None and entry.in_full:
        session.send_line(f"Error: Unknown command '{line}' ({entry.name} must be typed "
                          "in full)")
    else:
        session.send_line(f"Error: Unknown command '{line}'")


def run(factory: "StatusFactory", session: "StatusSession", line: str) -> None:
    """Run one command line (as received, spaces kept)."""
    if not line:
        return  # an empty line gets no output
    words = line.replace("\t", " ").split()
    entry = lookup(words[0]) if words else None
    if entry is None:
        unknown(session, words[0] if words else "", line)
        return
    session.command_line = line   # Yell repeats it
    entry.run(factory, session, words[1:])


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def running_time(seconds: float) -> str:
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days} days {hours:02d}:{minutes:02d}:{secs:02d}"


def startup_line(factory: "StatusFactory") -> str:
    start = factory.start_time()
    return f"Startup: {rfc822(start)}   Running: {running_time(factory.clock.seconds() - start)}"


def version_lines(factory: "StatusFactory") -> list[str]:
    return [
        "Version:",
        f"Gatekeeper(gatekeeper) Version({gatekeeper.__version__}) "
        f"Python({platform.python_version()}) Twisted({twisted.__version__}) "
        f"Sys({platform.system()} {platform.machine()} {platform.release()})",
        startup_line(factory),
        ";",
    ]


def rcf_line(endpoint) -> str:
    signal = format_address(endpoint.signal_address) if endpoint.signal_address else ""
    return (f"RCF|{signal}|{format_aliases(endpoint.aliases)}|{endpoint.endpoint_type}|"
            f"{endpoint.endpoint_id}")


def verbose_lines(endpoint, calls) -> list[str]:
    """The lines ``PrintAllRegistrationsVerbose`` adds under an RCF line;
    ``calls``: the endpoint's counters (``control.call_counts``)."""
    lines = [f"{rfc822(endpoint.registration_time)} C({calls.active}/"
             f"{calls.connected}/{calls.total}) <1>"]
    if endpoint.endpoint_type == "gateway" and endpoint.prefixes:
        lines.append("Prefixes: " + ",".join(endpoint.prefixes))
    return lines


def find_endpoint(factory: "StatusFactory", text: str):
    """By alias, then by gateway prefix (what Find accepts)."""
    return factory.control.endpoint_for(text)


# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------


@command("Help", "h", usage="[COMMAND]", summary="list the commands, or how to use one")
def help_(factory, session, args):
    if not args:
        # GnuGk prints its table's keys in byte order, one a line
        session.send_lines(["Commands:", *sorted(TABLE), ";"])
        return
    # GnuGk ignores the argument; here it gets that command's usage
    if len(args) > 1:
        session.send_line("Syntax Error: Help [COMMAND]")
        return
    entry = lookup(args[0])
    if entry is None:
        unknown(session, args[0], args[0])
        return
    summary = entry.summary + (" (type the name in full)" if entry.in_full else "")
    session.send_lines([entry.usage_line(), f"  {summary}", ";"])


@command("Version", "v", summary="version and system information")
def version(factory, session, args):
    session.send_lines(version_lines(factory))


@command("Statistics", "s", summary="endpoint and call statistics")
def statistics(factory, session, args):
    endpoints = factory.control.endpoints()
    calls = factory.control.call_counters()
    gateways = sum(1 for e in endpoints if e.endpoint_type == "gateway")
    session.send_lines([
        "-- Endpoint Statistics --",
        f"Total Endpoints: {len(endpoints)} Terminals: {len(endpoints) - gateways} "
        f"Gateways: {gateways} NATed: 0",
        "Cached Endpoints: 0 Terminals: 0 Gateways: 0",
        "-- Call Statistics --",
        # the seed document's fields and single spaces, then 5.15's newer fields
        f"Current Calls: {calls.current} Active: {calls.active} "
        f"From Neighbor: {calls.from_neighbor} From Parent: {calls.from_parent} "
        f"Proxied: {calls.proxied}",
        f"Total Calls: {calls.total} Successful: {calls.connected} "
        f"From Neighbor: {calls.total_from_neighbor} From Parent: {calls.total_from_parent} "
        f"Proxied: {calls.total_routed} Peak: {_peak(factory, calls)}",
        startup_line(factory).replace("   Running", " Running"),
        ";",
    ])


def _peak(factory, calls) -> str:
    """``N at <time>``: the most calls at once and when (GnuGk starts with 0
    at the startup time)."""
    when = calls.peak_time if calls.peak_time is not None else factory.start_time()
    return f"{calls.peak} at {rfc822(when)}"


@command("PrintAllRegistrations", "r", "?", "par", summary="list registered endpoints")
def print_all_registrations(factory, session, args):
    _registrations(factory, session, verbose=False)


@command("PrintAllRegistrationsVerbose", "rv", "??", "parv",
         summary="list registered endpoints with details")
def print_all_registrations_verbose(factory, session, args):
    _registrations(factory, session, verbose=True)


def _registrations(factory, session, verbose: bool) -> None:
    endpoints = factory.control.endpoints()   # a snapshot: the table may change

    def lines():
        yield "AllRegistrations"
        for endpoint in endpoints:
            yield rcf_line(endpoint)
            if verbose:
                yield from verbose_lines(endpoint, factory.control.call_counts(endpoint))
        yield f"Number of Endpoints: {len(endpoints)}"
        yield ";"

    session.stream(lines())


@command("PrintCurrentCalls", "c", "!", "pcc", summary="list calls in progress")
def print_current_calls(factory, session, args):
    _calls(factory, session, verbose=False)


@command("PrintCurrentCallsVerbose", "cv", "!!", "pccv", summary="list calls with details")
def print_current_calls_verbose(factory, session, args):
    _calls(factory, session, verbose=True)


def _calls(factory, session, verbose: bool) -> None:
    now = factory.clock.seconds()
    calls = factory.control.calls()   # a snapshot

    def lines():
        yield "CurrentCalls"
        for call in calls:
            yield from _call_lines(call, now, verbose)
        active = sum(1 for call in calls if call.connected)
        proxied = sum(1 for call in calls if call.routed)
        neighbor = sum(1 for call in calls if call.zone == "neighbor")
        parent = sum(1 for call in calls if call.zone == "parent")
        yield (f"Number of Calls: {len(calls)} Active: {active} From Neighbor: {neighbor} "
               f"From Parent: {parent} Proxied: {proxied}")
        yield ";"

    session.stream(lines())


def _call_lines(call, now: float, verbose: bool) -> list[str]:
    duration = int(now - call.connect_time) if call.connect_time is not None else 0
    media = "Proxy" if call.routed else "Direct"
    lines = [f"Call No. {call.number} | CallID {guid_spaced(call.call_id)} | {duration} | 0",
             f"Dial {format_aliases(call.destination_info)}",
             f"ACF|{ip_port(call.caller_signal_address)}|{call.caller_endpoint_id}|"
             f"{call.caller_crv}|{format_aliases(call.destination_info)}|"
             f"{format_aliases(call.source_info)}|false|{guid_dashed(call.call_id)}|{media};"]
    if call.callee_endpoint_id:
        crv = call.callee_crv if call.callee_crv is not None else call.caller_crv
        lines.append(
            f"ACF|{ip_port(call.callee_signal_address)}|{call.callee_endpoint_id}|{crv}|"
            f"{format_aliases(call.destination_info)}|{format_aliases(call.source_info)}|"
            f"{boolean(True)}|{guid_dashed(call.call_id)}|{media};")
    if verbose:
        connected = rfc822(call.connect_time) if call.connect_time is not None else "unconnected"
        lines.append(f"# {format_aliases(call.source_info)}|{format_aliases(call.destination_info)}|"
                     f"{call.bandwidth}|{connected} <1>")
    return lines


@command("Find", "f", usage="ALIAS",
         summary="find an endpoint by alias or prefix")
def find(factory, session, args):
    _find(factory, session, args, verbose=False)


@command("FindVerbose", "fv", usage="ALIAS",
         summary="find an endpoint by alias or prefix, with details")
def find_verbose(factory, session, args):
    _find(factory, session, args, verbose=True)


def _find(factory, session, args, verbose: bool) -> None:
    if len(args) != 1:
        session.send_line(f"Syntax Error: {'FindVerbose' if verbose else 'Find'} ALIAS")
        return
    endpoint = find_endpoint(factory, args[0])
    if endpoint is None:
        session.send_line(f"SoftPBX: alias {args[0]} not found!")
        return
    lines = [rcf_line(endpoint)]
    if verbose:
        lines.extend(verbose_lines(endpoint, factory.control.call_counts(endpoint)))
    lines.append(";")
    session.send_lines(lines)


@command("Trace", usage="[0|1|2|min|max]",
         summary="set this session's output trace level: 0|1|2|min|max")
def trace(factory, session, args):
    if args:
        word = args[0].lower()
        levels = {"min": 0, "max": 2, "0": 0, "1": 1, "2": 2}
        if word in levels:
            session.trace_level = levels[word]
        elif word.lstrip("-").isdigit():
            session.send_line('Syntax Error: trace 0|1|2|"min"|"max"')
            return
        else:
            session.trace_level = 0   # GnuGk reads a non-number as 0
    session.send_line(f"Output trace level is {session.trace_level}")


@command("Who", summary="list the status port's sessions")
def who(factory, session, args):
    lines = []
    for other in factory.sessions:
        host = other.transport.getHost()
        lines.append(f"  {other.number}\t{other.peer}=>{host.host}:{host.port}\t{other.user}")
    lines.append(";")
    session.send_lines(lines)


@command("Yell", usage="MESSAGE",
         summary="send a message to every session")
def yell(factory, session, args):
    host = session.transport.getHost()
    # GnuGk repeats the whole command line, as typed, after the sender's user name
    line = getattr(session, "command_line", " ".join(["yell", *args]))
    factory.broadcast(f"  {session.number}\t{session.peer}=>{host.host}:{host.port}\t"
                      f"{session.user}: {line}")


@command("GK", summary="show the parent gatekeeper")
def gk(factory, session, args):
    # With no parent GnuGk prints "not registered\t" (gatekeeper/ras/client.py).
    session.send_lines([*factory.control.parent_gatekeeper(), ";"])


# -- control: unregister and disconnect ---------------------------------------
# Their results reach every session, whatever its trace level (as in GnuGk);
# the URQ/DRQ/CDR lines come from the events the controller publishes.


def _endpoint_at(factory, text: str):
    """The endpoint registered at ``ip[:port]`` (its signalling address)."""
    try:
        address = parse_address(text, 1720)
    except ValueError:
        return None
    if text.count(":") == 1 or "]:" in text:   # a port was given
        return factory.control.endpoint_at(address)
    found = factory.control.endpoints_at_ip(address[0])
    return found[0] if found else None


def _unregister(factory, session, args, usage: str, find, not_found: str) -> None:
    if len(args) != 1:
        session.send_line(f"Syntax Error: {usage}")
        return
    endpoint = find(args[0])
    if endpoint is None:
        factory.broadcast(not_found.format(args[0]))
        return
    factory.control.unregister(endpoint, "maintenance")
    factory.broadcast(f"SoftPBX: Endpoint {args[0]} unregistered!")


@command("UnregisterIP", "uip", usage="IP[:PORT]",
         summary="unregister the endpoint at IP[:Port]")
def unregister_ip(factory, session, args):
    _unregister(factory, session, args, "UnregisterIp IP_ADDRESS",
                lambda text: _endpoint_at(factory, text), "IP {} not found!")


@command("UnregisterAlias", "ua", usage="ALIAS",
         summary="unregister the endpoint with this alias")
def unregister_alias(factory, session, args):
    _unregister(factory, session, args, "UnregisterAlias ALIAS",
                factory.control.endpoint_with_alias, "Alias {} not found!")


@command("UnregisterAllEndpoints", "uae", in_full=True, summary="unregister every endpoint")
def unregister_all(factory, session, args):
    for endpoint in factory.control.endpoints():
        if not endpoint.permanent:
            factory.control.unregister(endpoint, "maintenance")
    session.send_lines(["Done", ";"])


@command("DisconnectCall", "dc", usage="CALL_NUMBER [CALL_NUMBER...]",
         summary="disconnect calls by number")
def disconnect_call(factory, session, args):
    if not args:
        session.send_line("Syntax Error: DisconnectCall CALL_NUMBER [CALL_NUMBER...]")
        return
    for text in args:
        number = _as_integer(text)   # GnuGk reads "abc" as call number 0
        call = factory.control.call(number)
        if call is None:
            factory.broadcast(f"Can't find call number {number}")
            continue
        factory.control.disconnect(call, "forcedDrop")
        factory.broadcast(f"Call number {number} disconnected.")


def _disconnect_endpoint(factory, endpoint) -> bool:
    """End every call of an endpoint; False (and GnuGk's broadcast) if there
    is no such endpoint. An endpoint without calls is no error (GnuGk is
    silent then too)."""
    if endpoint is None:
        factory.broadcast("No endpoint to disconnect!")
        return False
    for call in factory.control.calls_of(endpoint):
        factory.control.disconnect(call, "forcedDrop")
    return True


@command("DisconnectIP", "dip", usage="IP[:PORT]",
         summary="disconnect the calls of the endpoint at IP[:Port]")
def disconnect_ip(factory, session, args):
    if len(args) != 1:
        session.send_line("Syntax Error: DisconnectIp IP_ADDRESS")
        return
    # GnuGk 5.15 answers nothing for an address without an endpoint; we say so
    _disconnect_endpoint(factory, _endpoint_at(factory, args[0]))


@command("DisconnectAlias", "dca", usage="ALIAS",
         summary="disconnect the calls of the endpoint with this alias")
def disconnect_alias(factory, session, args):
    if len(args) != 1:
        session.send_line("Syntax Error: DisconnectAlias ALIAS")
        return
    _disconnect_endpoint(factory, factory.control.endpoint_with_alias(args[0]))


@command("DisconnectEndpoint", "de", usage="ENDPOINT_IDENTIFIER",
         summary="disconnect the calls of an endpoint by its identifier")
def disconnect_endpoint(factory, session, args):
    if len(args) != 1:
        session.send_line("Syntax Error: DisconnectEndpoint ENDPOINT_IDENTIFIER")
        return
    _disconnect_endpoint(factory, factory.control.endpoint(args[0]))


@command("DisconnectCallId", "dcid", usage="CALL_ID",
         summary="disconnect a call by its call identifier")
def disconnect_call_id(factory, session, args):
    if not args:
        session.send_line("Syntax Error: DisconnectCallId CALL_ID")
        return
    text = " ".join(args)
    call = _call_by_id(factory, text)
    if call is None:
        factory.broadcast(f"Can't find call ID {text}")
        return
    factory.control.disconnect(call, "forcedDrop")
    factory.broadcast(f"Call number {call.number} disconnected.")


def _call_by_id(factory, text: str):
    """The call a call identifier names, written as GnuGk prints it (dashed,
    spaced or run together); None for no call or no identifier."""
    try:
        call_id = parse_guid(text)
    except ValueError:
        return None
    return factory.control.call_with_id(call_id)


@command("ClearCalls", "cc", in_full=True, summary="disconnect every call")
def clear_calls(factory, session, args):
    for call in factory.control.calls():
        factory.control.disconnect(call, "forcedDrop")
    factory.broadcast("All calls cleared.")


# -- virtual queues and call transfer ------------------------------------------
# RouteToAlias/RouteToGateway/RouteReject answer pending RouteRequests. The
# words are read here; the control passes the values to the virtual queues,
# which answer None when the call was routed (GnuGk prints nothing then),
# else the error line to send.

_ROUTE_TAIL = "[CALLID [CALLER-ID [CALLER-DISPLAY-IE [CALLED-DISPLAY-IE]]]]"


class _BadWords(ValueError):
    """A command's words do not parse: the message is the line to send."""


def _waiting_call(args: list[str]) -> tuple[str, int, bytes | None]:
    """``CALLING_ENDPOINT_ID CRV [CALLID ...]``: which waiting call is meant."""
    endpoint_id, crv_text = args[0], args[1]
    try:
        crv = int(crv_text, 10)
    except ValueError:
        raise _BadWords(f"Error: CallRef {crv_text} is not a number") from None
    call_id = None
    if len(args) > 2:
        try:
            call_id = parse_guid(args[2])
        except ValueError:
            raise _BadWords(f"Error: {args[2]} is not a call identifier") from None
    return endpoint_id, crv, call_id


def _alias(text: str, what: str = "bad alias") -> Alias:
    try:
        return parse_alias(text)
    except ValueError as error:
        raise _BadWords(f"Error: {what} {text}: {error}") from None


def _alias_or_address(text: str) -> Alias | tuple[str, int]:
    """``IP[:PORT]`` (port 1720 if none) as an address, anything else as an alias."""
    host, sep, port = text.partition(":") if text.count(":") == 1 else (text, "", "")
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return _alias(text, "bad destination")
    if not sep:
        return (host, 1720)
    if port.isdigit() and 0 < int(port) < 65536:
        return (host, int(port))
    raise _BadWords(f"Error: bad destination {text}: port {port!r} is not 1-65535")


def _route_answer(session, args, usage: str, minimum: int, maximum: int, answer) -> None:
    if not minimum <= len(args) <= maximum:
        session.send_line(f"Syntax Error: {usage}")
        return
    try:
        reply = answer()
    except _BadWords as error:
        reply = str(error)
    if reply is not None:
        session.send_line(reply)


@command("RouteToAlias", "rta", usage="TARGET_ALIAS CALLING_ENDPOINT_ID CRV " + _ROUTE_TAIL,
         summary="route a call waiting in a virtual queue to an alias")
def route_to_alias(factory, session, args):
    def answer():
        waiting = _waiting_call(args[1:])
        return factory.control.route_to_alias(*waiting, _alias(args[0]))

    _route_answer(session, args, f"RouteToAlias TARGET_ALIAS CALLING_ENDPOINT_ID CRV {_ROUTE_TAIL}",
                  3, 7, answer)


@command("RouteToGateway", "rtg",
         usage="TARGET_ALIAS TARGET_IP CALLING_ENDPOINT_ID CRV " + _ROUTE_TAIL,
         summary="route a waiting call to a gateway's address")
def route_to_gateway(factory, session, args):
    def answer():
        waiting = _waiting_call(args[2:])
        try:
            alias = parse_alias(args[0])
            address = parse_address(args[1], 1720)
        except ValueError as error:
            raise _BadWords(f"Error: {error}") from None
        return factory.control.route_to_gateway(*waiting, alias, address)

    _route_answer(session, args,
                  f"RouteToGateway TARGET_ALIAS TARGET_IP CALLING_ENDPOINT_ID CRV {_ROUTE_TAIL}",
                  4, 8, answer)


@command("RouteReject", "rr", usage="CALLING_ENDPOINT_ID CRV [CALLID [REASON]]",
         summary="reject a call waiting in a virtual queue")
def route_reject(factory, session, args):
    def answer():
        waiting = _waiting_call(args)
        reason: str | int | None = None
        if len(args) > 3:
            reason = int(args[3]) if args[3].isdigit() else args[3]
        return factory.control.route_reject(*waiting, reason)

    _route_answer(session, args, "RouteReject CALLING_ENDPOINT_ID CRV [CALLID [REASON]]", 2, 4,
                  answer)


def unsupported(session, name: str) -> None:
    """The answer of a GnuGk command for a feature this gatekeeper lacks."""
    session.send_line(f"Error: {name} is not supported by this gatekeeper")


@command("BindAndRouteToGateway", "brtg",
         usage="BIND_IP TARGET_ALIAS TARGET_IP CALLING_ENDPOINT_ID CRV " + _ROUTE_TAIL,
         summary="route a waiting call from a chosen local IP")
def bind_and_route_to_gateway(factory, session, args):
    if not 5 <= len(args) <= 9:
        session.send_line("Syntax Error: BindAndRouteToGateway BIND_IP TARGET_ALIAS TARGET_IP "
                          f"CALLING_ENDPOINT_ID CRV {_ROUTE_TAIL}")
        return
    unsupported(session, "BindAndRouteToGateway")


@command("RouteToInternalGateway", "rtig",
         usage="TARGET_ALIAS TARGET_IP CALLING_ENDPOINT_ID CRV " + _ROUTE_TAIL,
         summary="route a waiting call to an internal gateway")
def route_to_internal_gateway(factory, session, args):
    if not 4 <= len(args) <= 8:
        session.send_line("Syntax Error: RouteToInternalGateway TARGET_ALIAS TARGET_IP "
                          f"CALLING_ENDPOINT_ID CRV {_ROUTE_TAIL}")
        return
    unsupported(session, "RouteToInternalGateway")


@command("SendProceeding", usage="CALLID",
         summary="answer a routed call's Setup with the gatekeeper's own CallProceeding")
def send_proceeding(factory, session, args):
    if not args:
        session.send_line("Syntax Error: SendProceeding CALLID")
        return
    if not factory.control.routed():
        session.send_line("Error: SendProceeding needs gatekeeper-routed call signalling "
                          "(--routed or [RoutedMode] GKRouted=1)")
        return
    text = " ".join(args)
    call = _call_by_id(factory, text)
    if call is None:
        session.send_line(f"Can't find call ID {text}")
        return
    error = factory.control.send_proceeding(call)
    session.send_line(error if error is not None
                      else f"CallProceeding sent for call number {call.number}")


#: TransferCall's methods: GnuGk's default, Facility callForwarded, is the one
#: this gatekeeper has.
_TRANSFER_METHODS = ("facilityforward",)
_PARTY_WORDS = {"caller": "caller", "called": "callee", "callee": "callee"}


def _call_of_alias(factory, text: str):
    """The call a party with this alias is in, and which party it is: an
    established routed call first. None if the alias is in no call."""
    endpoint = factory.control.endpoint_with_alias(text)
    candidates = []
    if endpoint is not None:
        for call in factory.control.calls_of(endpoint):
            party = "caller" if call.caller_endpoint_id == endpoint.endpoint_id else "callee"
            candidates.append((call, party))
    else:
        for call in factory.control.calls():
            if any(alias.value == text for alias in call.source_info):
                candidates.append((call, "caller"))
            elif any(alias.value == text for alias in call.destination_info):
                candidates.append((call, "callee"))
    candidates.sort(key=lambda found: (not (found[0].routed and found[0].connected),
                                       found[0].number))
    return candidates[0] if candidates else None


@command("TransferCall", "tc",
         usage="SOURCE DESTINATION, or CALLID CALLER|CALLED DESTINATION [TRANSFER-METHOD]",
         summary="transfer an established routed call: the party asked calls DESTINATION")
def transfer_call(factory, session, args):
    if not 2 <= len(args) <= 4:
        session.send_line("Syntax Error: TransferCall SOURCE DESTINATION or TransferCall CALLID "
                          "CALLER|CALLED DESTINATION [TRANSFER-METHOD]")
        return
    if not factory.control.routed():
        session.send_line("Error: TransferCall needs gatekeeper-routed call signalling "
                          "(--routed or [RoutedMode] GKRouted=1)")
        return
    if len(args) == 2:
        found = _call_of_alias(factory, args[0])
        if found is None:
            session.send_line(f"Error: no call of {args[0]} found")
            return
        call, party = found
        target = args[1]
    else:
        party = _PARTY_WORDS.get(args[1].lower())
        if party is None:
            session.send_line("Syntax Error: TransferCall CALLID CALLER|CALLED DESTINATION "
                              "[TRANSFER-METHOD]")
            return
        target = args[2]
        if len(args) == 4 and args[3].lower() not in _TRANSFER_METHODS:
            session.send_line(f"Error: transfer method {args[3]} is not supported "
                              "(FacilityForward is)")
            return
        call = _call_by_id(factory, args[0])
        if call is None:
            session.send_line(f"Can't find call ID {args[0]}")
            return
    try:
        destination = _alias(target)
    except _BadWords as error:
        session.send_line(str(error))
        return
    error = factory.control.transfer(call, party, (destination,))
    if error is not None:
        session.send_line(error)
        return
    who = "caller" if party == "caller" else "called party"
    session.send_line(f"Transferring call number {call.number}: the {who} is asked to call "
                      f"{target}")


@command("RerouteCall", "rrc", usage="CALLID CALLER|CALLED DESTINATION",
         summary="reroute an established call (needs routed mode)")
def reroute_call(factory, session, args):
    if len(args) != 3:
        session.send_line("Syntax Error: RerouteCall CALLID CALLER|CALLED DESTINATION")
        return
    unsupported(session, "RerouteCall")


@command("MakeCall", "mc", usage="SOURCE DESTINATION [TRANSFER-METHOD]",
         summary="make a call from one alias to another")
def make_call(factory, session, args):
    if not 2 <= len(args) <= 3:
        session.send_line("Syntax Error: MakeCall SOURCE DESTINATION [TRANSFER-METHOD]")
        return
    try:
        source = _alias(args[0], "bad source")
        destination = _alias_or_address(args[1])
    except _BadWords as error:
        session.send_line(str(error))
        return
    session.send_line(factory.control.make_call(source, destination,
                                                args[2] if len(args) == 3 else None))


# -- one call in detail ----------------------------------------------------------


@command("PrintCallInfo", "pci", usage="CALL-ID",
         summary="everything known about one call, by call identifier")
def print_call_info(factory, session, args):
    if not args:
        session.send_line("Syntax Error: PrintCallInfo|pci CALL-ID")
        return
    text = " ".join(args)
    call = _call_by_id(factory, text)
    if call is None:
        # GnuGk prints an empty block; we say why inside it
        session.send_lines(["CallInfo", f"Error: no call with call ID {text}", ";"])
        return
    session.send_lines(["CallInfo", *call_info_lines(factory, call), ";"])


def _first_alias(aliases) -> str:
    return aliases[0].value if aliases else ""


def _vendor(factory, endpoint_id: str) -> str:
    endpoint = factory.control.endpoint(endpoint_id) if endpoint_id else None
    vendor = getattr(endpoint, "vendor", None)
    if vendor is None or not (vendor.product or vendor.version):
        return "unknown"
    return f"{vendor.product} {vendor.version}"


def call_info_lines(factory, call) -> list[str]:
    """GnuGk's ``PrintCallInfo`` fields for a call, as far as a direct-mode
    gatekeeper knows them (no codecs, no media addresses, no Q.931 IEs)."""
    now = factory.clock.seconds()
    since = call.connect_time if call.connect_time is not None else call.admission_time
    return [
        f"CallID: {guid_dashed(call.call_id)}",
        f"Status: {'Connected' if call.connected else 'Establishing'}",
        "CallType: Audio",
        f"MediaRouting: {'Routed' if call.routed else 'Direct'}",
        f"SetupTime: {rfc822(call.admission_time)}",
        f"ConnectTime: {rfc822(call.connect_time) if call.connected else ''}",
        f"Duration: {int(now - since)} sec ",
        f"CallerIP: {ip_port(call.caller_signal_address)}",
        f"CalledIP: {ip_port(call.callee_signal_address)}",
        f"CallerAlias: {_first_alias(call.source_info)}",
        f"CalledAlias: {_first_alias(call.destination_info)}",
        f"DialedNumber: {_first_alias(call.destination_info)}",
        "CallingPartyNumberIE: ",
        "CalledPartyNumberIE: ",
        f"CallerVendor: {_vendor(factory, call.caller_endpoint_id)}",
        f"CalledVendor: {_vendor(factory, call.callee_endpoint_id)}",
        f"GrantedBandwidth: {call.bandwidth // 10} kbps",
        "Encryption: Off",
        "AudioCodecCaller: ",
        "AudioCodecCalled: ",
        "AudioBitrateCaller: 0 kbps",
        "AudioBitrateCalled: 0 kbps",
    ]


# -- counters and debugging ----------------------------------------------------


@command("ResetCallCounters", summary="set the call counters back to zero")
def reset_call_counters(factory, session, args):
    factory.control.reset_call_counters()
    session.send_line("Call counters reset")


_DEBUG_HELP = [
    "Debug options:",
    "  trc [+|-|n]       Show/modify trace level for the log",
    "  cfg               Read and print config sections",
    "  cfg SEC PAR       Read and print a config PARameter in a SECtion",
    "  set SEC PAR VAL   Write a config VALue PARameter in a SECtion",
    "  remove SEC PAR    Remove a config VALue PARameter in a SECtion",
    "  remove SEC        Remove a SECtion",
    "  printrm VERBOSE   Print all removed endpoint records",
]


@command("Debug",
         usage="trc [+|-|n], cfg [SEC [PAR]], set SEC PAR VAL, remove SEC [PAR], printrm [VERBOSE]",
         summary="debugging: trc, cfg, set, remove, printrm")
def debug(factory, session, args):
    if not args:
        session.send_lines(_DEBUG_HELP)
        return
    what = args[0].lower()
    handler = _DEBUG.get(what)
    if handler is None or (what == "set" and len(args) < 4):
        session.send_line("Unknown debug command!")
        return
    handler(factory, session, args[1:])


def _debug_trc(factory, session, args):
    if args:
        word = args[0]
        if word == "+":
            factory.log_level += 1
        elif word == "-" and factory.log_level > 0:
            factory.log_level -= 1
        else:
            factory.log_level = _as_integer(word)   # GnuGk reads a non-number as 0
    session.send_line(f"Trace Level is now {factory.log_level}")


def _as_integer(word: str) -> int:
    """The leading whole number of a word, 0 if none (PTLib's AsInteger)."""
    digits = ""
    for index, char in enumerate(word):
        if char.isdigit() or (index == 0 and char in "+-"):
            digits += char
        else:
            break
    try:
        return int(digits)
    except ValueError:
        return 0


def _ini(factory):
    return factory.control.config_ini()


def _section_name(ini, name: str) -> str:
    """The section as the file spells it (names match case-insensitively)."""
    for existing in ini.sections:
        if existing.lower() == name.lower():
            return existing
    return name


def _debug_cfg(factory, session, args):
    ini = _ini(factory)
    if not args:
        session.send_lines(["Config sections", *(f"[{name}]" for name in ini.sections), ";"])
        return
    section = _section_name(ini, args[0])
    if len(args) >= 2:
        value = ini.get(section, args[1])
        session.send_lines([value if value is not None else "", ";"])
        return
    lines = [f"Section [{args[0]}]"]
    seen: set[str] = set()
    for key, _ in ini.items(section):
        if key.lower() not in seen:
            seen.add(key.lower())
            lines.append(f"{key}={ini.get(section, key)}")
    session.send_lines([*lines, ";"])


def _edit(factory, session, new_ini) -> bool:
    ok, message = factory.control.edit_config(new_ini)
    if not ok:
        session.send_line(f"Error: {message}")
    return ok


def _debug_set(factory, session, args):
    ini = _ini(factory)
    section, key, value = _section_name(ini, args[0]), args[1], " ".join(args[2:])
    if _edit(factory, session, ini.with_value(section, key, value)):
        now = _ini(factory).get(section, key)
        session.send_line(now if now is not None else "")


def _debug_remove(factory, session, args):
    if not args:
        session.send_line("Syntax Error: debug remove SEC [PAR]")
        return
    ini = _ini(factory)
    section = _section_name(ini, args[0])
    if len(args) >= 2:
        if _edit(factory, session, ini.without(section, args[1])):
            session.send_line(f"Remove {args[1]} in section {args[0]}")
    elif _edit(factory, session, ini.without(section)):
        session.send_line(f"Remove section {args[0]}")


def _debug_printrm(factory, session, args):
    verbose = bool(args)
    lines = ["AllRemoved"]
    removed = factory.control.removed_registrations()
    for endpoint, calls in removed:
        lines.append(rcf_line(endpoint))
        if verbose:
            lines.extend(verbose_lines(endpoint, calls))
    lines += [f"Number of Endpoints: {len(removed)}", ";"]
    session.send_lines(lines)


_DEBUG = {"trc": _debug_trc, "cfg": _debug_cfg, "set": _debug_set, "remove": _debug_remove,
          "printrm": _debug_printrm}


# -- filters ---------------------------------------------------------------------
# Each session's include/exclude lists (gatekeeper.status.filtering); they
# decide which event lines reach it while filtering is on.


def _filters(factory, session) -> StatusFilters:
    filters = getattr(session, "filters", None)
    if filters is None:
        make = getattr(factory, "make_filters", None)
        filters = make() if make is not None else None
        if filters is None:
            filters = StatusFilters()
        session.filters = filters
    return filters


def _add_filter(factory, session, args, kind: str) -> None:
    if len(args) != 1:
        session.send_line(f"Syntax Error: add{kind.lower()}filter REGEX")
        return
    filters = _filters(factory, session)
    try:
        (filters.add_include if kind == "Include" else filters.add_exclude)(args[0])
    except ValueError as error:
        session.send_line(f"Error: {error}")
        return
    session.send_line(f"{kind}Filter added")


def _remove_filter(factory, session, args, kind: str) -> None:
    if len(args) != 1 or not args[0].isdigit():
        session.send_line(f"Syntax Error: remove{kind.lower()}filter FILTER_INDEX")
        return
    filters = _filters(factory, session)
    try:
        (filters.remove_include if kind == "Include" else filters.remove_exclude)(int(args[0]))
    except IndexError:
        session.send_line("Index mismatch.")
        return
    session.send_line(f"{kind}Filter removed")


def _print_filters(session, patterns: list[str]) -> None:
    if not patterns:
        session.send_line("No Filters are defined")
        return
    session.send_lines(["Filter List:", *(f"{n}) {p}" for n, p in enumerate(patterns)), ";"])


@command("AddIncludeFilter", usage="REGEX",
         summary="add a regular expression to the include list")
def add_include_filter(factory, session, args):
    _add_filter(factory, session, args, "Include")


@command("AddExcludeFilter", usage="REGEX",
         summary="add a regular expression to the exclude list")
def add_exclude_filter(factory, session, args):
    _add_filter(factory, session, args, "Exclude")


@command("RemoveIncludeFilter", usage="FILTER_INDEX",
         summary="remove an include filter by its index")
def remove_include_filter(factory, session, args):
    _remove_filter(factory, session, args, "Include")


@command("RemoveExcludeFilter", usage="FILTER_INDEX",
         summary="remove an exclude filter by its index")
def remove_exclude_filter(factory, session, args):
    _remove_filter(factory, session, args, "Exclude")


@command("Filter", usage="[0|1]",
         summary="turn this session's event filtering on (1) or off (0)")
def filter_(factory, session, args):
    filters = _filters(factory, session)
    if args:
        if len(args) != 1 or args[0] not in ("0", "1"):
            session.send_line("Syntax Error: filter 0|1")
            return
        filters.enabled = args[0] == "1"
    session.send_line("Filtering is active" if filters.enabled else "Filtering is not active")


@command("PrintIncludeFilters", summary="list the include filters")
def print_include_filters(factory, session, args):
    _print_filters(session, _filters(factory, session).include)


@command("PrintExcludeFilters", summary="list the exclude filters")
def print_exclude_filters(factory, session, args):
    _print_filters(session, _filters(factory, session).exclude)


# -- listings of features this gatekeeper does not have (empty, truthfully) ------


@command("PrintAllCached", "pac", "rc", summary="list cached out-of-zone endpoints (none)")
def print_all_cached(factory, session, args):
    session.send_lines(["AllCached", "Number of Endpoints: 0", ";"])


def _prefix_text(prefixes: PrefixList) -> str:
    """A SendPrefixes/AcceptPrefixes list as the file would write it."""
    items = []
    for entry in prefixes.entries:
        text = entry.pattern
        if entry.alias_kind is not None:
            text = ALIAS_TAGS.get(entry.alias_kind, entry.alias_kind)
        if entry.negative:
            text = "!" + text
        if entry.priority != DEFAULT_PRIORITY:
            text += f":={entry.priority}"
        items.append(text)
    return ",".join(items)


@command("PrintNeighbors", "pn", summary="list the neighbor gatekeepers")
def print_neighbors(factory, session, args):
    """GnuGk's frame (``Neighbors`` ... ``Number of Neighbors: N``); GnuGk's
    line per neighbour is undocumented: ours is ``NAME<TAB>TYPE<TAB>host:port
    <TAB>SendPrefixes<TAB>AcceptPrefixes`` (doc/configuration.md)."""
    settings, _ = parse_neighbors(factory.control.config_ini())
    lines = ["Neighbors"]
    for neighbor in settings.neighbors:
        lines.append("\t".join((neighbor.name, neighbor.type,
                                format_address(neighbor.address),
                                _prefix_text(neighbor.send_prefixes),
                                _prefix_text(neighbor.accept_prefixes))))
    lines += [f"Number of Neighbors: {len(settings.neighbors)}", ";"]
    session.send_lines(lines)


@command("PrintCurrentCallsPorts", "pccp", summary="list the dynamic ports of each call")
def print_current_calls_ports(factory, session, args):
    session.send_lines(["CurrentCallsPorts", "Port accounting is only active when notifications "
                        "are configured in [PortNotifications]", ";"])


@command("PrintPrefixCapacities", "printpc", usage="[ALIAS]",
         summary="list prefix capacities (none)")
def print_prefix_capacities(factory, session, args):
    if len(args) > 1:
        session.send_line("Syntax Error: PrintPrefixCapacities [ALIAS]")
        return
    session.send_lines(["PrefixCapacities", ";"])


@command("PrintEndpointQoS", "peq", summary="QoS values of every endpoint")
def print_endpoint_qos(factory, session, args):
    endpoints = factory.control.endpoints()
    lines = ["EndpointQoS"]
    for endpoint in endpoints:
        last = time.strftime("%Y-%m-%d T %H:%M:%S Z", time.gmtime(endpoint.last_seen))
        active = factory.control.call_counts(endpoint).active
        lines.append(f"QoS|{format_aliases(endpoint.aliases)}|{last}|{active}|"
                     "0.00%|0|0.00%|0")
    lines += [f"Number of Endpoints: {len(endpoints)}", ";"]
    session.send_lines(lines)


@command("PrintCC", summary="CapacityControl counters (not supported)")
def print_cc(factory, session, args):
    unsupported(session, "CapacityControl")


@command("PrintEventBacklog", summary="the status event backlog (not supported)")
def print_event_backlog(factory, session, args):
    unsupported(session, "PrintEventBacklog")


@command("PrintAllConfigSwitches", summary="every known configuration key (not supported)")
def print_all_config_switches(factory, session, args):
    unsupported(session, "PrintAllConfigSwitches")


@command("GetAuthInfo", "gai", usage="AUTH_MODULE_NAME",
         summary="information from an authentication module")
def get_auth_info(factory, session, args):
    if len(args) != 1:
        session.send_line("Syntax Error: GetAuthInfo|gai AUTH_MODULE_NAME")
        return
    session.send_line(f"Error: no authentication module {args[0]}")


@command("GetAcctInfo", "gci", usage="ACCT_MODULE_NAME",
         summary="information from an accounting module")
def get_acct_info(factory, session, args):
    if len(args) != 1:
        session.send_line("Syntax Error: GetAcctInfo|gci ACCT_MODULE_NAME")
        return
    session.send_line(f"Error: no accounting module {args[0]}")


@command("GetLicenseStatus", summary="license status (not supported)")
def get_license_status(factory, session, args):
    unsupported(session, "GetLicenseStatus")


@command("GetServerId", summary="server identifier (not supported)")
def get_server_id(factory, session, args):
    unsupported(session, "GetServerId")


@command("MaintenanceMode", "maintenance", usage="[off]",
         summary="maintenance mode (not supported)")
def maintenance_mode(factory, session, args):
    unsupported(session, "MaintenanceMode")


@command("RotateLog", "rl", summary="rotate the log file (twistd's log rotates itself)")
def rotate_log(factory, session, args):
    unsupported(session, "RotateLog")


@command("SetLog", usage="LOGFILEPATH",
         summary="log to another file (not supported)")
def set_log(factory, session, args):
    if len(args) != 1:
        session.send_line("Syntax Error: setlog <logfilepath>")
        return
    unsupported(session, "SetLog")


@command("Reload", summary="re-read the configuration file")
def reload(factory, session, args):
    if args:
        # GnuGk's partial reloads; this gatekeeper reloads the whole file only
        session.send_line("Syntax Error: Reload <AcctConfig|AuthConfig|CapConfig|EpConfig>")
        return
    # The outcome reaches every session through the ConfigReloaded event:
    # "Full Config reloaded." or "Reload failed: <file, section, key, value>".
    factory.control.reload("command")


@command("Shutdown", in_full=True,
         summary="stop the gatekeeper (if [GkStatus::Auth] Shutdown allows)")
def shutdown(factory, session, args):
    if not factory.auth.shutdown_allowed:
        session.send_line("Shutdown not allowed!")   # GnuGk's words
        return
    statistics(factory, session, [])
    if not factory.control.shutdown():
        session.send_line("Error: this gatekeeper cannot be stopped from here")
        return
    factory.log.info("shutdown requested by status client {peer}", peer=session.peer)


@command("DisconnectSession", "ds", usage="SESSION_ID",
         summary="close another status session by its number")
def disconnect_session(factory, session, args):
    if len(args) != 1 or not args[0].isdigit():
        session.send_line("Syntax Error: DisconnectSession SESSION_ID")
        return
    for other in list(factory.sessions):
        if other.number == int(args[0]):
            other.close()
            session.send_line(f"Session {args[0]} disconnected")
            return
    session.send_line(f"Session {args[0]} not found")


@command("Exit", "q", "quit", summary="leave the status port")
def exit_(factory, session, args):
    session.close()


def python_version() -> str:
    return sys.version.split()[0]
