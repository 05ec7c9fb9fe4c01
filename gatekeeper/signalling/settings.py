"""``[RoutedMode]``: gatekeeper-routed call signalling, read as GnuGk reads it.

Times in the file are milliseconds, as in GnuGk; the settings hold seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from gatekeeper.configfile import IniFile, as_bool, as_int, unknown_key

SECTION = "RoutedMode"

#: GnuGk keys that this gatekeeper reads but whose feature it does not have:
#: a value other than GnuGk's default is warned about.
_NOT_SUPPORTED = {
    "supportnatedendpoints": "0", "enableh46018": "0", "enableh46017": "0",
    "h245tunnelingtranslation": "0",
}
#: GnuGk keys with no effect here (thread counts, ...): accepted silently.
_IGNORED = {"callsignalhandlernumber", "rtphandlernumber", "removeh245addressontunneling",
            "removecallondrq", "dropcallsbyreleasecomplete", "sendreleasecompleteondrq"}


@dataclass(frozen=True, slots=True)
class RoutedModeSettings:
    gk_routed: bool = False              # GKRouted
    h245_routed: bool = False            # H245Routed
    call_signal_port: int = 1720         # CallSignalPort (0: none)
    setup_timeout: float = 8.0           # SetupTimeout (ms in the file)
    signal_timeout: float = 30.0         # SignalTimeout
    alerting_timeout: float = 180.0      # AlertingTimeout
    tcp_keepalive: bool = False          # TcpKeepAlive
    generate_call_proceeding: bool = False   # GenerateCallProceeding
    accept_unregistered_calls: bool = False  # AcceptUnregisteredCalls
    accept_neighbors_calls: bool = True      # AcceptNeighborsCalls (GnuGk's default)


def parse_routed_mode(ini: IniFile) -> tuple[RoutedModeSettings, list[str]]:
    """The section as settings, and the warnings about it."""
    path, warnings = ini.path, []
    values: dict[str, object] = {}
    booleans = {"gkrouted": "gk_routed", "h245routed": "h245_routed", "tcpkeepalive": "tcp_keepalive",
                "generatecallproceeding": "generate_call_proceeding",
                "acceptunregisteredcalls": "accept_unregistered_calls",
                "acceptneighborscalls": "accept_neighbors_calls"}
    timers = {"setuptimeout": "setup_timeout", "signaltimeout": "signal_timeout",
              "alertingtimeout": "alerting_timeout"}
    for key, value in ini.items(SECTION):
        lowered = key.lower()
        if lowered in booleans:
            values[booleans[lowered]] = as_bool(path, SECTION, key, value)
        elif lowered in timers:
            values[timers[lowered]] = as_int(path, SECTION, key, value, 0, 86_400_000) / 1000
        elif lowered == "callsignalport":
            values["call_signal_port"] = as_int(path, SECTION, key, value, 0, 65535)
        elif lowered in _NOT_SUPPORTED:
            default = _NOT_SUPPORTED[lowered]
            if as_bool(path, SECTION, key, value) != (default == "1"):
                warnings.append(f"{path}: [{SECTION}] {key}={value}: not supported yet, "
                                f"ignored (behaves as {key}={default})")
        elif lowered not in _IGNORED:
            warnings.append(unknown_key(path, SECTION, key))
    return RoutedModeSettings(**values), warnings
