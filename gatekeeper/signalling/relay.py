"""Gatekeeper-routed calls: the call signalling server and one relay per call.

:class:`SignallingServer` accepts call signalling connections on
``[RoutedMode] CallSignalPort``.  The first message on a connection must be
a Setup within ``SetupTimeout``; the core (:class:`SetupAdmission`) decides
on it.  An admitted call gets a :class:`CallRelay`, which opens the leg to
the callee, forwards the Setup with the addresses rewritten (the callee sees
the gatekeeper as the source, never the caller), and then relays every
message both ways with the call reference of each leg:

* caller leg: the caller's CRV; the gatekeeper is the destination side there
  (flag set on what it sends);
* callee leg: a CRV the gatekeeper allocates; it is the originating side.

A ReleaseComplete from either side, a leg lost, a bad message or a timer
(SignalTimeout until Alerting or Connect, AlertingTimeout until Connect)
releases both legs once and ends the call once, with the Q.850 cause in the
CDR.  A call ended elsewhere (DRQ, DisconnectCall, an unregistration) shows
as its CDR on the bus, and the relay then sends ReleaseComplete on both legs.
fastStart, tunnelled and parallel H.245 pass unchanged; with H245Routed the
h245Address of each side is replaced by one of an :class:`H245Relay`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTCP, IReactorTime
from twisted.internet.protocol import ServerFactory
from twisted.logger import Logger

from gatekeeper import events as ev
from gatekeeper.core.admission import (
    SetupAdmission, SetupAdmitted, SetupDecision, SetupHeld, SetupRejected, SetupRequest,
    SetupSettings)
from gatekeeper.core.calls import Call
from gatekeeper.errors import DecodeError, EncodeError
from gatekeeper.h225 import callsignal, q931
from gatekeeper.h225.callsignal import SignalMessage
from gatekeeper.h225.q931 import CalledPartyNumber
from gatekeeper.h225.ras import Address, Alias, aliases_from_asn, aliases_to_asn, dialled_digits
from gatekeeper.ratelimit import RateLimitedLog
from gatekeeper.signalling.h245 import H245Relay
from gatekeeper.signalling.protocol import OutboundLegFactory, SignallingProtocol
from gatekeeper.signalling.settings import RoutedModeSettings


@dataclass(frozen=True, slots=True)
class SignallingSettings:
    """``[RoutedMode]`` as the signalling side uses it (times in seconds)."""

    setup_timeout: float = 8.0           # SetupTimeout: a new connection's first message
    signal_timeout: float = 30.0         # SignalTimeout: Setup forwarded -> Alerting/Connect
    alerting_timeout: float = 180.0      # AlertingTimeout: Alerting -> Connect
    connect_timeout: float = 10.0        # opening the TCP leg to the callee
    tcp_keepalive: bool = False          # TcpKeepAlive
    h245_routed: bool = False            # H245Routed
    max_pending: int = 64                # caller messages held while the callee leg opens
    generate_call_proceeding: bool = False   # GenerateCallProceeding: answer Setup at once


def signalling_settings(routed_mode: RoutedModeSettings) -> SignallingSettings:
    """The relay's settings from ``[RoutedMode]``."""
    return SignallingSettings(
        setup_timeout=routed_mode.setup_timeout, signal_timeout=routed_mode.signal_timeout,
        alerting_timeout=routed_mode.alerting_timeout, tcp_keepalive=routed_mode.tcp_keepalive,
        h245_routed=routed_mode.h245_routed,
        generate_call_proceeding=routed_mode.generate_call_proceeding)


def setup_settings(routed_mode: RoutedModeSettings) -> SetupSettings:
    """Setup admission's settings from ``[RoutedMode]``."""
    return SetupSettings(accept_unregistered=routed_mode.accept_unregistered_calls,
                         accept_neighbors_calls=routed_mode.accept_neighbors_calls)


#: Messages from the callee that answer the caller's Setup.
_ANSWERS = frozenset((q931.CALL_PROCEEDING, q931.ALERTING, q931.CONNECT, q931.PROGRESS,
                      q931.SETUP_ACK))

