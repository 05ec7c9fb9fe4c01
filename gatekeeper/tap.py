"""``twistd gatekeeper``: command-line options and the service tree.

Options mirror GnuGk's command line where they make sense; a value given on
the command line wins over the configuration file.  A bad configuration is
refused here, before anything listens, naming file, section, key and value,
in one line on standard error (not after twistd's usage text: the options
were right, the file was not).  A port that cannot be opened is one log line
too (:class:`~gatekeeper.service.ListenError`); neither prints a traceback.
"""

from __future__ import annotations

import ipaddress
import sys
from importlib import metadata
from types import TracebackType

import twisted
from twisted.python import usage

import gatekeeper
from gatekeeper import config as configuration
from gatekeeper.h225.ras import Address
from gatekeeper.ras.controller import RasSettings
from gatekeeper.ras.protocol import local_ip_towards
from gatekeeper.service import GatekeeperService, ListenError, ListenSettings


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError(f"port out of range: {text}")
    return value


class ConfigRefused(SystemExit):
    """The configuration cannot be used: the program stops before it starts,
    with status 1 and this one line on standard error."""

    def __init__(self, error: configuration.ConfigError) -> None:
        super().__init__(f"gatekeeper: {error}")


def version() -> str:
    """The installed distribution's version (setup.cfg), else the package's own."""
    try:
        return metadata.version("gatekeeper")
    except metadata.PackageNotFoundError:   # run from a checkout never installed
        return gatekeeper.__version__


class Options(usage.Options):
    synopsis = "[options]"
    longdesc = "An H.323 gatekeeper with a GnuGk-compatible status port."

    optFlags = [
        ["direct", None, "Direct mode: endpoints signal each other (the default)."],
        ["routed", None, "Gatekeeper-routed mode: call signalling passes through the "
                         "gatekeeper ([RoutedMode] GKRouted=1)."],
        ["manhole", None, "Start the SSH manhole on 127.0.0.1 (port and credentials "
                          "from [Manhole])."],
    ]

    optParameters = [
        ["config", "c", None, "GnuGk-style configuration file."],
        ["name", "n", None, "Gatekeeper identifier ([Gatekeeper::Main] Name)."],
        ["interface", "i", None,
         "IP address RAS listens on (default: every address); multicast discovery "
         "joins 224.0.1.41 on the interface that has it (its socket stays bound to "
         "every address: one bound to a unicast address never receives the group's "
         "datagrams). The status port listens on 127.0.0.1 whatever this says."],
        ["ras-port", None, None, "UDP port for RAS (default 1719).", _port],
        ["discovery-port", None, None,
         "UDP port for multicast discovery on 224.0.1.41 (default 1718; 0: off).", _port],
        ["status-port", None, None, "TCP port of the status port on 127.0.0.1 (default 7000; 0: off).",
         _port],
        ["ttl", None, None, "Registration time to live in seconds (0: off).", int],
        ["bandwidth", None, None, "Total bandwidth in units of 100 bit/s (0: unlimited).", int],
        ["call-signal-port", None, None,
         "TCP port for call signalling in routed mode (default [RoutedMode] CallSignalPort, "
         "1720).", _port],
    ]

    def opt_version(self) -> None:
        """Display the gatekeeper's and Twisted's versions and exit."""
        sys.stdout.write(f"gatekeeper {version()}\nTwisted {twisted.__version__}\n")
        sys.exit(0)

    def load_config(self) -> configuration.Config:
        """The configuration file (or the embedded defaults), with --manhole."""
        enable = True if self["manhole"] else None
        if self["config"]:
            return configuration.load(self["config"], enable)
        return configuration.parse(configuration.IniFile("<defaults>", {}), enable)

    def postOptions(self) -> None:
        if self["routed"] and self["direct"]:
            raise usage.UsageError("--routed and --direct: choose one")
        interface = self["interface"]
        if interface is not None:
            try:
                ipaddress.ip_address(interface)
            except ValueError:
                raise usage.UsageError(
                    f"--interface {interface!r}: not an IP address") from None
        try:
            self.config = self.load_config()
        except configuration.ConfigError as error:
            raise ConfigRefused(error) from None
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
    routed_mode = config.routed_mode
    routed = bool(options["routed"]) or (routed_mode.gk_routed and not options["direct"])
    interface = _pick(options["interface"], main.home)
    signal_port = _pick(options["call-signal-port"], routed_mode.call_signal_port)
    settings = RasSettings(
        routed=routed,
        signal_address=(signal_address(interface, signal_port) if routed and signal_port
                        else None),
        gatekeeper_id=_pick(options["name"], main.name),
        time_to_live=ttl or None,
        total_bandwidth=bandwidth or None,
        endpoint_id_suffix=main.endpoint_id_suffix,
        irq_poll_count=config.irq_poll_count,
        require_discovery=config.require_discovery,
    )
    listen = ListenSettings(interface=interface,
                            call_signal_port=signal_port if routed else 0,
                            ras_port=_pick(options["ras-port"], main.ras_port),
                            discovery_port=discovery,
                            status_port=_pick(options["status-port"], main.status_port))
    return settings, listen


def signal_address(interface: str, port: int) -> Address:
    """The call signalling address an ACF names in routed mode: the
    configured interface, else the address this host reaches others from
    (set Home or --interface on a host with several)."""
    if interface and interface not in ("0.0.0.0", "::"):
        return (interface, port)
    return (local_ip_towards("192.0.2.1"), port)


def _quiet_about(previous):
    """A ``sys.excepthook`` that prints nothing for a ListenError (the service
    logged it as one line already) and hands everything else to ``previous``."""

    def hook(kind: type[BaseException], value: BaseException,
             traceback: TracebackType | None) -> None:
        if isinstance(value, ListenError):
            return
        previous(kind, value, traceback)

    hook.quiet_about_listen_errors = True
    return hook


def makeService(options: Options) -> GatekeeperService:
    from twisted.internet import reactor  # the one place the global reactor is used

    # twistd lets an exception from starting the services end the program
    # (after removing its pid file); Python would print its traceback.
    if not getattr(sys.excepthook, "quiet_about_listen_errors", False):
        sys.excepthook = _quiet_about(sys.excepthook)
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
