"""The gatekeeper as an endpoint of a parent gatekeeper (GnuGk's ``[Endpoint]``).

:func:`parse_endpoint` reads the section into a frozen
:class:`EndpointSettings`.  :class:`ParentClient` is a DatagramProtocol on its
own UDP socket (an ephemeral port of our interface: our RAS address as the
parent sees it), so it never touches the RAS controller.  Its lifecycle:

- ``Discovery=1``: GRQ to the parent; a GCF whose gatekeeperIdentifier is not
  the configured ``GatekeeperIdentifier`` is ignored (as GnuGk filters GCFs);
- full RRQ (terminalType gateway or terminal, ``Prefix`` as supportedPrefixes,
  H323ID and E164 aliases, our RAS and call signalling addresses, timeToLive);
- RCF: registered, endpoint id and the parent's TTL kept; a lightweight RRQ
  (keepAlive, endpointIdentifier) is sent at 3/4 of the shorter of the
  parent's TTL and our TimeToLive (the margin is NOT CONFIRMED in GnuGk's
  documentation; 3/4 leaves room for a retry);
- no answer: the request is sent again after ``RRQRetryInterval`` seconds,
  doubling each time up to 128 times the interval; a keepalive that is not
  answered makes the next attempt a full registration (the parent may have
  forgotten us meanwhile);
- RRJ: the reason is kept (the ``GK`` status command shows it) and a full
  registration is tried again after the retry interval (same doubling);
- the parent restarted (a keepalive answered RRJ fullRegistrationRequired or
  discoveryRequired, or a URQ from the parent): full re-registration at once
  (after discovery when discoveryRequired); a URQ is answered UCF;
- an IRQ is answered IRR; at :meth:`stop` a URQ tells the parent we leave.

:class:`ParentPolicy` is the ``parent`` routing policy: while registered it
asks the parent with an ARQ and routes to the ACF's destCallSignalAddress; an
ARJ, a timeout, or not being registered passes to the next policy.  For an
LRQ it passes (GnuGk sends an LRQ to the parent then; not done here).  The
calls the parent admitted get a DRQ when their CallDetailRecord is published
(:meth:`ParentClient.observe`, a bus observer).

Password tokens (H.235) are not sent yet: endpoint authentication is a later
issue; the key is accepted with a warning.  ``Gatekeeper=auto`` (a GRQ
broadcast) is refused with a warning and treated as ``no``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger
from zope.interface import implementer

from gatekeeper import events as ev
from gatekeeper.configfile import ConfigError, IniFile, as_bool, as_int, unknown_key
from gatekeeper.core.routing import Route, RoutingRequest
from gatekeeper.errors import DecodeError, EncodeError
from gatekeeper.h225 import codec, ras
from gatekeeper.h225.ras import Address, Alias
from gatekeeper.interfaces import IRoutingPolicy
from gatekeeper.ratelimit import RateLimitedLog

SECTION = "Endpoint"
MAX_BACKOFF = 128
DEFAULT_VENDOR = {"vendor": {"t35CountryCode": 181, "t35Extension": 0, "manufacturerCode": 18},
                  "productId": b"gatekeeper", "versionId": b"1"}

@dataclass(frozen=True, slots=True)
class EndpointSettings:
    """``[Endpoint]``: where our parent is and how we register there."""

    parent: Address | None = None      # None: no parent (Gatekeeper=no)
    endpoint_type: str = "gateway"     # gateway or terminal
    h323_ids: tuple[str, ...] = ()
    e164: tuple[str, ...] = ()
    password: str | None = None
    prefixes: tuple[str, ...] = ()
    time_to_live: int = 60
    retry_interval: int = 3
    discovery: bool = True
    gatekeeper_id: str | None = None
    endpoint_id: str | None = None
    vendor: str | None = None
    unregister_on_reload: bool = False
    use_alternate_gk: bool = False

    @property
    def configured(self) -> bool:
        return self.parent is not None

    @property
    def aliases(self) -> tuple[Alias, ...]:
        return tuple([ras.h323_id(n) for n in self.h323_ids] +
                     [ras.dialled_digits(d) for d in self.e164])


def _list(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.replace(";", ",").split(",") if p.strip())


def _digit_list(path: str, key: str, value: str, allowed: str, why: str) -> tuple[str, ...]:
    """A list of numbers made of ``allowed`` characters only, else ConfigError(``why``)."""
    items = _list(value)
    if any(not set(item) <= set(allowed) for item in items):
        raise ConfigError(path, SECTION, key, value, why)
    return items


def _parent(path: str, key: str, value: str, warnings: list[str]) -> Address | None:
    lowered = value.strip().lower()
    if lowered in ("", "no", "0", "false"):
        return None
    if lowered == "auto":
        warnings.append(f"{path}: [{SECTION}] {key}=auto: finding the parent by GRQ broadcast "
                        "is not supported; no parent gatekeeper is used")
        return None
    try:
        host, port = ras.parse_address(value.strip(), 1719)
        parts = host.split(".")
        if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
            raise ValueError(host)
    except ValueError:
        raise ConfigError(path, SECTION, key, value,
                          "not an IPv4 address[:port], 'no' or 'auto'") from None
    return (host, port)


def parse_endpoint(ini: IniFile, default_name: str = "GnuGk"
                   ) -> tuple[EndpointSettings, list[str]]:
    """Read ``[Endpoint]``; a bad value is a ConfigError naming section, key and value."""
    values: dict[str, Any] = {}
    warnings: list[str] = []
    path = ini.path
    for key, value in ini.items(SECTION):
        lowered = key.lower()
        if lowered == "gatekeeper":
            values["parent"] = _parent(path, key, value, warnings)
        elif lowered == "type":
            kind = value.strip().lower()
            if kind not in ("gateway", "terminal"):
                raise ConfigError(path, SECTION, key, value, "must be Gateway or Terminal")
            values["endpoint_type"] = kind
        elif lowered == "h323id":
            values["h323_ids"] = _list(value)
        elif lowered == "e164":
            values["e164"] = _digit_list(path, key, value, "0123456789#*,",
                                         "not a dialled digits alias")
        elif lowered == "password":
            values["password"] = value
            warnings.append(f"{path}: [{SECTION}] {key}: accepted, but no H.235 tokens are "
                            "sent to the parent yet")
        elif lowered == "prefix":
            values["prefixes"] = _digit_list(path, key, value, "0123456789#*",
                                             "a prefix is digits, # or *")
        elif lowered == "timetolive":
            values["time_to_live"] = as_int(path, SECTION, key, value, 1, 86400)
        elif lowered == "rrqretryinterval":
            values["retry_interval"] = as_int(path, SECTION, key, value, 1, 3600)
        elif lowered == "discovery":
            values["discovery"] = as_bool(path, SECTION, key, value)
        elif lowered == "gatekeeperidentifier":
            values["gatekeeper_id"] = value or None
        elif lowered == "endpointidentifier":
            values["endpoint_id"] = value or None
        elif lowered == "vendor":
            values["vendor"] = value or None
        elif lowered == "unregisteronreload":
            values["unregister_on_reload"] = as_bool(path, SECTION, key, value)
        elif lowered == "usealternategk":
            values["use_alternate_gk"] = as_bool(path, SECTION, key, value)
        else:
            warnings.append(unknown_key(path, SECTION, key))
    if "h323_ids" not in values:
        values["h323_ids"] = (default_name,)
    return EndpointSettings(**values), warnings


@dataclass
class _Pending:
    kind: str                     # grq, rrq, keepalive, urq, arq, drq
    timer: IDelayedCall | None
    deferred: Deferred | None = None
    call: tuple | None = None     # arq: (call_id, conference_id, crv)


class ParentClient(DatagramProtocol):
    """Registers the gatekeeper at its parent and keeps it registered.

    ``signal_address`` gives the call signalling address the RRQ names;
    ``clock`` drives every timer.  The protocol is attached to its socket by
    the owner (``reactor.listenUDP(0, client, interface=...)``) and started
    with :meth:`start`.
    """

    log = Logger()

    def __init__(self, settings: EndpointSettings, clock: IReactorTime,
                 signal_address: Callable[[], Address], arq_timeout: float = 2.0) -> None:
        self.settings = settings
        self.clock = clock
        self.signal_address = signal_address
        self.arq_timeout = arq_timeout
        self.state = "stopped"            # stopped, discovering, registering, registered
        self.endpoint_id: str | None = None
        self.parent_gk_id: str | None = None
        self.granted_ttl: int | None = None
        self.reason = ""                  # why we are not registered
        self.failures = 0
        self.counts: dict[str, int] = {}
        self.rate_log = RateLimitedLog(self.log, clock)
        self._seq = 0
        self._pending: dict[int, _Pending] = {}
        self._next: IDelayedCall | None = None
        self._admitted: dict[bytes, tuple[bytes, int]] = {}

    # -- lifecycle ------------------------------------------------------------

    @property
    def registered(self) -> bool:
        return self.state == "registered"

    @property
    def ras_address(self) -> Address:
        host = self.transport.getHost()
        return (host.host, host.port)

    def start(self) -> None:
        """Begin discovery (or registration) at the parent."""
        self.state = "starting"
        self.reason = "registering"
        self._begin(discover=self.settings.discovery)

    def stop(self) -> None:
        """Cancel every timer; when registered, tell the parent with a URQ."""
        self._cancel_next()
        for pending in self._pending.values():
            if pending.timer is not None and pending.timer.active():
                pending.timer.cancel()
            if pending.deferred is not None and not pending.deferred.called:
                pending.deferred.callback(None)
        self._pending.clear()
        if self.registered and self.transport is not None:
            self._send(self._urq(), "urq", timeout=None)
        self.state = "stopped"
        self.endpoint_id = None
        self.reason = "stopped"

    def reconfigure(self, settings: EndpointSettings) -> None:
        """New settings: when anything changed, register again with them."""
        if settings == self.settings:
            return
        was = self.state != "stopped"
        if was:
            self.stop()
        self.settings = settings
        if was and settings.configured:
            self.start()

    def _begin(self, discover: bool) -> None:
        self._cancel_next()
        if discover:
            self.state = "discovering"
            self._send(self._grq(), "grq")
        else:
            self.state = "registering"
            self._send(self._rrq(), "rrq")

    def _cancel_next(self) -> None:
        if self._next is not None and self._next.active():
            self._next.cancel()
        self._next = None

    def _later(self, delay: float, discover: bool) -> None:
        self._cancel_next()
        self._next = self.clock.callLater(delay, self._begin, discover)

    def retry_delay(self) -> float:
        """RRQRetryInterval, doubled for each failure up to x128."""
        return self.settings.retry_interval * min(2 ** self.failures, MAX_BACKOFF)

    # -- sending ----------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq = self._seq % 65535 + 1
        return self._seq

    def _send(self, message_for_seq: Callable[[int], tuple], kind: str,
              timeout: float | None | str = "retry") -> int:
        """Send one request; ``timeout``: seconds to wait for its answer,
        ``"retry"`` for the current retry delay, None for no timer."""
        seq = self._next_seq()
        if timeout == "retry":
            timeout = self.retry_delay()
        timer = None
        if timeout is not None:
            timer = self.clock.callLater(timeout, self._timed_out, seq)
        self._pending[seq] = _Pending(kind, timer)
        try:
            self.transport.write(codec.encode_ras(message_for_seq(seq)), self.settings.parent)
        except (EncodeError, OSError) as error:
            self.rate_log("send", "parent gatekeeper: cannot send {kind}: {error}",
                          kind=kind, error=str(error))
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return seq

    def _terminal_type(self) -> dict:
        kind = self.settings.endpoint_type
        value = ras.endpoint_type_value(kind, DEFAULT_VENDOR)
        if kind == "gateway" and self.settings.prefixes:
            value["gateway"] = {"protocol": [("voice", {"supportedPrefixes": [
                {"prefix": ("dialledDigits", p)} for p in self.settings.prefixes]})]}
        return value

    def _grq(self) -> Callable[[int], tuple]:
        def build(seq: int) -> tuple:
            fields: dict[str, Any] = {
                "requestSeqNum": seq, "protocolIdentifier": ras.PROTOCOL_IDENTIFIER,
                "rasAddress": ras.transport_to_asn(self.ras_address),
                "endpointType": self._terminal_type(),
            }
            if self.settings.gatekeeper_id:
                fields["gatekeeperIdentifier"] = self.settings.gatekeeper_id
            if self.settings.aliases:
                fields["endpointAlias"] = ras.aliases_to_asn(self.settings.aliases)
            return ("gatekeeperRequest", fields)
        return build

    def _rrq(self, keepalive: bool = False) -> Callable[[int], tuple]:
        def build(seq: int) -> tuple:
            fields: dict[str, Any] = {
                "requestSeqNum": seq, "protocolIdentifier": ras.PROTOCOL_IDENTIFIER,
                "discoveryComplete": self.parent_gk_id is not None and not keepalive,
                "callSignalAddress": [], "rasAddress": [],
                "terminalType": self._terminal_type(), "endpointVendor": DEFAULT_VENDOR,
                "keepAlive": keepalive, "willSupplyUUIEs": False, "maintainConnection": False,
                "timeToLive": self.settings.time_to_live,
            }
            if keepalive:
                fields["endpointIdentifier"] = self.endpoint_id or ""
            else:
                fields["callSignalAddress"] = [ras.transport_to_asn(self.signal_address())]
                fields["rasAddress"] = [ras.transport_to_asn(self.ras_address)]
                if self.settings.aliases:
                    fields["terminalAlias"] = ras.aliases_to_asn(self.settings.aliases)
                if self.settings.endpoint_id:
                    fields["endpointIdentifier"] = self.settings.endpoint_id
            gk_id = self.parent_gk_id or self.settings.gatekeeper_id
            if gk_id:
                fields["gatekeeperIdentifier"] = gk_id
            return ("registrationRequest", fields)
        return build

    def _urq(self) -> Callable[[int], tuple]:
        def build(seq: int) -> tuple:
            fields: dict[str, Any] = {
                "requestSeqNum": seq,
                "callSignalAddress": [ras.transport_to_asn(self.signal_address())],
                "endpointIdentifier": self.endpoint_id or "",
            }
            if self.settings.aliases:
                fields["endpointAlias"] = ras.aliases_to_asn(self.settings.aliases)
            return ("unregistrationRequest", fields)
        return build

    # -- receiving ----------------------------------------------------------------

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        try:
            if self.settings.parent is None or \
                    (addr[0], addr[1]) != (self.settings.parent[0], self.settings.parent[1]):
                self.counts["foreign"] = self.counts.get("foreign", 0) + 1
                self.rate_log("foreign", "parent gatekeeper: datagram from {peer} ignored",
                              peer=f"{addr[0]}:{addr[1]}")
                return
            try:
                pdu = ras.parse(data)
            except DecodeError as error:
                self.counts["malformed"] = self.counts.get("malformed", 0) + 1
                self.rate_log("malformed", "parent gatekeeper: malformed datagram: {error}",
                              error=str(error))
                return
            self._dispatch(pdu, (addr[0], addr[1]))
        except Exception:
            self.counts["error"] = self.counts.get("error", 0) + 1
            self.rate_log.failure("error", "parent gatekeeper: error handling a datagram")

    def _dispatch(self, pdu: ras.RasPdu, addr: Address) -> None:
        if pdu.kind == "unregistrationRequest":
            self.transport.write(codec.encode_ras(ras.ucf(pdu.seq)), addr)
            self._lost("unregistered by the parent")
            self._begin(discover=self.settings.discovery)
            return
        if pdu.kind == "infoRequest":
            self.transport.write(codec.encode_ras(self._irr(pdu.seq)), addr)
            return
        pending = self._pending.pop(pdu.seq, None)
        if pending is None:
            self.counts["unexpected"] = self.counts.get("unexpected", 0) + 1
            self.rate_log("unexpected", "parent gatekeeper: unexpected {kind} seq {seq}",
                          kind=pdu.kind, seq=pdu.seq)
            return
        if pending.timer is not None and pending.timer.active():
            pending.timer.cancel()
        handler = _HANDLERS.get((pending.kind, pdu.kind))
        if handler is None:
            self.counts["unexpected"] = self.counts.get("unexpected", 0) + 1
            self.rate_log("unexpected", "parent gatekeeper: {kind} does not answer a {asked}",
                          kind=pdu.kind, asked=pending.kind)
            if pending.deferred is not None and not pending.deferred.called:
                pending.deferred.callback(None)
            return
        handler(self, pending, pdu)

    def _irr(self, seq: int) -> tuple:
        fields: dict[str, Any] = {
            "requestSeqNum": seq, "endpointType": self._terminal_type(),
            "endpointIdentifier": self.endpoint_id or "",
            "rasAddress": ras.transport_to_asn(self.ras_address),
            "callSignalAddress": [ras.transport_to_asn(self.signal_address())],
            "needResponse": False, "unsolicited": False,
        }
        if self.settings.aliases:
            fields["endpointAlias"] = ras.aliases_to_asn(self.settings.aliases)
        return ("infoRequestResponse", fields)

    def _lost(self, reason: str) -> None:
        self.state = "registering"
        self.endpoint_id = None
        self.reason = reason
        self._admitted.clear()

    def _on_gcf(self, pending: _Pending, pdu: ras.RasPdu) -> None:
        gk_id = pdu.raw.get("gatekeeperIdentifier")
        wanted = self.settings.gatekeeper_id
        if wanted and gk_id != wanted:
            self.reason = f"GCF from gatekeeper {gk_id!r}, not {wanted!r}"
            self.failures += 1
            self._later(self.retry_delay(), True)
            return
        self.parent_gk_id = gk_id or None
        self.failures = 0
        self._begin(discover=False)

    def _on_grj(self, pending: _Pending, pdu: ras.RasPdu) -> None:
        self.reason = f"GRJ {pdu.reason}"
        self.failures += 1
        self._later(self.retry_delay(), True)

    def _on_rcf(self, pending: _Pending, pdu: ras.RasPdu) -> None:
        value = pdu.raw
        if pending.kind == "rrq" or value.get("endpointIdentifier"):
            self.endpoint_id = value.get("endpointIdentifier") or self.endpoint_id
        if value.get("gatekeeperIdentifier"):
            self.parent_gk_id = value["gatekeeperIdentifier"]
        self.granted_ttl = value.get("timeToLive") or self.granted_ttl or \
            self.settings.time_to_live
        if pending.kind == "rrq":
            self.log.info("registered at parent gatekeeper {parent} as {id}",
                          parent=ras.format_address(self.settings.parent), id=self.endpoint_id)
        self.state = "registered"
        self.reason = ""
        self.failures = 0
        self._cancel_next()
        # The sooner of the parent's TTL and the one we asked for: a parent
        # that grants more (ours never grants under 60 s) still hears from us
        # as often as TimeToLive says, so its restart is noticed that soon.
        period = min(self.granted_ttl, self.settings.time_to_live)
        self._next = self.clock.callLater(max(1.0, period * 0.75), self._keepalive)

    def _keepalive(self) -> None:
        self._next = None
        self._send(self._rrq(keepalive=True), "keepalive")

    def _on_rrj(self, pending: _Pending, pdu: ras.RasPdu) -> None:
        reason = pdu.reason or "undefinedReason"
        if pending.kind == "keepalive" and reason in ("fullRegistrationRequired",
                                                      "discoveryRequired"):
            # The parent forgot us (it restarted): register again at once.
            self._lost(f"RRJ {reason}")
            self.failures = 0
            self._begin(discover=reason == "discoveryRequired" and self.settings.discovery)
            return
        self._lost(f"RRJ {reason}")
        self.failures += 1
        self._later(self.retry_delay(), reason == "discoveryRequired" and self.settings.discovery)

    def _timed_out(self, seq: int) -> None:
        pending = self._pending.pop(seq, None)
        if pending is None:
            return
        if pending.kind in ("arq",):
            self.counts["arq timeout"] = self.counts.get("arq timeout", 0) + 1
            if pending.deferred is not None and not pending.deferred.called:
                pending.deferred.callback(None)
            return
        if pending.kind in ("drq", "urq"):
            return
        self.failures += 1
        if pending.kind == "keepalive":
            self._lost("parent not answering")
        elif not self.registered:
            self.reason = "parent not answering"
        # Resend right away: the wait itself was the retry interval.
        self._begin(discover=pending.kind == "grq")

    # -- admission at the parent (the routing policy) ----------------------------

    def admission(self, request: RoutingRequest) -> Deferred | None:
        """ARQ to the parent for ``request``; fires with a Route or None."""
        if not self.registered or not request.destination and not request.dest_signal_address:
            return None
        call_id = request.call_id or ras.new_guid()
        crv = request.call_reference or 1
        deferred: Deferred = Deferred()

        def build(seq: int) -> tuple:
            fields: dict[str, Any] = {
                "requestSeqNum": seq, "callType": ("pointToPoint", None),
                "callModel": ("direct", None), "endpointIdentifier": self.endpoint_id or "",
                "srcInfo": ras.aliases_to_asn(request.source) or
                ras.aliases_to_asn(self.settings.aliases) or [("h323-ID", "anonymous")],
                "bandWidth": 1280, "callReferenceValue": crv, "conferenceID": call_id,
                "activeMC": False, "answerCall": False, "canMapAlias": True,
                "callIdentifier": {"guid": call_id}, "willSupplyUUIEs": False,
                "canMapSrcAlias": False,
            }
            if request.destination:
                fields["destinationInfo"] = ras.aliases_to_asn(request.destination)
            if request.dest_signal_address is not None:
                fields["destCallSignalAddress"] = ras.transport_to_asn(
                    request.dest_signal_address)
            if self.parent_gk_id:
                fields["gatekeeperIdentifier"] = self.parent_gk_id
            return ("admissionRequest", fields)

        seq = self._send(build, "arq", timeout=self.arq_timeout)
        pending = self._pending.get(seq)
        if pending is None:
            return None
        pending.deferred = deferred
        pending.call = (call_id, call_id, crv)
        return deferred

    def _on_acf(self, pending: _Pending, pdu: ras.RasPdu) -> None:
        address = ras.transport_from_asn(pdu.raw.get("destCallSignalAddress"))
        route = None
        if address is not None and pending.call is not None:
            call_id, conference_id, crv = pending.call
            self._admitted[call_id] = (conference_id, crv)
            route = Route(address, None, ras.format_address(address), "parent")
        if pending.deferred is not None and not pending.deferred.called:
            pending.deferred.callback(route)

    def _on_arj(self, pending: _Pending, pdu: ras.RasPdu) -> None:
        self.counts["arj"] = self.counts.get("arj", 0) + 1
        if pending.deferred is not None and not pending.deferred.called:
            pending.deferred.callback(None)

    def _on_ignore(self, pending: _Pending, pdu: ras.RasPdu) -> None:
        """UCF/URJ to our URQ, DCF/DRJ to our DRQ: nothing more to do."""

    def observe(self, event: object) -> None:
        """Bus observer: a call the parent admitted ended -> DRQ to the parent."""
        if not isinstance(event, ev.CallDetailRecord):
            return
        found = self._admitted.pop(event.call_id, None)
        if found is None or not self.registered:
            return
        conference_id, crv = found
        call_id = event.call_id
        self._send(lambda seq: ras.drq(seq, self.endpoint_id or "", conference_id, crv,
                                       "normalDrop", call_id, self.parent_gk_id, False),
                   "drq", timeout=self.arq_timeout)

    # -- status ---------------------------------------------------------------------

    def gk_lines(self) -> list[str]:
        """The ``GK`` status command's lines (without the final ``;``)."""
        if self.registered and self.settings.parent is not None:
            return [f"{ras.format_address(self.settings.parent)}\t{self.endpoint_id or ''}"]
        return [f"not registered\t{self.reason}"]


