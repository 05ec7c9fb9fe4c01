"""The gatekeeper's service tree: the tables, the bus and the listening ports."""

from __future__ import annotations

from dataclasses import dataclass

from twisted.application import internet, service
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from gatekeeper.core.calls import CallTable
from gatekeeper.core.registry import Registry
from gatekeeper.events import EventBus
from gatekeeper.ras.controller import RasController, RasSettings
from gatekeeper.ras.protocol import DISCOVERY_PORT, DiscoveryProtocol, RasProtocol


@dataclass(frozen=True, slots=True)
class ListenSettings:
    """Where the gatekeeper listens."""

    interface: str = ""              # "" = every interface
    ras_port: int = 1719
    discovery_port: int = DISCOVERY_PORT   # 0 turns multicast discovery off


class GatekeeperService(service.MultiService):
    """Owns the registry, the call table, the event bus and the RAS service."""

    log = Logger()

    def __init__(self, settings: RasSettings, listen: ListenSettings, clock: IReactorTime,
                 configured_prefixes: dict[str, tuple[str, ...]] | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.listen = listen
        self.clock = clock
        self.bus = EventBus()
        self.registry = Registry(settings.endpoint_id_suffix,
                                 configured_prefixes=configured_prefixes)
        self.calls = CallTable()
        self.controller = RasController(settings, self.bus, clock, self.registry, self.calls)
        self.ras_protocol = RasProtocol(self.controller, clock)
        self.ras_server = internet.UDPServer(listen.ras_port, self.ras_protocol,
                                             interface=listen.interface, maxPacketSize=8192)
        self.ras_server.setName("ras")
        self.ras_server.setServiceParent(self)
        if listen.discovery_port:
            discovery = DiscoveryProtocol(self.ras_protocol, listen.interface)
            self.discovery_server = internet.MulticastServer(
                listen.discovery_port, discovery, interface=listen.interface or "",
                listenMultiple=True)
            self.discovery_server.setName("discovery")
            self.discovery_server.setServiceParent(self)

    def startService(self) -> None:
        super().startService()
        self.controller.start()
        self.log.info("gatekeeper {name} serving RAS on {interface}:{port}",
                      name=self.settings.gatekeeper_id, interface=self.listen.interface or "*",
                      port=self.listen.ras_port)

    def stopService(self):
        self.controller.stop()
        return super().stopService()
