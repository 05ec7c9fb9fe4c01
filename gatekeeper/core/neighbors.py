"""Neighbour gatekeepers: GnuGk's ``neighbor`` routing policy and its settings.

A destination nobody here has may be registered at a neighbour gatekeeper.
The ``neighbor`` link of the routing chain asks the neighbours whose
``SendPrefixes`` match, with LRQs sent to all of them at once, and routes the
call to where the best-ranked LCF says (its callSignalAddress; its
destinationInfo, when given, becomes the call's destination).  When every
neighbour rejects or none answers in time, the chain goes on.  This module
also holds the pure decisions for LRQs that *we* receive from neighbours:
whether to accept one (``AcceptPrefixes``, ``AcceptForwardedLRQ``) and to whom
to forward it (``ForwardLRQ``, hop counts, never back to the sender).

Configuration (GnuGk's, doc/design/neighbours.md is the source):

- ``[RasSrv::Neighbors]`` ``NAME=TYPE`` with TYPE ``GnuGk``, ``CiscoGk``,
  ``ClarentGk``, ``GlonetGk`` or ``Generic`` (any case); anything else is
  GnuGk's old one-line form ``host[:port][;prefixes[;password[;dynamic]]]``.
- ``[Neighbor::NAME]``: GatekeeperIdentifier, Host, Dynamic, SendPrefixes,
  SendAliases, AcceptPrefixes, ForwardHopCount, AcceptForwardedLRQ,
  ForwardResponse, ForwardLRQ, PingAlias are read.  Password, AuthUser,
  SendPassword, SendAuthUser, SendIPs, H46018Client, H46018Server and
  UseH46018 need H.235 tokens, H.460.18 or IP-dialled LRQs, which this
  gatekeeper does not do: they are accepted with a warning.
- ``[RasSrv::LRQFeatures]``: NeighborTimeout, SendRetries, ForwardHopCount,
  AcceptForwardedLRQ, ForwardResponse, ForwardLRQ, AcceptNonNeighborLCF,
  SendRIP, AlwaysForwardLRQ; the forwarding keys are the defaults of every
  neighbour.  AcceptNonNeighborLRQ belongs to :mod:`gatekeeper.ras.policy`
  and is skipped here without a warning.

Choices made where GnuGk's documentation is silent (NOT CONFIRMED points):

- NeighborTimeout defaults to 2 s (the manual), SendRetries to 2.  The LRQ is
  sent once and re-sent SendRetries times, NeighborTimeout apart, to every
  neighbour that has not answered yet; a neighbour still silent
  NeighborTimeout after the last copy has timed out.  So the longest wait is
  NeighborTimeout x (SendRetries + 1).
- The *policy* re-sends, not the sender: it owns the one timer of a fan-out
  (as GnuGk does) and calls :meth:`ILocationExchange.resend`, which sends the
  same datagram under the same requestSeqNum.  The sender owns sequence
  numbers, our replyAddress and the sockets; it must not retransmit on its
  own.
- A RequestInProgress from a neighbour stops re-sends to it and extends the
  wait to at least its delay, but never by more than ``RIP_LIMIT`` seconds
  past the normal end (a neighbour cannot hold a call for ever); the fan-out
  has one timer, so the next re-send to the others waits as well.  GnuGk's
  ``id:N`` RIP data (N more expected answers) is not read.
- Ranking: for each destination alias in turn, a ``SendAliases`` entry equal
  to it ranks highest (``ALIAS_RANK``), then an alias-type entry
  (``TYPE_RANK``), then the longest matching prefix (its length); the first
  alias that matches decides.  Among prefixes the longest matching entry
  wins, and a ``!prefix`` wins a tie: ``!12,1234`` sends 1234... but not
  other 12...; a winning ``!`` entry leaves the neighbour out entirely (also
  for ``*``).  ``*`` ranks 0.  Equal ranks: the lower ``:=`` priority first
  (default priority 1), then file order.  The best-ranked LCF wins; an LCF
  from a lower-ranked neighbour is held until every better-ranked one
  rejected or timed out; among equal ranks the first LCF to arrive wins.
- Prefixes are matched against the digits of a digit alias and against the
  text of any other alias; ``.`` matches any one character.
- LRQ contents per type (from an ARQ or a Setup): hopCount only when
  ForwardHopCount >= 1.  GnuGk and Generic: gatekeeperIdentifier = our
  gatekeeper identifier, sourceInfo = the caller's aliases (our identifier as
  an h323-ID when it has none), canMapAlias for a Setup only (the ARQ's own
  canMapAlias does not reach the routing chain, so an ARQ's LRQ says FALSE).
  GnuGk's "neighbour id" nonStandardData is not sent.  CiscoGk: GnuGk's base
  LRQ (sourceInfo = our identifier) with canMapAlias TRUE; the Cisco
  LRQnonStandardInfo (PER-encoded nonStandardData) is *not* sent.  ClarentGk:
  the base LRQ.  GlonetGk: the base LRQ with the call reference value added to
  sourceInfo as a dialledDigits alias; LRQs are never forwarded to a GlonetGk.
- The ``neighbor`` policy answers None for requests whose message type is
  ``LRQ``: a RoutingRequest has no hopCount or sending neighbour, so the LRQ
  handler decides forwarding with :func:`forward_targets` and, for
  ForwardResponse=1, asks with :meth:`NeighborPolicy.locate`.
- Forwarding: the sending neighbour's ForwardLRQ decides (the LRQFeatures
  default for an LRQ from a non-neighbour).  ``never``: not forwarded.
  ``depends``: only a received hopCount > 1.  ``always``: also without a
  hopCount.  A received hopCount is decremented and 0 forwards nothing; an
  LRQ without hopCount is forwarded with the target's ForwardHopCount when
  that is >= 1, else without.  The copy goes to every other neighbour whose
  SendPrefixes match (never back to the sender, never to a GlonetGk), with
  destinationInfo reduced to the matching alias.  Loops beyond that are cut
  by :class:`RecentLrqs`: the same (replyAddress, requestSeqNum,
  destination) is forwarded once within the longest wait.
- A Host that is a name (not an IP) parses here, but
  :func:`refuse_host_names` (called by :mod:`gatekeeper.config`) refuses it:
  the RAS controller sends to IP addresses only and never resolves names.
  A neighbour without Host is left out with a warning.
- SendAliases entries are exact aliases or digit ranges ``2000-2010`` (both
  ends the same length).  SendIPs is accepted with a warning (IP-dialled LRQs
  are not sent).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace
from typing import NoReturn, Sequence

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Attribute, Interface, implementer

from gatekeeper.configfile import ConfigError, IniFile, as_bool, as_int, unknown_key
from gatekeeper.core.routing import Route, RoutingRequest
from gatekeeper.h225 import ras
from gatekeeper.h225.ras import Address, Alias
from gatekeeper.interfaces import IRoutingPolicy
from gatekeeper.ratelimit import RateLimitedLog

NEIGHBORS = "RasSrv::Neighbors"
LRQ_FEATURES = "RasSrv::LRQFeatures"
NEIGHBOR_PREFIX = "Neighbor::"
DEFAULT_RAS_PORT = 1719

#: Neighbour types, by the lower-case spelling of GnuGk's names.
TYPES = {"gnugk": "GnuGk", "ciscogk": "CiscoGk", "clarentgk": "ClarentGk",
         "glonetgk": "GlonetGk", "generic": "Generic"}
FORWARD_LRQ = ("always", "never", "depends")

#: Rank of a SendAliases match and of an alias-type SendPrefixes entry; any
#: prefix ranks its length (an alias is at most a few hundred characters).
ALIAS_RANK = 20000
TYPE_RANK = 10000
DEFAULT_PRIORITY = 1
#: Longest extension of a fan-out's wait by RequestInProgress, in seconds.
RIP_LIMIT = 30.0

#: GnuGk's alias type names (lower case) -> H.225.0 AliasAddress alternative.
ALIAS_TYPE_NAMES = {tag.lower(): kind for kind, tag in ras.ALIAS_TAGS.items()}
ALIAS_TYPE_NAMES.update({"dialleddigits": "dialledDigits", "h323-id": "h323-ID",
                         "url-id": "url-ID", "email-id": "email-ID"})

#: The [RasSrv::LRQFeatures] keys read here (lower case).
LRQ_FEATURE_KEYS = frozenset({
    "neighbortimeout", "sendretries", "forwardhopcount", "acceptforwardedlrq",
    "forwardresponse", "forwardlrq", "acceptnonneighborlcf", "sendrip", "alwaysforwardlrq"})

_NOT_SUPPORTED = {"password", "authuser", "sendpassword", "sendauthuser", "sendips",
                  "h46018client", "h46018server", "useh46018"}
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$")


# -- settings ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrefixEntry:
    """One item of a SendPrefixes/AcceptPrefixes list."""

    pattern: str                 # the prefix ("." = any one character), "*", or ""
    alias_kind: str | None = None   # an alias-type entry: the AliasAddress alternative
    negative: bool = False       # "!prefix"
    priority: int = DEFAULT_PRIORITY


@dataclass(frozen=True, slots=True)
class PrefixMatch:
    """Why a list matched a destination: rank, priority, and the alias that
    matched (None when only ``*`` did: then all aliases go)."""

    rank: int
    priority: int
    alias: Alias | None


def _prefix_matches(pattern: str, text: str) -> bool:
    if len(text) < len(pattern):
        return False
    return all(p == "." or p == c for p, c in zip(pattern, text))


@dataclass(frozen=True, slots=True)
class PrefixList:
    """A parsed SendPrefixes or AcceptPrefixes value."""

    entries: tuple[PrefixEntry, ...] = ()

    @property
    def star(self) -> PrefixEntry | None:
        for entry in self.entries:
            if entry.pattern == "*" and entry.alias_kind is None:
                return entry
        return None

    def match(self, aliases: Sequence[Alias]) -> PrefixMatch | None:
        """The match for these destination aliases, or None (no entry
        matches, or a ``!prefix`` excludes them)."""
        prefixes = [e for e in self.entries if e.alias_kind is None and e.pattern != "*"]
        for alias in aliases:
            for entry in self.entries:
                if entry.alias_kind is not None and entry.alias_kind == alias.kind:
                    return PrefixMatch(TYPE_RANK, entry.priority, alias)
            digits = alias.digits
            text = digits if digits is not None else alias.value
            best: PrefixEntry | None = None
            for entry in prefixes:
                if _prefix_matches(entry.pattern, text) and (
                        best is None or len(entry.pattern) > len(best.pattern)
                        or (len(entry.pattern) == len(best.pattern) and entry.negative)):
                    best = entry
            if best is not None:
                if best.negative:
                    return None
                return PrefixMatch(len(best.pattern), best.priority, alias)
        star = self.star
        if star is not None:
            return PrefixMatch(0, star.priority, None)
        return None


STAR = PrefixList((PrefixEntry("*"),))


@dataclass(frozen=True, slots=True)
class AliasRange:
    """A SendAliases item: one alias text, or digits ``low-high`` (same length)."""

    low: str
    high: str | None = None

    def matches(self, alias: Alias) -> bool:
        digits = alias.digits
        text = digits if digits is not None else alias.value
        if self.high is None:
            return text == self.low
        return (digits is not None and len(digits) == len(self.low) and digits.isdigit()
                and self.low <= digits <= self.high)


@dataclass(frozen=True, slots=True)
class Neighbor:
    """One neighbour gatekeeper, with the LRQFeatures defaults applied."""

    name: str
    type: str = "GnuGk"
    host: str = ""
    port: int = DEFAULT_RAS_PORT
    gatekeeper_id: str = ""
    dynamic: bool = False
    send_prefixes: PrefixList = PrefixList()
    send_aliases: tuple[AliasRange, ...] = ()
    accept_prefixes: PrefixList = STAR
    forward_hop_count: int = 0
    accept_forwarded_lrq: bool = True
    forward_response: bool = False
    forward_lrq: str = "depends"
    ping_alias: str | None = None

    @property
    def address(self) -> Address:
        """Its RAS address (the host may be a name: see the module docstring)."""
        return (self.host, self.port)

    def is_at(self, ip: str) -> bool:
        """Whether an LRQ from ``ip`` (any port) comes from this neighbour."""
        try:
            return ipaddress.ip_address(self.host) == ipaddress.ip_address(ip)
        except ValueError:
            return False


@dataclass(frozen=True, slots=True)
class LrqFeatures:
    """``[RasSrv::LRQFeatures]`` keys about neighbours."""

    neighbor_timeout: int = 2          # seconds per try
    send_retries: int = 2              # re-sends after the first LRQ
    forward_hop_count: int = 0
    accept_forwarded_lrq: bool = True
    forward_response: bool = False
    forward_lrq: str = "depends"
    accept_non_neighbor_lcf: bool = False
    send_rip: int = 0                  # ms; 0 = no RequestInProgress
    always_forward_lrq: bool = False   # old-syntax neighbours only

    @property
    def longest_wait(self) -> float:
        return float(self.neighbor_timeout * (self.send_retries + 1))


@dataclass(frozen=True, slots=True)
class NeighborSettings:
    """All neighbours in file order, and the LRQ features."""

    neighbors: tuple[Neighbor, ...] = ()
    features: LrqFeatures = LrqFeatures()

    def find(self, name: str) -> Neighbor | None:
        for neighbor in self.neighbors:
            if neighbor.name == name:
                return neighbor
        return None

    def sender_of(self, ip: str) -> Neighbor | None:
        """The neighbour an LRQ from ``ip`` comes from (the first configured)."""
        for neighbor in self.neighbors:
            if neighbor.is_at(ip):
                return neighbor
        return None

    def sender_at(self, source: Address) -> Neighbor | None:
        """The neighbour a datagram from ``source`` comes from: the one whose
        Host and port are exactly that, else the first at that IP (several
        gatekeepers on one host are told apart by their RAS ports)."""
        for neighbor in self.neighbors:
            if neighbor.is_at(source[0]) and neighbor.port == source[1]:
                return neighbor
        return self.sender_of(source[0])


def parse_prefixes(path: str, section: str, key: str, value: str) -> PrefixList:
    """A comma-separated SendPrefixes/AcceptPrefixes value."""
    entries: list[PrefixEntry] = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        priority = DEFAULT_PRIORITY
        if ":=" in item:
            item, _, number = item.partition(":=")
            item = item.strip()
            if not number.strip():
                _bad(path, section, key, value, "':=' without a priority")
            priority = as_int(path, section, key, number.strip(), 0, 65535)
        negative = item.startswith("!")
        if negative:
            item = item[1:].strip()
        if not item:
            _bad(path, section, key, value, "an empty prefix")
        kind = ALIAS_TYPE_NAMES.get(item.lower())
        if kind is not None:
            if negative:
                _bad(path, section, key, value, f"'!{item}': an alias type cannot be excluded")
            entries.append(PrefixEntry("", kind, False, priority))
        elif item == "*":
            if negative:
                _bad(path, section, key, value, "'!*' excludes everything; leave the key empty")
            entries.append(PrefixEntry("*", None, False, priority))
        elif any(c.isspace() for c in item):
            _bad(path, section, key, value, f"{item!r}: a prefix has no spaces")
        else:
            entries.append(PrefixEntry(item, None, negative, priority))
    return PrefixList(tuple(entries))


def _bad(path: str, section: str, key: str, value: str, problem: str) -> NoReturn:
    raise ConfigError(path, section, key, value, problem)


def parse_send_aliases(path: str, section: str, key: str, value: str) -> tuple[AliasRange, ...]:
    ranges: list[AliasRange] = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        low, dash, high = item.partition("-")
        if dash and low.isdigit() and high.isdigit():
            if len(low) != len(high) or low > high:
                _bad(path, section, key, value,
                     f"{item!r}: a range needs two numbers of one length, low first")
            ranges.append(AliasRange(low, high))
        else:
            ranges.append(AliasRange(item))
    return tuple(ranges)


def parse_host(path: str, section: str, key: str, value: str) -> tuple[str, int]:
    """``ip[:port]``, ``[ip6][:port]`` or ``name[:port]``; port 1719 by default."""
    text = value.strip()
    try:
        return ras.parse_address(text, DEFAULT_RAS_PORT)
    except ValueError:
        pass
    host, sep, port_text = text.partition(":")
    if not host or not _HOSTNAME.match(host) or host.replace(".", "").isdigit():
        _bad(path, section, key, value, "not an IP address or host name (host[:port])")
    port = DEFAULT_RAS_PORT
    if sep:
        if not port_text.isdigit() or not 0 < int(port_text) <= 65535:
            _bad(path, section, key, value, "bad port (1 to 65535)")
        port = int(port_text)
    return host, port


def _forward_lrq(path: str, section: str, key: str, value: str) -> str:
    lowered = value.strip().lower()
    if lowered not in FORWARD_LRQ:
        _bad(path, section, key, value, "must be always, never or depends")
    return lowered


#: The forwarding keys, read the same way in [RasSrv::LRQFeatures] (the
#: defaults) and in each [Neighbor::NAME] (its own): key -> (field, parser).
_FORWARDING_KEYS = {
    "forwardhopcount": ("forward_hop_count",
                        lambda path, section, key, value: as_int(path, section, key, value, 0, 255)),
    "acceptforwardedlrq": ("accept_forwarded_lrq", as_bool),
    "forwardresponse": ("forward_response", as_bool),
    "forwardlrq": ("forward_lrq", _forward_lrq),
}


def parse_lrq_features(ini: IniFile) -> tuple[LrqFeatures, list[str]]:
    """The neighbour keys of ``[RasSrv::LRQFeatures]``."""
    values: dict[str, object] = {}
    warnings: list[str] = []
    path = ini.path
    for key, value in ini.items(LRQ_FEATURES):
        lowered = key.lower()
        if lowered == "neighbortimeout":
            values["neighbor_timeout"] = as_int(path, LRQ_FEATURES, key, value, 1, 3600)
        elif lowered == "sendretries":
            values["send_retries"] = as_int(path, LRQ_FEATURES, key, value, 0, 100)
        elif lowered in _FORWARDING_KEYS:
            name, parse = _FORWARDING_KEYS[lowered]
            values[name] = parse(path, LRQ_FEATURES, key, value)
        elif lowered == "acceptnonneighborlcf":
            values["accept_non_neighbor_lcf"] = as_bool(path, LRQ_FEATURES, key, value)
        elif lowered == "sendrip":
            values["send_rip"] = as_int(path, LRQ_FEATURES, key, value, 0, 65535)
        elif lowered == "alwaysforwardlrq":
            values["always_forward_lrq"] = as_bool(path, LRQ_FEATURES, key, value)
        # Anything else: AcceptNonNeighborLRQ is gatekeeper.ras.policy's, which
        # also warns about the keys neither module reads (LRQ_FEATURE_KEYS).
    return LrqFeatures(**values), warnings


def _section(ini: IniFile, name: str) -> str | None:
    wanted = NEIGHBOR_PREFIX + name
    if wanted in ini.sections:
        return wanted
    for section in ini.sections:
        if section.lower() == wanted.lower():
            return section
    return None


def _defaults(name: str, type_: str, features: LrqFeatures) -> Neighbor:
    return Neighbor(name=name, type=type_, gatekeeper_id=name,
                    forward_hop_count=features.forward_hop_count,
                    accept_forwarded_lrq=features.accept_forwarded_lrq,
                    forward_response=features.forward_response,
                    forward_lrq=features.forward_lrq)


def _parse_profile(ini: IniFile, name: str, type_: str, features: LrqFeatures,
                   warnings: list[str]) -> Neighbor | None:
    section = _section(ini, name)
    neighbor = _defaults(name, type_, features)
    if section is None:
        warnings.append(f"{ini.path}: [{NEIGHBORS}] {name}: no [{NEIGHBOR_PREFIX}{name}] "
                        f"section, so no Host: neighbour left out")
        return None
    values: dict[str, object] = {}
    path = ini.path
    for key, value in ini.items(section):
        lowered = key.lower()
        if lowered == "gatekeeperidentifier":
            values["gatekeeper_id"] = value.strip() or name
        elif lowered == "host":
            values["host"], values["port"] = parse_host(path, section, key, value)
        elif lowered == "dynamic":
            values["dynamic"] = as_bool(path, section, key, value)
        elif lowered == "sendprefixes":
            values["send_prefixes"] = parse_prefixes(path, section, key, value)
        elif lowered == "sendaliases":
            values["send_aliases"] = parse_send_aliases(path, section, key, value)
        elif lowered == "acceptprefixes":
            values["accept_prefixes"] = parse_prefixes(path, section, key, value)
        elif lowered in _FORWARDING_KEYS:
            name, parse = _FORWARDING_KEYS[lowered]
            values[name] = parse(path, section, key, value)
        elif lowered == "pingalias":
            values["ping_alias"] = value.strip() or None
        elif lowered in _NOT_SUPPORTED:
            warnings.append(f"{path}: [{section}] {key}: not supported here (needs H.235 "
                            f"tokens, H.460.18 or IP-dialled LRQs), ignored")
        else:
            warnings.append(unknown_key(path, section, key))
    neighbor = replace(neighbor, **values)
    if not neighbor.host:
        warnings.append(f"{path}: [{section}]: no Host, neighbour {name} left out")
        return None
    return neighbor


def _parse_old(ini: IniFile, name: str, value: str, features: LrqFeatures,
               warnings: list[str]) -> Neighbor:
    """GnuGk's old form ``host[:port][;prefixes[;password[;dynamic]]]``."""
    fields = [part.strip() for part in value.split(";")]
    host, port = parse_host(ini.path, NEIGHBORS, name, fields[0])
    prefixes = STAR
    if len(fields) > 1 and fields[1]:
        prefixes = parse_prefixes(ini.path, NEIGHBORS, name, fields[1])
    if len(fields) > 2 and fields[2]:
        warnings.append(f"{ini.path}: [{NEIGHBORS}] {name}: a password needs H.235 tokens, "
                        f"not supported here, ignored")
    dynamic = as_bool(ini.path, NEIGHBORS, name, fields[3]) if len(fields) > 3 and fields[3] \
        else False
    if len(fields) > 4:
        _bad(ini.path, NEIGHBORS, name, value, "expected host[:port][;prefixes[;password"
                                                "[;dynamic]]]")
    neighbor = replace(_defaults(name, "Generic", features), host=host, port=port,
                       dynamic=dynamic, send_prefixes=prefixes, accept_prefixes=STAR)
    if features.always_forward_lrq:
        neighbor = replace(neighbor, forward_lrq="always")
    return neighbor


