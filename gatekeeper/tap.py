"""``twistd gatekeeper``: command-line options and the service tree."""

from __future__ import annotations

from twisted.python import usage

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

    optParameters = [
        ["name", "n", "gatekeeper", "Gatekeeper identifier ([Gatekeeper::Main] Name)."],
        ["interface", "i", "", "Address to listen on (default: every interface)."],
        ["ras-port", None, 1719, "UDP port for RAS.", _port],
        ["discovery-port", None, 1718,
         "UDP port for multicast discovery on 224.0.1.41 (0: off).", _port],
        ["ttl", None, 0, "Registration time to live in seconds (0: off).", int],
        ["bandwidth", None, 0, "Total bandwidth in units of 100 bit/s (0: unlimited).", int],
    ]

    def postOptions(self) -> None:
        if not self["name"] or len(self["name"]) > 128:
            raise usage.UsageError("--name must be 1 to 128 characters")
        if self["ttl"] < 0:
            raise usage.UsageError("--ttl must not be negative")
        if self["bandwidth"] < 0:
            raise usage.UsageError("--bandwidth must not be negative")


def make_settings(options: Options) -> tuple[RasSettings, ListenSettings]:
    settings = RasSettings(
        gatekeeper_id=options["name"],
        time_to_live=options["ttl"] or None,
        total_bandwidth=options["bandwidth"] or None,
    )
    listen = ListenSettings(interface=options["interface"], ras_port=options["ras-port"],
                            discovery_port=options["discovery-port"])
    return settings, listen


def makeService(options: Options) -> GatekeeperService:
    from twisted.internet import reactor  # the one place the global reactor is used

    settings, listen = make_settings(options)
    return GatekeeperService(settings, listen, reactor)
