"""The H.245 relay of a routed call (``[RoutedMode] H245Routed=1``).

For each h245Address a party announces, the relay listens on a port of the
gatekeeper's, and that address goes on to the other party instead.  When the
other party connects, the relay connects to the announced address and passes
TPKT frames both ways, checking the framing and nothing else: H.245 is
carried unchanged, so the parties only ever see the gatekeeper.  The first
connection is the only one taken; a relay nobody connects to within
``ACCEPT_TIMEOUT`` stops listening.  What waits for the far side to accept is
bounded by ``PENDING_LIMIT``.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IDelayedCall, IReactorTCP, IReactorTime
from twisted.internet.protocol import ClientFactory, Protocol, ServerFactory

from gatekeeper.errors import DecodeError
from gatekeeper.h225 import tpkt
from gatekeeper.h225.ras import Address

ACCEPT_TIMEOUT = 30.0
PENDING_LIMIT = 256 * 1024


class _Side(Protocol):
    """One of the relay's two TCP connections."""

    def __init__(self, relay: H245Relay, near: bool) -> None:
        self.relay = relay
        self.near = near          # True: the party that connected to us
        self.deframer = tpkt.TpktDeframer()

    def connectionMade(self) -> None:
        self.relay.side_connected(self)

    def dataReceived(self, data: bytes) -> None:
        try:
            frames = self.deframer.feed(data)
        except DecodeError as error:
            self.relay.fail(f"bad TPKT on H.245: {error}")
            return
        for payload in frames:
            self.relay.forward(self, tpkt.frame(payload))

    def connectionLost(self, reason: Any = None) -> None:
        self.relay.side_lost(self)


class _Accept(ServerFactory):
    noisy = False

    def __init__(self, relay: H245Relay) -> None:
        self.relay = relay

    def buildProtocol(self, addr: Any) -> _Side | None:
        if self.relay.near is not None or self.relay.closed:
            return None           # one connection per relay
        side = _Side(self.relay, True)
        self.relay.near = side
        return side


class _Connect(ClientFactory):
    noisy = False

    def __init__(self, relay: H245Relay) -> None:
        self.relay = relay

    def buildProtocol(self, addr: Any) -> _Side:
        side = _Side(self.relay, False)
        self.relay.far = side
        return side

    def clientConnectionFailed(self, connector: Any, reason: Any) -> None:
        self.relay.fail(f"could not reach H.245 at {self.relay.target}: "
                        f"{reason.getErrorMessage()}")


class H245Relay:
    """Relays one H.245 channel between a party and the gatekeeper's port."""

    def __init__(self, connector: IReactorTCP, clock: IReactorTime, target: Address,
                 bind_address: str | None, on_failure: Callable[[str], None]) -> None:
        self.connector = connector
        self.clock = clock
        self.target = target
        self.bind_address = bind_address
        self.on_failure = on_failure
        self.port: Any = None
        self.near: _Side | None = None
        self.far: _Side | None = None
        self.closed = False
        self.relayed = 0
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._timer: IDelayedCall | None = None

    def listen(self, host: str) -> Address | None:
        """Start listening on ``host``; the address to announce (None: could not)."""
        try:
            self.port = self.connector.listenTCP(0, _Accept(self), interface=host)
        except (CannotListenError, OSError, ValueError):
            return None
        self._timer = self.clock.callLater(ACCEPT_TIMEOUT, self._nobody_came)
        bound = self.port.getHost()
        return (host if host not in ("", "0.0.0.0", "::") else bound.host, bound.port)

    def _nobody_came(self) -> None:
        self._timer = None
        self.close()

    def side_connected(self, side: _Side) -> None:
        if self.closed:
            side.transport.loseConnection()
            return
        if side.near:
            if self._timer is not None and self._timer.active():
                self._timer.cancel()
            self._timer = None
            self._stop_listening()
            bind = (self.bind_address, 0) if self.bind_address else None
            try:
                self.connector.connectTCP(self.target[0], self.target[1], _Connect(self),
                                          timeout=10, bindAddress=bind)
            except Exception as error:    # an address the reactor refuses
                self.fail(str(error))
        else:
            pending, self._pending, self._pending_bytes = self._pending, [], 0
            for data in pending:
                side.transport.write(data)

    def forward(self, side: _Side, data: bytes) -> None:
        if self.closed:
            return
        self.relayed += 1
        other = self.far if side.near else self.near
        if other is not None and other.transport is not None and other.connected:
            other.transport.write(data)
            return
        self._pending_bytes += len(data)
        if self._pending_bytes > PENDING_LIMIT:
            self.fail("too much H.245 waiting for the far side")
            return
        self._pending.append(data)

    def side_lost(self, side: _Side) -> None:
        self.close()

    def fail(self, reason: str) -> None:
        if not self.closed:
            self.on_failure(reason)
        self.close()

    def _stop_listening(self) -> None:
        if self.port is not None:
            port, self.port = self.port, None
            port.stopListening()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self._stop_listening()
        for side in (self.near, self.far):
            if side is not None and side.transport is not None:
                side.transport.loseConnection()
