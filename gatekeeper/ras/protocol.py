"""The RAS transports: unicast UDP (1719) and GRQ discovery on multicast (224.0.1.41:1718).

A protocol frames nothing (a datagram is a message): it decodes, hands the
typed message to the :class:`~gatekeeper.ras.controller.RasController`, encodes
the reply and writes it back.  Nothing a peer sends can raise out of
``datagramReceived``: undecodable datagrams are counted and logged at a
bounded rate; a failure while answering is logged (its traceback once, then
rate-limited summaries) and answered with a generic reject.  An address a
peer put in a message (an LRQ's replyAddress, a rasAddress) is checked before
anything is sent there: whatever it is (IPv6 on an IPv4 socket, port 0,
broadcast, ...) the send is counted and logged at a bounded rate, never
raised.  A retransmitted request (the same datagram from the same source within
``retransmit_window`` seconds) gets the very same answer again without being
handled twice.  Only the same bytes are a retransmission: an endpoint that
restarts on the same port counts its sequence numbers from the start again
(ooh323c does), and its new ARQ must not get the ACF of its old one.  For the
same reason a URQ from a source forgets the answers that source had before it.
"""

from __future__ import annotations

import socket
from collections import Counter, OrderedDict

from twisted.internet.address import IPv6Address
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from gatekeeper.errors import DecodeError, EncodeError
from gatekeeper.h225 import ras
from gatekeeper.h225.ras import Address
from gatekeeper.ratelimit import RateLimitedLog
from gatekeeper.ras.controller import Encoded, RasController, Reply

DISCOVERY_GROUP = "224.0.1.41"
DISCOVERY_PORT = 1718
MAX_DATAGRAM = 8192

_V4_MAPPED = bytes(10) + b"\xff\xff"   # ::ffff:a.b.c.d


def describe_address(address: object) -> str:
    """``ip:port`` for a log line, whatever ``address`` is."""
    try:
        return ras.format_address(address)  # type: ignore[arg-type]
    except Exception:
        return repr(address)[:80]


