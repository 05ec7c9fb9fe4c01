"""Where a call goes: a chain of routing policies, as GnuGk's ``[RoutingPolicy]``.

Each policy looks at a :class:`RoutingRequest` and either answers with a
:class:`Route` or passes (returns None) to the next one.  The default chain
here is ``explicit,internal``; policies that ask elsewhere (parent, neighbour,
virtual queue) plug in behind the same interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from zope.interface import implementer

from gatekeeper.core.registry import Endpoint, Registry
from gatekeeper.h225.ras import Address, Alias
from gatekeeper.interfaces import IRoutingPolicy


@dataclass(frozen=True, slots=True)
class RoutingRequest:
    """What is known of a call when it has to be routed."""

    destination: tuple[Alias, ...]
    dest_signal_address: Address | None
    source: tuple[Alias, ...]
    caller: Endpoint | None
    message_type: str = "ARQ"


@dataclass(frozen=True, slots=True)
class Route:
    """Where to send the call: a registered endpoint, or just an address."""

    signal_address: Address
    endpoint: Endpoint | None = None
    matched: str = ""            # the alias or prefix that matched
    policy: str = ""


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


class Router:
    """Runs the policies in order; the first answer wins."""

    def __init__(self, policies: Sequence[IRoutingPolicy]) -> None:
        self.policies = list(policies)

    @property
    def names(self) -> list[str]:
        return [policy.name for policy in self.policies]

    def route(self, request: RoutingRequest) -> Route | None:
        for policy in self.policies:
            answer = policy.route(request)
            if answer is not None:
                return answer
        return None


def default_router(registry: Registry) -> Router:
    return Router([ExplicitPolicy(registry), InternalPolicy(registry)])