#: Causes of the gatekeeper's own releases.
CAUSE_BAD_MESSAGE = q931.CAUSE_INVALID_IE_CONTENTS
CAUSE_BAD_FRAMING = q931.CAUSE_INVALID_MESSAGE
CAUSE_LEG_LOST = q931.CAUSE_TEMPORARY_FAILURE
CAUSE_UNREACHABLE = q931.CAUSE_NO_ROUTE_TO_DESTINATION
CAUSE_NO_ANSWER = q931.CAUSE_NO_ANSWER
CAUSE_NO_RESPONSE = q931.CAUSE_NO_USER_RESPONDING
CAUSE_DROPPED = q931.CAUSE_NORMAL_CALL_CLEARING


class SignallingServer(ServerFactory):
    """Accepts call signalling connections and keeps a relay per call."""

    log = Logger()
    noisy = False

    def __init__(self, admission: SetupAdmission, clock: IReactorTime, connector: IReactorTCP,
                 settings: SignallingSettings = SignallingSettings(),
                 bind_address: str | None = None) -> None:
        self.admission = admission
        self.clock = clock
        self.connector = connector
        self.settings = settings
        self.bind_address = bind_address       # local address of the legs we open
        self.stats: Counter[str] = Counter()
        self.relays: dict[int, CallRelay] = {}          # by call number
        self._waiting: dict[SignallingProtocol, IDelayedCall] = {}
        self._held: set[HeldSetup] = set()     # Setups a routing policy decides on
        self._crv = 0
        self._crvs_in_use: set[int] = set()
        self.trouble = RateLimitedLog(self.log, clock)
        self.accepting = True

    def reconfigure(self, settings: SignallingSettings) -> None:
        self.settings = settings

    # -- the factory -----------------------------------------------------

    def buildProtocol(self, addr: Any) -> SignallingProtocol:
        leg = SignallingProtocol(self, keepalive=self.settings.tcp_keepalive)
        leg.factory = self
        return leg

    # -- LegOwner for connections that have not sent their Setup ----------

    def leg_connected(self, leg: SignallingProtocol) -> None:
        self.stats["connections"] += 1
        self._waiting[leg] = self.clock.callLater(self.settings.setup_timeout, self._no_setup, leg)

    def _no_setup(self, leg: SignallingProtocol) -> None:
        self._waiting.pop(leg, None)
        self.stats["no setup"] += 1
        leg.abort()

    def _stop_waiting(self, leg: SignallingProtocol) -> None:
        timer = self._waiting.pop(leg, None)
        if timer is not None and timer.active():
            timer.cancel()

    def leg_lost(self, leg: SignallingProtocol, reason: str) -> None:
        self._stop_waiting(leg)

    def leg_broken(self, leg: SignallingProtocol, what: str, reason: str) -> None:
        self._stop_waiting(leg)
        self.stats["malformed"] += 1
        self.trouble("malformed", "dropped a call signalling connection from {peer}: bad {what}: "
                     "{reason}", peer=_text(leg.peer), what=what, reason=reason)

    def message_received(self, leg: SignallingProtocol, message: SignalMessage) -> None:
        self._stop_waiting(leg)
        if message.message_type != q931.SETUP or message.body_kind != "setup":
            self.stats["no setup"] += 1
            self.trouble("no setup", "{name} before any Setup from {peer}: connection closed",
                         name=message.name, peer=_text(leg.peer))
            if message.message_type != q931.RELEASE_COMPLETE:
                self._refuse(leg, message, q931.CAUSE_MESSAGE_NOT_COMPATIBLE_WITH_STATE, None)
            leg.close()
            return
        if not self.accepting:
            self._refuse(leg, message, q931.CAUSE_RESOURCES_UNAVAILABLE, "gatekeeperResources")
            leg.close()
            return
        self.stats["setups"] += 1
        decision = self.admission.on_setup(setup_request(message, leg.peer, leg.local))
        if isinstance(decision, SetupHeld):
            self._hold(leg, message, decision)
            return
        self._decided(leg, message, decision)

    def _hold(self, leg: SignallingProtocol, setup: SignalMessage, held: SetupHeld) -> None:
        """The routing chain asks someone else (a virtual queue): the leg
        waits, what the caller sends meanwhile is kept for the callee."""
        waiting = HeldSetup(self, leg, setup)
        self._held.add(waiting)
        self.stats["setups held"] += 1
        if self.settings.generate_call_proceeding:
            # The caller's Q.931 T303 (4 s) is shorter than a RouteRequest's wait.
            waiting.proceeding_sent = self.send_call_proceeding(
                leg, setup, setup.crv, setup.q931.call_reference_length)
        held.decision.addCallback(self._held_decided, waiting)
        held.decision.addErrback(self._held_failed, waiting)

    def _held_decided(self, decision: SetupAdmitted | SetupRejected, waiting: HeldSetup) -> None:
        self._held.discard(waiting)
        if waiting.gone is not None or waiting.leg.closed:
            self.stats["held caller gone"] += 1
            if isinstance(decision, SetupAdmitted):
                self.admission.released(decision.call, waiting.cause)
            return
        self._decided(waiting.leg, waiting.setup, decision, waiting.pending,
                      waiting.proceeding_sent)

    def _held_failed(self, failure: Any, waiting: HeldSetup) -> None:
        self._held.discard(waiting)
        self.trouble.failure("held setup", "deciding on a held Setup failed", failure)
        if not waiting.leg.closed:
            self._refuse(waiting.leg, waiting.setup, q931.CAUSE_TEMPORARY_FAILURE,
                         "undefinedReason")
            waiting.leg.close()

    def _decided(self, leg: SignallingProtocol, setup: SignalMessage, decision: SetupDecision,
                 pending: list[SignalMessage] | None = None,
                 proceeding_sent: bool = False) -> None:
        if not isinstance(decision, SetupAdmitted):
            self.stats["setups rejected"] += 1
            self._refuse(leg, setup, decision.cause, decision.reason)
            leg.close()
            return
        relay = CallRelay(self, decision, leg, setup, self.allocate_crv())
        if pending:
            relay._pending.extend(pending)
        if proceeding_sent:
            relay.proceeding_sent = relay.caller_answered = True
        self.relays[decision.call.number] = relay
        relay.start()

    def send_call_proceeding(self, leg: SignallingProtocol, setup: SignalMessage,
                             crv: int, crv_length: int) -> bool:
        """The gatekeeper's own CallProceeding for the caller's ``setup``
        (call reference ``crv``: the Setup may have been forwarded since)."""
        pdu = setup.pdu or {}
        try:
            message = callsignal.call_proceeding(crv, setup.call_id,
                                                 {"mc": False, "undefinedNode": False},
                                                 tunnelling=bool(pdu.get("h245Tunnelling")))
        except EncodeError:
            return False
        message.q931.call_reference_length = crv_length
        self.stats["call proceeding sent"] += 1
        return leg.send(message)

    def _refuse(self, leg: SignallingProtocol, message: SignalMessage, cause: int,
                reason: str | None) -> None:
        try:
            answer = callsignal.release_complete(message.crv, True, cause, message.call_id, reason)
        except EncodeError:
            return
        answer.q931.call_reference_length = message.q931.call_reference_length
        leg.send(answer)

    # -- call references of the legs we originate ------------------------

    def allocate_crv(self) -> int:
        for _ in range(0x7FFF):
            self._crv = self._crv % 0x7FFF + 1
            if self._crv not in self._crvs_in_use:
                self._crvs_in_use.add(self._crv)
                return self._crv
        raise RuntimeError("no call reference value free")

    def release_crv(self, crv: int) -> None:
        self._crvs_in_use.discard(crv)

    def relay_done(self, relay: CallRelay) -> None:
        if self.relays.get(relay.call.number) is relay:
            del self.relays[relay.call.number]
        self.release_crv(relay.callee_crv)

    # -- the bus: calls that end elsewhere -------------------------------

    def __call__(self, event: object) -> None:
        if type(event) is ev.CallDetailRecord:
            relay = self.relays.get(event.call_number)
            if relay is not None and not relay.released:
                reason = event.release_reason
                cause = int(reason) if reason.isdigit() and 1 <= int(reason) <= 127 \
                    else CAUSE_DROPPED
                relay.drop(cause)

    # -- what the status port asks -------------------------------------

    def transfer(self, call: Call, party: str, destination: tuple[Alias, ...]) -> str | None:
        """TransferCall: None when the Facility went out, else the error line."""
        relay = self.relays.get(call.number)
        if relay is None:
            return f"Error: call number {call.number} is not signalled through this gatekeeper"
        return relay.transfer(party, destination)

    def send_proceeding(self, call: Call) -> str | None:
        """SendProceeding: None when the CallProceeding went out, else the error line."""
        relay = self.relays.get(call.number)
        if relay is None:
            return f"Error: call number {call.number} is not signalled through this gatekeeper"
        return relay.send_proceeding()

    def stop(self) -> None:
        """Stop accepting calls; end the relays still up."""
        self.accepting = False
        for relay in list(self.relays.values()):
            relay.release(q931.CAUSE_NORMAL_UNSPECIFIED, "gatekeeper")
        for leg, timer in list(self._waiting.items()):
            if timer.active():
                timer.cancel()
            leg.abort()
        self._waiting.clear()
        for waiting in list(self._held):
            waiting.gone = "gatekeeper"
            self._refuse(waiting.leg, waiting.setup, q931.CAUSE_RESOURCES_UNAVAILABLE,
                         "gatekeeperResources")
            waiting.leg.close()