class RasProtocol(DatagramProtocol):
    """The gatekeeper's RAS socket."""

    log = Logger()

    def __init__(self, controller: RasController, clock: IReactorTime,
                 retransmit_window: float = 10.0, cache_size: int = 200_000) -> None:
        self.controller = controller
        self.clock = clock
        self.retransmit_window = retransmit_window
        self.cache_size = cache_size
        self.stats: Counter[str] = Counter()
        # (source, kind, seq) -> (expiry, answer, destination, request datagram or None
        # for a late answer, serial number of the entry)
        self._answers: OrderedDict[tuple, tuple[float, bytes, Address, bytes | None, int]] = \
            OrderedDict()
        self._serial = 0
        # source -> (the last serial before its URQ, when): older answers are not replayed
        self._forgotten: OrderedDict[Address, tuple[int, float]] = OrderedDict()
        #: Every log line a peer can cause goes through here.
        self.trouble = RateLimitedLog(self.log, clock)
        self._local_ips: dict[str, str] = {}

    # -- twisted ---------------------------------------------------------

    def startProtocol(self) -> None:
        self.controller.attach(self.send_message)
        self.controller.local_ras_address = self.local_address_for

    def datagramReceived(self, data: bytes, addr: tuple) -> None:
        try:
            self.received(data, (addr[0], addr[1]))
        except Exception:
            self.stats["errors"] += 1
            self.trouble.failure("datagram", "failed to handle a RAS datagram from {source}",
                                 source=describe_address(addr))

    # -- the work --------------------------------------------------------

    def received(self, data: bytes, source: Address, multicast: bool = False) -> None:
        self.stats["received"] += 1
        if len(data) > MAX_DATAGRAM:
            self.stats["malformed"] += 1
            self.trouble("oversized", "dropped an oversized RAS datagram ({size} bytes) from {source}",
                         size=len(data), source=ras.format_address(source))
            return
        try:
            pdu = ras.parse(data)
        except DecodeError as error:
            self.stats["malformed"] += 1
            self.trouble("malformed", "dropped a malformed RAS datagram from {source}: {reason}",
                         source=ras.format_address(source), reason=str(error))
            return
        now = self.clock.seconds()
        key = (source, pdu.kind, pdu.seq)
        cached = self._answers.get(key)
        if cached is not None and cached[0] >= now and cached[3] in (None, data) \
                and cached[4] > self._forgotten.get(source, (0, 0.0))[0]:
            self.stats["retransmissions"] += 1
            self._write(cached[1], cached[2], cached[2] == source)
            return
        try:
            reply = self.controller.handle(pdu, source, data, multicast)
        except Exception:
            self.stats["errors"] += 1
            self.trouble.failure("answer", "failed to answer {kind} from {source}", kind=pdu.kind,
                                 source=ras.format_address(source))
            reply = self.controller.generic_reject(pdu)
        if reply is None:
            return
        if isinstance(reply, Encoded):
            encoded, destination = reply.data, source
        else:
            message, destination = (reply.message, reply.address) if isinstance(reply, Reply) \
                else (reply, source)
            encoded = self._encode(message)
            if encoded is None:
                return
        self._write(encoded, destination, destination == source)
        if pdu.kind == "unregistrationRequest":
            self._forget(source, now)
        self._remember(key, now, encoded, destination, data)

    def _remember(self, key: tuple, now: float, encoded: bytes, destination: Address,
                  request: bytes | None = None) -> None:
        answers = self._answers
        self._serial += 1
        answers[key] = (now + self.retransmit_window, encoded, destination, request, self._serial)
        answers.move_to_end(key)
        while answers:
            oldest_key, (expiry, *_) = next(iter(answers.items()))
            if expiry >= now and len(answers) <= self.cache_size:
                break
            del answers[oldest_key]

    def _forget(self, source: Address, now: float) -> None:
        """No answer cached for ``source`` so far is replayed (its registration ended)."""
        forgotten = self._forgotten
        forgotten[source] = (self._serial, now)
        forgotten.move_to_end(source)
        while forgotten:
            _, (_, when) = next(iter(forgotten.items()))
            if when + self.retransmit_window >= now and len(forgotten) <= self.cache_size:
                break
            forgotten.popitem(last=False)

    def _encode(self, message: ras.OutgoingMessage | tuple) -> bytes | None:
        try:
            return ras.encode(message)
        except EncodeError:
            self.stats["errors"] += 1
            self.trouble.failure("encode", "could not encode {kind}", kind=ras.kind_of(message))
            return None

    def send_message(self, message: ras.OutgoingMessage | tuple, address: Address,
                     answering: tuple[Address, str, int] | None = None,
                     write: bool = True) -> None:
        """Send a message of the gatekeeper's own (URQ, IRQ, DRQ, ...), or the
        late answer to a request (``answering`` = its source, kind and
        sequence number), which a retransmission of that request then gets
        (``write=False``: only keep it for retransmissions)."""
        encoded = self._encode(message)
        if encoded is None:
            return
        if write:
            self._write(encoded, address)
        if answering is not None:
            self._remember(answering, self.clock.seconds(), encoded, address)

    def _write(self, data: bytes, address: Address, from_socket: bool = False) -> None:
        """Send ``data``; never raises.  ``from_socket``: ``address`` is the
        source of a datagram just received, not one read from a message."""
        if self.transport is None:
            return
        if not from_socket:
            checked, problem = self.sendable(address)
            if checked is None:
                self.stats["unsendable"] += 1
                self.trouble("unsendable", "not sending to {address}: {problem}",
                             address=describe_address(address), problem=problem)
                return
            address = checked
        try:
            self.transport.write(data, address)
            self.stats["sent"] += 1
        except Exception as error:  # OSError, InvalidAddressError, MessageLengthError, ...
            self.stats["send errors"] += 1
            self.trouble("send", "could not send to {address}: {error}",
                         address=describe_address(address),
                         error=f"{type(error).__name__}: {error}"[:200])

    def _family(self) -> int:
        family = getattr(self.transport, "addressFamily", None)
        if family in (socket.AF_INET, socket.AF_INET6):
            return family
        host = self.transport.getHost() if self.transport is not None else None
        return socket.AF_INET6 if isinstance(host, IPv6Address) else socket.AF_INET

    def sendable(self, address: object) -> tuple[Address | None, str]:
        """The address to hand the transport for ``address`` (one a peer may
        have written anything into), or None and the reason it is refused: not
        an (IP literal, port 1-65535) pair, not unicast (unspecified,
        broadcast, multicast), or IPv6 on an IPv4 socket.  IPv4 on an IPv6
        socket becomes its v4-mapped form."""
        if not (isinstance(address, tuple) and len(address) == 2):
            return None, "not an (ip, port) pair"
        host, port = address
        if type(port) is not int or not 0 < port <= 65535:
            return None, "no usable port"
        if not isinstance(host, str):
            return None, "not an IP address"
        try:
            octets = socket.inet_pton(socket.AF_INET, host)
            family = socket.AF_INET
        except (OSError, ValueError):
            try:
                octets = socket.inet_pton(socket.AF_INET6, host)
                family = socket.AF_INET6
            except (OSError, ValueError):
                return None, "not an IP address"
        if family == socket.AF_INET6 and octets[:12] == _V4_MAPPED:
            octets, family = octets[12:], socket.AF_INET
            host = socket.inet_ntop(socket.AF_INET, octets)
        if family == socket.AF_INET:
            if octets in (b"\0\0\0\0", b"\xff\xff\xff\xff") or 224 <= octets[0] <= 239:
                return None, "not a unicast address"
        elif octets == bytes(16) or octets[0] == 0xFF:
            return None, "not a unicast address"
        ours = self._family()
        if family == ours:
            return (host, port), ""
        if ours == socket.AF_INET6:
            return ("::ffff:" + host, port), ""
        return None, "an IPv6 address on an IPv4 socket"

    def local_address_for(self, source: Address) -> Address:
        """The address to announce as ours to ``source`` (the GCF's rasAddress)."""
        host = self.transport.getHost() if self.transport is not None else None
        port = host.port if host is not None else 1719
        bound = host.host if host is not None else "0.0.0.0"
        if bound not in ("0.0.0.0", "::", ""):
            return (bound, port)
        ip = self._local_ips.get(source[0])
        if ip is None:
            ip = local_ip_towards(source[0])
            if len(self._local_ips) > 10_000:
                self._local_ips.clear()
            self._local_ips[source[0]] = ip
        return (ip, port)


