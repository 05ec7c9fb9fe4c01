"""Where a call goes: a chain of routing policies, as GnuGk's ``[RoutingPolicy]``.

Each policy looks at a :class:`RoutingRequest` and answers in one of three
ways:

- a :class:`Route`: the call goes there (or, with ``reject`` set, it is
  refused and the chain ends);
- None: the next policy tries;
- a Deferred, for policies that ask someone else (a virtual queue asks an
  external application). It fires with a Route, with None (go on down the
  chain) or with a rewritten RoutingRequest (go on down the chain with it,
  e.g. after ``RouteToAlias`` named an alias that is not registered here).

The chain is GnuGk's: ``default=`` names the policies in order, other keys
pick a chain by destination alias type (``h323_ID=``, ``dialedDigits=``, ...)
or by dialled prefix; ``[RoutingPolicy::OnARQ]`` and ``::OnLRQ`` override it
for one kind of message.  ``parent`` and ``neighbor`` are in GnuGk's default
chain; with no parent or neighbour configured they pass, as in GnuGk.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

from twisted.internet.defer import Deferred
from zope.interface import implementer

from gatekeeper.configfile import ConfigError, IniFile, unknown_key
from gatekeeper.core.registry import Endpoint, Registry
from gatekeeper.h225.ras import Address, Alias
from gatekeeper.interfaces import IRoutingPolicy

DEFAULT_CHAIN = ("explicit", "internal", "parent", "neighbor")


@dataclass(frozen=True, slots=True)
class RoutingRequest:
    """What is known of a call when it has to be routed."""

    destination: tuple[Alias, ...]
    dest_signal_address: Address | None
    source: tuple[Alias, ...]
    caller: Endpoint | None
    message_type: str = "ARQ"            # ARQ, LRQ or Setup
    call_id: bytes | None = None
    call_reference: int = 0
    message_from: Address | None = None  # where the request came from
    caller_signal_address: Address | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """Where to send the call (a registered endpoint, or just an address),
    or, with ``reject`` set, the reason the call is refused."""

    signal_address: Address | None
    endpoint: Endpoint | None = None
    matched: str = ""            # the alias or prefix that matched
    policy: str = ""
    reject: str | None = None    # an ARJ/LRJ reason: the chain ends in a reject
    destination: tuple[Alias, ...] = ()   # the aliases the call now goes to, if rewritten


@implementer(IRoutingPolicy)
class ExplicitPolicy:
    """Calls that name the destination's signalling address go there.

    A registered endpoint at that address is recognised, so its call counters
    and its identifier appear in the call record.
    """

    name = "explicit"

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def route(self, request: RoutingRequest) -> Route | None:
        address = request.dest_signal_address
        if address is None:
            return None
        return Route(address, self.registry.find_signal(address), f"{address[0]}:{address[1]}",
                     self.name)


@implementer(IRoutingPolicy)
class InternalPolicy:
    """Registered endpoints: an exact alias first, then the longest gateway prefix."""

    name = "internal"

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def route(self, request: RoutingRequest) -> Route | None:
        for alias in request.destination:
            endpoint = self.registry.find_alias(alias)
            if endpoint is not None and endpoint.signal_address is not None:
                return Route(endpoint.signal_address, endpoint, alias.value, self.name)
        for alias in request.destination:
            digits = alias.digits
            if digits:
                found = self.registry.longest_prefix(digits)
                if found is not None and found[0].signal_address is not None:
                    return Route(found[0].signal_address, found[0], found[1], self.name)
        return None


@implementer(IRoutingPolicy)
class PassPolicy:
    """A policy of GnuGk's default chain with nothing configured behind it
    (``parent`` with no parent gatekeeper, ``neighbor`` with no neighbours)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def route(self, request: RoutingRequest) -> None:
        return None


class Router:
    """Runs the policies in order; the first answer wins.

    ``chains`` picks another chain than the default for some requests: keys
    are ``(message_type or "", selector)`` where the selector is an alias
    type (``h323_ID``, ``dialedDigits``, ...), a dialled prefix, or
    ``default``.
    """

    def __init__(self, policies: Sequence[IRoutingPolicy],
                 chains: Mapping[tuple[str, str], Sequence[IRoutingPolicy]] | None = None) -> None:
        self.policies = list(policies)
        self.chains = {key: list(chain) for key, chain in (chains or {}).items()}

    @property
    def names(self) -> list[str]:
        return [policy.name for policy in self.policies]

    def chain_for(self, request: RoutingRequest) -> list[IRoutingPolicy]:
        """The policies for this request (see the class docstring)."""
        if not self.chains:
            return self.policies
        for message_type in (request.message_type, ""):
            chain = self._chain_by_destination(message_type, request.destination)
            if chain is not None:
                return chain
            chain = self.chains.get((message_type, "default"))
            if chain is not None:
                return chain
        return self.policies

    def _chain_by_destination(self, message_type: str,
                              destination: tuple[Alias, ...]) -> list[IRoutingPolicy] | None:
        best: tuple[int, list[IRoutingPolicy]] | None = None
        for alias in destination:
            by_type = self.chains.get((message_type, alias.kind))
            if by_type is not None:
                return by_type
            digits = alias.digits
            if digits:
                for (kind, selector), chain in self.chains.items():
                    if (kind == message_type and selector[:1].isdigit()
                            and digits.startswith(selector)
                            and (best is None or len(selector) > best[0])):
                        best = (len(selector), chain)
        return best[1] if best is not None else None

    def route(self, request: RoutingRequest) -> Route | None | Deferred:
        """A Route, None (no policy routes it) or a Deferred firing with one
        of those when a policy has to ask someone else."""
        return self._run(request, self.chain_for(request), 0)

    def _run(self, request: RoutingRequest, chain: list[IRoutingPolicy],
             start: int) -> Route | None | Deferred:
        for index in range(start, len(chain)):
            answer = chain[index].route(request)
            if isinstance(answer, Deferred):
                return answer.addCallback(self._resume, request, chain, index + 1)
            if answer is not None:
                return answer
        return None

    def _resume(self, answer: Route | RoutingRequest | None, request: RoutingRequest,
                chain: list[IRoutingPolicy], next_index: int) -> Route | None | Deferred:
        if isinstance(answer, RoutingRequest):
            return self._run(answer, chain, next_index)
        if answer is not None:
            return answer
        return self._run(request, chain, next_index)


