"""Who may ask the RAS service what, and where its answers go.

GnuGk's rules for this are spread over three sections: ``[RasSrv::LRQFeatures]``
``AcceptNonNeighborLRQ`` (LRQs are answered for registered endpoints and
configured neighbours only), ``[RasSrv::RRQFeatures]``
``OverwriteEPOnSameAddress`` (whether a conflicting registration replaces the
old one) and ``[ReplyToRasAddress]`` (answers go where the request came from,
unless a rule for the sender's network says to use the rasAddress the request
names).  They are read here into one frozen :class:`RasPolicy` that the RAS
controller gets whole, at start and on every reload.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from gatekeeper.configfile import ConfigError, IniFile, as_bool, unknown_key
from gatekeeper.core.neighbors import LRQ_FEATURE_KEYS

LRQ_FEATURES = "RasSrv::LRQFeatures"
REPLY_TO_RAS_ADDRESS = "ReplyToRasAddress"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class ReplyRule:
    """One line of ``[ReplyToRasAddress]``: ``network=True|False``."""

    network: Network
    use_ras_address: bool


@dataclass(frozen=True, slots=True)
class RasPolicy:
    """The RAS service's answers to "may this sender ask?" and "where to?"."""

    #: [RasSrv::LRQFeatures] AcceptNonNeighborLRQ: answer LRQs from anyone.
    accept_non_neighbor_lrq: bool = False
    #: [RasSrv::RRQFeatures] OverwriteEPOnSameAddress: a conflicting RRQ
    #: unregisters the old registration (URQ) instead of being refused.
    overwrite_ep_on_same_address: bool = False
    #: [ReplyToRasAddress], in file order.
    reply_to_ras_address: tuple[ReplyRule, ...] = ()

    def replies_to_ras_address(self, ip: str) -> bool:
        """Whether answers to requests from ``ip`` go to the rasAddress (or
        replyAddress) the request names: the most specific rule for ``ip``
        says; without one, no (answers go where the request came from)."""
        if not self.reply_to_ras_address:
            return False
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        best: ReplyRule | None = None
        for rule in self.reply_to_ras_address:
            if address in rule.network and (
                    best is None or rule.network.prefixlen >= best.network.prefixlen):
                best = rule
        return best.use_ras_address if best is not None else False


def parse_lrq_features(ini: IniFile) -> tuple[bool, list[str]]:
    """``[RasSrv::LRQFeatures]``: AcceptNonNeighborLRQ, and warnings for the
    GnuGk keys nobody reads (the neighbour keys, LRQ_FEATURE_KEYS, belong to
    :mod:`gatekeeper.core.neighbors`, which checks their values)."""
    accept = False
    warnings: list[str] = []
    for key, value in ini.items(LRQ_FEATURES):
        lowered = key.lower()
        if lowered == "acceptnonneighborlrq":
            accept = as_bool(ini.path, LRQ_FEATURES, key, value)
        elif lowered not in LRQ_FEATURE_KEYS:
            warnings.append(unknown_key(ini.path, LRQ_FEATURES, key))
    return accept, warnings


def parse_reply_to_ras_address(ini: IniFile) -> tuple[ReplyRule, ...]:
    """``[ReplyToRasAddress]``: ``ip[/bits]=True|False`` lines; a network
    given twice keeps its last value."""
    rules: dict[Network, bool] = {}
    for key, value in ini.items(REPLY_TO_RAS_ADDRESS):
        try:
            network = ipaddress.ip_network(key.strip(), strict=False)
        except ValueError:
            raise ConfigError(ini.path, REPLY_TO_RAS_ADDRESS, key, value,
                              "the key must be a network: ip or ip/bits") from None
        rules.pop(network, None)
        rules[network] = as_bool(ini.path, REPLY_TO_RAS_ADDRESS, key, value)
    return tuple(ReplyRule(network, use) for network, use in rules.items())