def parse_neighbors(ini: IniFile) -> tuple[NeighborSettings, list[str]]:
    """``[RasSrv::Neighbors]``, each ``[Neighbor::NAME]`` and the neighbour keys
    of ``[RasSrv::LRQFeatures]``; a bad value is a ConfigError naming section,
    key and value."""
    features, warnings = parse_lrq_features(ini)
    by_name: dict[str, Neighbor] = {}
    for key, value in ini.items(NEIGHBORS):
        name = key.strip()
        type_ = TYPES.get(value.strip().lower())
        if type_ is not None:
            neighbor = _parse_profile(ini, name, type_, features, warnings)
        else:
            if not value.strip():
                _bad(ini.path, NEIGHBORS, key, value,
                     f"expected a type ({', '.join(TYPES.values())}) or host[:port][;...]")
            neighbor = _parse_old(ini, name, value, features, warnings)
        by_name.pop(name, None)
        if neighbor is not None:
            by_name[name] = neighbor
    listed = {name.lower() for name, _ in ini.items(NEIGHBORS)}
    for section in ini.sections:
        if (section.lower().startswith(NEIGHBOR_PREFIX.lower())
                and section[len(NEIGHBOR_PREFIX):].strip().lower() not in listed):
            warnings.append(f"{ini.path}: [{section}]: not listed in [{NEIGHBORS}], ignored")
    return NeighborSettings(tuple(by_name.values()), features), warnings


