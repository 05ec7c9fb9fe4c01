"""MakeCall: the gatekeeper calls one party and asks it to call another.

``MakeCall SOURCE DESTINATION [TRANSFER-METHOD]`` on the status port is
GnuGk's third-party call set-up: a pseudo endpoint inside the gatekeeper
(``[CTI::MakeCall] EndpointAlias``) calls SOURCE; when SOURCE answers, the
pseudo endpoint transfers it to DESTINATION, so that SOURCE ends up calling
DESTINATION itself.  The transfer method here is GnuGk's default,
FacilityForward: a Facility with reason callForwarded naming DESTINATION
(an alias, or an address), after which SOURCE releases the pseudo call and
places the new call (ARQ, Setup) as any call of its own.

SOURCE is found as any destination is: :meth:`SetupAdmission.originate`
runs the routing chain (virtual queues included) and admits the pseudo call
in the call table, so it is listed, ends with a CDR and can be disconnected
like any other.  The pseudo endpoint opens its own TCP leg to SOURCE's call
signalling address; it works in direct and in routed mode.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTCP, IReactorTime
from twisted.logger import Logger

from gatekeeper import events as ev
from gatekeeper.configfile import IniFile, as_bool, unknown_key
from gatekeeper.core.admission import (
    SetupAdmission, SetupAdmitted, SetupHeld, SetupRejected, SetupRequest)
from gatekeeper.errors import EncodeError
from gatekeeper.h225 import callsignal, q931, ras
from gatekeeper.h225.callsignal import SignalMessage
from gatekeeper.h225.ras import Address, Alias, aliases_to_asn, new_guid
from gatekeeper.ratelimit import RateLimitedLog
from gatekeeper.signalling.protocol import OutboundLegFactory, SignallingProtocol

SECTION = "CTI::MakeCall"

#: GnuGk's transfer methods, and the one this gatekeeper has.
TRANSFER_METHODS = ("FacilityForward", "FacilityRouteCallToMC", "H.450.2", "Reroute")
SUPPORTED_METHODS = ("FacilityForward",)
#: Keys GnuGk has in the section that mean nothing here (the pseudo endpoint
#: lives in the gatekeeper and offers no media of its own).
_IGNORED = {"disablefaststart", "gatekeeper", "interface", "bandwidth", "usehookflash"}


@dataclass(frozen=True, slots=True)
class MakeCallSettings:
    """``[CTI::MakeCall]``."""

    endpoint_alias: str = "InternalMakeCallEP"   # EndpointAlias
    transfer_method: str = "FacilityForward"     # TransferMethod
    disable_h245_tunneling: bool = False         # DisableH245Tunneling
    connect_timeout: float = 10.0                # opening the TCP leg to SOURCE
    answer_timeout: float = 60.0                 # Setup -> Connect
    release_timeout: float = 10.0                # Facility sent -> SOURCE releases


def parse_make_call(ini: IniFile) -> tuple[MakeCallSettings, list[str]]:
    """The section as settings, and the warnings about it."""
    path, warnings = ini.path, []
    values: dict[str, object] = {}
    for key, value in ini.items(SECTION):
        lowered = key.lower()
        if lowered == "endpointalias":
            if value.strip():
                values["endpoint_alias"] = value.strip()
        elif lowered == "transfermethod":
            method = _method(value)
            if method is None or method not in SUPPORTED_METHODS:
                warnings.append(f"{path}: [{SECTION}] {key}={value}: not supported, "
                                f"FacilityForward is used")
            else:
                values["transfer_method"] = method
        elif lowered == "useh450":
            if as_bool(path, SECTION, key, value):
                warnings.append(f"{path}: [{SECTION}] {key}={value}: H.450.2 is not "
                                "supported, FacilityForward is used")
        elif lowered == "disableh245tunneling":
            values["disable_h245_tunneling"] = as_bool(path, SECTION, key, value)
        elif lowered not in _IGNORED:
            warnings.append(unknown_key(path, SECTION, key))
    return MakeCallSettings(**values), warnings


def _method(text: str) -> str | None:
    """GnuGk's name of a transfer method, whatever its case."""
    return next((m for m in TRANSFER_METHODS if m.lower() == text.strip().lower()), None)