class HeldSetup:
    """The owner of a caller's leg while a routing policy decides on its Setup."""

    def __init__(self, server: SignallingServer, leg: SignallingProtocol,
                 setup: SignalMessage) -> None:
        self.server = server
        self.leg = leg
        self.setup = setup
        self.pending: list[SignalMessage] = []
        self.proceeding_sent = False
        self.gone: str | None = None          # why the caller left meanwhile
        self.cause = CAUSE_LEG_LOST
        leg.owner = self

    def leg_connected(self, leg: SignallingProtocol) -> None:
        pass

    def message_received(self, leg: SignallingProtocol, message: SignalMessage) -> None:
        if self.gone is not None:
            return
        if message.message_type == q931.RELEASE_COMPLETE:
            self.gone, self.cause = "caller", message.cause or CAUSE_DROPPED
            self.server.stats["released by caller"] += 1
            leg.close()
        elif len(self.pending) >= self.server.settings.max_pending:
            self.gone, self.cause = "flood", q931.CAUSE_RESOURCES_UNAVAILABLE
            self.server._refuse(leg, self.setup, self.cause, "gatekeeperResources")
            leg.close()
        else:
            self.pending.append(message)

    def leg_broken(self, leg: SignallingProtocol, what: str, reason: str) -> None:
        if self.gone is None:
            self.gone = what
            self.cause = CAUSE_BAD_FRAMING if what == "tpkt" else CAUSE_BAD_MESSAGE
        self.server.leg_broken(leg, what, reason)

    def leg_lost(self, leg: SignallingProtocol, reason: str) -> None:
        if self.gone is None:
            self.gone = "lost"


