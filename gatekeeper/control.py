"""What the status port may see of the gatekeeper and do to it.

:class:`GatekeeperControl` is the narrow interface the status factory is
given instead of the service: read-only views of the registrations and the
calls (snapshots, so a listing never iterates a table that changes under
it), the call counters, and the actions the commands take: unregister,
disconnect, answer a virtual queue, transfer a routed call, send a
CallProceeding, reload, edit the configuration, stop.  The commands parse
their words; this object takes typed values and answers with None (done)
or the error line to show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol

from gatekeeper.core.calls import Call, CallTable, EndpointCalls
from gatekeeper.core.registry import Endpoint, Registry
from gatekeeper.core.vqueue import VirtualQueues
from gatekeeper.h225.ras import Address, Alias

if TYPE_CHECKING:      # pragma: no cover - types only
    from gatekeeper.configfile import IniFile
    from gatekeeper.signalling.makecall import MakeCalls
    from gatekeeper.signalling.relay import SignallingServer


class Terminator(Protocol):
    """What the control needs of the RAS side: end a registration, end a call."""

    def unregister(self, endpoint: Endpoint, reason: str = ...) -> object: ...

    def disconnect(self, call: Call, reason: str = ...) -> object: ...


@dataclass(frozen=True, slots=True)
class CallCounters:
    """The numbers ``Statistics`` prints about calls."""

    current: int
    active: int                 # connected
    proxied: int                # routed through the gatekeeper
    total: int
    connected: int
    total_routed: int
    peak: int
    peak_time: float | None
    from_neighbor: int = 0      # current calls from a neighbour's zone
    from_parent: int = 0        # current calls from the parent's zone
    total_from_neighbor: int = 0
    total_from_parent: int = 0


#: Names of the parties of a call a transfer may name.
PARTIES = ("caller", "callee")


class GatekeeperControl:
    """The status port's view of the gatekeeper."""

    def __init__(self, registry: Registry, calls: CallTable, terminator: Terminator,
                 virtual_queues: VirtualQueues | None,
                 signalling: Callable[[], SignallingServer | None],
                 config_ini: Callable[[], IniFile],
                 edit_config: Callable[[IniFile], tuple[bool, str]],
                 reload: Callable[[str], object], shutdown: Callable[[], bool],
                 gatekeeper_name: Callable[[], str], start_time: Callable[[], float],
                 make_calls: Callable[[], MakeCalls | None] = lambda: None,
                 parent_lines: Callable[[], list[str]] = lambda: ["not registered\t"]) -> None:
        self._registry = registry
        self._calls = calls
        self._terminator = terminator
        self._queues = virtual_queues
        self._signalling = signalling
        self._config_ini = config_ini
        self._edit_config = edit_config
        self._reload = reload
        self._shutdown = shutdown
        self._name = gatekeeper_name
        self._start_time = start_time
        self._make_calls = make_calls
        self._parent_lines = parent_lines

    def parent_gatekeeper(self) -> list[str]:
        """The ``GK`` command's lines: ``IP:PORT\\tENDPOINTID`` while
        registered at a parent, else ``not registered\\tREASON``."""
        return self._parent_lines()

    # -- registrations ---------------------------------------------------

    def gatekeeper_name(self) -> str:
        return self._name()

    def start_time(self) -> float:
        """When the gatekeeper started (seconds since the epoch)."""
        return self._start_time()

    def endpoints(self) -> list[Endpoint]:
        """Every registration, as a list the caller may keep."""
        return list(self._registry)

    def endpoint(self, endpoint_id: str) -> Endpoint | None:
        return self._registry.get(endpoint_id)

    def endpoint_with_alias(self, alias: Alias | str) -> Endpoint | None:
        return self._registry.find_alias(alias)

    def endpoint_for(self, text: str) -> Endpoint | None:
        """By alias, then by the longest gateway prefix (what Find accepts)."""
        endpoint = self._registry.find_alias(text)
        if endpoint is None:
            match = self._registry.longest_prefix(text)
            if match is not None:
                endpoint = match[0]
        return endpoint

    def endpoint_at(self, address: Address) -> Endpoint | None:
        """The endpoint whose call signalling address this is."""
        return self._registry.find_signal(address)

    def endpoints_at_ip(self, ip: str) -> list[Endpoint]:
        return list(self._registry.find_ip(ip))

    def removed_endpoints(self) -> list[Endpoint]:
        """The registrations that ended, oldest first."""
        return [removed.endpoint for removed in self._registry.removed]

    def removed_registrations(self) -> list[tuple[Endpoint, EndpointCalls]]:
        """The registrations that ended, oldest first, each with its call
        counters as they stood when it ended."""
        return [(removed.endpoint, removed.calls) for removed in self._registry.removed]

    def call_counts(self, endpoint: Endpoint) -> EndpointCalls:
        """A registered endpoint's call counters (active, connected, total),
        from the call table."""
        return self._calls.counts(endpoint.endpoint_id)

    def unregister(self, endpoint: Endpoint, reason: str = "maintenance") -> None:
        self._terminator.unregister(endpoint, reason)

    # -- calls -----------------------------------------------------------

    def calls(self) -> list[Call]:
        return list(self._calls)

    def call(self, number: int) -> Call | None:
        return self._calls.get(number)

    def call_with_id(self, call_id: bytes) -> Call | None:
        return self._calls.find_call_id(call_id)

    def calls_of(self, endpoint: Endpoint) -> list[Call]:
        return list(self._calls.of_endpoint(endpoint.endpoint_id))

    def call_counters(self) -> CallCounters:
        calls = self._calls
        current = list(calls)
        return CallCounters(len(current), sum(1 for c in current if c.connected),
                            sum(1 for c in current if c.routed), calls.total,
                            calls.total_connected, calls.total_routed, calls.peak,
                            calls.peak_time,
                            sum(1 for c in current if c.zone == "neighbor"),
                            sum(1 for c in current if c.zone == "parent"),
                            calls.total_from["neighbor"], calls.total_from["parent"])

    def reset_call_counters(self) -> None:
        self._calls.reset_counters()

    def disconnect(self, call: Call, reason: str = "forcedDrop") -> None:
        self._terminator.disconnect(call, reason)

    # -- routed calls ----------------------------------------------------

    def routed(self) -> bool:
        return self._signalling() is not None

    def transfer(self, call: Call, party: str, destination: tuple[Alias, ...]) -> str | None:
        """Ask ``party`` (caller or callee) of a routed, established call to
        call ``destination`` instead (Facility callForwarded)."""
        server = self._signalling()
        if server is None:
            return ("Error: TransferCall needs gatekeeper-routed call signalling "
                    "(--routed or [RoutedMode] GKRouted=1)")
        return server.transfer(call, party, destination)

    def send_proceeding(self, call: Call) -> str | None:
        """Answer the caller's Setup with the gatekeeper's own CallProceeding."""
        server = self._signalling()
        if server is None:
            return ("Error: SendProceeding needs gatekeeper-routed call signalling "
                    "(--routed or [RoutedMode] GKRouted=1)")
        return server.send_proceeding(call)

    def make_call(self, source: Alias, destination: Alias | Address,
                  method: str | None = None) -> str:
        """MakeCall: the line that says what was started, or why not."""
        engine = self._make_calls()
        if engine is None:
            return "Error: MakeCall is not available in this gatekeeper"
        return engine.make_call(source, destination, method)

    # -- virtual queues --------------------------------------------------

    def route_to_alias(self, endpoint_id: str, crv: int, call_id: bytes | None,
                       alias: Alias) -> str | None:
        if self._queues is None:
            return f"Error: no RouteRequest pending for {endpoint_id} {crv}"
        return self._queues.route_to_alias(endpoint_id, crv, call_id, alias)

    def route_to_gateway(self, endpoint_id: str, crv: int, call_id: bytes | None,
                         alias: Alias, address: Address) -> str | None:
        if self._queues is None:
            return f"Error: no RouteRequest pending for {endpoint_id} {crv}"
        return self._queues.route_to_gateway(endpoint_id, crv, call_id, alias, address)

    def route_reject(self, endpoint_id: str, crv: int, call_id: bytes | None,
                     reason: str | int | None) -> str | None:
        if self._queues is None:
            return f"Error: no RouteRequest pending for {endpoint_id} {crv}"
        return self._queues.reject(endpoint_id, crv, call_id, reason)

    # -- configuration and life ------------------------------------------

    def config_ini(self) -> IniFile:
        return self._config_ini()

    def edit_config(self, ini: IniFile) -> tuple[bool, str]:
        return self._edit_config(ini)

    def reload(self, source: str = "command") -> None:
        self._reload(source)

    def shutdown(self) -> bool:
        return self._shutdown()