def default_router(registry: Registry) -> Router:
    return Router([ExplicitPolicy(registry), InternalPolicy(registry)])


# -- [RoutingPolicy] -----------------------------------------------------------

#: The policies this gatekeeper has, by their GnuGk names.
KNOWN_POLICIES = ("explicit", "internal", "parent", "neighbor", "vqueue")
_SECTIONS = {"RoutingPolicy": "", "RoutingPolicy::OnARQ": "ARQ",
             "RoutingPolicy::OnLRQ": "LRQ", "RoutingPolicy::OnSetup": "Setup"}
#: GnuGk's alias type names (the keys) and the H.225.0 alternatives they mean.
_ALIAS_TYPES = {"h323_id": "h323-ID", "dialeddigits": "dialledDigits", "url_id": "url-ID",
                "transportid": "transportID", "email_id": "email-ID",
                "partynumber": "partyNumber", "mobileuim": "mobileUIM"}


@dataclass(frozen=True, slots=True)
class RoutingSettings:
    """``[RoutingPolicy]`` and its ``::OnARQ``/``::OnLRQ``/``::OnSetup`` sections:
    ``(message_type or "", selector) -> policy names``."""

    chains: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)

    def default_chain(self) -> tuple[str, ...]:
        return self.chains.get(("", "default"), DEFAULT_CHAIN)

    def uses(self, name: str) -> bool:
        return name in self.default_chain() or any(name in c for c in self.chains.values())


def parse_routing(ini: IniFile) -> tuple[RoutingSettings, list[str]]:
    """Read the routing chains; a policy this gatekeeper does not have is
    skipped with a warning."""
    chains: dict[tuple[str, str], tuple[str, ...]] = {}
    warnings: list[str] = []
    for section, message_type in _SECTIONS.items():
        for key, value in ini.items(section):
            selector = key.strip()
            if selector.lower() == "default":
                selector = "default"
            elif selector.lower() in _ALIAS_TYPES:
                selector = _ALIAS_TYPES[selector.lower()]
            elif not selector.isdigit():
                warnings.append(unknown_key(ini.path, section, key))
                continue
            names = tuple(part.strip().lower() for part in value.split(",") if part.strip())
            if not names:
                raise ConfigError(ini.path, section, key, value, "no policy named")
            for name in names:
                if name not in KNOWN_POLICIES:
                    # GnuGk has more (dns, sql, http, ...): a GnuGk file still
                    # loads, the chain goes on without the missing link.
                    warnings.append(f"{ini.path}: [{section}] {key}: routing policy {name!r} "
                                    f"is not supported here, skipped")
            names = tuple(name for name in names if name in KNOWN_POLICIES)
            chains[(message_type, selector)] = names
    return RoutingSettings(chains), warnings


def build_router(settings: RoutingSettings, registry: Registry,
                 extra: Mapping[str, IRoutingPolicy] | None = None) -> Router:
    """A Router for the configured chains. ``extra`` supplies policies that
    need more than the registry (``vqueue``; ``neighbor``, the
    :class:`~gatekeeper.core.neighbors.NeighborPolicy` whose LRQ sender is
    the RAS controller); without them those links pass."""
    policies: dict[str, IRoutingPolicy] = {
        "explicit": ExplicitPolicy(registry),
        "internal": InternalPolicy(registry),
        "parent": PassPolicy("parent"),
        "neighbor": PassPolicy("neighbor"),
        **dict(extra or {}),
    }

    def chain(names: Sequence[str]) -> list[IRoutingPolicy]:
        return [policies[name] for name in names if name in policies]

    chains = dict(settings.chains)
    default = chain(chains.pop(("", "default"), DEFAULT_CHAIN))
    return Router(default, {key: chain(names) for key, names in chains.items()})


def rewritten(request: RoutingRequest, destination: tuple[Alias, ...]) -> RoutingRequest:
    """The same request, for another destination."""
    return replace(request, destination=destination, dest_signal_address=None)