class MakeCalls:
    """The pseudo endpoint: one :class:`PseudoCall` per MakeCall."""

    log = Logger()

    def __init__(self, admission: SetupAdmission, clock: IReactorTime, connector: IReactorTCP,
                 settings: MakeCallSettings = MakeCallSettings(),
                 bind_address: str | None = None,
                 signal_address: Callable[[], Address | None] = lambda: None) -> None:
        self.admission = admission
        self.clock = clock
        self.connector = connector
        self.settings = settings
        self.bind_address = bind_address
        self.signal_address = signal_address      # ours, named as the Setup's source
        self.calls: dict[int, PseudoCall] = {}    # by call number
        self.stats: Counter[str] = Counter()
        self.trouble = RateLimitedLog(self.log, clock)
        self._crv = 0

    def reconfigure(self, settings: MakeCallSettings) -> None:
        self.settings = settings

    def make_call(self, source: Alias, destination: Alias | Address,
                  method: str | None = None) -> str:
        """Start one MakeCall; the status line that says what happens, or why not."""
        chosen = _method(method) if method is not None else self.settings.transfer_method
        if chosen is None:
            return f"Error: {method} is not a transfer method ({', '.join(TRANSFER_METHODS)})"
        if chosen not in SUPPORTED_METHODS:
            return f"Error: transfer method {chosen} is not supported (FacilityForward is)"
        self._crv = self._crv % 0x7FFF + 1
        own = self.signal_address()
        request = SetupRequest(
            call_id=new_guid(), conference_id=new_guid(), call_reference=self._crv,
            source=own or (self.bind_address or "0.0.0.0", 0), destination=(source,),
            source_info=(Alias("h323-ID", self.settings.endpoint_alias),),
            source_signal_address=own)
        decision = self.admission.originate(request, "MakeCall")
        self.stats["requests"] += 1
        if isinstance(decision, SetupRejected):
            self.stats["refused"] += 1
            return f"Error: cannot call {source.value}: {decision.reason}"
        if isinstance(decision, SetupHeld):
            decision.decision.addCallback(self._decided, request, destination)
            decision.decision.addErrback(self._failed)
            return (f"MakeCall: calling {source.value} is waiting for a route; when it "
                    f"answers it is asked to call {_text(destination)}")
        self._decided(decision, request, destination)
        return (f"MakeCall: calling {source.value}; when it answers it is asked to call "
                f"{_text(destination)}")

    def _decided(self, decision: SetupAdmitted | SetupRejected, request: SetupRequest,
                 destination: Alias | Address) -> None:
        if not isinstance(decision, SetupAdmitted):
            self.stats["refused"] += 1
            self.log.info("MakeCall: the call to {source} was refused: {reason}",
                          source=request.destination[0].value, reason=decision.reason)
            return
        call = PseudoCall(self, decision, request, destination)
        self.calls[decision.call.number] = call
        call.start()

    def _failed(self, failure: Any) -> None:
        self.trouble.failure("makecall", "MakeCall: routing the pseudo call failed", failure)

    def done(self, call: PseudoCall) -> None:
        if self.calls.get(call.call.number) is call:
            del self.calls[call.call.number]

    # -- the bus: a pseudo call ended elsewhere (DisconnectCall, ...) -----

    def __call__(self, event: object) -> None:
        if type(event) is ev.CallDetailRecord:
            call = self.calls.get(event.call_number)
            if call is not None:
                call.dropped()

    def stop(self) -> None:
        for call in list(self.calls.values()):
            call.finish(q931.CAUSE_NORMAL_UNSPECIFIED, release=True)


