"""GnuGk-style INI configuration, parsed once into typed, frozen objects.

The file format is GnuGk's: ``[Section]`` headers, ``key=value`` lines, ``#``
and ``;`` comments, keys that may repeat.  A value that cannot be used is
refused with a :class:`ConfigError` naming the file, section, key and value;
sections and keys this gatekeeper does not know give warnings and are
otherwise ignored, so a real GnuGk file loads unchanged.

This module covers what the RAS service needs (``[Gatekeeper::Main]``,
``[RasSrv::GWPrefixes]``, ``[RasSrv::PermanentEndpoints]``,
``[RasSrv::RRQFeatures]``, with ``[RasSrv::LRQFeatures]`` and
``[ReplyToRasAddress]`` read by :mod:`gatekeeper.ras.policy`); the other
sections join it as their features land.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from gatekeeper.accounting.settings import AcctSettings, parse_acct
from gatekeeper.core.failover import (FailoverSettings, parse_redirect, parse_send_to,
                                      parse_skip_forwards)
from gatekeeper.configfile import (ConfigError, IniFile, as_bool, as_int, read_ini,
                                   unknown_key)
from gatekeeper.core.neighbors import (NEIGHBOR_PREFIX, NeighborSettings, parse_neighbors,
                                       refuse_host_names)
from gatekeeper.core.rewrite import RewriteRule, parse_rewrite
from gatekeeper.core.routing import RoutingSettings, parse_routing
from gatekeeper.core.vqueue import VirtualQueueSettings, parse_virtual_queues
from gatekeeper.h225 import ras
from gatekeeper.manhole import ManholeSettings, parse_manhole
from gatekeeper.ras.client import EndpointSettings, parse_endpoint
from gatekeeper.ras.policy import RasPolicy, parse_lrq_features, parse_reply_to_ras_address
from gatekeeper.signalling.makecall import MakeCallSettings, parse_make_call
from gatekeeper.signalling.settings import RoutedModeSettings, parse_routed_mode
from gatekeeper.h225.ras import Address, Alias
from gatekeeper.status.auth import AuthRules
from gatekeeper.status.filtering import FilterSettings, parse_filtering

__all__ = ["Config", "ConfigError", "IniFile", "MainSettings", "PermanentEndpoint", "as_bool",
           "as_int", "load", "parse", "read_ini"]


@dataclass(frozen=True, slots=True)
class MainSettings:
    """``[Gatekeeper::Main]`` (the keys the RAS service uses)."""

    name: str = "gatekeeper"
    home: str = ""                       # interface(s) to bind; "" = all
    time_to_live: int | None = None
    total_bandwidth: int | None = None
    endpoint_id_suffix: str = "_endp"
    ras_port: int = 1719
    multicast_port: int = 1718
    use_multicast_listener: bool = True
    status_port: int = 7000
    status_trace_level: int = 2
    max_status_clients: int = 20
    #: AlternateGKs: sent in GCF/RCF to endpoints that say supportsAltGK.
    alternate_gatekeepers: tuple[ras.AlternateGk, ...] = ()
    #: SendTo, SkipForwards, RedirectGK (gatekeeper.core.failover).
    failover: FailoverSettings = FailoverSettings()


@dataclass(frozen=True, slots=True)
class PermanentEndpoint:
    """One line of ``[RasSrv::PermanentEndpoints]``: ``ip[:port]=alias,...[;prefix,...]``."""

    signal_address: Address
    aliases: tuple[Alias, ...]
    prefixes: tuple[str, ...] = ()

    @property
    def endpoint_type(self) -> str:
        return "gateway" if self.prefixes else "terminal"


@dataclass(frozen=True, slots=True)
class Config:
    path: str = "<defaults>"
    main: MainSettings = field(default_factory=MainSettings)
    gateway_prefixes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    permanent_endpoints: tuple[PermanentEndpoint, ...] = ()
    irq_poll_count: int = 1
    require_discovery: bool = False
    warnings: tuple[str, ...] = ()
    status_auth: AuthRules = field(default_factory=AuthRules)   # no section: loopback only
    status_filtering: FilterSettings = field(default_factory=FilterSettings)
    acct: AcctSettings = field(default_factory=AcctSettings)   # default: FileAcct to cdr.log
    manhole: ManholeSettings = field(default_factory=ManholeSettings)   # off by default
    routing: RoutingSettings = field(default_factory=RoutingSettings)
    rewrite_e164: tuple[RewriteRule, ...] = ()
    routed_mode: RoutedModeSettings = field(default_factory=RoutedModeSettings)
    make_call: MakeCallSettings = field(default_factory=MakeCallSettings)
    virtual_queues: VirtualQueueSettings = field(default_factory=VirtualQueueSettings)
    #: [RasSrv::LRQFeatures] AcceptNonNeighborLRQ, [RasSrv::RRQFeatures]
    #: OverwriteEPOnSameAddress and [ReplyToRasAddress], for the RAS controller.
    ras_policy: RasPolicy = field(default_factory=RasPolicy)
    #: [RasSrv::Neighbors], [Neighbor::NAME] and the neighbour keys of
    #: [RasSrv::LRQFeatures] (gatekeeper.core.neighbors).
    neighbors: NeighborSettings = field(default_factory=NeighborSettings)
    #: [Endpoint]: the parent gatekeeper we register at (gatekeeper.ras.client).
    endpoint: EndpointSettings = field(default_factory=EndpointSettings)
    #: The file as read (what ``debug cfg`` shows and ``debug set`` edits).
    ini: IniFile = field(default_factory=lambda: IniFile("<defaults>", {}))


# Sections whose keys we read, with the keys we know. Other known GnuGk
# sections are accepted without warnings as they are implemented.


_int = as_int
_bool = as_bool


def _prefixes(path: str, section: str, key: str, value: str) -> tuple[str, ...]:
    """``02,03:=5,!04`` -> ('02', '03'); priorities are accepted and ignored,
    exclusions (``!``) are not routed to."""
    result = []
    for part in value.split(","):
        prefix = part.strip().split(":=")[0].strip()
        if not prefix or prefix.startswith("!"):
            continue
        if not set(prefix) <= set("0123456789#*,.") :
            raise ConfigError(path, section, key, value, f"prefix {prefix!r} is not digits")
        result.append(prefix.rstrip("."))
    return tuple(result)


def parse_alternate_gks(path: str, section: str, key: str,
                        value: str) -> tuple[ras.AlternateGk, ...]:
    """GnuGk's ``ip;port;needToRegister;priority;gkid[,...]`` (the old
    ``:``-separated form too; gkid may be left out)."""
    alternates = []
    for entry in filter(None, (part.strip() for part in value.split(","))):
        fields = [f.strip() for f in (entry.split(";") if ";" in entry else entry.split(":"))]
        if not 4 <= len(fields) <= 5:
            raise ConfigError(path, section, key, value,
                              f"{entry!r} is not ip;port;needToRegister;priority;gkid")
        host, port, need, priority = fields[:4]
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ConfigError(path, section, key, value,
                              f"{host!r} is not an IPv4 address") from None
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ConfigError(path, section, key, value, f"port {port!r} is not 1-65535")
        if need.lower() not in ("true", "false", "1", "0"):
            raise ConfigError(path, section, key, value,
                              f"needToRegister {need!r} is not true or false")
        if not priority.isdigit() or int(priority) > 127:
            raise ConfigError(path, section, key, value, f"priority {priority!r} is not 0-127")
        gatekeeper_id = fields[4] if len(fields) == 5 and fields[4] else None
        if gatekeeper_id is not None and len(gatekeeper_id) > 128:
            raise ConfigError(path, section, key, value, "a gatekeeper id is 1-128 characters")
        alternates.append(ras.AlternateGk((host, int(port)), need.lower() in ("true", "1"),
                                          int(priority), gatekeeper_id))
    return tuple(alternates)


def parse(ini: IniFile, enable_manhole: bool | None = None) -> Config:
    """Turn a read file into a :class:`Config`, or raise ConfigError
    (``enable_manhole``: the ``--manhole`` option, over ``[Manhole] Enable``)."""
    path = ini.path
    warnings: list[str] = []
    section = "Gatekeeper::Main"
    main = MainSettings()
    values: dict[str, object] = {}
    failover: dict[str, object] = {}
    for key, value in ini.items(section):
        lowered = key.lower()
        if lowered == "name":
            if not 1 <= len(value) <= 128:
                raise ConfigError(path, section, key, value, "must be 1 to 128 characters")
            values["name"] = value
        elif lowered == "home":
            for part in filter(None, (p.strip() for p in value.split(","))):
                try:
                    ipaddress.ip_address(part)
                except ValueError:
                    raise ConfigError(path, section, key, value, "not an IP address") from None
            values["home"] = value.split(",")[0].strip()
        elif lowered == "timetolive":
            ttl = _int(path, section, key, value, -1, 2**31 - 1)
            values["time_to_live"] = ttl if ttl > 0 else None
        elif lowered == "totalbandwidth":
            total = _int(path, section, key, value, -1, 2**32 - 1)
            values["total_bandwidth"] = total if total >= 0 else None
        elif lowered == "endpointidsuffix":
            values["endpoint_id_suffix"] = value
        elif lowered == "unicastrasport":
            values["ras_port"] = _int(path, section, key, value, 1, 65535)
        elif lowered == "multicastport":
            values["multicast_port"] = _int(path, section, key, value, 0, 65535)
        elif lowered == "statustracelevel":
            values["status_trace_level"] = _int(path, section, key, value, 0, 2)
        elif lowered == "maxstatusclients":
            values["max_status_clients"] = _int(path, section, key, value, 1, 10000)
        elif lowered == "statusport":
            values["status_port"] = _int(path, section, key, value, 0, 65535)
        elif lowered == "usemulticastlistener":
            values["use_multicast_listener"] = _bool(path, section, key, value)
        elif lowered == "alternategks":
            values["alternate_gatekeepers"] = parse_alternate_gks(path, section, key, value)
        elif lowered == "sendto":
            failover["send_to"] = parse_send_to(path, section, key, value)
        elif lowered == "skipforwards":
            failover["skip_forwards"] = parse_skip_forwards(path, section, key, value)
        elif lowered == "redirectgk":
            failover["redirect"] = parse_redirect(path, section, key, value)
        else:
            warnings.append(unknown_key(path, section, key))
    values["failover"] = FailoverSettings(**failover)
    if values["failover"].redirect.active and not values.get("alternate_gatekeepers"):
        warnings.append(f"{path}: [{section}] RedirectGK is set but AlternateGKs is not: the "
                        "rejects it causes name no alternate gatekeeper")
    main = MainSettings(**{**_fields(main), **values})

    section = "RasSrv::GWPrefixes"
    gateway_prefixes = {key: _prefixes(path, section, key, value)
                        for key, value in ini.items(section)}

    section = "RasSrv::PermanentEndpoints"
    permanent = []
    for key, value in ini.items(section):
        try:
            address = ras.parse_address(key, 1720)
        except ValueError:
            raise ConfigError(path, section, key, value, "the key must be ip[:port]") from None
        alias_part, _, prefix_part = value.partition(";")
        aliases = []
        for text in filter(None, (a.strip() for a in alias_part.split(","))):
            try:
                aliases.append(ras.parse_alias(text))
            except ValueError as error:
                raise ConfigError(path, section, key, value, str(error)) from None
        permanent.append(PermanentEndpoint(address, tuple(aliases),
                                           _prefixes(path, section, key, prefix_part)))

    section = "RasSrv::RRQFeatures"
    irq_poll_count = 1
    require_discovery = False
    overwrite_ep = False
    for key, value in ini.items(section):
        lowered = key.lower()
        if lowered == "irqpollcount":
            irq_poll_count = _int(path, section, key, value, 0, 100)
        elif lowered == "requirediscovery":   # ours, not GnuGk's
            require_discovery = _bool(path, section, key, value)
        elif lowered == "overwriteeponsameaddress":
            overwrite_ep = _bool(path, section, key, value)
        else:
            warnings.append(unknown_key(path, section, key))

    accept_non_neighbor_lrq, more = parse_lrq_features(ini)
    warnings += more
    ras_policy = RasPolicy(accept_non_neighbor_lrq=accept_non_neighbor_lrq,
                           overwrite_ep_on_same_address=overwrite_ep,
                           reply_to_ras_address=parse_reply_to_ras_address(ini))

    section = "GkStatus::Auth"
    status_auth = AuthRules()
    if ini.get(section, "KeyFilled") is not None:
        warnings.append(f"{path}: [{section}] KeyFilled: GnuGk-encrypted passwords are not "
                        "supported; those users cannot log in (make PBKDF2 entries with "
                        "python -m gatekeeper.status.passwd USER)")
    if section in ini.sections:
        items = list(ini.items(section))
        try:
            status_auth = AuthRules.from_items(items)
        except ValueError as error:
            key, _, value = str(error).partition(": ")[0].partition("=")
            raise ConfigError(path, section, key, value, str(error).partition(": ")[2]
                              or str(error)) from None

    status_filtering, more = parse_filtering(ini)
    warnings += more
    acct, more = parse_acct(ini)
    warnings += more
    manhole, more = parse_manhole(ini, enable_manhole)
    warnings += more

    routed_mode, more = parse_routed_mode(ini)
    warnings += more
    make_call, more = parse_make_call(ini)
    warnings += more

    routing, more = parse_routing(ini)
    warnings += more
    neighbors, more = parse_neighbors(ini)
    refuse_host_names(ini, neighbors)
    warnings += more
    virtual_queues, more = parse_virtual_queues(ini)
    warnings += more
    endpoint, more = parse_endpoint(ini, main.name)
    warnings += more
    if virtual_queues.configured and not routing.uses("vqueue"):
        warnings.append(f"{path}: [CTI::Agents] virtual queues are configured but no "
                        "[RoutingPolicy] chain has vqueue: calls to them are not queued")

    for name in ini.sections:
        if name not in _KNOWN_SECTIONS and not name.lower().startswith(
                tuple(prefix.lower() for prefix in _KNOWN_PREFIXES)):
            warnings.append(f"{path}: [{name}]: section not supported, ignored")
    return Config(path=path, main=main, gateway_prefixes=gateway_prefixes,
                  permanent_endpoints=tuple(permanent), irq_poll_count=irq_poll_count,
                  require_discovery=require_discovery, warnings=tuple(warnings),
                  status_auth=status_auth, status_filtering=status_filtering, acct=acct, manhole=manhole,
                  routing=routing,
                  rewrite_e164=parse_rewrite(ini), routed_mode=routed_mode, make_call=make_call,
                  virtual_queues=virtual_queues, ras_policy=ras_policy, neighbors=neighbors,
                  endpoint=endpoint, ini=ini)


def _fields(settings: MainSettings) -> dict[str, object]:
    return {name: getattr(settings, name) for name in settings.__dataclass_fields__}


# The sections this gatekeeper reads so far; any other section is reported.
_KNOWN_SECTIONS = {
    "Gatekeeper::Main", "RasSrv::GWPrefixes", "RasSrv::PermanentEndpoints",
    "RasSrv::RRQFeatures", "GkStatus::Auth", "RoutingPolicy", "RoutingPolicy::OnARQ",
    "RoutingPolicy::OnLRQ", "RoutingPolicy::OnSetup", "CTI::Agents", "RasSrv::RewriteE164",
    "RoutedMode", "GkStatus::Filtering", "Gatekeeper::Acct", "FileAcct", "StatusAcct", "HttpAcct",
    "Manhole", "RasSrv::LRQFeatures", "ReplyToRasAddress", "CTI::MakeCall",
    "CallTable",   # AcctUpdateInterval only, read by accounting/settings.py
    "RasSrv::Neighbors",
    "Endpoint",
}
#: Families of sections, by name prefix ([Neighbor::NAME]: parse_neighbors
#: warns about one not listed in [RasSrv::Neighbors]).
_KNOWN_PREFIXES = (NEIGHBOR_PREFIX,)


def load(path: str | Path, enable_manhole: bool | None = None) -> Config:
    """Read and parse a configuration file; ConfigError says what is wrong."""
    path = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise ConfigError(path, "", "", "", f"cannot read the file: {error.strerror}") from None
    return parse(read_ini(text, path), enable_manhole)