def refuse_host_names(ini: IniFile, settings: NeighborSettings) -> None:
    """ConfigError for a neighbour whose Host is a name, not an IP address:
    the RAS service sends to IP addresses only and does not resolve names
    (a lookup would block the reactor, and GnuGk's Dynamic re-resolving is
    not done here); the error names the section and key to fix."""
    for neighbor in settings.neighbors:
        try:
            ipaddress.ip_address(neighbor.host)
            continue
        except ValueError:
            pass
        section = _section(ini, neighbor.name)
        problem = "a host name: give the neighbour's IP address (names are not resolved)"
        if section is not None and ini.get(section, "Host") is not None:
            _bad(ini.path, section, "Host", ini.get(section, "Host") or "", problem)
        _bad(ini.path, NEIGHBORS, neighbor.name, ini.get(NEIGHBORS, neighbor.name) or neighbor.host,
             problem)


# -- choosing neighbours -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Selection:
    """A neighbour chosen for a destination, and what its LRQ asks for."""

    neighbor: Neighbor
    rank: int
    priority: int
    destination: tuple[Alias, ...]   # the matching alias, or all of them for "*"
    order: int = 0                   # position in the configuration

    @property
    def key(self) -> tuple[int, int, int]:
        """Sort key: best rank first, then lower priority (then file order)."""
        return (-self.rank, self.priority, self.order)

    @property
    def standing(self) -> tuple[int, int]:
        """What decides between two LCFs (file order does not)."""
        return (-self.rank, self.priority)


