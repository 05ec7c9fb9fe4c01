"""Status-port commands: one function each, and the table of names and aliases.

Names are case-insensitive; a unique prefix of a name or alias is accepted
and an ambiguous one is an unknown command, as in GnuGk.  Arguments keep
their case and are split on spaces and tabs.  Output formats follow the
status-port document (the contract) and, where it is silent, GnuGk 5.15.

This is the first part of the command set: listing, finding, tracing and
leaving; the control commands (unregister, disconnect, routing, debug,
reload, ...) join the same table.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import twisted

import gatekeeper
from gatekeeper.h225.ras import format_address, format_aliases, guid_dashed, guid_spaced
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


TABLE: dict[str, Command] = {}       # every lower-case name and alias -> command
COMMANDS: list[Command] = []


def command(name: str, *aliases: str, summary: str = "") -> Callable[[Run], Run]:
    def register(run: Run) -> Run:
        entry = Command(name, aliases, run, summary)
        COMMANDS.append(entry)
        for key in (name, *aliases):
            TABLE[key.lower()] = entry
        return run
    return register


def lookup(word: str) -> Command | None:
    """Exact name or alias, else the one command whose name or alias starts with it."""
    key = word.lower()
    if key in TABLE:
        return TABLE[key]
    matches = {entry.name for k, entry in TABLE.items() if k.startswith(key)}
    if len(matches) == 1:
        return next(e for e in COMMANDS if e.name in matches)
    return None


def run(factory: "StatusFactory", session: "StatusSession", line: str) -> None:
    words = line.replace("\t", " ").split()
    if not words:
        return  # an empty line gets no output
    entry = lookup(words[0])
    if entry is None:
        session.send_line(f"Error: Unknown command '{words[0]}'")
        return
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


def verbose_lines(endpoint) -> list[str]:
    lines = [f"{rfc822(endpoint.registration_time)} C({endpoint.active_calls}/"
             f"{endpoint.connected_calls}/{endpoint.total_calls}) <1>"]
    if endpoint.endpoint_type == "gateway" and endpoint.prefixes:
        lines.append("Prefixes: " + ",".join(endpoint.prefixes))
    return lines


def find_endpoint(factory: "StatusFactory", text: str):
    """By alias, then by gateway prefix (what Find accepts)."""
    registry = factory.gatekeeper.registry
    endpoint = registry.find_alias(text)
    if endpoint is None:
        match = registry.longest_prefix(text)
        if match is not None:
            endpoint = match[0]
    return endpoint


# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------


@command("Help", "h", summary="list the commands")
def help_(factory, session, args):
    names = sorted(TABLE)
    session.send_lines(["Commands:", *names, ";"])


@command("Version", "v", summary="version and system information")
def version(factory, session, args):
    session.send_lines(version_lines(factory))


@command("Statistics", "s", summary="endpoint and call statistics")
def statistics(factory, session, args):
    registry = factory.gatekeeper.registry
    calls = factory.gatekeeper.calls
    endpoints = list(registry)
    gateways = sum(1 for e in endpoints if e.endpoint_type == "gateway")
    active = sum(1 for c in calls if c.connected)
    session.send_lines([
        "-- Endpoint Statistics --",
        f"Total Endpoints: {len(endpoints)} Terminals: {len(endpoints) - gateways} "
        f"Gateways: {gateways} NATed: 0",
        "Cached Endpoints: 0 Terminals: 0 Gateways: 0",
        "-- Call Statistics --",
        f"Current Calls: {len(calls)} Active: {active} From Neighbor: 0 From Parent: 0",
        f"Total Calls: {calls.total} Successful: {calls.total_connected} From Neighbor: 0 "
        f"From Parent: 0",
        startup_line(factory).replace("   Running", " Running"),
        ";",
    ])


@command("PrintAllRegistrations", "r", "?", "par", summary="list registered endpoints")
def print_all_registrations(factory, session, args):
    _registrations(factory, session, verbose=False)


@command("PrintAllRegistrationsVerbose", "rv", "??", "parv",
         summary="list registered endpoints with details")
def print_all_registrations_verbose(factory, session, args):
    _registrations(factory, session, verbose=True)


def _registrations(factory, session, verbose: bool) -> None:
    endpoints = list(factory.gatekeeper.registry)   # a snapshot: the table may change

    def lines():
        yield "AllRegistrations"
        for endpoint in endpoints:
            yield rcf_line(endpoint)
            if verbose:
                yield from verbose_lines(endpoint)
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
    calls = list(factory.gatekeeper.calls)   # a snapshot

    def lines():
        yield "CurrentCalls"
        for call in calls:
            yield from _call_lines(call, now, verbose)
        active = sum(1 for call in calls if call.connected)
        yield (f"Number of Calls: {len(calls)} Active: {active} From Neighbor: 0 From Parent: 0 "
               f"Proxied: 0")
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


@command("Find", "f", summary="find an endpoint by alias or prefix")
def find(factory, session, args):
    _find(factory, session, args, verbose=False)


@command("FindVerbose", "fv", summary="find an endpoint by alias or prefix, with details")
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
        lines.extend(verbose_lines(endpoint))
    lines.append(";")
    session.send_lines(lines)


@command("Trace", summary="set this session's output trace level: 0|1|2|min|max")
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


@command("Yell", summary="send a message to every session")
def yell(factory, session, args):
    host = session.transport.getHost()
    # GnuGk repeats the whole command line after the sender's user name
    factory.broadcast(f"  {session.number}\t{session.peer}=>{host.host}:{host.port}\t"
                      f"{session.user}: {' '.join(['yell', *args])}")


# -- control: unregister and disconnect ---------------------------------------
# Their results reach every session, whatever its trace level (as in GnuGk);
# the URQ/DRQ/CDR lines come from the events the controller publishes.


def _endpoint_at(factory, text: str):
    """The endpoint registered at ``ip[:port]`` (its signalling address)."""
    from gatekeeper.h225.ras import parse_address

    registry = factory.gatekeeper.registry
    try:
        address = parse_address(text, 1720)
    except ValueError:
        return None
    if text.count(":") == 1 or "]:" in text:   # a port was given
        return registry.find_signal(address)
    found = registry.find_ip(address[0])
    return found[0] if found else None


def _unregister(factory, session, args, usage: str, find, not_found: str) -> None:
    if len(args) != 1:
        session.send_line(f"Syntax Error: {usage}")
        return
    endpoint = find(args[0])
    if endpoint is None:
        factory.broadcast(not_found.format(args[0]))
        return
    factory.gatekeeper.controller.unregister(endpoint, "maintenance")
    factory.broadcast(f"SoftPBX: Endpoint {args[0]} unregistered!")


@command("UnregisterIP", "uip", summary="unregister the endpoint at IP[:Port]")
def unregister_ip(factory, session, args):
    _unregister(factory, session, args, "UnregisterIp IP_ADDRESS",
                lambda text: _endpoint_at(factory, text), "IP {} not found!")


@command("UnregisterAlias", "ua", summary="unregister the endpoint with this alias")
def unregister_alias(factory, session, args):
    _unregister(factory, session, args, "UnregisterAlias ALIAS",
                factory.gatekeeper.registry.find_alias, "Alias {} not found!")


@command("UnregisterAllEndpoints", "uae", summary="unregister every endpoint")
def unregister_all(factory, session, args):
    controller = factory.gatekeeper.controller
    for endpoint in list(factory.gatekeeper.registry):
        if not endpoint.permanent:
            controller.unregister(endpoint, "maintenance")
    session.send_lines(["Done", ";"])


@command("DisconnectCall", "dc", summary="disconnect calls by number")
def disconnect_call(factory, session, args):
    if not args:
        session.send_line("Syntax Error: DisconnectCall CALL_NUMBER [CALL_NUMBER...]")
        return
    calls = factory.gatekeeper.calls
    for text in args:
        call = calls.get(int(text)) if text.isdigit() else None
        if call is None:
            factory.broadcast(f"Can't find call number {text}")
            continue
        factory.gatekeeper.controller.disconnect(call, "forcedDrop")
        factory.broadcast(f"Call number {text} disconnected.")


def _disconnect_endpoint(factory, endpoint) -> bool:
    calls = factory.gatekeeper.calls.of_endpoint(endpoint.endpoint_id) if endpoint else []
    for call in calls:
        factory.gatekeeper.controller.disconnect(call, "forcedDrop")
    return bool(calls)


@command("DisconnectIP", "dip", summary="disconnect the calls of the endpoint at IP[:Port]")
def disconnect_ip(factory, session, args):
    if len(args) != 1:
        session.send_line("Syntax Error: DisconnectIP IP[:PORT]")
        return
    if not _disconnect_endpoint(factory, _endpoint_at(factory, args[0])):
        factory.broadcast("No endpoint to disconnect!")


@command("DisconnectAlias", "dca", summary="disconnect the calls of the endpoint with this alias")
def disconnect_alias(factory, session, args):
    if len(args) != 1:
        session.send_line("Syntax Error: DisconnectAlias ALIAS")
        return
    endpoint = factory.gatekeeper.registry.find_alias(args[0])
    if not _disconnect_endpoint(factory, endpoint):
        factory.broadcast("No endpoint to disconnect!")


@command("ClearCalls", "cc", summary="disconnect every call")
def clear_calls(factory, session, args):
    for call in list(factory.gatekeeper.calls):
        factory.gatekeeper.controller.disconnect(call, "forcedDrop")
    factory.broadcast("All calls cleared.")


# -- virtual queues and call transfer ------------------------------------------
# RouteToAlias/RouteToGateway/RouteReject answer pending RouteRequests; the
# virtual queue service registers itself as ``gatekeeper.virtual_queues``
# (an object with ``answer(kind, args) -> str``). Until then nothing is pending.


def _route_answer(factory, session, args, kind: str, usage: str, minimum: int) -> None:
    if len(args) < minimum:
        session.send_line(f"Syntax Error: {usage}")
        return
    queues = getattr(factory.gatekeeper, "virtual_queues", None)
    if queues is None:
        epid, crv = args[minimum - 2], args[minimum - 1]
        session.send_line(f"Error: no RouteRequest pending for {epid} {crv}")
        return
    session.send_line(queues.answer(kind, args))


@command("RouteToAlias", "rta", summary="route a call waiting in a virtual queue to an alias")
def route_to_alias(factory, session, args):
    _route_answer(factory, session, args, "alias",
                  "RouteToAlias TARGET_ALIAS CALLING_ENDPOINT_ID CRV [CALLID]", 3)


@command("RouteToGateway", "rtg", summary="route a waiting call to a gateway's address")
def route_to_gateway(factory, session, args):
    _route_answer(factory, session, args, "gateway",
                  "RouteToGateway TARGET_ALIAS TARGET_IP[:PORT] CALLING_ENDPOINT_ID CRV [CALLID]", 4)


@command("RouteReject", "rr", summary="reject a call waiting in a virtual queue")
def route_reject(factory, session, args):
    _route_answer(factory, session, args, "reject",
                  "RouteReject CALLING_ENDPOINT_ID CRV [CALLID]", 2)


@command("TransferCall", "tc", summary="transfer an established call (needs routed mode)")
def transfer_call(factory, session, args):
    if len(args) != 2:
        session.send_line("Syntax Error: TransferCall SOURCE_ALIAS NEW_DESTINATION_ALIAS")
        return
    session.send_line("Error: TransferCall needs gatekeeper-routed call signalling, "
                      "which this gatekeeper does not carry yet")


# -- counters and debugging ----------------------------------------------------


@command("ResetCallCounters", summary="set the call counters back to zero")
def reset_call_counters(factory, session, args):
    calls = factory.gatekeeper.calls
    calls.total = 0
    calls.total_connected = 0
    session.send_line("Call counters reset")


_DEBUG_HELP = [
    "Debug options:",
    "  trc [+|-|n]       Show/modify trace level for the log",
    "  printrm VERBOSE   Print all removed endpoint records",
]


@command("Debug", summary="debugging: trc, printrm")
def debug(factory, session, args):
    if not args:
        session.send_lines(_DEBUG_HELP)
        return
    what = args[0].lower()
    if what == "trc":
        level = factory.log_level
        if len(args) > 1:
            word = args[1]
            if word == "+":
                level += 1
            elif word == "-":
                level = max(0, level - 1)
            elif word.isdigit():
                level = int(word)
            else:
                session.send_line("Syntax Error: debug trc [+|-|n]")
                return
            factory.log_level = level
        session.send_line(f"Trace Level is now {factory.log_level}")
    elif what == "printrm":
        verbose = len(args) > 1
        lines = ["AllRemoved"]
        removed = list(factory.gatekeeper.registry.removed)
        for _, _, endpoint in removed:
            lines.append(rcf_line(endpoint))
            if verbose:
                lines.extend(verbose_lines(endpoint))
        lines += [f"Number of Endpoints: {len(removed)}", ";"]
        session.send_lines(lines)
    else:
        session.send_lines(_DEBUG_HELP)


@command("Reload", summary="re-read the configuration file")
def reload(factory, session, args):
    if args:
        session.send_line("Syntax Error: Reload")
        return
    # The outcome reaches every session through the ConfigReloaded event:
    # "Full Config reloaded." or "Reload failed: <file, section, key, value>".
    factory.gatekeeper.reload("command")


@command("Shutdown", summary="stop the gatekeeper (if [GkStatus::Auth] Shutdown allows)")
def shutdown(factory, session, args):
    if not factory.auth.shutdown_allowed:
        session.send_line("Error: Shutdown is forbidden by [GkStatus::Auth] Shutdown")
        return
    statistics(factory, session, [])
    if not factory.gatekeeper.shutdown():
        session.send_line("Error: this gatekeeper cannot be stopped from here")
        return
    factory.log.info("shutdown requested by status client {peer}", peer=session.peer)


@command("DisconnectSession", "ds", summary="close another status session by its number")
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
