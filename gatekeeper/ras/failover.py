"""RAS forwarding to alternate gatekeepers, on the wire (``[Gatekeeper::Main]
SendTo`` and ``SkipForwards``; the rules are :mod:`gatekeeper.core.failover`).

Sending: every registration (full RRQ, keepalive) and unregistration the
gatekeeper accepts is copied to each SendTo address as an RRQ or URQ built
from the registration as it stands (our endpointIdentifier, the endpoint's
addresses, aliases and time to live), under our own requestSeqNum and with
GnuGk's failover marker (H.221 nonStandardData 255/255/4242).  The copies go
out after the answer to the endpoint (``callLater(0)``), so forwarding never
delays or changes it; an answer an alternate sends back anyway (GnuGk
refuses a forwarded keepalive it cannot place with an RRJ) is swallowed and
counted.

Receiving: an RRQ or URQ with the marker, or from a SkipForwards IP, from
one of the cluster's gatekeepers (:func:`~gatekeeper.core.failover.
forwarding_peers`) is given to the registration rules as a copy and never
answered nor forwarded again, as GnuGk does; from anyone else it is dropped.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from typing import Callable, Iterable

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from gatekeeper.core.failover import FailoverSettings, forwarding_peers, is_forwarded
from gatekeeper.core.registration import (ForwardedRegistration, ForwardIgnored, Registration,
                                          UnregisterRequest, usable_address)
from gatekeeper.core.registry import Endpoint
from gatekeeper.h225 import ras
from gatekeeper.h225.ras import Address
from gatekeeper.ratelimit import RateLimitedLog

#: The answers an alternate may send to what we forwarded.
_ANSWERS = {"registrationRequest": ("registrationConfirm", "registrationReject"),
            "unregistrationRequest": ("unregistrationConfirm", "unregistrationReject")}
#: How long (seconds) and how many forwarded messages are remembered, to
#: know their answers.
REMEMBERED_FOR = 30.0
REMEMBERED_MAX = 20_000


class RasForwarder:
    """Copies registrations to the SendTo alternates, and takes the copies
    other gatekeepers send us."""

    def __init__(self, clock: IReactorTime, send: Callable[[ras.OutgoingMessage, Address], None],
                 next_seq: Callable[[], int], registration: Registration,
                 stats: Counter[str], trouble: RateLimitedLog) -> None:
        self.clock = clock
        self._send = send
        self._next_seq = next_seq
        self.registration = registration
        self.stats = stats
        self._trouble = trouble
        self.settings = FailoverSettings()
        self.peers: frozenset[str] = frozenset()
        self._queue: list[tuple[ras.OutgoingMessage, Address]] = []
        self._flush_call: IDelayedCall | None = None
        #: (seq, IP) of what we forwarded -> (kind, when)
        self._sent: OrderedDict[tuple[int, str], tuple[str, float]] = OrderedDict()

    def reconfigure(self, settings: FailoverSettings,
                    alternates: Iterable[ras.AlternateGk]) -> None:
        self.settings = settings
        self.peers = forwarding_peers(settings, alternates)

    # -- receiving ---------------------------------------------------------------

    def is_forwarded(self, pdu: ras.RasPdu, source: Address) -> bool:
        """An RRQ/URQ another gatekeeper forwarded (marker or SkipForwards IP)."""
        return is_forwarded(ras.is_failover_marked(pdu.raw), source, self.settings)

    def _from_peer(self, pdu: ras.RasPdu, source: Address) -> bool:
        if source[0] in self.peers:
            return True
        self.stats["forwarded RAS refused"] += 1
        self._trouble("forwarded refused", "dropped a forwarded {kind} from {source}: not one "
                      "of our SendTo, SkipForwards or AlternateGKs gatekeepers",
                      kind=pdu.kind, source=ras.format_address(source))
        return False

    def received_rrq(self, rrq: ras.RegistrationRequest, source: Address) -> None:
        """A forwarded RRQ: keep the copy; no answer."""
        self.stats["forwarded RRQ received"] += 1
        if not self._from_peer(rrq, source):
            return None
        endpoint_id = ras.failover_endpoint_id(rrq.raw)
        if not endpoint_id:
            self._ignored(rrq, source, "it names no endpointIdentifier")
            return None
        decision = self.registration.register_forwarded(ForwardedRegistration(
            source, endpoint_id,
            tuple(a for a in rrq.call_signal_addresses if usable_address(a)),
            tuple(a for a in rrq.ras_addresses if usable_address(a)),
            rrq.aliases, rrq.endpoint_type, rrq.vendor, rrq.time_to_live,
            tuple(p.digits or p.value for p in rrq.prefixes), rrq.keep_alive))
        if isinstance(decision, ForwardIgnored):
            self._ignored(rrq, source, decision.why)
        return None

    def received_urq(self, urq: ras.UnregistrationRequest, source: Address) -> None:
        """A forwarded URQ: the copy goes; no answer."""
        self.stats["forwarded URQ received"] += 1
        if not self._from_peer(urq, source):
            return None
        decision = self.registration.unregister_forwarded(UnregisterRequest(
            source, urq.endpoint_id, urq.call_signal_addresses))
        if isinstance(decision, ForwardIgnored):
            self._ignored(urq, source, decision.why)
        return None

    def _ignored(self, pdu: ras.RasPdu, source: Address, why: str) -> None:
        self._trouble("forwarded ignored", "ignored a forwarded {kind} from {source}: {why}",
                      kind=pdu.kind, source=ras.format_address(source), why=why)

    def swallow(self, pdu: ras.RasPdu, source: Address) -> bool:
        """True (and counted) for an alternate's answer to what we forwarded."""
        sent = self._sent.get((pdu.seq, source[0]))
        if sent is None or pdu.kind not in _ANSWERS.get(sent[0], ()):
            return False
        self.stats["forwarded RAS answered"] += 1
        return True

    # -- sending ---------------------------------------------------------------

    def registered(self, endpoint: Endpoint, keep_alive: bool) -> None:
        """We confirmed a registration (RCF): copy it to the SendTo alternates."""
        if not self.settings.send_to or endpoint.ras_address is None \
                or not endpoint.signal_addresses:
            return
        try:
            for address in self.settings.send_to:
                self._queue_message(ras.ForwardedRrq(
                    self._next_seq(), endpoint.endpoint_id, tuple(endpoint.signal_addresses),
                    endpoint.ras_address, endpoint.endpoint_type, tuple(endpoint.aliases),
                    endpoint.vendor, endpoint.time_to_live, keep_alive,
                    tuple(endpoint.announced_prefixes)), address)
        except Exception:
            self._trouble.failure("forward", "could not forward the registration of "
                                  "{endpoint_id}", endpoint_id=endpoint.endpoint_id)

    def unregistered(self, endpoint: Endpoint) -> None:
        """A registration ended (the endpoint's URQ, or ours): tell the alternates."""
        if not self.settings.send_to:
            return
        try:
            for address in self.settings.send_to:
                self._queue_message(ras.ForwardedUrq(
                    self._next_seq(), endpoint.endpoint_id,
                    tuple(endpoint.signal_addresses) or (("0.0.0.0", 0),),
                    tuple(endpoint.aliases)), address)
        except Exception:
            self._trouble.failure("forward", "could not forward the unregistration of "
                                  "{endpoint_id}", endpoint_id=endpoint.endpoint_id)

    def _queue_message(self, message: ras.OutgoingMessage, address: Address) -> None:
        self._queue.append((message, address))
        if self._flush_call is None:
            self._flush_call = self.clock.callLater(0, self.flush)

    def stop(self) -> None:
        """Send what is queued now, and schedule nothing more."""
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
            self.flush()
        self._flush_call = None

    def flush(self) -> None:
        """Send what was queued (after the answers of this reactor turn)."""
        self._flush_call = None
        queue, self._queue = self._queue, []
        now = self.clock.seconds()
        for message, address in queue:
            try:
                self._send(message, address)
            except Exception:
                self._trouble.failure("forward", "could not forward a {kind} to {address}",
                                      kind=message.kind, address=ras.format_address(address))
                continue
            self.stats["forwarded " + ("URQ" if message.kind == "unregistrationRequest"
                                       else "RRQ")] += 1
            self._remember((message.seq, address[0]), message.kind, now)

    def _remember(self, key: tuple[int, str], kind: str, now: float) -> None:
        sent = self._sent
        sent[key] = (kind, now)
        sent.move_to_end(key)
        while sent:
            _, (_, when) = next(iter(sent.items()))
            if when + REMEMBERED_FOR >= now and len(sent) <= REMEMBERED_MAX:
                break
            sent.popitem(last=False)