def send_match(neighbor: Neighbor, destination: Sequence[Alias]) -> PrefixMatch | None:
    """Whether LRQs for ``destination`` go to ``neighbor``, and how well it matches."""
    if not destination:
        return None
    for alias in destination:
        if any(item.matches(alias) for item in neighbor.send_aliases):
            return PrefixMatch(ALIAS_RANK, DEFAULT_PRIORITY, alias)
    return neighbor.send_prefixes.match(destination)


def select_neighbors(neighbors: Sequence[Neighbor], destination: Sequence[Alias],
                     exclude: Neighbor | None = None) -> tuple[Selection, ...]:
    """The neighbours to ask for ``destination``, best-ranked first."""
    chosen: list[Selection] = []
    for order, neighbor in enumerate(neighbors):
        if exclude is not None and neighbor.name == exclude.name:
            continue
        found = send_match(neighbor, destination)
        if found is None:
            continue
        aliases = (found.alias,) if found.alias is not None else tuple(destination)
        chosen.append(Selection(neighbor, found.rank, found.priority, aliases, order))
    return tuple(sorted(chosen, key=lambda s: s.key))


def accepts_lrq(neighbor: Neighbor, destination: Sequence[Alias],
                gatekeeper_id: str | None) -> bool:
    """Whether an LRQ from ``neighbor`` is taken: a destination alias matches
    its AcceptPrefixes, and with AcceptForwardedLRQ=0 the LRQ must name the
    neighbour itself as its originator (its gatekeeperIdentifier)."""
    if not neighbor.accept_forwarded_lrq and gatekeeper_id != neighbor.gatekeeper_id:
        return False
    return bool(destination) and neighbor.accept_prefixes.match(destination) is not None