def setup_request(message: SignalMessage, peer: Address | None,
                  local: Address | None = None) -> SetupRequest:
    """What admission needs from a Setup: its call, who it is for, from where."""
    body = message.body or {}
    destination = aliases_from_asn(body.get("destinationAddress"))
    if not destination:
        try:
            called = message.q931.called_party_number
        except DecodeError:
            called = None
        if called is not None and called.digits:
            destination = (dialled_digits(called.digits),)
    conference = body.get("conferenceID")
    return SetupRequest(
        call_id=message.call_id, conference_id=conference if isinstance(conference, bytes) else None,
        call_reference=message.crv, source=peer or ("0.0.0.0", 0), destination=destination,
        dest_signal_address=message.address("destCallSignalAddress"),
        source_info=aliases_from_asn(body.get("sourceAddress")),
        source_signal_address=message.address("sourceCallSignalAddress"), local=local)


class CallRelay:
    """One routed call: the caller's leg and the callee's leg."""

    log = Logger()

    def __init__(self, server: SignallingServer, decision: SetupAdmitted,
                 caller_leg: SignallingProtocol, setup: SignalMessage, callee_crv: int) -> None:
        self.server = server
        self.call = decision.call
        self.destination = decision.destination
        self.destination_info = decision.destination_info
        self.caller_leg = caller_leg
        self.callee_leg: SignallingProtocol | None = None
        self.setup = setup
        self.caller_crv = setup.crv
        # The caller's leg keeps the call reference length the caller chose;
        # the leg the gatekeeper originates uses two octets (H.225.0 7.6).
        self.caller_crv_length = setup.q931.call_reference_length
        self.callee_crv = callee_crv
        self.state = "connecting"
        self.released = False
        self.cause: int | None = None
        self._pending: list[SignalMessage] = []
        self._connector: Any = None          # the TCP connector of the callee leg
        self._timer: IDelayedCall | None = None
        self.h245: list[H245Relay] = []
        #: The caller has had a provisional or final answer (ours or the callee's).
        self.caller_answered = False
        #: The gatekeeper answered the Setup with its own CallProceeding.
        self.proceeding_sent = False
        caller_leg.owner = self

    @property
    def clock(self) -> IReactorTime:
        return self.server.clock

    def start(self) -> None:
        settings = self.server.settings
        host, port = self.destination
        bind = (self.server.bind_address, 0) if self.server.bind_address else None
        self._set_timer(settings.signal_timeout, CAUSE_NO_RESPONSE)
        if settings.generate_call_proceeding and not self.proceeding_sent:
            self._proceeding_to_caller()
        try:
            self._connector = self.server.connector.connectTCP(
                host, port, OutboundLegFactory(self, self._attach_callee, self.callee_unreachable,
                                               settings.tcp_keepalive),
                timeout=settings.connect_timeout,
                bindAddress=bind)
        except Exception as error:     # an address the reactor refuses (bad family, ...)
            self.callee_unreachable(str(error))

    def _attach_callee(self, leg: SignallingProtocol) -> None:
        self.callee_leg = leg

    # -- timers ----------------------------------------------------------

    def _set_timer(self, seconds: float, cause: int) -> None:
        self._cancel_timer()
        if seconds > 0:
            self._timer = self.clock.callLater(seconds, self._timed_out, cause)

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _timed_out(self, cause: int) -> None:
        self._timer = None
        self.server.stats["timeouts"] += 1
        self.release(cause, "gatekeeper")

    # -- LegOwner --------------------------------------------------------

    def leg_connected(self, leg: SignallingProtocol) -> None:
        if self.released:
            leg.close()
            return
        if leg is not self.callee_leg:
            return
        self.state = "setup sent"
        self._forward_setup(leg)
        pending, self._pending = self._pending, []
        for message in pending:
            self._to_callee(message)

    def callee_unreachable(self, reason: str) -> None:
        if self.released:
            return
        self.server.stats["callee unreachable"] += 1
        self.server.trouble("unreachable", "call {number}: could not reach {destination}: "
                            "{reason}", number=self.call.number, destination=_text(self.destination),
                            reason=reason)
        self.release(CAUSE_UNREACHABLE, "gatekeeper", reason="unreachableDestination")

    def message_received(self, leg: SignallingProtocol, message: SignalMessage) -> None:
        if self.released:
            return
        from_caller = leg is self.caller_leg
        expected = self.caller_crv if from_caller else self.callee_crv
        if message.crv != expected or message.q931.from_destination == from_caller:
            # Another call on the same connection, or the wrong direction:
            # not ours to pass on.
            self.server.stats["foreign call reference"] += 1
            if message.message_type == q931.SETUP:
                self.server._refuse(leg, message, q931.CAUSE_CALL_REJECTED, "inConf")
            return
        kind = message.message_type
        if kind == q931.SETUP:
            self.server.stats["setup again"] += 1
            return
        if self.server.settings.h245_routed:
            self._route_h245(message, from_caller)
        if from_caller:
            if self.callee_leg is None or not self.callee_leg.connected_leg:
                if kind == q931.RELEASE_COMPLETE:
                    self.release(message.cause or CAUSE_DROPPED, "caller", forward=None)
                    return
                if len(self._pending) >= self.server.settings.max_pending:
                    self.release(q931.CAUSE_RESOURCES_UNAVAILABLE, "gatekeeper")
                    return
                self._pending.append(message)
                return
            self._to_callee(message)
        else:
            self._from_callee(message)
        if kind == q931.RELEASE_COMPLETE:
            self.release(message.cause or CAUSE_DROPPED, "caller" if from_caller else "callee",
                         forward=None)

    def leg_broken(self, leg: SignallingProtocol, what: str, reason: str) -> None:
        if self.released:
            return
        if what == "send":
            # Not bad input: the peer stopped reading what we write to it.
            self.server.stats["peer not reading"] += 1
            self.server.trouble("not reading", "call {number}: {peer} does not read: leg dropped",
                                number=self.call.number, peer=_text(leg.peer))
            self.release(CAUSE_LEG_LOST, "gatekeeper")
            return
        self.server.stats["malformed"] += 1
        self.server.trouble("malformed", "call {number}: bad {what} from {peer}: {reason}",
                            number=self.call.number, what=what, peer=_text(leg.peer), reason=reason)
        cause = CAUSE_BAD_FRAMING if what == "tpkt" else CAUSE_BAD_MESSAGE
        self.release(cause, "gatekeeper")

    def leg_lost(self, leg: SignallingProtocol, reason: str) -> None:
        if self.released:
            return
        self.server.stats["legs lost"] += 1
        if leg is self.callee_leg and self.state == "connecting":
            self.callee_unreachable(reason)
            return
        self.release(CAUSE_LEG_LOST, "gatekeeper", keep=leg)

    # -- relaying --------------------------------------------------------

    def _forward_setup(self, leg: SignallingProtocol) -> None:
        setup = self.setup
        setup.q931.call_reference = self.callee_crv
        setup.q931.call_reference_length = 2
        setup.q931.from_destination = False
        body = setup.body
        setup.set_address("destCallSignalAddress", self.destination)
        if leg.local is not None:
            setup.set_address("sourceCallSignalAddress", leg.local)
        requested = aliases_from_asn(body.get("destinationAddress"))
        if self.destination_info and tuple(requested) != tuple(self.destination_info):
            body["destinationAddress"] = aliases_to_asn(self.destination_info)
            setup.touch()
            digits = next((a.digits for a in self.destination_info if a.digits), None)
            if digits:
                setup.q931.set_ie(CalledPartyNumber(digits, q931.TON_UNKNOWN, q931.NPI_ISDN))
        if self.server.settings.h245_routed:
            self._route_h245(setup, True)
        self._send(leg, setup)

    def _to_callee(self, message: SignalMessage) -> None:
        message.q931.call_reference = self.callee_crv
        message.q931.call_reference_length = 2
        message.q931.from_destination = False
        if self.callee_leg is not None:
            self._send(self.callee_leg, message)

    def _from_callee(self, message: SignalMessage) -> None:
        kind = message.message_type
        if kind == q931.CALL_PROCEEDING and self.state == "setup sent":
            self.state = "proceeding"
        if kind == q931.CALL_PROCEEDING and self.proceeding_sent:
            # The caller has our CallProceeding: a second one would break its
            # state machine. What it still needs from this one goes on in a
            # Facility (forwardedElements); nothing else is passed.
            converted = callsignal.forwarded_elements(message)
            if converted is None:
                self.server.stats["call proceeding absorbed"] += 1
                return
            message = converted
            kind = q931.FACILITY
        elif kind == q931.ALERTING and self.state in ("setup sent", "proceeding"):
            self.state = "alerting"
            self._set_timer(self.server.settings.alerting_timeout, CAUSE_NO_ANSWER)
            self.server.admission.alerting(self.call)
        elif kind == q931.CONNECT and self.state != "connected":
            self.state = "connected"
            self._cancel_timer()
            self.server.admission.connected(self.call)
        if kind in _ANSWERS:
            self.caller_answered = True
        message.q931.call_reference = self.caller_crv
        message.q931.call_reference_length = self.caller_crv_length
        message.q931.from_destination = True
        self._send(self.caller_leg, message)

    # -- the gatekeeper's own messages -------------------------------------

    def send_proceeding(self) -> str | None:
        if self.released:
            return f"Error: call number {self.call.number} has ended"
        if self.caller_answered:
            return (f"Error: the caller of call number {self.call.number} has had its answer "
                    "to the Setup already")
        self._proceeding_to_caller()
        return None

    def _proceeding_to_caller(self) -> None:
        self.proceeding_sent = True
        self.caller_answered = True
        if not self.server.send_call_proceeding(self.caller_leg, self.setup, self.caller_crv,
                                                self.caller_crv_length):
            self.server.stats["unencodable"] += 1
            self.release(q931.CAUSE_INTERWORKING, "gatekeeper")

    def transfer(self, party: str, destination: tuple[Alias, ...]) -> str | None:
        """Ask ``party`` to call ``destination`` instead of the other party:
        a Facility with reason callForwarded (GnuGk's FacilityForward). The
        party then releases this call and places the new one itself."""
        if self.released:
            return f"Error: call number {self.call.number} has ended"
        if self.state != "connected":
            return f"Error: call number {self.call.number} is not established"
        if party == "caller":
            leg, crv, flag, length = self.caller_leg, self.caller_crv, True, self.caller_crv_length
        else:
            leg, crv, flag, length = self.callee_leg, self.callee_crv, False, 2
        if leg is None or leg.closed or not leg.connected_leg:
            return f"Error: the {party} of call number {self.call.number} is not connected"
        try:
            message = callsignal.facility_forward(crv, flag, self.call.call_id,
                                                  self.call.conference_id,
                                                  aliases_to_asn(destination))
        except EncodeError as error:
            return f"Error: cannot ask for a transfer to {destination[0]}: {error}"
        message.q931.call_reference_length = length
        self.server.stats["transfers"] += 1
        self._send(leg, message)
        return None

    def _send(self, leg: SignallingProtocol, message: SignalMessage) -> None:
        if not leg.send(message) and not leg.closed:
            self.server.stats["unencodable"] += 1
            self.release(q931.CAUSE_INTERWORKING, "gatekeeper")

    # -- H.245 -----------------------------------------------------------

    def _route_h245(self, message: SignalMessage, from_caller: bool) -> None:
        """Put a gatekeeper-side H.245 relay in place of the party's h245Address."""
        if message.body_kind not in callsignal.H245_BODIES:
            return
        address = message.address("h245Address")
        if address is None:
            return
        relay = H245Relay(self.server.connector, self.clock, address,
                          self.server.bind_address, self._h245_failed)
        local = relay.listen(self._leg_host(from_caller))
        if local is None:
            message.set_address("h245Address", None)
            return
        self.h245.append(relay)
        message.set_address("h245Address", local)

    def _leg_host(self, from_caller: bool) -> str:
        """Our address as the other party sees it (where it connects for H.245)."""
        leg = self.callee_leg if from_caller else self.caller_leg
        if leg is not None and leg.local is not None:
            return leg.local[0]
        return self.server.bind_address or "0.0.0.0"

    def _h245_failed(self, reason: str) -> None:
        self.server.stats["h245 relay failed"] += 1

    # -- the end ---------------------------------------------------------

    def release(self, cause: int, by: str, forward: Any = "both", keep: Any = None,
                reason: str | None = None) -> None:
        """End the call once: ReleaseComplete on the legs that did not end it
        themselves, both legs closed, the call ended in the core."""
        if self.released:
            return
        self.released = True
        self.cause = cause
        self._cancel_timer()
        self.server.stats["released by " + by] += 1
        if forward == "both":
            self._release_legs(cause, reason, keep)
        else:
            self._close_legs()
        self.server.relay_done(self)
        self.server.admission.released(self.call, cause)

    def drop(self, cause: int) -> None:
        """The call ended elsewhere: release both legs; the core knows."""
        if self.released:
            return
        self.released = True
        self.cause = cause
        self._cancel_timer()
        self.server.stats["released by gatekeeper"] += 1
        self._release_legs(cause, None, None)
        self.server.relay_done(self)
        self.server.admission.forget(self.call)

    def _release_legs(self, cause: int, reason: str | None, keep: Any) -> None:
        call_id = self.call.call_id
        legs = ((self.caller_leg, self.caller_crv, True, self.caller_crv_length),
                (self.callee_leg, self.callee_crv, False, 2))
        for leg, crv, flag, length in legs:
            if leg is None or leg is keep or leg.closed or not leg.connected_leg:
                continue
            if not (leg is self.callee_leg and self.state == "connecting"):
                message = callsignal.release_complete(crv, flag, cause, call_id, reason)
                message.q931.call_reference_length = length
                leg.send(message)
        self._close_legs()

    def _close_legs(self) -> None:
        if self.callee_leg is None and self._connector is not None:
            try:
                self._connector.stopConnecting()
            except Exception:       # already connected or failed: nothing to stop
                pass
        for leg in (self.caller_leg, self.callee_leg):
            if leg is not None:
                leg.close()
        for relay in self.h245:
            relay.close()
        self.h245.clear()


def _text(address: Address | None) -> str:
    if address is None:
        return "?"
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


