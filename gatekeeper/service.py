"""The gatekeeper's service tree: the tables, the bus and the listening ports."""

from __future__ import annotations

import errno
import signal
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Callable, Iterator

from twisted.application import internet, service
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IReactorTCP, IReactorTime
from twisted.logger import Logger

from gatekeeper import config as configuration
from gatekeeper.config import Config, ConfigError, IniFile
from gatekeeper.control import GatekeeperControl
from gatekeeper.errors import GatekeeperError
from gatekeeper.core.calls import CallTable
from gatekeeper.core.registry import Endpoint, Registry, RegistrySettings
from gatekeeper.core.routing import Router, build_router
from gatekeeper.core.vqueue import VirtualQueues
from gatekeeper.accounting import Accounting
from gatekeeper.manhole import gatekeeper_namespace, manhole_service
from gatekeeper.events import AccountingLine, ConfigReloaded, EventBus
from gatekeeper.ras.client import ParentClient, ParentPolicy
from gatekeeper.ras.controller import RasConfig, RasController, RasSettings
from gatekeeper.ras.protocol import (DISCOVERY_PORT, DiscoveryProtocol, RasProtocol,
                                     local_ip_towards)
from gatekeeper.status.protocol import StatusFactory, StatusSettings
from gatekeeper.core.admission import SetupAdmission
from gatekeeper.signalling.makecall import MakeCalls
from gatekeeper.signalling.relay import SignallingServer, setup_settings, signalling_settings


@dataclass(frozen=True, slots=True)
class ListenSettings:
    """Where the gatekeeper listens."""

    interface: str = ""              # "" = every interface
    ras_port: int = 1719
    discovery_port: int = DISCOVERY_PORT   # 0 turns multicast discovery off
    status_port: int = 7000          # 0 turns the status port off
    status_interface: str = "127.0.0.1"   # safer than GnuGk's every-interface default
    call_signal_port: int = 0        # routed mode's call signalling (TCP); 0: none


#: listen() backlog of the call signalling port (the kernel caps it at somaxconn).
SIGNALLING_BACKLOG = 1024


class ListenError(GatekeeperError):
    """A socket the gatekeeper needs could not be opened at start.

    The text is one line: protocol, address, port, what the socket is for and
    why it failed (``cannot listen on UDP 127.0.0.1:1719 (RAS): address
    already in use``).  It is kept short: a daemonizing twistd hands the first
    100 bytes of it to the parent process, which prints them; the log line
    has it whole, with the options and keys that set the port.
    """


#: The listening children of the service: name -> (protocol, what for, the
#: options and keys that set the port).
_LISTENERS = {
    "ras": ("UDP", "RAS", "--ras-port, [Gatekeeper::Main] UnicastRasPort"),
    "discovery": ("UDP", "multicast discovery",
                  "--discovery-port, [Gatekeeper::Main] MulticastPort"),
    "status": ("TCP", "status port", "--status-port, [Gatekeeper::Main] StatusPort"),
    "signalling": ("TCP", "call signalling", "--call-signal-port, [RoutedMode] CallSignalPort"),
    "manhole": ("TCP", "manhole", "[Manhole] Port"),
}

_REASONS = {
    errno.EADDRINUSE: "address already in use",
    errno.EADDRNOTAVAIL: "this host has no such address",
    errno.EACCES: "permission denied",
}

#: The options and keys that set the address, for an address the host lacks.
_ADDRESS_HINT = "--interface, [Gatekeeper::Main] Home"


def _reason(error: BaseException) -> str:
    number = getattr(error, "errno", None)
    if number in _REASONS:
        return _REASONS[number]
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