# -- what an LRQ to a neighbour says ------------------------------------------


@dataclass(frozen=True, slots=True)
class LocationQuery:
    """The LRQ for one neighbour, typed.  ``seq`` and ``reply_address`` are None
    for LRQs we originate (the sender gives a fresh requestSeqNum and our RAS
    address towards the neighbour); a forwarded copy keeps the originator's."""

    destination: tuple[Alias, ...]
    source: tuple[Alias, ...] = ()
    gatekeeper_id: str | None = None
    hop_count: int | None = None
    can_map_alias: bool = False
    call_id: bytes | None = None
    seq: int | None = None
    reply_address: Address | None = None


def lrq_message(query: LocationQuery, seq: int, reply_address: Address) -> ras.NeighborLrq:
    """The RAS message for a query (what the sender encodes); the query's own
    seq and replyAddress, when set, win over the ones given."""
    return ras.NeighborLrq(query.seq if query.seq is not None else seq, query.destination,
                           query.reply_address or reply_address, query.gatekeeper_id,
                           query.source or None, query.hop_count, query.can_map_alias,
                           query.call_id)


def build_query(selection: Selection, request: RoutingRequest,
                our_id: str) -> LocationQuery:
    """The LRQ a neighbour of this type gets for this call (module docstring)."""
    neighbor = selection.neighbor
    hop = neighbor.forward_hop_count if neighbor.forward_hop_count >= 1 else None
    ours = (ras.h323_id(our_id),)
    from_setup = request.message_type == "Setup"
    if neighbor.type in ("GnuGk", "Generic"):
        return LocationQuery(selection.destination, tuple(request.source) or ours, our_id, hop,
                             from_setup)
    if neighbor.type == "CiscoGk":
        return LocationQuery(selection.destination, ours, None, hop, True)
    if neighbor.type == "GlonetGk":
        source = ours + ((ras.dialled_digits(str(request.call_reference)),)
                         if request.call_reference else ())
        return LocationQuery(selection.destination, source, None, hop, False)
    return LocationQuery(selection.destination, ours, None, hop, False)   # ClarentGk


