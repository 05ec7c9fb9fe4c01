"""One call signalling TCP connection (a call leg): Q.931 in TPKT frames.

:class:`SignallingProtocol` frames, decodes and hands every message to its
``owner`` (:class:`LegOwner`): first the server, which waits for a Setup,
then the :class:`~gatekeeper.signalling.relay.CallRelay` of the call.  It
decides nothing.  Nothing a peer sends escapes ``dataReceived``: a broken
frame or an undecodable message is reported to the owner (which releases the
call with a fitting cause) and the connection is closed.

Output is bounded: the protocol is the transport's streaming producer, so it
knows when the peer stops reading; past :data:`SEND_LIMIT` bytes written
while paused, the leg is dropped instead of buffering without end.
"""

from __future__ import annotations

from typing import Any, Callable
from typing import Protocol as TypingProtocol

from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from gatekeeper.errors import DecodeError, EncodeError
from gatekeeper.h225 import callsignal, tpkt
from gatekeeper.h225.callsignal import SignalMessage
from gatekeeper.h225.ras import Address

#: Bytes a leg may have waiting for a peer that does not read.
SEND_LIMIT = 256 * 1024


class LegOwner(TypingProtocol):
    """Who a leg reports to."""

    def leg_connected(self, leg: SignallingProtocol) -> None: ...

    def message_received(self, leg: SignallingProtocol, message: SignalMessage) -> None: ...

    def leg_broken(self, leg: SignallingProtocol, what: str, reason: str) -> None: ...

    def leg_lost(self, leg: SignallingProtocol, reason: str) -> None: ...


@implementer(IPushProducer)
class SignallingProtocol(Protocol):
    """A call signalling connection, inbound (the caller's) or outbound (to
    the callee)."""

    def __init__(self, owner: LegOwner, outbound: bool = False, keepalive: bool = False) -> None:
        self.owner = owner
        self.outbound = outbound
        self.keepalive = keepalive
        self.deframer = tpkt.TpktDeframer()
        self.connected_leg = False
        self.closed = False
        self.paused = False
        self.held_bytes = 0          # written while the peer did not read
        self.peer: Address | None = None
        self.local: Address | None = None
        self.received = 0            # messages

    # -- twisted ---------------------------------------------------------

    def connectionMade(self) -> None:
        self.connected_leg = True
        peer, host = self.transport.getPeer(), self.transport.getHost()
        self.peer = (peer.host, peer.port)
        self.local = (host.host, host.port)
        for option in ("setTcpNoDelay", "setTcpKeepAlive"):
            setter = getattr(self.transport, option, None)
            if setter is not None and (option == "setTcpNoDelay" or self.keepalive):
                try:
                    setter(True)
                except OSError:
                    pass
        self.transport.registerProducer(self, True)
        self.owner.leg_connected(self)

    def dataReceived(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            payloads = self.deframer.feed(data)
        except DecodeError as error:
            self._broken("tpkt", str(error))
            return
        for payload in payloads:
            if self.closed:
                return
            try:
                message = callsignal.parse(payload)
            except DecodeError as error:
                self._broken("q931", str(error))
                return
            self.received += 1
            try:
                self.owner.message_received(self, message)
            except Exception:       # the owner logs its own failures; never let one escape
                self.owner.leg_broken(self, "internal", Failure().getErrorMessage())
                self.close()
                return

    def connectionLost(self, reason: Failure = None) -> None:
        already = self.closed
        self.closed = True
        self.connected_leg = False
        if not already:
            self.owner.leg_lost(self, reason.getErrorMessage() if reason is not None else "")

    # -- producer (flow control of what we write) -------------------------

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self.held_bytes = 0

    def stopProducing(self) -> None:
        self.close()

    # -- writing -----------------------------------------------------------

    def send(self, message: SignalMessage) -> bool:
        """Write one message; False if the leg is closed or it could not be
        encoded (the caller decides what that means for the call)."""
        if self.closed or self.transport is None:
            return False
        try:
            data = tpkt.frame(callsignal.serialize(message))
        except EncodeError:
            return False
        if self.paused:
            self.held_bytes += len(data)
            if self.held_bytes > SEND_LIMIT:
                self.owner.leg_broken(self, "send", "peer does not read")
                self.abort()
                return False
        self.transport.write(data)
        return True

    def close(self) -> None:
        """Close after what was written is sent; the owner hears no more."""
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.loseConnection()

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
        if self.transport is not None:
            abort = getattr(self.transport, "abortConnection", None)
            (abort or self.transport.loseConnection)()

    def _broken(self, what: str, reason: str) -> None:
        self.owner.leg_broken(self, what, reason)
        self.close()



class OutboundLegFactory(ClientFactory):
    """Opens one leg the gatekeeper originates: the leg reports to ``owner``,
    ``attach`` is given it as soon as it is built, ``failed`` is told why the
    connection could not be made."""

    noisy = False

    def __init__(self, owner: LegOwner, attach: Callable[[SignallingProtocol], None],
                 failed: Callable[[str], None], keepalive: bool = False) -> None:
        self.owner = owner
        self.attach = attach
        self.failed = failed
        self.keepalive = keepalive

    def buildProtocol(self, addr: Any) -> SignallingProtocol:
        leg = SignallingProtocol(self.owner, outbound=True, keepalive=self.keepalive)
        leg.factory = self
        self.attach(leg)
        return leg

    def clientConnectionFailed(self, connector: Any, reason: Any) -> None:
        self.failed(reason.getErrorMessage())
