"""``twistd gatekeeper``: command-line options and the service tree.

Options mirror GnuGk's command line where they make sense; a value given on
the command line wins over the configuration file.  A bad configuration is
refused here, before anything listens, naming file, section, key and value.
"""

from __future__ import annotations

from twisted.python import usage

from gatekeeper import config as configuration
from gatekeeper.ras.controller import RasSettings
from gatekeeper.service import GatekeeperService, ListenSettings


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError(f"port out of range: {text}")
    return value


class Options(usage.Options):
    synopsis = "[options]"
    longdesc = "An H.323 gatekeeper with a GnuGk-compatible status port."

    optFlags = [
        ["direct", None, "Direct mode: endpoints signal each other (the default)."],
        ["routed", None, "Gatekeeper-routed mode (not available yet: refused)."],
        ["manhole", None, "Start the SSH manhole on 127.0.0.1 (port and credentials "
                          "from [Manhole])."],
    ]

    optParameters = [
        ["config", "c", None, "GnuGk-style configuration file."],
        ["name", "n", None, "Gatekeeper identifier ([Gatekeeper::Main] Name)."],
        ["interface", "i", None, "Address to listen on (default: every interface)."],
        ["ras-port", None, None, "UDP port for RAS (default 1719).", _port],
        ["discovery-port", None, None,
         "UDP port for multicast discovery on 224.0.1.41 (default 1718; 0: off).", _port],
        ["status-port", None, None, "TCP port of the status port on 127.0.0.1 (default 7000; 0: off).",
         _port],
        ["ttl", None, None, "Registration time to live in seconds (0: off).", int],
        ["bandwidth", None, None, "Total bandwidth in units of 100 bit/s (0: unlimited).", int],
    ]

    def load_config(self) -> configuration.Config:
        """The configuration file (or the embedded defaults), with --manhole."""
        enable = True if self["manhole"] else None
        if self["config"]:
            return configuration.load(self["config"], enable)
        return configuration.parse(configuration.IniFile("<defaults>", {}), enable)

    def postOptions(self) -> None:
        if self["routed"]:
            raise usage.UsageError(
                "--routed: gatekeeper-routed call signalling is not implemented yet; "
                "run in direct mode (the default, --direct)")
        try:
            self.config = self.load_config()
        except configuration.ConfigError as error:
            raise usage.UsageError(str(error)) from None
        name = self["name"]
        if name is not None and not 1 <= len(name) <= 128:
            raise usage.UsageError("--name must be 1 to 128 characters")
        if self["ttl"] is not None and self["ttl"] < 0:
            raise usage.UsageError("--ttl must not be negative")
        if self["bandwidth"] is not None and self["bandwidth"] < 0:
            raise usage.UsageError("--bandwidth must not be negative")


def _pick(option: object, configured: object) -> object:
    return configured if option is None else option


def make_settings(options: Options,
                  config: configuration.Config | None = None) -> tuple[RasSettings, ListenSettings]:
    """Settings from the command line over the file (``config`` or the one
    read at start)."""
    config = config if config is not None else options.config
    main = config.main
    ttl = _pick(options["ttl"], main.time_to_live)
    bandwidth = _pick(options["bandwidth"], main.total_bandwidth)
    discovery = options["discovery-port"]
    if discovery is None:
        discovery = main.multicast_port if main.use_multicast_listener else 0
    settings = RasSettings(
        gatekeeper_id=_pick(options["name"], main.name),
        time_to_live=ttl or None,
        total_bandwidth=bandwidth or None,
        endpoint_id_suffix=main.endpoint_id_suffix,
        irq_poll_count=config.irq_poll_count,
        require_discovery=config.require_discovery,
    )
    listen = ListenSettings(interface=_pick(options["interface"], main.home),
                            ras_port=_pick(options["ras-port"], main.ras_port),
                            discovery_port=discovery,
                            status_port=_pick(options["status-port"], main.status_port))
    return settings, listen


def makeService(options: Options) -> GatekeeperService:
    from twisted.internet import reactor  # the one place the global reactor is used

    settings, listen = make_settings(options)
    service = GatekeeperService(settings, listen, reactor, options.config)
    if options["config"]:

        def load() -> tuple[configuration.Config, RasSettings]:
            config = options.load_config()
            return config, make_settings(options, config)[0]

        service.config_loader = load
    service.settings_for = lambda config: make_settings(options, config)[0]
    service.reload_on_sighup = True
    service.stop_program = reactor.stop
    return service