_HANDLERS: dict[tuple[str, str], Callable[[ParentClient, _Pending, ras.RasPdu], None]] = {
    ("grq", "gatekeeperConfirm"): ParentClient._on_gcf,
    ("grq", "gatekeeperReject"): ParentClient._on_grj,
    ("rrq", "registrationConfirm"): ParentClient._on_rcf,
    ("rrq", "registrationReject"): ParentClient._on_rrj,
    ("keepalive", "registrationConfirm"): ParentClient._on_rcf,
    ("keepalive", "registrationReject"): ParentClient._on_rrj,
    ("arq", "admissionConfirm"): ParentClient._on_acf,
    ("arq", "admissionReject"): ParentClient._on_arj,
    ("urq", "unregistrationConfirm"): ParentClient._on_ignore,
    ("urq", "unregistrationReject"): ParentClient._on_ignore,
    ("drq", "disengageConfirm"): ParentClient._on_ignore,
    ("drq", "disengageReject"): ParentClient._on_ignore,
}


def gk_lines(client: ParentClient | None) -> list[str]:
    """``GK`` with or without a parent: GnuGk prints ``not registered\\t`` then."""
    if client is None:
        return ["not registered\t"]
    return client.gk_lines()


@implementer(IRoutingPolicy)
class ParentPolicy:
    """The ``parent`` routing policy: ARQ to the parent; LRQs pass (documented)."""

    name = "parent"

    def __init__(self, client: ParentClient) -> None:
        self.client = client

    def route(self, request: RoutingRequest) -> Deferred | None:
        if request.message_type == "LRQ":
            return None
        return self.client.admission(request)
