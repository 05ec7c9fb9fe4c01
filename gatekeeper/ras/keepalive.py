"""The encoded RCFs that answer keepalive RRQs.

A keepalive RRQ is the most frequent RAS message and its RCF differs from the
previous one to the same endpoint only in the sequence number, so the RAS
layer encodes it once and patches the sequence number in
(:func:`gatekeeper.h225.ras.rcf_with_seq`).  A template stays valid while
everything the RCF carries is the very same object it was built from: the
endpoint, its identifier, signalling addresses and aliases, the time to live
granted and the gatekeeper's name.  The registry replaces those tuples when a
registration changes, so nothing has to tell this cache; an entry for an
endpoint that is no longer registered is dropped by an occasional sweep.
"""

from __future__ import annotations

from typing import Callable

from gatekeeper.core.registry import Endpoint
from gatekeeper.h225 import ras

#: endpoint, its signal addresses, aliases (or None), ttl, gatekeeper name, encoded RCF
_Template = tuple[Endpoint, tuple, tuple | None, "int | None", str, bytes]


class KeepaliveReplies:
    """Encoded keepalive RCFs, one per endpoint."""

    def __init__(self, is_registered: Callable[[Endpoint], bool], minimum_size: int = 1024) -> None:
        self._is_registered = is_registered
        self._templates: dict[str, _Template] = {}
        self._minimum_size = minimum_size
        self._limit = minimum_size

    def __len__(self) -> int:
        return len(self._templates)

    def rcf(self, endpoint: Endpoint, seq: int, with_aliases: bool, time_to_live: int | None,
            gatekeeper_id: str) -> bytes:
        """The encoded RCF answering keepalive ``seq`` of ``endpoint``."""
        aliases = endpoint.aliases if with_aliases else None
        template = self._templates.get(endpoint.endpoint_id)
        if (template is None or template[0] is not endpoint
                or template[1] is not endpoint.signal_addresses or template[2] is not aliases
                or template[3] != time_to_live or template[4] != gatekeeper_id):
            encoded = ras.encode(ras.Rcf(1, endpoint.signal_addresses, endpoint.endpoint_id,
                                         gatekeeper_id, aliases, time_to_live,
                                         supports_additive=True))
            template = (endpoint, endpoint.signal_addresses, aliases, time_to_live,
                        gatekeeper_id, encoded)
            self._store(endpoint.endpoint_id, template)
        return ras.rcf_with_seq(template[5], seq)

    def _store(self, endpoint_id: str, template: _Template) -> None:
        templates = self._templates
        templates[endpoint_id] = template
        if len(templates) > self._limit:
            for key, kept in list(templates.items()):
                if not self._is_registered(kept[0]):
                    del templates[key]
            self._limit = max(self._minimum_size, 2 * len(templates))