class GatekeeperService(service.MultiService):
    """Owns the registry, the call table, the event bus and the RAS service."""

    log = Logger()

    def __init__(self, settings: RasSettings, listen: ListenSettings, clock: IReactorTime,
                 config: Config | None = None, connector: IReactorTCP | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.listen = listen
        self.clock = clock
        self.config = config if config is not None else Config()
        self.bus = EventBus(clock)
        registry_settings = self._registry_settings(self.config, settings)
        self.calls = CallTable()          # it owns the endpoints' call counters too
        self.registry = Registry(registry_settings.id_suffix,
                                 configured_prefixes=registry_settings.configured_prefixes,
                                 calls=self.calls)
        self.virtual_queues = VirtualQueues(self.config.virtual_queues, self.bus, clock,
                                            self.registry)
        self.controller = RasController(settings, self.bus, clock, self.registry, self.calls)
        self.ras_protocol = RasProtocol(self.controller, clock)
        self.ras_server = internet.UDPServer(listen.ras_port, self.ras_protocol,
                                             interface=listen.interface, maxPacketSize=8192)
        self.ras_server.setName("ras")
        self.ras_server.setServiceParent(self)
        if listen.discovery_port:
            discovery = DiscoveryProtocol(self.ras_protocol, listen.interface)
            # Bound to every address: a socket bound to one unicast address
            # never sees datagrams sent to the group. The group is joined on
            # the configured interface (DiscoveryProtocol.startProtocol).
            self.discovery_server = internet.MulticastServer(
                listen.discovery_port, discovery, interface="", listenMultiple=True)
            self.discovery_server.setName("discovery")
            self.discovery_server.setServiceParent(self)
        self.start_time = clock.seconds()
        main = self.config.main
        self.status = StatusFactory(self._control(), clock,
                                    default_trace_level=main.status_trace_level,
                                    max_clients=main.max_status_clients,
                                    auth=self.config.status_auth)
        self.bus.subscribe(self.status)
        # After the status factory, so that a CDR line comes before CALL|Stop.
        self.accounting = self._accounting(self.config)
        self.bus.subscribe(self.accounting)
        self.manhole = None
        # [Endpoint]: our registration at a parent gatekeeper, on its own socket.
        self.parent_client = ParentClient(self.config.endpoint, clock, self._parent_signal_address)
        self.parent_policy = ParentPolicy(self.parent_client)
        self.parent_server: internet.UDPServer | None = None
        self.bus.subscribe(self.parent_client.observe)
        self._take(self.config)
        if listen.status_port:
            self.status_server = internet.TCPServer(listen.status_port, self.status,
                                                    interface=listen.status_interface)
            self.status_server.setName("status")
            self.status_server.setServiceParent(self)
        self.signalling: SignallingServer | None = None
        if listen.call_signal_port:
            self.signalling = self._signalling(connector if connector is not None else clock)
            # A burst of calls (or of connections that never send a Setup)
            # must not overflow the accept queue: Twisted's default is 50.
            self.signalling_server = internet.TCPServer(listen.call_signal_port, self.signalling,
                                                        backlog=SIGNALLING_BACKLOG,
                                                        interface=listen.interface)
            self.signalling_server.setName("signalling")
            self.signalling_server.setServiceParent(self)
        # MakeCall's pseudo endpoint (direct and routed mode).
        self.make_calls = MakeCalls(
            self.signalling.admission if self.signalling is not None
            else SetupAdmission(self.controller.admission),
            self.clock, connector if connector is not None else clock, self.config.make_call,
            bind_address=listen.interface or None,
            signal_address=lambda: self.settings.signal_address)
        self.bus.subscribe(self.make_calls)

    def _signalling(self, connector: IReactorTCP) -> SignallingServer:
        """Routed mode: Setups matched to their calls, a relay per call."""
        admission = SetupAdmission(self.controller.admission, setup_settings(self.config.routed_mode),
                                   is_neighbour=self._is_neighbour_ip,
                                   is_parent=self._is_parent_ip)
        server = SignallingServer(admission, self.clock, connector,
                                  signalling_settings(self.config.routed_mode),
                                  bind_address=self.listen.interface or None)
        self.bus.subscribe(server)
        return server

    def _is_neighbour_ip(self, ip: str) -> bool:
        """Whether a Setup from ``ip`` comes from a neighbour's zone."""
        return self.controller.config.neighbors.sender_of(ip) is not None

    def _is_parent_ip(self, ip: str) -> bool:
        """Whether a Setup from ``ip`` comes from the parent's zone."""
        parent = self.parent_client.settings.parent
        return parent is not None and parent[0] == ip

    def _control(self) -> GatekeeperControl:
        """The status port's narrow view of the gatekeeper."""
        return GatekeeperControl(
            self.registry, self.calls, self.controller, self.virtual_queues,
            signalling=lambda: getattr(self, "signalling", None),
            # looked up at each use: tests (and a manhole user) may replace them
            config_ini=lambda: self.config.ini, edit_config=lambda ini: self.edit_config(ini),
            reload=lambda source: self.reload(source), shutdown=lambda: self.shutdown(),
            gatekeeper_name=lambda: self.settings.gatekeeper_id,
            start_time=lambda: self.start_time,
            make_calls=lambda: getattr(self, "make_calls", None),
            parent_lines=lambda: (self.parent_client.gk_lines()
                                  if self.parent_client.settings.configured
                                  else ["not registered\t"]))

    def _accounting(self, config: Config) -> Accounting:
        return Accounting(config.acct, self.clock,
                          lambda text: self.bus.publish(AccountingLine(text)),
                          http_client=self.http_client,
                          gatekeeper_name=self.settings.gatekeeper_id,
                          connected_calls=self.calls.connected_snapshots,   # read-only
                          publish=self.bus.publish)                       # CallUpdate events

    #: The HTTP client HttpAcct uses (None: treq on the service's clock).
    http_client = None

    def _apply_manhole(self, config: Config) -> None:
        """A reload turns the manhole on or off, or gives it new credentials
        (its port and host key are read when it starts)."""
        if config.manhole.enabled and self.manhole is None:
            self.manhole = manhole_service(config.manhole, gatekeeper_namespace(self), self.clock)
            self.manhole.setServiceParent(self)        # starts it if we are running
        elif not config.manhole.enabled and self.manhole is not None:
            self.manhole.disownServiceParent()          # stops it
            self.manhole = None
        elif self.manhole is not None:
            self.manhole.update(config.manhole)

    @staticmethod
    def _registry_settings(config: Config, settings: RasSettings) -> RegistrySettings:
        return RegistrySettings(settings.endpoint_id_suffix, config.gateway_prefixes)

    def _router(self, config: Config) -> Router:
        return build_router(config.routing, self.registry,
                            {"vqueue": self.virtual_queues.policy,
                             "neighbor": self.controller.neighbor_policy,
                             "parent": self.parent_policy})

    def _parent_signal_address(self) -> tuple[str, int]:
        """The call signalling address our RRQ at the parent names: routed
        mode's CallSignalPort.  In direct mode this gatekeeper takes no calls
        itself; the RRQ names the client socket's host with port 1720 (an
        RRQ must carry one), so a parent admitting a call to our prefixes
        sends the caller there: use routed mode for calls into our zone."""
        if self.settings.signal_address is not None:
            return self.settings.signal_address
        return (self.parent_client.ras_address[0], 1720)

    def _apply_parent(self, config: Config) -> None:
        """Start, stop or re-register the parent client for ``config``."""
        endpoint = config.endpoint
        if endpoint.configured and self.parent_server is None:
            self.parent_client.reconfigure(endpoint)      # stopped: takes them, sends nothing
            host = self.listen.interface
            if not host or host in ("0.0.0.0", "::"):
                host = local_ip_towards(endpoint.parent[0])
            self.parent_server = internet.UDPServer(0, self.parent_client, interface=host)
            self.parent_server.setName("parent")
            self.parent_server.setServiceParent(self)      # listens now if we are running
        else:
            self.parent_client.reconfigure(endpoint)
        if endpoint.configured and self.running and self.parent_client.state == "stopped":
            self.parent_client.start()

    #: Re-reads the configuration: returns (config, settings) or raises
    #: ConfigError. Set by tap.makeService when a file was given.
    config_loader: Callable[[], tuple[Config, RasSettings]] | None = None
    #: Install a SIGHUP handler that reloads (tap.makeService sets it).
    reload_on_sighup = False
    #: RAS settings for a configuration (tap.makeService sets one that lets
    #: the command line win over the file).
    settings_for: Callable[[Config], RasSettings] | None = None

    def edit_config(self, ini: IniFile, source: str = "debug") -> tuple[bool, str]:
        """Swap in an edited copy of the running file (``debug set``/``remove``).

        The text is parsed as a file would be; if it does not parse, nothing
        changes and the reason is returned. Listening ports are kept.
        """
        try:
            config = configuration.parse(ini)
        except ConfigError as error:
            return False, str(error)
        if self.settings_for is not None:
            settings = self.settings_for(config)
        else:
            main = config.main
            settings = replace(self.settings, gatekeeper_id=main.name,
                               time_to_live=main.time_to_live,
                               total_bandwidth=main.total_bandwidth,
                               endpoint_id_suffix=main.endpoint_id_suffix,
                               irq_poll_count=config.irq_poll_count,
                               require_discovery=config.require_discovery)
        self.apply(config, settings)
        return True, ""

    def reload(self, source: str = "command") -> tuple[bool, str]:
        """Re-read the configuration file and swap it in whole.

        A file that fails to parse leaves everything as it was and says why.
        Registrations and calls are kept. Listening addresses and ports are
        read only at start.
        """
        if self.config_loader is None:
            self.bus.publish(ConfigReloaded(True, "no configuration file", source=source))
            return True, "no configuration file"
        try:
            config, settings = self.config_loader()
        except ConfigError as error:
            self.log.error("reload refused, the running configuration stays: {error}",
                           error=str(error))
            self.bus.publish(ConfigReloaded(False, str(error), source=source))
            return False, str(error)
        self.apply(config, settings)
        for warning in config.warnings:
            self.log.warn("{warning}", warning=warning)
        self.log.info("configuration reloaded from {path}", path=config.path)
        self.bus.publish(ConfigReloaded(True, config.path, config.warnings, source=source))
        return True, config.path

    def apply(self, config: Config, settings: RasSettings) -> None:
        """Swap in a parsed configuration (everything but listening ports)."""
        old_acct, old_name = self.config.acct, self.settings.gatekeeper_id
        old_permanent = {(e.signal_address, e.aliases) for e in self.config.permanent_endpoints}
        new_permanent = {(e.signal_address, e.aliases) for e in config.permanent_endpoints}
        self.config = config
        self.settings = settings
        self.registry.reconfigure(self._registry_settings(config, settings))
        if (config.acct, settings.gatekeeper_id) != (old_acct, old_name):
            # New modules or files: the old ones close (their files, their queue).
            self.bus.unsubscribe(self.accounting)
            self.accounting.close()
            self.accounting = self._accounting(config)
            self.bus.subscribe(self.accounting)
        now = self.clock.seconds()
        for endpoint in list(self.registry):
            if endpoint.permanent and (endpoint.signal_address, endpoint.aliases) in (
                    old_permanent - new_permanent):
                self.registry.remove(endpoint.endpoint_id, "not in the configuration any more", now)
        self.add_permanent_endpoints()
        self._take(config)

    def _take(self, config: Config) -> None:
        """The parts of a configuration that are set the same way at start
        and at every reload."""
        self.virtual_queues.reconfigure(config.virtual_queues)
        # RequestInProgress asks for a little more than a RouteRequest (or
        # the neighbours' LRQs) may take.
        self.controller.reconfigure(RasConfig(
            self.settings, config.ras_policy, self._router(config), config.rewrite_e164,
            hold_delay=max(config.virtual_queues.request_timeout,
                           config.neighbors.features.longest_wait) + 2,
            neighbors=config.neighbors,
            alternate_gatekeepers=config.main.alternate_gatekeepers,
            failover=config.main.failover))
        if getattr(self, "parent_client", None) is not None:
            self._apply_parent(config)
        main = config.main
        # New sessions follow a reload (as GnuGk); logged-in ones keep theirs.
        self.status.reconfigure(StatusSettings(config.status_auth, config.status_filtering,
                                               main.status_trace_level, main.max_status_clients))
        if getattr(self, "signalling", None) is not None:
            self.signalling.reconfigure(signalling_settings(config.routed_mode))
            self.signalling.admission.reconfigure(setup_settings(config.routed_mode))
        if getattr(self, "make_calls", None) is not None:
            self.make_calls.reconfigure(config.make_call)
        self._apply_manhole(config)

    def add_permanent_endpoints(self) -> None:
        """Register ``[RasSrv::PermanentEndpoints]``: never expire, no RAS."""
        now = self.clock.seconds()
        for entry in self.config.permanent_endpoints:
            if self.registry.find_signal(entry.signal_address) is not None:
                continue
            self.registry.add(Endpoint(
                endpoint_id=self.registry.new_endpoint_id(), aliases=entry.aliases,
                signal_addresses=(entry.signal_address,), ras_address=None,
                endpoint_type=entry.endpoint_type, prefixes=entry.prefixes,
                registration_time=now, last_seen=now, permanent=True))

    def _sighup(self, signum: int, frame: object) -> None:
        # Signal handlers run between bytecodes: hand the work to the reactor.
        self.clock.callFromThread(self.reload, "signal")

    def _stop_signal(self, signum: int, frame: object) -> None:
        # Our own handler, so that twistd exits 0 after a clean stop (it would
        # otherwise re-raise the signal and report death by SIGTERM).
        self.clock.callFromThread(self._stop_by_signal, signum)

    def _stop_by_signal(self, signum: int) -> None:
        self.log.info("received {name}, shutting down", name=signal.Signals(signum).name)
        if self.stop_program is not None:
            self.stop_program()

    def _install_signals(self) -> None:
        signal.signal(signal.SIGHUP, self._sighup)
        if self.stop_program is not None:
            signal.signal(signal.SIGTERM, self._stop_signal)
            signal.signal(signal.SIGINT, self._stop_signal)

    # -- listening ---------------------------------------------------------
    # twistd opens the ports in privilegedStartService (the manhole in
    # startService), both before the reactor runs.  A port that cannot be
    # opened becomes one ListenError, logged as one line; twistd removes its
    # pid file, tells a daemon's parent, and the exception ends the program
    # with status 1 (tap.makeService keeps Python from printing its traceback).

    @contextmanager
    def _opening(self, child: service.IService) -> Iterator[None]:
        try:
            yield
        except CannotListenError as error:
            protocol, purpose, port_hint = _LISTENERS.get(
                child.name, ("TCP/UDP", child.name or "a listener", ""))
            number = getattr(error.socketError, "errno", None)
            hint = _ADDRESS_HINT if (number == errno.EADDRNOTAVAIL and child.name in (
                "ras", "discovery", "signalling")) else port_hint
            failure = ListenError(
                f"cannot listen on {protocol} {error.interface or '*'}:{error.port} "
                f"({purpose}): {_reason(error.socketError)}")
            self.log.critical("{failure}{hint}", failure=str(failure),
                              hint=f" (set by {hint})" if hint else "")
            raise failure from None

    def privilegedStartService(self) -> None:
        service.Service.privilegedStartService(self)
        for child in self:
            with self._opening(child):
                child.privilegedStartService()

    def _start_children(self) -> None:
        service.Service.startService(self)
        for child in self:
            with self._opening(child):
                child.startService()

    def startService(self) -> None:
        if self.reload_on_sighup:
            # After the reactor's own handlers (installed during startup).
            self.clock.callWhenRunning(self._install_signals)
        self.start_time = self.clock.seconds()
        for warning in self.config.warnings:
            self.log.warn("{warning}", warning=warning)
        self.add_permanent_endpoints()
        self._start_children()
        self.controller.start()
        if self.config.endpoint.configured:
            self.parent_client.start()
        self.accounting.on()      # GnuGk's accounting "on" event
        self.log.info("gatekeeper {name} serving RAS on {interface}:{port}",
                      name=self.settings.gatekeeper_id, interface=self.listen.interface or "*",
                      port=self.listen.ras_port)

    #: Stops the whole program (tap.makeService sets reactor.stop).
    stop_program: Callable[[], None] | None = None

    def shutdown(self) -> bool:
        """Stop the program as SIGTERM does; False if nothing can stop it here."""
        if self.stop_program is None:
            return False
        self.clock.callLater(0, self.stop_program)
        return True

    def stopService(self):
        """Stop admitting calls, end the calls still up with their CDRs (as
        GnuGk does on shutdown), drop the status clients, stop the timers."""
        self.controller.accepting = False
        if self.signalling is not None:
            self.signalling.accepting = False
        self.virtual_queues.stop()
        self.make_calls.stop()
        for call in list(self.calls):
            self.controller.end_call(call, "gatekeeper shutdown")
        # After the last CDRs: every one is on disk; then the "off" event, and
        # the accounting closes once HttpAcct has delivered (or a few seconds).
        closed = self.accounting.shutdown()
        for session in list(self.status.sessions):
            session.close()
        if self.signalling is not None:
            self.signalling.stop()
        self.controller.stop()
        self.parent_client.stop()            # the URQ to the parent, before its socket closes
        stopped = super().stopService()
        return closed.addCallback(lambda _: stopped)