def local_ip_towards(remote_ip: str) -> str:
    """The local IP the kernel would use to reach ``remote_ip`` (no packet is sent)."""
    family = socket.AF_INET6 if ":" in remote_ip else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_DGRAM)
    try:
        probe.connect((remote_ip, 9))
        return probe.getsockname()[0]
    except OSError:
        return "127.0.0.1"
    finally:
        probe.close()


class DiscoveryProtocol(DatagramProtocol):
    """GRQs multicast to 224.0.1.41:1718, answered through the RAS socket."""

    log = Logger()

    def __init__(self, ras_protocol: RasProtocol, interface: str = "") -> None:
        self.ras_protocol = ras_protocol
        self.interface = interface

    def startProtocol(self) -> None:
        # The socket is bound to every address (one bound to a unicast address
        # never sees the group's datagrams); the interface is chosen here, by
        # the address the group is joined on.  The join is asynchronous: it
        # fails in its Deferred (MulticastJoinError), not here.
        interface = self.interface or ""
        try:
            joined = self.transport.joinGroup(DISCOVERY_GROUP, interface)
        except Exception as error:
            self._not_joined(interface, error)
            return
        if joined is not None:
            joined.addCallbacks(lambda _: self.log.info(
                "discovery: joined {group} on {interface}", group=DISCOVERY_GROUP,
                interface=interface or "the default interface"),
                lambda failure: self._not_joined(interface, failure.value))

    def _not_joined(self, interface: str, error: BaseException) -> None:
        # No multicast route, or an address this host lacks: discovery by
        # unicast GRQ to the RAS port still works.
        args = getattr(error, "args", ())
        reason = args[-1] if len(args) == 4 and isinstance(args[-1], str) else str(error)
        self.log.warn("could not join {group} on {interface}: {reason}; GRQs multicast to the "
                      "group are not seen (unicast GRQs to the RAS port still are)",
                      group=DISCOVERY_GROUP, interface=interface or "the default interface",
                      reason=reason or type(error).__name__)

    def datagramReceived(self, data: bytes, addr: tuple) -> None:
        try:
            self.ras_protocol.received(data, (addr[0], addr[1]), multicast=True)
        except Exception:
            self.ras_protocol.stats["errors"] += 1
            self.ras_protocol.trouble.failure("discovery", "failed to handle a discovery datagram"
                                              " from {source}", source=describe_address(addr))
