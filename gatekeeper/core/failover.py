"""Alternate gatekeepers that share our registrations, and sending endpoints to them.

``[Gatekeeper::Main]`` keys (GnuGk's, read by :func:`parse_failover`):

- ``SendTo=ip[:port][,...]``: every registration (full RRQ and keepalive)
  and unregistration we accept is copied to these alternates, so that an
  endpoint failing over to one with needToRegister=false can call at once.
- ``SkipForwards=ip[,...]``: RAS from these IPs counts as forwarded (not
  forwarded again, registered as a copy), with or without GnuGk's marker.
- ``RedirectGK=Endpoints > N; Calls > M`` or ``temporary`` / ``permanent``:
  new registrations, calls or everything are refused with the AlternateGKs
  list, to send endpoints to the alternates.

The rules are here; the RAS side (:mod:`gatekeeper.ras.failover`) sends
and reads the forwarded messages, :class:`~gatekeeper.core.registration.
Registration` keeps the forwarded registrations apart from its own.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, NamedTuple

from gatekeeper import events as ev
from gatekeeper.configfile import ConfigError
from gatekeeper.core.calls import CallTable
from gatekeeper.core.registry import Registry
from gatekeeper.h225.ras import Address, AlternateGk
from gatekeeper.interfaces import IEventBus

#: The reject reason of a redirect (GnuGk's: GRJ, RRJ and ARJ say
#: resourceUnavailable and carry altGKInfo).
REDIRECT_REASON = "resourceUnavailable"
REDIRECT_MODES = ("temporary", "permanent")


@dataclass(frozen=True, slots=True)
class RedirectRule:
    """``RedirectGK``: when to send endpoints to the alternates instead."""

    endpoints: int | None = None      # Endpoints > N: no new registration past N
    calls: int | None = None          # Calls > M: no new call past M
    mode: str | None = None           # temporary | permanent: refuse everything new

    @property
    def active(self) -> bool:
        return self.mode is not None or self.endpoints is not None or self.calls is not None

    @property
    def permanent(self) -> bool:
        """altGKisPermanent: the endpoints should not come back."""
        return self.mode == "permanent"

    def redirects_discovery(self) -> bool:
        return self.mode is not None

    def redirects_registration(self, registered: int) -> bool:
        """A new registration, ``registered`` endpoints being registered here."""
        return self.mode is not None or (self.endpoints is not None
                                         and registered >= self.endpoints)

    def redirects_admission(self, calls: int) -> bool:
        """A new call (not the answering side of one), ``calls`` being up."""
        return self.mode is not None or (self.calls is not None and calls >= self.calls)


@dataclass(frozen=True, slots=True)
class FailoverSettings:
    """SendTo, SkipForwards and RedirectGK of ``[Gatekeeper::Main]``."""

    send_to: tuple[Address, ...] = ()
    skip_forwards: frozenset[str] = frozenset()
    redirect: RedirectRule = RedirectRule()


def is_forwarded(marked: bool, source: Address, settings: FailoverSettings) -> bool:
    """A RAS message another gatekeeper forwarded: GnuGk's marker, or it
    comes from a SkipForwards IP."""
    return marked or source[0] in settings.skip_forwards


def forwarding_peers(settings: FailoverSettings,
                     alternates: Iterable[AlternateGk]) -> frozenset[str]:
    """The IPs whose forwarded registrations we take: our SendTo and
    SkipForwards peers and our AlternateGKs (the gatekeepers of the cluster).
    Anyone else's marked RRQ or URQ is dropped: taken, it would let any host
    register or unregister any endpoint at any address."""
    return frozenset({address[0] for address in settings.send_to} | set(settings.skip_forwards)
                     | {alternate.ras_address[0] for alternate in alternates})


class AdmissionRedirected(NamedTuple):
    """An ARQ refused by RedirectGK: ARJ resourceUnavailable with altGKInfo."""

    reason: str = REDIRECT_REASON


class AdmissionRedirect:
    """RedirectGK for ARQs (``Calls > M``, temporary, permanent): asked
    before admission proper, for registered callers only (an unknown one is
    refused by admission as before), never for the answering side of a
    call or an ARQ of a call already admitted."""

    def __init__(self, registry: Registry, calls: CallTable, bus: IEventBus,
                 stats: Counter[str]) -> None:
        self.registry = registry
        self.calls = calls
        self.bus = bus
        self.stats = stats

    def check(self, rule: RedirectRule, source: Address, endpoint_id: str | None,
              destination: tuple, source_info: tuple, answer_call: bool,
              call_id: bytes | None) -> AdmissionRedirected | None:
        if not rule.active or answer_call or (rule.mode is None and rule.calls is None):
            return None
        endpoint = self.registry.get(endpoint_id) if endpoint_id else None
        if endpoint is None or not endpoint.is_from(source):
            return None
        if call_id is not None and self.calls.find_call_id(call_id) is not None:
            return None
        if not rule.redirects_admission(len(self.calls)):
            return None
        self.stats["ARJ"] += 1
        self.stats["ARQ redirected"] += 1
        self.bus.publish(ev.AdmissionRejected(
            endpoint.signal_address, destination, source_info, answer_call, REDIRECT_REASON,
            call_id, endpoint_id or "", "ARQ"))
        return AdmissionRedirected()


# -- configuration -----------------------------------------------------------------


def _ip(path: str, section: str, key: str, value: str, text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ConfigError(path, section, key, value,
                          f"{text!r} is not an IP address (host names are not resolved: "
                          "give the gatekeeper's IP address)") from None


def _split(value: str, separators: str) -> list[str]:
    for separator in separators[1:]:
        value = value.replace(separator, separators[0])
    return [part.strip() for part in value.split(separators[0]) if part.strip()]


def parse_send_to(path: str, section: str, key: str, value: str) -> tuple[Address, ...]:
    """``ip[:port]`` entries (port 1719 by default), separated by commas,
    semicolons or blanks as GnuGk reads them."""
    addresses: list[Address] = []
    for entry in _split(value, ", ;\t"):
        host, port = entry, "1719"
        if entry.startswith("["):
            host, _, rest = entry[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else "1719"
        elif entry.count(":") == 1:
            host, port = entry.split(":")
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ConfigError(path, section, key, value, f"port {port!r} is not 1-65535")
        address = (_ip(path, section, key, value, host), int(port))
        if address not in addresses:
            addresses.append(address)
    return tuple(addresses)


def parse_skip_forwards(path: str, section: str, key: str, value: str) -> frozenset[str]:
    return frozenset(_ip(path, section, key, value, entry) for entry in _split(value, ", ;\t"))


def parse_redirect(path: str, section: str, key: str, value: str) -> RedirectRule:
    """``temporary``, ``permanent``, or limits ``Endpoints > N`` and
    ``Calls > M`` separated by ``;`` (or ``|``, ``,``, ``&``, as GnuGk)."""
    text = value.strip()
    if not text:
        return RedirectRule()
    if text.lower() in REDIRECT_MODES:
        return RedirectRule(mode=text.lower())
    limits: dict[str, int] = {}
    for part in _split(text, ";|,&"):
        name, sign, number = part.partition(">")
        name = name.strip().lower()
        if not sign or name not in ("endpoints", "calls"):
            raise ConfigError(path, section, key, value,
                              f"{part!r} is not 'Endpoints > N' or 'Calls > M' "
                              "(or temporary, permanent)")
        number = number.strip()
        if not number.isdigit() or int(number) > 2**31 - 1:
            raise ConfigError(path, section, key, value,
                              f"{number!r} in {part!r} is not a whole number 0 or more")
        if name in limits:
            raise ConfigError(path, section, key, value, f"{name} is limited twice")
        limits[name] = int(number)
    return RedirectRule(endpoints=limits.get("endpoints"), calls=limits.get("calls"))
