"""The endpoint registry: who is registered, under which aliases, where.

Lookups by endpoint identifier, alias, signalling address and longest
dialled-digit prefix are dictionary lookups, so their cost does not grow with
the number of endpoints (a prefix lookup costs one probe per digit of the
number dialled).  Expiry is kept in one-second buckets for the same reason:
refreshing a registration moves it between two buckets, and finding who
expired touches only the buckets that are due.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping, NamedTuple, Protocol

from gatekeeper.core.calls import NO_CALLS, EndpointCalls
from gatekeeper.h225.ras import Address, Alias, Vendor


@dataclass(slots=True, eq=False)
class Endpoint:
    """One registered endpoint (terminal, gateway, MCU or gatekeeper)."""

    endpoint_id: str
    aliases: tuple[Alias, ...]
    signal_addresses: tuple[Address, ...]
    ras_address: Address | None
    endpoint_type: str = "terminal"
    vendor: Vendor | None = None
    prefixes: tuple[str, ...] = ()        # routed here: announced + [RasSrv::GWPrefixes]
    registration_time: float = 0.0
    last_seen: float = 0.0
    time_to_live: int | None = None       # granted, seconds; None: never expires
    permanent: bool = False
    source_address: Address | None = None  # where its RAS messages come from
    irq_polls: int = 0                    # IRQs sent since it went quiet
    almost_out_of_resources: bool = False
    expiry: int | None = field(default=None, repr=False)  # bucket second, registry-owned
    # What the endpoint itself announced (or its permanent entry says), kept
    # apart so that a reload of [RasSrv::GWPrefixes] can recompute ``prefixes``.
    announced_prefixes: tuple[str, ...] = field(default=(), repr=False)

    @property
    def signal_address(self) -> Address | None:
        return self.signal_addresses[0] if self.signal_addresses else None

    def is_from(self, source: Address) -> bool:
        """True when ``source`` is this endpoint's RAS address (or where its
        registration came from): the only place its identifier is honoured."""
        return source == self.ras_address or source == self.source_address


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    """What the registry takes from the configuration (:meth:`Registry.reconfigure`)."""

    id_suffix: str = "_endp"              # [Gatekeeper::Main] EndpointIdSuffix, new ids only
    #: [RasSrv::GWPrefixes]: alias -> prefixes routed to the gateway with it
    configured_prefixes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class EndpointCallCounts(Protocol):
    """What the registry needs of the call table (which owns the counters)."""

    def active_count(self, endpoint_id: str) -> int: ...

    def forget_endpoint(self, endpoint_id: str) -> EndpointCalls: ...


class Removed(NamedTuple):
    """A registration that ended, as ``debug printrm`` lists it."""

    time: float
    reason: str
    endpoint: Endpoint
    calls: EndpointCalls = NO_CALLS       # its call counters when it ended


def alias_key(alias: Alias) -> str:
    """Aliases match by their text, whatever their type, as in GnuGk."""
    return alias.value


class Registry:
    """All registered endpoints and their indexes."""

    def __init__(self, id_suffix: str = "_endp", removed_kept: int = 1000,
                 configured_prefixes: Mapping[str, tuple[str, ...]] | None = None,
                 rng: random.Random | None = None,
                 calls: EndpointCallCounts | None = None) -> None:
        self.id_suffix = id_suffix
        #: The call table: how busy a gateway is (the least busy of those
        #: with the same prefix wins), and the counters a removal keeps.
        self._calls = calls
        self._next_id = (rng or random.Random()).randrange(100_000, 900_000_000)
        self._by_id: dict[str, Endpoint] = {}
        self._by_alias: dict[str, Endpoint] = {}
        self._by_signal: dict[Address, Endpoint] = {}
        self._by_prefix: dict[str, list[Endpoint]] = {}
        self._buckets: dict[int, set[str]] = {}
        self._longest_prefix = 0
        self.configured_prefixes = dict(configured_prefixes or {})
        self.removed: deque[Removed] = deque(maxlen=removed_kept)

    # -- reading ---------------------------------------------------------

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Endpoint]:
        return iter(list(self._by_id.values()))

    def __contains__(self, endpoint_id: object) -> bool:
        return endpoint_id in self._by_id

    def get(self, endpoint_id: str) -> Endpoint | None:
        return self._by_id.get(endpoint_id)

    def find_alias(self, alias: Alias | str) -> Endpoint | None:
        key = alias if isinstance(alias, str) else alias_key(alias)
        return self._by_alias.get(key)

    def find_any_alias(self, aliases: Iterable[Alias]) -> Endpoint | None:
        for alias in aliases:
            endpoint = self._by_alias.get(alias_key(alias))
            if endpoint is not None:
                return endpoint
        return None

    def find_signal(self, address: Address) -> Endpoint | None:
        return self._by_signal.get(address)

    def find_ip(self, ip: str) -> list[Endpoint]:
        """Every endpoint whose signalling or RAS address has this IP."""
        return [ep for ep in self._by_id.values()
                if any(a[0] == ip for a in ep.signal_addresses)
                or (ep.ras_address is not None and ep.ras_address[0] == ip)]

    def longest_prefix(self, digits: str) -> tuple[Endpoint, str] | None:
        """The gateway whose prefix is the longest match of ``digits``.

        Among gateways with the same prefix the least busy one wins.
        """
        for length in range(min(len(digits), self._longest_prefix), 0, -1):
            candidates = self._by_prefix.get(digits[:length])
            if candidates:
                calls = self._calls
                if calls is None or len(candidates) == 1:
                    best = candidates[0]
                else:
                    best = min(candidates, key=lambda ep: calls.active_count(ep.endpoint_id))
                return best, digits[:length]
        return None

    def conflicting_aliases(self, aliases: Iterable[Alias], owner: Endpoint | None) -> list[Alias]:
        """Aliases already registered by an endpoint other than ``owner``."""
        taken = []
        for alias in aliases:
            other = self._by_alias.get(alias_key(alias))
            if other is not None and other is not owner:
                taken.append(alias)
        return taken

    # -- writing ---------------------------------------------------------

    def new_endpoint_id(self) -> str:
        while True:
            self._next_id += 1
            candidate = f"{self._next_id}{self.id_suffix}"
            if candidate not in self._by_id:
                return candidate

    def add(self, endpoint: Endpoint) -> Endpoint:
        """Index a new endpoint (its id must be new)."""
        if endpoint.endpoint_id in self._by_id:
            raise ValueError(f"endpoint {endpoint.endpoint_id} is already registered")
        if not endpoint.announced_prefixes:
            endpoint.announced_prefixes = endpoint.prefixes
        endpoint.prefixes = self._prefixes_for(endpoint)
        self._by_id[endpoint.endpoint_id] = endpoint
        self._index(endpoint)
        self._schedule(endpoint)
        return endpoint

    def update(self, endpoint: Endpoint, *, aliases: tuple[Alias, ...] | None = None,
               signal_addresses: tuple[Address, ...] | None = None,
               prefixes: tuple[str, ...] | None = None, **changes: object) -> None:
        """Change a registered endpoint, keeping every index right."""
        self._unindex(endpoint)
        if aliases is not None:
            endpoint.aliases = aliases
        if signal_addresses is not None:
            endpoint.signal_addresses = signal_addresses
        if prefixes is not None:
            endpoint.announced_prefixes = prefixes
        for name, value in changes.items():
            setattr(endpoint, name, value)
        endpoint.prefixes = self._prefixes_for(endpoint)
        self._index(endpoint)
        self._schedule(endpoint)

    def touch(self, endpoint: Endpoint, now: float) -> None:
        """The endpoint was heard from: its time to live starts again."""
        endpoint.last_seen = now
        endpoint.irq_polls = 0
        self._schedule(endpoint)

    def remove(self, endpoint_id: str, reason: str, now: float) -> Endpoint | None:
        endpoint = self._by_id.pop(endpoint_id, None)
        if endpoint is None:
            return None
        self._unindex(endpoint)
        self._unschedule(endpoint)
        counts = self._calls.forget_endpoint(endpoint_id) if self._calls is not None else NO_CALLS
        self.removed.append(Removed(now, reason, endpoint, counts))
        return endpoint

    def due(self, now: float) -> list[Endpoint]:
        """Endpoints whose time to live ran out at or before ``now``."""
        second = int(now)
        expired: list[Endpoint] = []
        for bucket in [b for b in self._buckets if b <= second]:
            for endpoint_id in self._buckets.pop(bucket):
                endpoint = self._by_id.get(endpoint_id)
                if endpoint is not None and endpoint.expiry == bucket:
                    endpoint.expiry = None
                    expired.append(endpoint)
        return expired

    def postpone(self, endpoint: Endpoint, seconds: float, now: float) -> None:
        """Look at this endpoint again ``seconds`` from now (IRQ polling)."""
        self._unschedule(endpoint)
        self._put(endpoint, int(now + seconds) + 1)

    def reconfigure(self, settings: RegistrySettings) -> None:
        """A reload: the suffix of identifiers given from now on, and a new
        [RasSrv::GWPrefixes] (every endpoint re-indexed; registrations kept)."""
        self.id_suffix = settings.id_suffix
        self._set_configured_prefixes(settings.configured_prefixes)

    # -- internals -------------------------------------------------------

    def _set_configured_prefixes(self, configured: Mapping[str, tuple[str, ...]]) -> None:
        self.configured_prefixes = dict(configured)
        for endpoint in list(self._by_id.values()):
            self._unindex(endpoint)
            endpoint.prefixes = self._prefixes_for(endpoint)
            self._index(endpoint)

    def _prefixes_for(self, endpoint: Endpoint) -> tuple[str, ...]:
        result = list(endpoint.announced_prefixes)
        for alias in endpoint.aliases:
            result.extend(self.configured_prefixes.get(alias.value, ()))
        seen: dict[str, None] = {}
        for prefix in result:
            if prefix:
                seen.setdefault(prefix, None)
        return tuple(seen)

    def _index(self, endpoint: Endpoint) -> None:
        for alias in endpoint.aliases:
            self._by_alias[alias_key(alias)] = endpoint
        for address in endpoint.signal_addresses:
            self._by_signal[address] = endpoint
        for prefix in endpoint.prefixes:
            self._by_prefix.setdefault(prefix, []).append(endpoint)
            self._longest_prefix = max(self._longest_prefix, len(prefix))

    def _unindex(self, endpoint: Endpoint) -> None:
        for alias in endpoint.aliases:
            key = alias_key(alias)
            if self._by_alias.get(key) is endpoint:
                del self._by_alias[key]
        for address in endpoint.signal_addresses:
            if self._by_signal.get(address) is endpoint:
                del self._by_signal[address]
        for prefix in endpoint.prefixes:
            holders = self._by_prefix.get(prefix)
            if holders and endpoint in holders:
                holders.remove(endpoint)
                if not holders:
                    del self._by_prefix[prefix]

    def _schedule(self, endpoint: Endpoint) -> None:
        self._unschedule(endpoint)
        if endpoint.permanent or not endpoint.time_to_live:
            return
        self._put(endpoint, int(endpoint.last_seen + endpoint.time_to_live) + 1)

    def _put(self, endpoint: Endpoint, second: int) -> None:
        endpoint.expiry = second
        self._buckets.setdefault(second, set()).add(endpoint.endpoint_id)

    def _unschedule(self, endpoint: Endpoint) -> None:
        if endpoint.expiry is not None:
            bucket = self._buckets.get(endpoint.expiry)
            if bucket is not None:
                bucket.discard(endpoint.endpoint_id)
                if not bucket:
                    del self._buckets[endpoint.expiry]
            endpoint.expiry = None
