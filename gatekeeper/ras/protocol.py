"""The RAS transports: unicast UDP (1719) and GRQ discovery on multicast (224.0.1.41:1718).

A protocol frames nothing (a datagram is a message): it decodes, hands the
typed message to the :class:`~gatekeeper.ras.controller.RasController`, encodes
the reply and writes it back.  Nothing a peer sends can raise out of
``datagramReceived``: undecodable datagrams are counted and logged at a
bounded rate; a failure while answering is logged and answered with a generic
reject.  A retransmitted request (the same datagram from the same source within
``retransmit_window`` seconds) gets the very same answer again without being
handled twice.  Only the same bytes are a retransmission: an endpoint that
restarts on the same port counts its sequence numbers from the start again
(ooh323c does), and its new ARQ must not get the ACF of its old one.  For the
same reason a URQ from a source forgets the answers that source had before it.
"""

from __future__ import annotations

import socket
from collections import Counter, OrderedDict

from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from gatekeeper.errors import DecodeError, EncodeError
from gatekeeper.h225 import codec, ras
from gatekeeper.h225.ras import Address
from gatekeeper.ras.controller import Encoded, RasController, RateLimitedLog, Reply

DISCOVERY_GROUP = "224.0.1.41"
DISCOVERY_PORT = 1718
MAX_DATAGRAM = 8192


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
        self._trouble = RateLimitedLog(self.log, clock)
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
            self.log.failure("failed to handle a RAS datagram from {source}",
                             source=f"{addr[0]}:{addr[1]}")

    # -- the work --------------------------------------------------------

    def received(self, data: bytes, source: Address, multicast: bool = False) -> None:
        self.stats["received"] += 1
        if len(data) > MAX_DATAGRAM:
            self.stats["malformed"] += 1
            self._trouble("oversized", "dropped an oversized RAS datagram ({size} bytes) from {source}",
                          size=len(data), source=ras.format_address(source))
            return
        try:
            pdu = ras.parse(data)
        except DecodeError as error:
            self.stats["malformed"] += 1
            self._trouble("malformed", "dropped a malformed RAS datagram from {source}: {reason}",
                          source=ras.format_address(source), reason=str(error))
            return
        now = self.clock.seconds()
        key = (source, pdu.kind, pdu.seq)
        cached = self._answers.get(key)
        if cached is not None and cached[0] >= now and cached[3] in (None, data) \
                and cached[4] > self._forgotten.get(source, (0, 0.0))[0]:
            self.stats["retransmissions"] += 1
            self._write(cached[1], cached[2])
            return
        try:
            reply = self.controller.handle(pdu, source, data, multicast)
        except Exception:
            self.stats["errors"] += 1
            self.log.failure("failed to answer {kind} from {source}", kind=pdu.kind,
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
        self._write(encoded, destination)
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

    def _encode(self, message: tuple) -> bytes | None:
        try:
            return codec.encode_ras(message)
        except EncodeError:
            self.stats["errors"] += 1
            self.log.failure("could not encode {kind}", kind=message[0])
            return None

    def send_message(self, message: tuple, address: Address,
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

    def _write(self, data: bytes, address: Address) -> None:
        if self.transport is None:
            return
        try:
            self.transport.write(data, address)
            self.stats["sent"] += 1
        except OSError as error:
            self.stats["send errors"] += 1
            self._trouble("send", "could not send to {address}: {error}",
                          address=ras.format_address(address), error=str(error))

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
        try:
            self.transport.joinGroup(DISCOVERY_GROUP, self.interface or "")
        except Exception as error:  # no multicast route: discovery by unicast still works
            self.log.warn("could not join {group}: {error}", group=DISCOVERY_GROUP, error=str(error))

    def datagramReceived(self, data: bytes, addr: tuple) -> None:
        try:
            self.ras_protocol.received(data, (addr[0], addr[1]), multicast=True)
        except Exception:
            self.log.failure("failed to handle a discovery datagram")