# -- the sender the RAS side provides -----------------------------------------


@dataclass(frozen=True, slots=True)
class LcfAnswer:
    """A neighbour's LCF."""

    call_signal_address: Address
    ras_address: Address | None = None
    destination: tuple[Alias, ...] = ()


@dataclass(frozen=True, slots=True)
class LrjAnswer:
    """A neighbour's LRJ, with its reason."""

    reason: str = "undefinedReason"


class ILocationExchange(Interface):
    """One LRQ in flight to one neighbour (made by :meth:`ILocationSender.send_lrq`)."""

    answer = Attribute(
        "A Deferred that fires once with an LcfAnswer or an LrjAnswer (or None, "
        "read as an LRJ). It errbacks only when the LRQ could not be sent. It never "
        "fires for a timeout: the policy times out and calls cancel().")

    def resend():
        """Send the same LRQ again, same requestSeqNum, same address."""

    def cancel():
        """Stop waiting: forget the requestSeqNum so a late answer is dropped.
        Called once the policy has decided; may be called more than once, and
        must not fire ``answer`` afterwards (the policy ignores it if it does)."""


class ILocationSender(Interface):
    """How the neighbour policy sends LRQs (the RAS controller implements it)."""

    def send_lrq(neighbor, query, on_progress):
        """Send ``query`` (a LocationQuery) once to ``neighbor``'s RAS address
        under a new requestSeqNum (unless the query has one), with our
        replyAddress (unless the query has one), e.g. as
        ``lrq_message(query, seq, reply_address)``; an LCF or LRJ from that
        neighbour's IP (or any IP with AcceptNonNeighborLCF) with that
        requestSeqNum answers it.  ``on_progress(delay_ms)`` is called for each
        RequestInProgress.  Do not retransmit: the policy calls ``resend()``.
        Returns an ILocationExchange."""