class PseudoCall:
    """The pseudo endpoint's call to SOURCE: Setup, wait for Connect, then
    Facility callForwarded to DESTINATION, and SOURCE's release."""

    def __init__(self, owner: MakeCalls, decision: SetupAdmitted, request: SetupRequest,
                 destination: Alias | Address) -> None:
        self.owner = owner
        self.call = decision.call
        self.target = decision.destination          # SOURCE's call signalling address
        self.request = request
        self.destination = destination
        self.crv = request.call_reference
        self.leg: SignallingProtocol | None = None
        self.state = "connecting"
        self.ended = False
        self._timer: IDelayedCall | None = None
        self._connector: Any = None

    @property
    def setup_admission(self) -> SetupAdmission:
        return self.owner.admission

    def start(self) -> None:
        settings = self.owner.settings
        bind = (self.owner.bind_address, 0) if self.owner.bind_address else None
        self._set_timer(settings.connect_timeout + settings.answer_timeout,
                        q931.CAUSE_NO_USER_RESPONDING)
        try:
            self._connector = self.owner.connector.connectTCP(
                self.target[0], self.target[1],
                OutboundLegFactory(self, self._attach, self.unreachable),
                timeout=settings.connect_timeout, bindAddress=bind)
        except Exception as error:      # an address the reactor refuses
            self.unreachable(str(error))

    def _attach(self, leg: SignallingProtocol) -> None:
        self.leg = leg

    # -- timers ----------------------------------------------------------

    def _set_timer(self, seconds: float, cause: int) -> None:
        self._cancel_timer()
        self._timer = self.owner.clock.callLater(seconds, self._timed_out, cause)

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _timed_out(self, cause: int) -> None:
        self._timer = None
        self.owner.stats["timeouts"] += 1
        self.finish(cause, release=True)

    # -- LegOwner --------------------------------------------------------

    def leg_connected(self, leg: SignallingProtocol) -> None:
        if self.ended:
            leg.close()
            return
        self.state = "setup sent"
        settings = self.owner.settings
        source = self.request.destination[0]
        try:
            message = callsignal.setup(
                self.crv, self.call.call_id, self.call.conference_id,
                aliases_to_asn(self.request.source_info), aliases_to_asn((source,)),
                self.target, leg.local, ras.endpoint_type_value("terminal"),
                tunnelling=not settings.disable_h245_tunneling,
                display=settings.endpoint_alias, digits=source.digits)
        except EncodeError as error:
            self.owner.trouble("encode", "MakeCall: cannot build the Setup to {source}: "
                               "{error}", source=source.value, error=str(error))
            self.finish(q931.CAUSE_INTERWORKING)
            return
        leg.send(message)

    def unreachable(self, reason: str) -> None:
        if self.ended:
            return
        self.owner.stats["unreachable"] += 1
        self.owner.trouble("unreachable", "MakeCall: could not reach {source} at {address}: "
                           "{reason}", source=self.request.destination[0].value,
                           address=_text(self.target), reason=reason)
        self.finish(q931.CAUSE_NO_ROUTE_TO_DESTINATION)

    def message_received(self, leg: SignallingProtocol, message: SignalMessage) -> None:
        if self.ended or message.crv != self.crv or not message.q931.from_destination:
            return
        kind = message.message_type
        if kind == q931.ALERTING and self.state == "setup sent":
            self.state = "alerting"
            self.setup_admission.alerting(self.call)
        elif kind == q931.CONNECT and self.state in ("setup sent", "alerting"):
            self.state = "transferring"
            self.setup_admission.connected(self.call)
            self._transfer(leg)
        elif kind == q931.RELEASE_COMPLETE:
            if self.state == "transferring":
                self.owner.stats["transferred"] += 1
            else:
                self.owner.stats["refused by source"] += 1
            self.finish(message.cause or q931.CAUSE_NORMAL_CALL_CLEARING)
        # Anything else (CallProceeding, Progress, tunnelled H.245 in a
        # Facility) needs no answer from a party that is about to transfer.

    def _transfer(self, leg: SignallingProtocol) -> None:
        destination = self.destination
        if isinstance(destination, Alias):
            aliases, address = aliases_to_asn((destination,)), None
        else:
            aliases, address = [], destination
        try:
            message = callsignal.facility_forward(self.crv, False, self.call.call_id,
                                                  self.call.conference_id, aliases, address)
        except EncodeError as error:
            self.owner.trouble("encode", "MakeCall: cannot ask for a transfer to {destination}: "
                               "{error}", destination=_text(destination), error=str(error))
            self.finish(q931.CAUSE_INTERWORKING, release=True)
            return
        leg.send(message)
        self.owner.stats["facility sent"] += 1
        self._set_timer(self.owner.settings.release_timeout, q931.CAUSE_NORMAL_CALL_CLEARING)

    def leg_broken(self, leg: SignallingProtocol, what: str, reason: str) -> None:
        if self.ended:
            return
        self.owner.stats["malformed"] += 1
        self.owner.trouble("malformed", "MakeCall: bad {what} from {source}: {reason}",
                           what=what, source=_text(self.target), reason=reason)
        self.finish(q931.CAUSE_INVALID_MESSAGE if what == "tpkt" else q931.CAUSE_INVALID_IE_CONTENTS,
                    release=True)

    def leg_lost(self, leg: SignallingProtocol, reason: str) -> None:
        if self.ended:
            return
        if self.state == "connecting":
            self.unreachable(reason)
            return
        if self.state == "transferring":
            self.owner.stats["transferred"] += 1
        self.finish(q931.CAUSE_NORMAL_CALL_CLEARING if self.state == "transferring"
                    else q931.CAUSE_TEMPORARY_FAILURE)

    # -- the end ---------------------------------------------------------

    def finish(self, cause: int, release: bool = False) -> None:
        """End the pseudo call once: ReleaseComplete if asked, the leg
        closed, the call ended in the core (its CDR)."""
        if self.ended:
            return
        self._end(cause, release)
        self.setup_admission.released(self.call, cause)

    def dropped(self) -> None:
        """The call ended elsewhere (DisconnectCall, ...): release the leg."""
        if not self.ended:
            self._end(q931.CAUSE_NORMAL_CALL_CLEARING, True)
            self.setup_admission.forget(self.call)

    def _end(self, cause: int, release: bool) -> None:
        self.ended = True
        self._cancel_timer()
        leg = self.leg
        if release and leg is not None and leg.connected_leg and not leg.closed:
            try:
                leg.send(callsignal.release_complete(self.crv, False, cause, self.call.call_id))
            except EncodeError:
                pass
        if leg is not None:
            leg.close()
        elif self._connector is not None:
            try:
                self._connector.stopConnecting()
            except Exception:        # connected or failed already
                pass
        self.owner.done(self)


def _text(value: Alias | Address) -> str:
    if isinstance(value, Alias):
        return value.value
    return f"{value[0]}:{value[1]}"