# -- the fan-out -----------------------------------------------------------------


@dataclass(eq=False)
class _Target:
    selection: Selection
    exchange: object = None
    state: str = "pending"           # pending, confirmed, rejected, timed out
    answer: LcfAnswer | None = None
    arrival: int = 0
    in_progress: bool = False


class _FanOut:
    """One round of LRQs for one call; fires ``result`` once."""

    def __init__(self, policy: "NeighborPolicy", targets: Sequence[tuple[Selection, LocationQuery]]
                 ) -> None:
        self.policy = policy
        self.clock = policy.clock
        features = policy.settings.features
        self.timeout = float(features.neighbor_timeout)
        self.resends_left = features.send_retries
        self.started = self.clock.seconds()
        self.limit = self.started + features.longest_wait + RIP_LIMIT
        self.targets = [_Target(selection) for selection, _ in targets]
        self.result: Deferred = Deferred(self._cancelled)
        self.done = False
        self.arrivals = 0
        self.timer: IDelayedCall | None = None
        self.due = self.started      # when the current wait ends (a late timer keeps the pace)
        for target, (selection, query) in zip(self.targets, targets):
            self._send(target, query)
            if self.done:
                return
        if not self.done:
            self.due = self.started + self.timeout
            self.timer = self.clock.callLater(self.timeout, self._tick)

    def _send(self, target: _Target, query: LocationQuery) -> None:
        try:
            exchange = self.policy.sender.send_lrq(
                target.selection.neighbor, query, lambda delay, t=target: self._progress(t, delay))
        except Exception:
            self.policy.trouble.failure("send", "could not send an LRQ to neighbour {name}",
                                        name=target.selection.neighbor.name)
            self._finished_target(target, "rejected")
            return
        target.exchange = exchange
        exchange.answer.addCallbacks(self._answered, self._failed,
                                     callbackArgs=(target,), errbackArgs=(target,))

    def _answered(self, answer: object, target: _Target) -> None:
        if self.done or target.state != "pending":
            return None
        if isinstance(answer, LcfAnswer):
            self.arrivals += 1
            target.arrival = self.arrivals
            target.answer = answer
            target.state = "confirmed"
            self._decide()
        else:
            self._finished_target(target, "rejected")
        return None

    def _failed(self, failure: Failure, target: _Target) -> None:
        if not failure.check(CancelledError):
            self.policy.trouble.failure("send", "the LRQ to neighbour {name} failed", failure,
                                        name=target.selection.neighbor.name)
        if not self.done and target.state == "pending":
            self._finished_target(target, "rejected")
        return None

    def _finished_target(self, target: _Target, state: str) -> None:
        target.state = state
        self._decide()

    def _progress(self, target: _Target, delay_ms: object) -> None:
        if self.done or target.state != "pending" or self.timer is None:
            return
        target.in_progress = True
        try:
            delay = max(0.0, min(float(delay_ms) / 1000.0, RIP_LIMIT))   # type: ignore[arg-type]
        except (TypeError, ValueError):
            return
        wanted = min(self.clock.seconds() + delay, self.limit)
        if self.timer.active() and self.timer.getTime() < wanted:
            self.due = wanted
            self.timer.reset(wanted - self.clock.seconds())

    def _tick(self) -> None:
        self.timer = None
        if self.done:
            return
        pending = [t for t in self.targets if t.state == "pending"]
        if self.resends_left > 0 and any(not t.in_progress for t in pending):
            self.resends_left -= 1
            for target in pending:
                if not target.in_progress and target.exchange is not None:
                    try:
                        target.exchange.resend()
                    except Exception:
                        self.policy.trouble.failure("send", "could not re-send the LRQ to "
                                                    "neighbour {name}",
                                                    name=target.selection.neighbor.name)
            self.due = max(self.due + self.timeout, self.clock.seconds())
            self.timer = self.clock.callLater(self.due - self.clock.seconds(), self._tick)
            return
        for target in pending:
            target.state = "timed out"
        self._decide()

    def _decide(self) -> None:
        if self.done:
            return
        confirmed = [t for t in self.targets if t.state == "confirmed"]
        pending = [t for t in self.targets if t.state == "pending"]
        best: _Target | None = None
        for target in sorted(confirmed, key=lambda t: (t.selection.standing, t.arrival)):
            if not any(p.selection.standing < target.selection.standing for p in pending):
                best = target
                break
        if best is not None:
            self._finish(best)
        elif not pending:
            self._finish(None)

    def _finish(self, winner: _Target | None) -> None:
        self.done = True
        self._stop()
        if winner is None:
            self.result.callback(None)
            return
        answer = winner.answer
        assert answer is not None
        self.result.callback(Route(answer.call_signal_address, None,
                                   matched=winner.selection.neighbor.name,
                                   policy=NeighborPolicy.name,
                                   destination=tuple(answer.destination)))

    def _stop(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None
        for target in self.targets:
            if target.exchange is not None:
                try:
                    target.exchange.cancel()
                except Exception:
                    self.policy.trouble.failure("cancel", "could not cancel the LRQ to "
                                                "neighbour {name}",
                                                name=target.selection.neighbor.name)

    def _cancelled(self, result: Deferred) -> None:
        # the caller gave up (the ARQ's call went away): stop asking
        if not self.done:
            self.done = True
            self._stop()


@implementer(IRoutingPolicy)
class NeighborPolicy:
    """The ``neighbor`` link of the routing chain (module docstring)."""

    name = "neighbor"
    log = Logger()

    def __init__(self, settings: NeighborSettings, sender: ILocationSender, clock: IReactorTime,
                 gatekeeper_id: str) -> None:
        self.settings = settings
        self.sender = sender
        self.clock = clock
        self.gatekeeper_id = gatekeeper_id
        self.trouble = RateLimitedLog(self.log, clock)

    def update(self, settings: NeighborSettings, gatekeeper_id: str | None = None) -> None:
        """New settings (reload); LRQs already in flight finish under the old ones."""
        self.settings = settings
        if gatekeeper_id is not None:
            self.gatekeeper_id = gatekeeper_id

    def route(self, request: RoutingRequest) -> Deferred | None:
        """None when no neighbour is chosen (or for an LRQ); else a Deferred
        firing with the Route of the winning LCF, or None when all rejected or
        timed out."""
        if request.message_type == "LRQ":
            return None
        chosen = select_neighbors(self.settings.neighbors, request.destination)
        if not chosen:
            return None
        return self.locate([(s, build_query(s, request, self.gatekeeper_id)) for s in chosen])

    def locate(self, targets: Sequence[tuple[Selection, LocationQuery]]) -> Deferred:
        """Send each query to its neighbour at once; the Deferred fires with
        the best-ranked LCF's Route (``policy="neighbor"``, ``matched`` = the
        neighbour's NAME) or None.  Cancelling it stops the fan-out."""
        if not targets:
            return _fired(None)
        return _FanOut(self, sorted(targets, key=lambda t: t[0].key)).result


def _fired(value: object) -> Deferred:
    d: Deferred = Deferred()
    d.callback(value)
    return d


# -- incoming LRQs: forwarding ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Forward:
    """One forwarded copy of a received LRQ."""

    neighbor: Neighbor
    hop_count: int | None
    destination: tuple[Alias, ...]


def forward_targets(hop_count: int | None, sender: Neighbor | None,
                    settings: NeighborSettings,
                    destination: Sequence[Alias]) -> tuple[Forward, ...]:
    """To whom a received LRQ goes on, and with what hopCount (module
    docstring): ``sender`` is the neighbour it came from (None: not a
    neighbour; the LRQFeatures default decides)."""
    rule = sender.forward_lrq if sender is not None else settings.features.forward_lrq
    if rule == "never":
        return ()
    if hop_count is None:
        if rule != "always":
            return ()
        next_hop: int | None = None
    else:
        if rule == "depends" and hop_count <= 1:
            return ()
        next_hop = hop_count - 1
        if next_hop <= 0:
            return ()
    forwards: list[Forward] = []
    for selection in select_neighbors(settings.neighbors, destination, exclude=sender):
        neighbor = selection.neighbor
        if neighbor.type == "GlonetGk":
            continue
        hop = next_hop
        if hop is None and neighbor.forward_hop_count >= 1:
            hop = neighbor.forward_hop_count
        forwards.append(Forward(neighbor, hop, selection.destination))
    return tuple(forwards)


def forwarded_query(lrq: ras.LocationRequest, forward: Forward, our_id: str,
                    our_reply: bool) -> LocationQuery:
    """The LRQ a forward target gets: with ForwardResponse=0 (``our_reply``
    False) the originator's requestSeqNum and replyAddress, so the LCF goes
    straight back; with ForwardResponse=1 a fresh one of ours (sent with
    :meth:`NeighborPolicy.locate`).  sourceInfo, canMapAlias and callIdentifier
    are copied; the gatekeeperIdentifier stays the originator's."""
    return LocationQuery(forward.destination, lrq.source_info,
                         lrq.gatekeeper_id if lrq.gatekeeper_id else our_id,
                         forward.hop_count, lrq.can_map_alias, lrq.call_id,
                         None if our_reply else lrq.seq,
                         None if our_reply else lrq.reply_address)


class RecentLrqs:
    """LRQs forwarded lately, so that a copy coming back round a loop of
    neighbours is not forwarded again.  Keyed by (replyAddress,
    requestSeqNum, destination); an entry lives ``lifetime`` seconds."""

    def __init__(self, clock: IReactorTime, lifetime: float, limit: int = 4096) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.limit = limit
        self._seen: dict[tuple, float] = {}

    def first_time(self, lrq: ras.LocationRequest) -> bool:
        """True the first time an LRQ is seen (and remembers it), False again
        within its lifetime."""
        now = self.clock.seconds()
        if len(self._seen) >= self.limit:
            self._seen = {k: t for k, t in self._seen.items() if t > now}
            while len(self._seen) >= self.limit:
                self._seen.pop(next(iter(self._seen)))
        key = (lrq.reply_address, lrq.seq, frozenset(lrq.destination_info))
        expires = self._seen.get(key)
        if expires is not None and expires > now:
            return False
        self._seen[key] = now + self.lifetime
        return True
